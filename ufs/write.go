package ufs

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// The write half's plumbing: opening read-write, the cylinder groups the
// allocator works on, the summaries and the superblock, Sync and Close.

// maxCachedCgs bounds the decoded cylinder groups kept between syncs; past
// it, groups with no unwritten change are dropped at the next sync.
const maxCachedCgs = 1024

// openWrite sets up the write half of an FS opened read-write: the
// allocator over the cylinder groups, the write ordering, and the
// superblock marked not clean on disk (fs_clean 0), written and synced
// before Open returns, as ffs_mountfs does. FS_UNCLEAN records that the
// filesystem was already unclean when opened, so that Close leaves it
// unclean.
func (fs *FS) openWrite(opts Options) error {
	fs.opts = opts
	fs.now = opts.Now
	if fs.now == nil {
		fs.now = time.Now
	}
	fs.dirtyLimit = opts.MaxDirtyBytes
	if fs.dirtyLimit <= 0 {
		fs.dirtyLimit = DefaultMaxDirtyBytes
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return fmt.Errorf("seeding generation numbers: %w", err)
	}
	fs.rnd = rand.New(rand.NewChaCha8(seed))
	useSoftdep := fs.sb.Flags&ondisk.FSDoSoftdep != 0 && opts.Order == nil && !opts.Async && !opts.NoSoftUpdates
	switch {
	case opts.Order != nil:
		fs.order = opts.Order
	case opts.Async, useSoftdep:
		fs.order = AsyncOrder{}
	default:
		fs.order = SyncOrder{Cache: fs.cache}
	}
	fs.groups = &cgGroups{fs: fs, cgs: map[ondisk.Cg]*ondisk.CylGroup{}, dirty: map[ondisk.Cg]bool{},
		vers: make([]atomic.Uint64, fs.sb.Ncg)}
	aopts := alloc.Options{
		Logger:        fs.log,
		NeedsFsck:     fs.markNeedsFsck,
		Now:           fs.now,
		Rand:          fs.rand32,
		DeferFragFree: true,
	}
	if useSoftdep {
		fs.sd = softdep.New(fs.sb, fs.cache, fs.dev, softdepHost{fs}, softdep.Options{Logger: fs.log, Interval: opts.SyncInterval})
		aopts.Pending = pendingHelper{fs.sd}
		// The cache's write hooks, in their order: copy-on-write
		// (snapshots, to come) before soft updates' rollbacks.
		fs.cache.SetHooks(bcache.Chain(fs.sd))
	}
	a, err := alloc.New(fs.sb, fs.cs, fs.groups, aopts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	fs.alloc = a

	sb := fs.sb
	if !useSoftdep {
		// FS_DOSOFTDEP promises FreeBSD that after a crash only the
		// inconsistencies soft updates allow can be found, so that it
		// may mount at once and check in the background. This engine's
		// ordering without soft updates does not keep that promise (the
		// maps reach the disk only at Sync), so the flag is off on disk
		// while the filesystem is open and comes back with a clean
		// Close: after a crash FreeBSD (and WriteRefusal) ask for a full
		// fsck first.
		fs.softdep = sb.Flags & ondisk.FSDoSoftdep
		sb.Flags &^= ondisk.FSDoSoftdep
	}
	sb.Flags &^= ondisk.FSUnclean
	if sb.Clean == 0 {
		sb.Flags |= ondisk.FSUnclean
		fs.log.Warn("filesystem was not properly unmounted", "dev", fs.dev.Name())
	}
	if sb.Pendingblocks != 0 || sb.Pendinginodes != 0 {
		fs.log.Warn("pending frees left by the last mount dropped", "blocks", sb.Pendingblocks, "inodes", sb.Pendinginodes)
		sb.Pendingblocks, sb.Pendinginodes = 0, 0
	}
	sb.Clean = 0
	sb.Mtime = fs.now().Unix()
	if err := fs.writeSuperblock(); err != nil {
		return err
	}
	if fs.sd != nil && opts.SyncInterval >= 0 {
		fs.sd.Start()
	}
	return nil
}

// markNeedsFsck records corruption found while running: FS_NEEDSFSCK is
// set in the superblock (written at the next sync) so that Close leaves
// the filesystem unclean.
func (fs *FS) markNeedsFsck(err error) {
	fs.log.Error("filesystem needs fsck", "err", err)
	if fs.alloc == nil {
		return
	}
	fs.alloc.Locked(func(sb *ondisk.Superblock, _ []ondisk.Csum) { sb.Flags |= ondisk.FSNeedsFsck })
}

// corrupt marks the filesystem as needing fsck and returns err; the write
// half passes every ErrCorrupt it finds through it.
func (fs *FS) corrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		fs.markNeedsFsck(err)
	}
	return err
}

