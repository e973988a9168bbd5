// Package softdep is soft updates (McKusick and Ganger; section 5 of the
// UFS2 paper): it keeps the image on the device consistent, except for
// leaks, at every instant, without a journal and with few synchronous
// writes. The engine (package ufs) tells it of every metadata change as it
// makes it; softdep records what each change depends on and, through the
// buffer cache's write hooks, writes every buffer with the changes whose
// dependencies are not yet on stable storage rolled back in the copy that
// goes to the device.
//
// # Durability
//
// A write is durable only after a device flush that began after the write
// completed: between two flushes the device may keep any subset of the
// writes, in any order. Deps owns the flushes (its rounds): each
// completed write is stamped with the number of the next flush, and a
// flush that returns makes every write stamped before it durable. Only
// durable things satisfy dependencies.
//
// # Items and their rollbacks
//
// A change lives in one buffer and is written as is once what it needs is
// durable; until then every write of that buffer carries it rolled back
// and the buffer stays dirty (bcache.Hooks.AfterWrite keeps it dirty).
//
//   - A block pointer (allocItem: an inode's di_db or di_ib, or a slot of
//     an indirect block) to a newly allocated block waits for the block's
//     contents (the first write of its buffer after the allocation, or
//     a write of file data around the cache that covers it: DataWrite) and
//     for its cylinder group with the allocation bit. Rolled back, the
//     slot holds its old value: 0, or the fragment a tail grew from. In an
//     inode the size follows FreeBSD's initiate_write_inodeblock rules: a
//     direct pointer rolled back to a fragment cuts the size to that
//     fragment and clears the pointers after it; a rolled-back last block
//     cuts the size to the last block still there. A pointer in an
//     indirect block to a data block also waits until the inode's size on
//     disk reaches that block (fsck_ffs calls a pointer past the size a
//     partially truncated inode), and a pointer to a new indirect block
//     waits until one pointer in it is durable (so that an indirect block
//     on disk is never empty, and fsck_ffs's adjustment of a size past the
//     last block never leaves an indirect block past the size). The size
//     of a file growing into its indirect blocks is therefore not rolled
//     back: on disk it may reach past the last block written, which
//     fsck_ffs's preen corrects without asking (as on FreeBSD).
//   - The extended attribute area (extItem) is replaced whole: new blocks,
//     each written before the inode points at them, the old ones freed
//     once the new pointers are durable. Rolled back: the old di_extb and
//     di_extsize (and di_blocks counting the old blocks).
//   - A new inode is written zeroed (its generation number kept) until
//     its cylinder group with the inode's bit is durable.
//   - A directory entry (dirAdd) naming inode X, or an entry changed to
//     name X, waits for X's inode written with the link count counting it
//     (the inode at the version it had when the entry was made), and for
//     a new directory also for its first block and for its parent's inode
//     with the link for ".."; rolled back, d_ino (and d_type) is the old
//     value: 0 for a new entry. Rollbacks find the entry by name, so that
//     entries may move inside a chunk. Written, the entry counts as
//     durable (Wait, Fsync, NamesWritten) only once it is in the directory
//     on disk: the pointer to its block durable (a new block, a tail grown
//     or moved, a new tree), and for a new chunk the directory's inode
//     with the size over it. A removal in such a block counts only then
//     too, since until then the disk may show the entry in the block it
//     came from. A pointer cancelled because its slot changed again
//     before reaching the disk hands what waited for it to the pointer
//     that replaced it.
//   - A directory on disk has no hole: with a direct block rolled back,
//     its indirect pointers are rolled back too, and a replaced tree's
//     rollback (the old size) is applied before the direct pointers'
//     rules cut the size to the last block present.
//   - A removed entry (dirRem) lowers the link count on disk only once the
//     block without it is durable: an inode is written with its link count
//     plus the removals of its names not yet durable (plus one for "." of
//     a removed directory still allocated). The inode of a file whose last
//     name went is freed (Host.Unlinked) only after that.
//   - Frees (freeWork) wait until no pointer on disk can reach what they
//     free: blocks cut off by a truncation wait for the inode (or the
//     indirect block) written without the pointer; a fragment a tail moved
//     from waits for the new pointer; an inode waits for its zeroed inode.
//     A block whose pointer never reached the disk (its allocItem never
//     written) is freed at once. Deferred frees are counted in
//     fs_pendingblocks and fs_pendinginodes (Host.AddPending), which
//     statfs adds to the free counts.
//
// The engine orders the rest itself: a rename writes the new name durably
// before it removes the old one (Wait), or, within one directory block,
// writes both changes in one write (Entry.Paired) when the new name is in
// the directory on disk as soon as the block is written (Pairable); a
// partial truncation inside an indirect block writes the cleared block
// durably before the inode that shrinks. A block of inodes a cylinder group claims (cg_initediblk,
// InodesInitialised) is ordered by a rollback too: the group is written
// with the older cg_initediblk until the zeroed inode block is durable.
//
// # Rounds
//
// Round copies the changed cylinder groups into their buffers
// (Host.PushGroups), writes every dirty buffer, flushes the device, marks
// what became durable and runs the frees that became possible. Every
// round satisfies at least one level of dependencies; Fsync, Sync and
// Drain run rounds until what they wait for is durable and fail with
// ErrStuck when that does not converge. What an fsync waits for may
// belong to an operation another goroutine is still in the middle of;
// a wait therefore fails only after many rounds in a row that finished
// nothing it waits for, spaced out so that the other goroutine can
// finish. A syncer (Start) runs a round
// every Options.Interval and the callbacks (Host.Unlinked) after it. Help,
// called by an allocation that found no space, runs rounds and callbacks
// until one frees something, so that the allocation fails only when the
// space is really gone.
//
// # Locks
//
// Outer to inner: the engine's inode locks → Deps.roundMu (one round at a
// time) → the allocator's lock → a buffer's contents lock → Deps.mu → the
// buffer cache's internal lock. Deps.mu is never held across device I/O or
// a call to the Host; Host methods are called with no Deps lock held
// except roundMu (PushGroups, FreeBlock, FreeInode, AddPending) or none
// (Unlinked).
package softdep
