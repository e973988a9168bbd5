package ufs

import (
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Giving blocks back. Every free of a block or fragment goes through this
// file (a lint test keeps it so): freeNow when nothing on disk can reach
// the extent any more (it never had a pointer there, or soft updates said
// so), release for extents an inode stopped pointing at, which soft
// updates free only once the writes clearing the pointers are durable.
// Snapshots will claim the blocks they still need here.
//
// The order is the rule: an extent's cached buffer is dropped before the
// extent leaves the engine's hands. Once soft updates hold a deferred
// free, any round may carry it out and the allocator give the block to
// another file; a drop after that would throw away the new owner's buffer
// (its data lost, its pointer waiting for ever for the contents).

// forget drops the cached buffer of an extent being freed, dirty or not,
// waiting for a write of it in progress to finish.
func (fs *FS) forget(p ondisk.Frag, size int64) {
	b := fs.cache.Lookup(fs.sb.FragOffset(p), int(size))
	if b == nil {
		return
	}
	b.Lock()
	fs.cache.Invalidate(b)
	b.Unlock()
	fs.cache.Release(b)
}

// forgetAll drops the cached buffers of exts (see forget).
func (fs *FS) forgetAll(exts []extent) {
	for _, e := range exts {
		fs.forget(e.p, e.size)
	}
}

// freeNow drops the buffer of size bytes at p, held by inode ino, and
// returns them to the allocator. A free of what the maps say is free is
// corruption: it marks the filesystem as needing fsck.
func (fs *FS) freeNow(ino ondisk.Ino, p ondisk.Frag, size int64) error {
	fs.forget(p, size)
	if claimed, err := fs.claimForSnapshot(p, size); err != nil || claimed {
		return err // the snapshot needs it: now the snapshot's (snapshot_cow.go)
	}
	return fs.corrupt(allocErr(fs.alloc.FreeBlock(p, int(size), ino)))
}

// freeAllNow is freeNow for each of exts; it returns the first error after
// trying them all.
func (fs *FS) freeAllNow(ino ondisk.Ino, exts []extent) error {
	var first error
	for _, e := range exts {
		if err := fs.freeNow(ino, e.p, e.size); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// release gives back exts, which inode ino no longer points at: at once
// without soft updates (the pointers were cleared on disk first, by the
// caller's ordering), otherwise once the writes clear are durable, at once
// those whose pointers never reached the disk.
func (fs *FS) release(ino ondisk.Ino, exts []extent, clear ...softdep.Dep) error {
	if len(exts) == 0 {
		return nil
	}
	if fs.sd == nil {
		return fs.freeAllNow(ino, exts)
	}
	return fs.freeExtents(ino, fs.handOver(ino, exts, clear))
}

// handOver drops the buffers of exts and gives them to soft updates to
// free once clear is durable (softdep.Deps.FreeBlocks); the caller frees
// what it returns (freeExtents).
func (fs *FS) handOver(ino ondisk.Ino, exts []extent, clear []softdep.Dep) softdep.Frees {
	fs.forgetAll(exts)
	fr := fs.sd.FreeBlocks(ino, toSoftdep(exts), clear)
	if testHookFreed != nil {
		testHookFreed()
	}
	return fr
}

// testHookFreed, when a test sets it, runs right after soft updates take
// blocks to free: where a round may carry the deferred frees out and the
// blocks go to another file.
var testHookFreed func()

// freeExtents frees what soft updates say may be freed now (Frees.Now)
// and counts the deferred ones pending.
func (fs *FS) freeExtents(ino ondisk.Ino, fr softdep.Frees) error {
	var first error
	for _, e := range fr.Now {
		if err := fs.freeNow(ino, e.P, e.Size); err != nil && first == nil {
			first = err
		}
	}
	if fr.Deferred != 0 {
		fs.alloc.AddPending(fr.Deferred, 0)
	}
	return first
}

func toSoftdep(exts []extent) []softdep.Extent {
	se := make([]softdep.Extent, len(exts))
	for i, e := range exts {
		se[i] = softdep.Extent{P: e.p, Size: e.size}
	}
	return se
}
