package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Soft updates (package softdep) in the engine.
//
// A filesystem whose superblock has FS_DOSOFTDEP is run with soft updates
// unless Options.NoSoftUpdates, Options.Order or Options.Async asks
// otherwise. The engine then writes nothing early (its WriteOrder points
// are no-ops) and instead tells softdep of every metadata change as it
// makes it, with the buffer holding it locked:
//
//   - iupdate encodes inodes through Deps.UpdateInode; ialloc reports new
//     inodes (NewInode), ifree freed ones (FreeInode), and an inode with
//     no links left is freed only once the removals of its names are
//     durable (Deps.Unlinked, then softdepHost.Unlinked);
//   - balloc reports every new block pointer (NewBlock) and every grown
//     fragment tail (MoveBlock), creating a new block's buffer only after,
//     so that its first write counts;
//   - truncation, the unwinding of a failed allocation and the extended
//     attribute area report what no longer has a pointer (FreeBlocks,
//     ExtArea) and free at once only what softdep says never reached the
//     disk; the rest is freed by softdep's rounds (counted pending in the
//     meantime). A truncation that keeps part of an indirect block writes
//     that block durably before the inode (Deps.Wait), so that no pointer
//     on disk lies past the file's size. The extended attribute area is
//     always rewritten into new blocks, so that the inode switches from
//     the old area to the new one in one write;
//   - directory entries added, changed and removed are reported under the
//     block's lock (DirAdd, DirRemove). A directory block given to the
//     directory holds valid empty chunks beyond the entries (as
//     ufs_direnter does under soft updates), so that the directory may
//     grow into them without ordering; growing into a chunk of an older
//     block that is not valid writes the block durably first. The trailing
//     empty chunks of a directory are not cut (ufs_direnter's truncation
//     to i_endoff is skipped);
//   - an entry in a new chunk is reported with Entry.NewChunk (the size
//     over it is part of the entry on disk);
//   - a rename makes the new name durable (in the directory on disk)
//     before removing the old one (Deps.Wait), or, when both are in one
//     directory block and the new name needs nothing but that block's
//     write (Deps.Pairable), writes both in one write (Entry.Paired), so
//     that a crash leaves the file with one name or two; RENAME_EXCHANGE
//     goes through a temporary third name so that neither file is ever
//     without one.
//
// The cylinder groups the allocator changes are counted (cgGroups.vers) and
// copied into their buffers by softdep's rounds (PushGroups). Sync, Fsync
// and Close run rounds (Deps.Sync, Deps.Fsync, Deps.Drain); a syncer runs
// one every second. FS_DOSOFTDEP stays set on disk while the filesystem is
// open: after a crash it may be mounted at once, fsck -p finding only
// leaks.

// softdepHost implements softdep.Host over the FS.
type softdepHost struct{ fs *FS }

var _ softdep.Host = softdepHost{}

func (h softdepHost) PushGroups() error {
	var err error
	h.fs.alloc.Locked(func(*ondisk.Superblock, []ondisk.Csum) { err = h.fs.groups.pushCgs() })
	return err
}

func (h softdepHost) FreeBlock(p ondisk.Frag, size int, ino ondisk.Ino) error {
	return h.fs.freeNow(ino, p, int64(size))
}

func (h softdepHost) BeforeRound() { h.fs.copyQueued() }

func (h softdepHost) FreeInode(ino ondisk.Ino, mode uint16) error {
	return h.fs.corrupt(allocErr(h.fs.alloc.FreeInode(ino, mode)))
}

func (h softdepHost) AddPending(sectors int64, inodes int32) { h.fs.alloc.AddPending(sectors, inodes) }

// Unlinked frees inode ino, whose last name's removal became durable, if
// it still has no links and no references.
func (h softdepHost) Unlinked(ino ondisk.Ino) bool {
	fs := h.fs
	ip, err := fs.iget(ino)
	if err != nil {
		return true // freed meanwhile, or unreadable: nothing to do
	}
	defer ip.Release()
	if !ip.mu.TryLock() {
		return false
	}
	defer ip.mu.Unlock()
	if err := fs.releaseLink(ip); err != nil {
		fs.log.Error("freeing an unlinked inode", "ino", ino, "err", err)
	}
	return true
}

// pendingHelper is the allocator's alloc.PendingFree: it lets soft updates
// finish deferred frees before an allocation fails.
type pendingHelper struct{ sd *softdep.Deps }

func (p pendingHelper) Help(alloc.Resource) { p.sd.Help() }

// cgVer is the version of group c (softdep.CgPushed): an allocation made
// before this call is in every push of this version or later.
func (fs *FS) cgVer(c ondisk.Cg) uint64 { return fs.groups.vers[c].Load() }

// blkVer is cgVer for the group of fragment p.
func (fs *FS) blkVer(p ondisk.Frag) uint64 { return fs.cgVer(fs.sb.Dtog(p)) }

// dirEmptyChunks makes every DIRBLKSIZ chunk of data from chunk from on
// that is not a valid chunk an empty one (d_ino 0, d_reclen DIRBLKSIZ),
// and reports whether it changed any.
func dirEmptyChunks(data []byte, from int) bool {
	changed := false
	for c := from; c+ondisk.DirBlkSize <= len(data); c += ondisk.DirBlkSize {
		if chunkValid(data[c : c+ondisk.DirBlkSize]) {
			continue
		}
		clear(data[c : c+ondisk.DirBlkSize])
		setReclen(data[c:], ondisk.DirBlkSize)
		changed = true
	}
	return changed
}

