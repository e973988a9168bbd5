package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// Making changes durable: sync, fsync, the flush when too much is dirty,
// and the close that writes everything and marks the filesystem clean.

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
