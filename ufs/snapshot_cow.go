package ufs

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// Copy-on-write (FreeBSD's ffs_copyonwrite and ffs_snapblkfree) for a
// filesystem holding one snapshot. Before a block's old contents are
// overwritten on the device, or the block is freed, the snapshot gets them
// if it still needs them (its pointer for that block is 0, "not copied"):
//
//   - a write through the buffer cache: the CopyOnWrite hook (first in the
//     cache's chain). Under soft updates it cannot copy there (it runs
//     inside a round, and the copy may need the allocator, which may need
//     a round); it queues the block and puts the write off
//     (bcache.ErrDeferWrite), and the next round copies it first
//     (Host.BeforeRound). Without soft updates it copies at once.
//   - a direct file-data write (writeData): the copy is made before.
//   - a free (freeNow): a whole block the snapshot needs is handed to it
//     instead of being freed; a fragment of one is copied first.
//
// The look-aside state answers most writes without reading the snapshot:
// needs, one bit per filesystem block still to be copied, and owned, the
// snapshot's own blocks (its writes never need copying). A copy is on the
// device with the snapshot's pointer to it and its block count, flushed,
// before the write that needed it begins. One lock (mu) for all of it.

// snapCOW is the copy-on-write state of the snapshot of an FS.
type snapCOW struct {
	mu      sync.Mutex // copies and claims, one at a time
	ino     ondisk.Ino
	hint    alloc.InodeHint
	numblks int64
	level1  []ondisk.Frag // the snapshot's level-0 indirect blocks, by (lbn-NDADDR)/NINDIR
	needs   []atomic.Uint64
	ownMu   sync.RWMutex
	owned   map[ondisk.Frag]bool
	qmu     sync.Mutex
	queue   map[ondisk.Frag]bool // blocks whose cache write waits for a copy
}

func (s *snapCOW) needsCopy(lbn int64) bool {
	if lbn < 0 || lbn >= s.numblks {
		return false
	}
	return s.needs[lbn/64].Load()&(1<<(lbn%64)) != 0
}

func (s *snapCOW) done(lbn int64) {
	w := &s.needs[lbn/64]
	for {
		old := w.Load()
		if w.CompareAndSwap(old, old&^(1<<(lbn%64))) {
			return
		}
	}
}

func (s *snapCOW) isOwned(p ondisk.Frag) bool {
	s.ownMu.RLock()
	defer s.ownMu.RUnlock()
	return s.owned[p]
}

func (s *snapCOW) own(p ondisk.Frag) {
	s.ownMu.Lock()
	s.owned[p] = true
	s.ownMu.Unlock()
}

// loadSnapshot reads the snapshot listed in fs_snapinum into the
// copy-on-write state: its level-0 indirect blocks, the blocks it owns, and
// the blocks still to copy.
func (fs *FS) loadSnapshot() error {
	sb := fs.sb
	var ino ondisk.Ino
	for _, n := range sb.Snapinum {
		if n != 0 {
			ino = ondisk.Ino(n)
		}
	}
	if ino == 0 {
		fs.cow.Store(nil)
		return nil
	}
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return fmt.Errorf("snapshot inode %d: %w", ino, err)
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	d := ip.din
	if d.Flags&ondisk.SFSnapshot == 0 {
		return fs.corrupt(corruptf("fs_snapinum lists inode %d, which is not a snapshot", ino))
	}
	frag := int64(sb.Frag)
	s := &snapCOW{ino: ino, hint: alloc.Hint(ino, &d), numblks: (sb.Size + frag - 1) / frag, owned: map[ondisk.Frag]bool{}, queue: map[ondisk.Frag]bool{}}
	s.needs = make([]atomic.Uint64, (s.numblks+63)/64)
	mark := func(lbn int64, p ondisk.Frag) {
		switch {
		case lbn >= s.numblks:
			if p >= ondisk.Frag(frag) {
				s.owned[p] = true
			}
		case p == 0:
			s.needs[lbn/64].Store(s.needs[lbn/64].Load() | 1<<(lbn%64))
		case p >= ondisk.Frag(frag):
			s.owned[p] = true
		}
	}
	for lbn, p := range d.Db {
		mark(int64(lbn), p)
	}
	nindir := int64(sb.Nindir)
	var walk func(p ondisk.Frag, level int, base, per int64) error
	walk = func(p ondisk.Frag, level int, base, per int64) error {
		if p == 0 {
			if level == 0 && base < s.numblks {
				return fs.corrupt(corruptf("snapshot inode %d: no indirect block for blocks from %d", ino, base))
			}
			return nil
		}
		if !fs.validRange(p, frag) || sb.Fragnum(p) != 0 {
			return fs.corrupt(corruptf("snapshot inode %d: indirect block pointer %d is outside the data area", ino, p))
		}
		s.owned[p] = true
		ptrs, err := fs.readPointers(p, 0, int(nindir))
		if err != nil {
			return err
		}
		if level == 0 {
			s.level1 = append(s.level1, p)
			for i, q := range ptrs {
				mark(base+int64(i), q)
			}
			return nil
		}
		for i, q := range ptrs {
			if base+int64(i)*per > s.numblks {
				break
			}
			if err := walk(q, level-1, base+int64(i)*per, per/nindir); err != nil {
				return err
			}
		}
		return nil
	}
	base, per := int64(ondisk.NDaddr), int64(1)
	for level, p := range d.Ib {
		span := per * nindir
		if base > s.numblks {
			break
		}
		if err := walk(p, level, base, per); err != nil {
			return err
		}
		base += span
		per = span
	}
	fs.cow.Store(s)
	return nil
}

