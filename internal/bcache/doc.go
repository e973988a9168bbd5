// Package bcache is the buffer cache between the filesystem engine and the
// block device: buffers keyed by (disk byte offset, size), reference
// counted, with write-back of dirty buffers and hooks through which higher
// layers take part in every write.
//
// # Use
//
//	b, err := c.Get(off, size)   // read from the device unless cached
//	b.RLock(); use(b.Data()); b.RUnlock()
//	c.Release(b)
//
// A writer takes the buffer's exclusive lock, changes Data, calls MarkDirty
// while still holding the lock, and unlocks. Flush writes every dirty
// buffer (ascending by offset) and syncs the device; FlushBuf writes one.
// GetNoRead gives a zero-filled buffer for a block whose old contents do
// not matter (a block just allocated) without reading the device.
//
// # Memory
//
// Options.MaxBytes bounds the bytes held by clean, unreferenced buffers:
// when the cache holds more, the least recently released clean buffers are
// dropped. A referenced buffer is never evicted and neither is a dirty one;
// DirtyBytes tells a syncer when to call Flush.
//
// # Hooks
//
// The engine registers one Hooks value (SetHooks), several chained in
// order by Chain (copy-on-write before soft updates), as FreeBSD's
// bioops: before a dirty buffer goes to the device the cache calls
// CopyOnWrite (snapshots copy the old on-disk contents away), then
// BeforeWrite, which returns the bytes to write (soft updates may return a
// copy with unsafe parts rolled back), and after the write AfterWrite with
// its error (soft updates mark dependencies written, or put them back when
// the write failed). AfterWrite may keep the buffer dirty although it was
// written: a copy with parts rolled back must be written again once they
// are safe. The hooks run with the buffer's shared lock held and the
// cache's internal lock free, so they may Get and Release other buffers;
// they must not lock the buffer being written exclusively. Writes of one
// buffer never overlap (Buf.wmu), so the hooks see them one at a time and
// the device keeps the bytes of the last one.
//
// WriteDirty writes every dirty buffer without syncing the device, for a
// caller (soft updates) that syncs and tracks durability itself.
//
// # Locks
//
// Lock order, outer to inner: Buf.wmu (one write at a time) → Buf.mu (the
// contents lock, RLock/Lock) → Cache.mu (the map, the LRU list, reference
// counts and dirty state). The hooks' own locks come between Buf.mu and
// Cache.mu.
// Cache.mu is never held across device I/O or a hook call; a goroutine
// holding Cache.mu never waits for a Buf.mu. Reading a missing buffer
// happens with neither lock held: concurrent Gets of the same key wait on
// the buffer's ready channel for the one read.
package bcache