// chunkValid reports whether chunk parses as a directory chunk.
func chunkValid(chunk []byte) bool {
	return ondisk.DirChunkEntries(chunk, func(int, ondisk.Direct) bool { return true }) == nil
}

// syncBuffers writes the buffers (changed already) durably before going on
// (soft updates only). Each is marked dirty again under its lock with the
// marker made, so that a write after the marker is sure to come.
func (fs *FS) syncBuffers(bufs ...*bcache.Buf) error {
	deps := make([]softdep.Dep, len(bufs))
	for i, b := range bufs {
		b.Lock()
		deps[i] = fs.sd.Marker(b)
		err := fs.cache.MarkDirty(b)
		b.Unlock()
		if err != nil {
			return err
		}
	}
	if err := fs.sd.Wait(deps...); err != nil {
		return fmt.Errorf("writing ordered buffers: %w", err)
	}
	return nil
}

// growDirSoftdep gives directory dp a new block for logical block lbn, past
// its direct blocks, under soft updates. A pointer in an indirect block and
// the size are in different blocks, and for a directory either reaching
// the disk first is damage (a hole in the directory, or a pointer past its
// size); so the indirect blocks on the path are copied, the copies point at
// the new block, and the inode switches to the new tree and the new size
// in one write (softdep.ReplaceTree). The old path blocks are freed once
// that write is durable. It returns the new block, for which the caller
// makes the buffer. Preconditions: dp.mu held exclusively; lbn >= NDADDR
// is a hole.
func (fs *FS) growDirSoftdep(dp *Inode, lbn ondisk.Lbn) (ondisk.Frag, error) {
	sb := fs.sb
	bsize := int64(sb.Bsize)
	d := &dp.din
	level, idx, err := fs.indirPath(lbn)
	if err != nil {
		return 0, err
	}
	// The old path, top down, as far as it goes.
	var old []extent
	var contents [][]byte
	p := d.Ib[level]
	for depth := 0; depth <= level && p != 0; depth++ {
		if !fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0 {
			return 0, fs.corrupt(corruptf("directory %d: indirect block %d on the path to block %d is outside the data area", dp.ino, p, lbn))
		}
		data, err := fs.readBlock(p, bsize)
		if err != nil {
			return 0, fmt.Errorf("directory %d: indirect block %d: %w", dp.ino, p, err)
		}
		old = append(old, extent{p, bsize})
		contents = append(contents, data)
		p = ondisk.IndirPtr(data, idx[depth])
	}
	if len(old) == level+1 && p != 0 {
		return 0, fmt.Errorf("%w: directory %d: block %d exists", ErrInvalid, dp.ino, lbn)
	}
	// The new block, then a copy of each path block (or a new one).
	var fresh []extent
	undo := func(err error) (ondisk.Frag, error) {
		if ferr := fs.freeAllNow(dp.ino, fresh); ferr != nil {
			fs.log.Error("returning directory blocks", "ino", dp.ino, "err", ferr)
		}
		return 0, fs.corrupt(fmt.Errorf("directory %d: block %d: %w", dp.ino, lbn, allocErr(err)))
	}
	pref := fs.alloc.BlkPref(hint(dp), lbn, -(level + 1), nil)
	for range level + 2 {
		nb, err := fs.alloc.AllocBlock(hint(dp), lbn, pref, int(bsize), fs.opts.UseReserve)
		if err != nil {
			return undo(err)
		}
		fresh = append(fresh, extent{nb, bsize})
		pref = nb + ondisk.Frag(sb.Frag)
	}
	data := fresh[level+1].p // the directory block; fresh[0..level] the path
	sf := make([]softdep.Fresh, level+1)
	for depth := range level + 1 {
		sf[depth] = softdep.Fresh{P: fresh[depth].p, Size: int(bsize), CgVer: fs.blkVer(fresh[depth].p)}
	}
	sf = append(sf, softdep.Fresh{P: data, Size: int(bsize), CgVer: fs.blkVer(data)})
	slot := softdep.Slot{Ino: dp.ino, Kind: softdep.SlotIndirect, Index: level}
	fs.forgetAll(old) // before soft updates may free them (sdFreeBlocks)
	fr := fs.sd.ReplaceTree(slot, toSoftdep(old), sf, int64(d.Size))
	// The buffers, after softdep has recorded them (their first writes
	// count as their contents).
	for depth := range level + 1 {
		b, err := fs.newBuf(fresh[depth].p, bsize)
		if err != nil {
			return 0, err
		}
		b.Lock()
		if depth < len(contents) {
			copy(b.Data(), contents[depth])
		}
		child := data
		if depth < level {
			child = fresh[depth+1].p
		}
		ondisk.SetIndirPtr(b.Data(), idx[depth], child)
		err = fs.cache.MarkDirty(b)
		b.Unlock()
		fs.cache.Release(b)
		if err != nil {
			return 0, err
		}
	}
	d.Ib[level] = fresh[0].p
	fs.dirBlocksChanged(dp, lbn)
	d.Blocks += btodb(bsize) * uint64(level+2)
	d.Blocks -= btodb(bsize) * uint64(len(old))
	if err := fs.freeExtents(dp.ino, fr); err != nil {
		return 0, err
	}
	return data, nil
}