// CopyOnWrite implements bcache.Hooks for the snapshot (see above).
func (c cowHooks) CopyOnWrite(b *bcache.Buf) error {
	fs := c.fs
	s := fs.cow.Load()
	if s == nil {
		return nil
	}
	sb := fs.sb
	bsize := int64(sb.Bsize)
	var wait []ondisk.Frag
	for off := b.Off() - b.Off()%bsize; off < b.Off()+int64(b.Size()); off += bsize {
		blk := ondisk.Frag(off / int64(sb.Fsize))
		if !s.needsCopy(off/bsize) || s.isOwned(blk) {
			continue
		}
		if fs.sd == nil {
			if err := fs.copyForSnapshot(blk); err != nil {
				return err
			}
			continue
		}
		wait = append(wait, blk)
	}
	if len(wait) == 0 {
		return nil
	}
	s.qmu.Lock()
	for _, blk := range wait {
		s.queue[blk] = true
	}
	s.qmu.Unlock()
	return bcache.ErrDeferWrite
}

// cowHooks puts the snapshot's copy-on-write first in the cache's chain.
type cowHooks struct {
	bcache.NopHooks
	fs *FS
}

// copyQueued makes the copies the cache's writes wait for (soft updates:
// before each round).
func (fs *FS) copyQueued() {
	s := fs.cow.Load()
	if s == nil {
		return
	}
	s.qmu.Lock()
	q := s.queue
	s.queue = map[ondisk.Frag]bool{}
	s.qmu.Unlock()
	if len(q) == 0 {
		return
	}
	blks := make([]ondisk.Frag, 0, len(q))
	for blk := range q {
		blks = append(blks, blk)
	}
	if err := fs.copyForSnapshot(blks...); err != nil {
		fs.log.Error("snapshot: copying blocks before they are overwritten", "blocks", len(blks), "err", err)
	}
}

// cowRange copies, before a direct write of [off, off+n) on the device,
// the blocks the snapshot still needs.
func (fs *FS) cowRange(off int64, n int) error {
	s := fs.cow.Load()
	if s == nil {
		return nil
	}
	sb := fs.sb
	bsize := int64(sb.Bsize)
	var blks []ondisk.Frag
	for at := off - off%bsize; at < off+int64(n); at += bsize {
		if s.needsCopy(at / bsize) {
			blks = append(blks, ondisk.Frag(at/int64(sb.Fsize)))
		}
	}
	if len(blks) == 0 {
		return nil
	}
	return fs.copyForSnapshot(blks...)
}