// rand32 is a random non-zero 32-bit number (generation numbers, dirpref).
func (fs *FS) rand32() uint32 {
	fs.rndMu.Lock()
	defer fs.rndMu.Unlock()
	for {
		if v := fs.rnd.Uint32(); v != 0 {
			return v
		}
	}
}

// writable fails unless the filesystem is open read-write.
func (fs *FS) writable() error {
	if err := fs.checkOpen(); err != nil {
		return err
	}
	if fs.ro {
		return ErrReadOnly
	}
	return nil
}

// cgGroups implements alloc.Groups. The allocator works on private
// decoded copies of the cylinder group blocks; pushCgs encodes the changed
// ones (CylGroup.Sync, which also computes cg_ckhash) into their buffers
// in the cache, inside alloc.Locked, so that a group is never written
// while the allocator changes it.
type cgGroups struct {
	fs *FS
	// Guarded by the Allocator's mutex: every Groups method runs under
	// it, and pushCgs runs inside alloc.Locked.
	cgs   map[ondisk.Cg]*ondisk.CylGroup
	dirty map[ondisk.Cg]bool
	// vers counts the changes to each group (Dirty), read without the
	// Allocator's mutex: soft updates wait for a group's buffer holding
	// at least the version an allocation saw (cgVer).
	vers []atomic.Uint64
}

var _ alloc.Groups = (*cgGroups)(nil)

func (g *cgGroups) cgKey(c ondisk.Cg) (int64, int) {
	sb := g.fs.sb
	return sb.FragOffset(sb.Cgtod(c)), int(sb.Cgsize)
}

// Cg reads and checks group c the first time it is asked for.
func (g *cgGroups) Cg(c ondisk.Cg) (*ondisk.CylGroup, error) {
	if cg := g.cgs[c]; cg != nil {
		return cg, nil
	}
	if uint64(c) >= uint64(g.fs.sb.Ncg) {
		return nil, fmt.Errorf("%w: cylinder group %d does not exist", ErrInvalid, c)
	}
	off, size := g.cgKey(c)
	b, err := g.fs.cache.Get(off, size)
	if err != nil {
		return nil, fmt.Errorf("cylinder group %d: %w", c, err)
	}
	raw := make([]byte, size)
	b.RLock()
	copy(raw, b.Data())
	b.RUnlock()
	g.fs.cache.Release(b)
	cg, err := ondisk.DecodeCg(g.fs.sb, c, raw)
	if err != nil {
		return nil, corruptf("cylinder group %d: %v", c, err)
	}
	if err := cg.VerifyHash(); err != nil {
		return nil, corruptf("cylinder group %d: %v", c, err)
	}
	g.cgs[c] = cg
	return cg, nil
}

// Dirty records that group c changed.
func (g *cgGroups) Dirty(c ondisk.Cg) {
	g.dirty[c] = true
	if int(c) < len(g.vers) {
		g.vers[c].Add(1)
	}
}

// InitInodeBlock writes a block of zeroed inodes, each with a random
// non-zero generation number, synchronously: the group that claims them
// (cg_initediblk) is written later, so the inodes are on disk first.
func (g *cgGroups) InitInodeBlock(c ondisk.Cg, frag ondisk.Frag, first ondisk.Ino, n int) error {
	fs := g.fs
	if n*ondisk.DinodeSize > int(fs.sb.Bsize) {
		return fmt.Errorf("%w: %d inodes do not fit in a block", ErrInvalid, n)
	}
	b, err := fs.cache.GetNoRead(fs.sb.FragOffset(frag), int(fs.sb.Bsize))
	if err != nil {
		return err
	}
	defer fs.cache.Release(b)
	b.Lock()
	data := b.Data()
	clear(data)
	for i := range n {
		d := ondisk.Dinode{Gen: fs.rand32()}
		if err := d.EncodeWithHash(fs.sb, data[i*ondisk.DinodeSize:]); err != nil {
			b.Unlock()
			return err
		}
	}
	if fs.sd != nil {
		// Soft updates write the group at any time: until the inodes
		// are durable it is written without claiming them. (Recorded
		// before the buffer can be written.)
		fs.sd.InodesInitialised(c, uint32(first)%fs.sb.Ipg, b)
	}
	err = fs.cache.MarkDirty(b)
	b.Unlock()
	if err != nil {
		return err
	}
	return fs.cache.FlushBuf(b)
}

