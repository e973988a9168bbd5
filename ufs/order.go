package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
)

// WriteOrder decides how the engine's metadata updates reach the disk
// relative to each other. The engine calls it at each point where
// FreeBSD's code without soft updates writes a buffer synchronously to
// keep the disk recoverable by fsck; each call names the buffer that was
// just changed (referenced, not locked) and must return once the policy's
// requirement for it is met. The soft-updates package will implement it by
// recording dependencies instead of writing (and by rolling back unsafe
// parts through the cache's BeforeWrite hook).
type WriteOrder interface {
	// InodeBeforeEntry: buf holds inode ino, just allocated or with its
	// link count raised, which a directory entry is about to name. The
	// inode must reach the disk before that entry.
	InodeBeforeEntry(ino ondisk.Ino, buf *bcache.Buf) error
	// EntryAdded: buf holds a directory block of dir with a new or
	// rewritten entry (ufs_direnter's and ufs_dirrewrite's bwrite).
	EntryAdded(dir ondisk.Ino, buf *bcache.Buf) error
	// EntryRemoved: buf holds a directory block of dir from which an
	// entry was removed; the link count of the inode it named is lowered
	// only after this returns, so that the entry is gone from the disk
	// first.
	EntryRemoved(dir ondisk.Ino, buf *bcache.Buf) error
	// PointerCleared: buf (an inode block, or an indirect block of inode
	// ino) no longer points at blocks that are about to be freed; it must
	// reach the disk before they are marked free.
	PointerCleared(ino ondisk.Ino, buf *bcache.Buf) error
	// BlockInitialised: buf is a newly allocated indirect block (or a
	// new directory's first block) about to be pointed at; its contents
	// must reach the disk before the pointer.
	BlockInitialised(ino ondisk.Ino, buf *bcache.Buf) error
	// InodeUpdated: buf holds inode ino with changes whose order does not
	// matter (FreeBSD's delayed ffs_update).
	InodeUpdated(ino ondisk.Ino, buf *bcache.Buf) error
}

// SyncOrder is FreeBSD's ordering without soft updates: every ordering
// point writes its buffer at once (bwrite). The writes are not synced to
// stable storage; Sync and Fsync do that.
type SyncOrder struct{ Cache *bcache.Cache }

func (o SyncOrder) InodeBeforeEntry(_ ondisk.Ino, b *bcache.Buf) error { return o.Cache.FlushBuf(b) }
func (o SyncOrder) EntryAdded(_ ondisk.Ino, b *bcache.Buf) error       { return o.Cache.FlushBuf(b) }
func (o SyncOrder) EntryRemoved(_ ondisk.Ino, b *bcache.Buf) error     { return o.Cache.FlushBuf(b) }
func (o SyncOrder) PointerCleared(_ ondisk.Ino, b *bcache.Buf) error   { return o.Cache.FlushBuf(b) }
func (o SyncOrder) BlockInitialised(_ ondisk.Ino, b *bcache.Buf) error { return o.Cache.FlushBuf(b) }
func (o SyncOrder) InodeUpdated(ondisk.Ino, *bcache.Buf) error         { return nil }

// AsyncOrder writes nothing early (mount -o async): buffers go to disk
// when the cache is flushed.
type AsyncOrder struct{}

func (AsyncOrder) InodeBeforeEntry(ondisk.Ino, *bcache.Buf) error { return nil }
func (AsyncOrder) EntryAdded(ondisk.Ino, *bcache.Buf) error       { return nil }
func (AsyncOrder) EntryRemoved(ondisk.Ino, *bcache.Buf) error     { return nil }
func (AsyncOrder) PointerCleared(ondisk.Ino, *bcache.Buf) error   { return nil }
func (AsyncOrder) BlockInitialised(ondisk.Ino, *bcache.Buf) error { return nil }
func (AsyncOrder) InodeUpdated(ondisk.Ino, *bcache.Buf) error     { return nil }

var (
	_ WriteOrder = SyncOrder{}
	_ WriteOrder = AsyncOrder{}
)

// orderPoint names the WriteOrder method an inode write goes through.
type orderPoint int

const (
	orderDelayed        orderPoint = iota // InodeUpdated
	orderInodeBeforeEnt                   // InodeBeforeEntry
	orderPointerCleared                   // PointerCleared
)

// iupdate copies ip's dinode into its inode block in the cache (with its
// check-hash) and passes the block to the write order. Preconditions:
// ip.mu held exclusively.
func (fs *FS) iupdate(ip *Inode, point orderPoint) error {
	off, size, within := fs.inodeBlock(ip.ino)
	b, err := fs.cache.Get(off, size)
	if err != nil {
		return fmt.Errorf("inode %d: %w", ip.ino, err)
	}
	defer fs.cache.Release(b)
	b.Lock()
	if fs.sd != nil {
		err = fs.sd.UpdateInode(b, within, ip.ino, &ip.din)
	} else {
		err = ip.din.EncodeWithHash(fs.sb, b.Data()[within:within+ondisk.DinodeSize])
	}
	if err == nil {
		err = fs.cache.MarkDirty(b)
	}
	b.Unlock()
	if err != nil {
		return fmt.Errorf("inode %d: %w", ip.ino, err)
	}
	switch point {
	case orderInodeBeforeEnt:
		err = fs.order.InodeBeforeEntry(ip.ino, b)
	case orderPointerCleared:
		err = fs.order.PointerCleared(ip.ino, b)
	default:
		err = fs.order.InodeUpdated(ip.ino, b)
	}
	if err != nil {
		return fmt.Errorf("inode %d: writing: %w", ip.ino, err)
	}
	return nil
}