// copyForSnapshot gives the snapshot a copy of each of blks, as the device
// has them, that it still needs, and makes the copies, the pointers to
// them and the block count durable together (one flush for a run of
// blocks).
func (fs *FS) copyForSnapshot(blks ...ondisk.Frag) error {
	s := fs.cow.Load()
	sb := fs.sb
	bsize := int64(sb.Bsize)
	s.mu.Lock()
	defer s.mu.Unlock()
	var lbns []int64
	var ptrs []ondisk.Frag
	old := make([]byte, bsize)
	// A failure part way keeps the copies already made.
	fail := func(err error) error {
		if perr := fs.pointSnapshot(s, lbns, ptrs); perr != nil {
			fs.log.Error("snapshot: recording copies", "err", perr)
		}
		return err
	}
	for _, blk := range blks {
		lbn := int64(blk) / int64(sb.Frag)
		if !s.needsCopy(lbn) || slices.Contains(lbns, lbn) {
			continue
		}
		if err := blockdev.ReadFull(fs.dev, old, sb.FragOffset(blk)); err != nil {
			return fail(fmt.Errorf("snapshot: reading block %d: %w", blk, err))
		}
		q, err := fs.alloc.AllocBlock(s.hint, ondisk.Lbn(lbn), 0, int(bsize), true)
		if err != nil {
			return fail(fmt.Errorf("snapshot: no space for a copy of block %d: %w", blk, allocErr(err)))
		}
		fs.forget(q, bsize)
		if _, err := fs.dev.WriteAt(old, sb.FragOffset(q)); err != nil {
			// The block is allocated and unreferenced: a leak.
			return fail(fmt.Errorf("snapshot: writing the copy of block %d: %w", blk, err))
		}
		s.own(q)
		lbns, ptrs = append(lbns, lbn), append(ptrs, q)
	}
	return fs.pointSnapshot(s, lbns, ptrs)
}

// claimForSnapshot is ffs_snapblkfree: a block being freed that the
// snapshot still needs becomes the snapshot's (true: not to be freed); a
// fragment of one makes the snapshot copy the whole block first (false:
// free it as usual).
func (fs *FS) claimForSnapshot(p ondisk.Frag, size int64) (bool, error) {
	s := fs.cow.Load()
	if s == nil {
		return false, nil
	}
	sb := fs.sb
	bsize := int64(sb.Bsize)
	blk := sb.Blknum(p)
	lbn := int64(blk) / int64(sb.Frag)
	if !s.needsCopy(lbn) || s.isOwned(blk) {
		return false, nil
	}
	if size < bsize {
		return false, fs.copyForSnapshot(blk)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.needsCopy(lbn) {
		return false, nil
	}
	s.own(blk)
	return true, fs.pointSnapshot(s, []int64{lbn}, []ondisk.Frag{blk})
}

// pointSnapshot stores ptrs[i] as the snapshot's pointer for logical
// block lbns[i], counts them in its di_blocks, and flushes the indirect
// blocks, the inode and the device. Preconditions: s.mu held.
func (fs *FS) pointSnapshot(s *snapCOW, lbns []int64, ptrs []ondisk.Frag) error {
	if len(lbns) == 0 {
		return nil
	}
	sb := fs.sb
	bsize := int64(sb.Bsize)
	nindir := int64(sb.Nindir)
	var touched []*bcache.Buf
	defer func() {
		for _, b := range touched {
			fs.cache.Release(b)
		}
	}()
	for k, lbn := range lbns {
		if lbn < ondisk.NDaddr {
			// Every direct block was copied at creation or free then.
			return fs.corrupt(corruptf("snapshot inode %d: direct block %d not copied", s.ino, lbn))
		}
		i := lbn - ondisk.NDaddr
		ib := s.level1[i/nindir]
		var b *bcache.Buf
		for _, t := range touched {
			if t.Off() == sb.FragOffset(ib) {
				b = t
			}
		}
		if b == nil {
			nb, err := fs.cache.Get(sb.FragOffset(ib), int(bsize))
			if err != nil {
				return err
			}
			b = nb
			touched = append(touched, b)
		}
		b.Lock()
		ondisk.SetIndirPtr(b.Data(), int(i%nindir), ptrs[k])
		err := fs.cache.MarkDirty(b)
		b.Unlock()
		if err != nil {
			return err
		}
	}
	for _, b := range touched {
		if err := fs.cache.FlushBuf(b); err != nil {
			return fmt.Errorf("snapshot: pointers to copies: %w", err)
		}
	}
	ip, err := fs.OpenInode(s.ino)
	if err != nil {
		return err
	}
	ip.mu.Lock()
	ip.din.Blocks += btodb(bsize) * uint64(len(lbns))
	err = fs.iupdate(ip, orderDelayed)
	ip.mu.Unlock()
	ip.Release()
	if err != nil {
		return err
	}
	off, size, _ := fs.inodeBlock(s.ino)
	if ibuf := fs.cache.Lookup(off, size); ibuf != nil {
		err = fs.cache.FlushBuf(ibuf)
		fs.cache.Release(ibuf)
		if err != nil {
			return err
		}
	}
	if err := fs.dev.Sync(); err != nil {
		return fmt.Errorf("snapshot: syncing copies: %w", err)
	}
	for _, lbn := range lbns {
		s.done(lbn)
	}
	return nil
}