// pushCgs encodes every changed group into its cache buffer (dirty, to
// be written by the next flush) and forgets clean groups when too many
// are held. Preconditions: inside alloc.Locked.
func (g *cgGroups) pushCgs() error {
	var first error
	for c := range g.dirty {
		cg := g.cgs[c]
		delete(g.dirty, c)
		if cg == nil {
			continue
		}
		// As ffs_bufwrite, the old time field follows cg_time.
		cg.OldTime = int32(cg.Time)
		cg.Sync()
		off, size := g.cgKey(c)
		b, err := g.fs.cache.GetNoRead(off, size)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("cylinder group %d: %w", c, err)
			}
			g.dirty[c] = true
			continue
		}
		b.Lock()
		copy(b.Data(), cg.B)
		err = g.fs.cache.MarkDirty(b)
		if g.fs.sd != nil && int(c) < len(g.vers) {
			g.fs.sd.CgPushed(c, g.vers[c].Load())
		}
		b.Unlock()
		g.fs.cache.Release(b)
		if err != nil && first == nil {
			first = err
		}
	}
	if len(g.cgs) > maxCachedCgs {
		for c := range g.cgs {
			if !g.dirty[c] {
				delete(g.cgs, c)
			}
		}
	}
	return first
}

// summaryBytes encodes the csum array as it goes to fs_csaddr.
func summaryBytes(sb *ondisk.Superblock, cs []ondisk.Csum) []byte {
	b := make([]byte, sb.Fragroundup(int64(sb.Cssize)))
	for i := range cs {
		if (i+1)*ondisk.CsumSize > len(b) {
			break
		}
		cs[i].Encode(b[i*ondisk.CsumSize:])
	}
	return b
}

// writeSuperblock writes the summary area and the superblock (fs_time set
// to now, fs_fmod cleared, check-hash computed) straight to the device at
// the location it was read from, and syncs the device. The backup
// superblocks in the cylinder groups are left alone, as FreeBSD's kernel
// leaves them (newfs, fsck_ffs and growfs write those).
func (fs *FS) writeSuperblock() error {
	var sum, sbb []byte
	fs.alloc.Locked(func(sb *ondisk.Superblock, cs []ondisk.Csum) {
		sum = summaryBytes(sb, cs)
		sb.Fmod = 0
		sb.Time = fs.now().Unix()
		sbb = sb.EncodeWithHash()
	})
	return fs.putSuperblock(sum, sbb)
}

func (fs *FS) putSuperblock(sum, sbb []byte) error {
	if _, err := fs.dev.WriteAt(sum, fs.sb.FragOffset(fs.sb.Csaddr)); err != nil {
		return fmt.Errorf("writing the summary area: %w", err)
	}
	if _, err := fs.dev.WriteAt(sbb, fs.sbLoc); err != nil {
		return fmt.Errorf("writing the superblock: %w", err)
	}
	if err := fs.dev.Sync(); err != nil {
		return fmt.Errorf("syncing the device: %w", err)
	}
	return nil
}

// syncLocked writes everything: the changed cylinder groups go into the
// cache, the cache is flushed and the device synced, then the summaries
// and the superblock (still marked not clean) are written as they were
// when the groups were taken. Preconditions: fs.syncMu held.
func (fs *FS) syncLocked() error {
	if fs.sd != nil {
		// Soft updates: rounds until every change so far is durable
		// (the groups pushed by the rounds), then the summaries.
		// The inodes whose last name's removal became durable are freed
		// by the callbacks, which makes more to write: a few passes.
		for range 4 {
			if err := fs.sd.Sync(); err != nil {
				return err
			}
			if fs.sd.RunCallbacks() == 0 {
				break
			}
		}
		var sum, sbb []byte
		fs.alloc.Locked(func(sb *ondisk.Superblock, cs []ondisk.Csum) {
			sum = summaryBytes(sb, cs)
			sb.Fmod = 0
			sb.Time = fs.now().Unix()
			sbb = sb.EncodeWithHash()
		})
		return fs.putSuperblock(sum, sbb)
	}
	var sum, sbb []byte
	var perr error
	fs.alloc.Locked(func(sb *ondisk.Superblock, cs []ondisk.Csum) {
		perr = fs.groups.pushCgs()
		sum = summaryBytes(sb, cs)
		sb.Fmod = 0
		sb.Time = fs.now().Unix()
		sbb = sb.EncodeWithHash()
	})
	if perr != nil {
		return perr
	}
	if err := fs.cache.Flush(); err != nil {
		return err
	}
	return fs.putSuperblock(sum, sbb)
}

// Sync writes every change to stable storage: data, inodes, directories,
// cylinder groups, summaries and the superblock, which stays marked not
// clean while the filesystem is open.
func (fs *FS) Sync() error {
	if err := fs.writable(); err != nil {
		return err
	}
	fs.syncMu.Lock()
	defer fs.syncMu.Unlock()
	if fs.closed.Load() {
		return ErrClosed
	}
	return fs.syncLocked()
}

// closeWrite is Close's work for a read-write filesystem.
// Preconditions: fs.syncMu held.
func (fs *FS) closeWrite() error {
	if fs.sd != nil {
		fs.sd.Stop()
	}
	first := fs.freeOrphans()
	if fs.sd != nil {
		// Everything, the frees of unlinked files included, before the
		// filesystem is marked clean.
		if err := fs.sd.Drain(); err != nil && first == nil {
			first = err
		}
	}
	if err := fs.syncLocked(); err != nil && first == nil {
		first = err
	}
	var sum, sbb []byte
	fs.alloc.Locked(func(sb *ondisk.Superblock, cs []ondisk.Csum) {
		if sb.Pendingblocks != 0 || sb.Pendinginodes != 0 {
			sb.Pendingblocks, sb.Pendinginodes = 0, 0
		}
		if first == nil && sb.Flags&(ondisk.FSUnclean|ondisk.FSNeedsFsck) == 0 {
			sb.Clean = 1
			sb.Flags |= fs.softdep
		} else {
			sb.Clean = 0
		}
		sum = summaryBytes(sb, cs)
		sb.Fmod = 0
		sb.Time = fs.now().Unix()
		sbb = sb.EncodeWithHash()
	})
	if err := fs.putSuperblock(sum, sbb); err != nil && first == nil {
		first = err
	}
	return first
}

// maybeFlush writes the changed cylinder groups and flushes the cache
// when it holds more dirty bytes than the limit. Called at the end of
// operations, with no lock held. (The summaries and the superblock wait
// for Sync; the mount layer calls Sync periodically, as FreeBSD's syncer
// does.)
func (fs *FS) maybeFlush() {
	if fs.cache.DirtyBytes() <= fs.dirtyLimit {
		return
	}
	if fs.sd != nil {
		if err := fs.sd.Round(); err != nil {
			fs.log.Error("background flush failed", "err", err)
		}
		fs.sd.RunCallbacks()
		return
	}
	var err error
	fs.alloc.Locked(func(*ondisk.Superblock, []ondisk.Csum) { err = fs.groups.pushCgs() })
	if err == nil {
		err = fs.cache.Flush()
	}
	if err != nil {
		fs.log.Error("background flush failed", "err", err)
	}
}

// Statfs is what statfs(2) reports, with FreeBSD's meaning of each field
// (ffs_statfs): sizes are counted in fragments.
type Statfs struct {
	Bsize   int64  // f_bsize: the fragment size, the unit of the block counts
	Iosize  int64  // f_iosize: the block size, the best I/O size
	Blocks  uint64 // f_blocks: fragments in the data area (fs_dsize)
	Bfree   uint64 // f_bfree: free fragments
	Bavail  int64  // f_bavail: free fragments outside the minfree reserve; negative when the reserve is in use
	Files   uint64 // f_files: inodes, less the two reserved ones
	Ffree   uint64 // f_ffree: free inodes
	NameMax uint32 // f_namemax: 255
}

// Statfs returns the filesystem's numbers as FreeBSD's statfs gives them.
func (fs *FS) Statfs() Statfs {
	var st alloc.Stat
	if fs.alloc != nil {
		st = fs.alloc.Statfs()
	} else {
		sb := fs.sb
		st = alloc.Stat{
			Fsize: int64(sb.Fsize), Bsize: int64(sb.Bsize), Blocks: sb.Dsize,
			Bfree:  int64(sb.Blkstofrags(sb.Cstotal.Nbfree)) + sb.Cstotal.Nffree,
			Bavail: sb.Freespace(int64(sb.Minfree)),
			Files:  int64(sb.Ncg)*int64(sb.Ipg) - int64(ondisk.RootIno),
			Ffree:  sb.Cstotal.Nifree,
		}
	}
	return Statfs{
		Bsize: st.Fsize, Iosize: st.Bsize,
		Blocks: uint64(max(st.Blocks, 0)), Bfree: uint64(max(st.Bfree, 0)), Bavail: st.Bavail,
		Files: uint64(max(st.Files, 0)), Ffree: uint64(max(st.Ffree, 0)),
		NameMax: ondisk.MaxNameLen,
	}
}

// Check recounts the cylinder groups' maps against every summary (see
// alloc.Check) and returns the disagreements. Read-write only.
func (fs *FS) Check() ([]alloc.Discrepancy, error) {
	if err := fs.writable(); err != nil {
		return nil, err
	}
	return fs.alloc.Check()
}

// putFrag stores a block pointer at index i of an indirect block.
func putFrag(data []byte, i int, p ondisk.Frag) {
	binary.LittleEndian.PutUint64(data[i*8:], uint64(p))
}

// getFrag reads the block pointer at index i of an indirect block.
func getFrag(data []byte, i int) ondisk.Frag {
	return ondisk.Frag(binary.LittleEndian.Uint64(data[i*8:]))
}

// newBuf returns a zero-filled buffer for a newly allocated extent.
func (fs *FS) newBuf(p ondisk.Frag, size int64) (*bcache.Buf, error) {
	b, err := fs.cache.GetNoRead(fs.sb.FragOffset(p), int(size))
	if err != nil {
		return nil, err
	}
	b.Lock()
	clear(b.Data())
	b.Unlock()
	return b, nil
}

// hasBlocks reports whether d's block pointers point at blocks: not for
// a fast symlink (its target is there) or a device (di_rdev).
func (fs *FS) hasBlocks(d *ondisk.Dinode) bool {
	switch d.Type() {
	case ondisk.IFREG, ondisk.IFDIR:
		return true
	case ondisk.IFLNK:
		return !fs.isFastLink(d)
	}
	return false
}

// forEachExtent calls fn for every extent inode ip holds: its data blocks
// (at their allocated sizes), its indirect blocks and its extended
// attribute blocks. Preconditions: ip.mu held.
func (fs *FS) forEachExtent(ip *Inode, fn func(p ondisk.Frag, size int64)) error {
	d := &ip.din
	sb := fs.sb
	bsize := int64(sb.Bsize)
	for i := range ondisk.NXaddr {
		if p := d.Extb[i]; p != 0 {
			fn(p, fs.extBlkSize(int64(d.Extsize), i))
		}
	}
	if !fs.hasBlocks(d) {
		return nil
	}
	for i := range ondisk.NDaddr {
		if p := d.Db[i]; p != 0 {
			fn(p, fs.blkSize(d.Size, ondisk.Lbn(i)))
		}
	}
	var walk func(p ondisk.Frag, level int) error
	walk = func(p ondisk.Frag, level int) error {
		if !fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0 {
			return corruptf("inode %d: indirect block %d is outside the data area", ip.ino, p)
		}
		fn(p, bsize)
		ptrs, err := fs.readPointers(p, 0, int(sb.NINDIR()))
		if err != nil {
			return fmt.Errorf("inode %d: %w", ip.ino, err)
		}
		for _, q := range ptrs {
			switch {
			case q == 0:
			case level == 0:
				fn(q, bsize)
			default:
				if err := walk(q, level-1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for level, p := range d.Ib {
		if p != 0 {
			if err := walk(p, level); err != nil {
				return err
			}
		}
	}
	return nil
}

// Fsync writes inode ino's dirty blocks (data, indirect blocks, extended
// attributes) and its inode to the device and syncs the device. dataOnly
// (fdatasync) is accepted; the inode is written either way, since a
// write may have changed its size or block pointers.
func (fs *FS) Fsync(ino ondisk.Ino, dataOnly bool) error {
	if err := fs.writable(); err != nil {
		return err
	}
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return err
	}
	if fs.sd != nil {
		// Soft updates: the inode, its blocks and every name made so
		// far durable.
		ip.Release()
		return fs.sd.Fsync(ino)
	}
	defer ip.Release()
	ip.mu.RLock()
	var first error
	flush := func(off int64, size int) {
		b := fs.cache.Lookup(off, size)
		if b == nil {
			return
		}
		if err := fs.cache.FlushBuf(b); err != nil && first == nil {
			first = err
		}
		fs.cache.Release(b)
	}
	if !ip.gone.Load() {
		if err := fs.forEachExtent(ip, func(p ondisk.Frag, size int64) {
			flush(fs.sb.FragOffset(p), int(size))
		}); err != nil && first == nil {
			first = err
		}
	}
	off, size, _ := fs.inodeBlock(ino)
	flush(off, size)
	ip.mu.RUnlock()
	if first != nil {
		return first
	}
	if err := fs.dev.Sync(); err != nil {
		return fmt.Errorf("syncing the device: %w", err)
	}
	return nil
}
