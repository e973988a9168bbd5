// Package ufs is the filesystem engine: a UFS2 filesystem opened on a
// block device, its inodes, block map, directories, symlinks and extended
// attributes.
//
// Open finds the superblock (ondisk.FindSuperblock), applies FreeBSD's
// rules to it (prepareSuperblock), decides with WriteRefusal whether the
// filesystem may be written, and reads the cylinder-group summaries. An FS owns the device, the buffer cache
// (internal/bcache) and the inode cache; nothing is global.
//
// The API speaks in inode numbers, which the mount layer uses as node IDs.
// Reading: Root, Lookup, Namei/NameiFollow, ReadDir/ReadDirAt, Stat,
// ReadAt, Readlink, Xattrs/ListXattr/GetXattr, Bmap, Extents and
// SeekData/SeekHole; writing: see "Writes" below. OpenInode gives the
// in-core *Inode for callers that need one.
//
// # Trust
//
// Everything read from the device is checked before use: the superblock by
// ondisk.Superblock.Validate, inodes by their check-hash (CK_INODE) and
// checkDinode, every block pointer by validRange (inside the filesystem,
// outside cylinder-group metadata, a tail's fragments inside one block),
// directory entries by ondisk.DecodeDirect and inode range, extended
// attribute records by ondisk.WalkExtattrs. A failed check gives an error
// wrapping ErrCorrupt that names the inode and block; nothing panics.
//
// # Reads
//
// Metadata (inode blocks, indirect blocks, directory blocks, slow symlink
// blocks, extended attribute blocks) goes through the buffer cache. File
// data does not: ReadAt maps the range to extents and reads each run of
// uncached blocks from the device in one request, copying from the cache
// only the blocks that have a buffer there (the write half keeps dirty
// file data in buffers keyed by the block's disk offset and allocated
// size, sblksize). Reads do not change atime (as under mount -o noatime);
// Setattr sets it.
//
// # Writes
//
// Opened read-write (and not refused by WriteRefusal, or forced past a
// refusal that only fsck removes: Options.Force, FreeBSD's mount -f, which
// leaves the filesystem marked not clean at Close), the FS also owns an
// alloc.Allocator over the cylinder groups (groups.go: cgGroups keeps
// decoded copies the allocator changes and encodes them, with their
// check-hashes, into the cache at each sync), and the superblock is
// written at once with fs_clean 0; FS_UNCLEAN records that it was already
// unclean (possible with soft updates), in which case Close leaves it
// unclean. Close frees the inodes unlinked while referenced, writes
// everything and marks the filesystem clean. Check-hashes FreeBSD's
// kernel does not maintain (CK_INDIR, CK_DIR) are dropped from
// fs_metackhash as FreeBSD drops them; those it does (superblock,
// cylinder groups, inodes) are recomputed on every write. The backup
// superblocks are never rewritten (newfs, fsck and growfs do that).
// Without soft updates FS_DOSOFTDEP is cleared on disk while the
// filesystem is open and put back by a clean Close: it tells FreeBSD that
// after a crash only soft updates' harmless inconsistencies can exist (so
// that it mounts at once and checks in the background), which the
// ordering without soft updates does not guarantee; after a crash FreeBSD,
// and WriteRefusal, ask for a full fsck first. With soft updates (see
// softdep.go) FS_DOSOFTDEP stays set while open, because then it is true.
//
// The write API mirrors the vnode operations: Create, Mknod, Mkdir,
// Symlink, Link, Unlink, Rmdir, Rename (with RENAME_NOREPLACE and
// RENAME_EXCHANGE), WriteAt, Truncate, Fallocate, Setattr, SetXattr,
// RemoveXattr, Fsync, Sync, Statfs, and Ref/Unref, the references the
// mount layer holds so that an unlinked file lives until its last close.
// The algorithms are FreeBSD's: ffs_balloc_ufs2 (balloc.go: fragment
// tails for files under NDADDR blocks, grown in place or moved by
// alloc.ReallocFrag; a fragment tail becomes a full block before the file
// grows past it; indirect blocks allocated on the way down),
// ffs_truncate and ffs_indirtrunc (truncate.go), ufs_direnter,
// ufs_dirremove, ufs_dirrewrite and ufs_lookup's slot search
// (dirwrite.go), dirhash (dirhash.go; its block cache, dirblocks.go),
// ufs_makeinode, ufs_link, ufs_remove, ufs_rmdir (namespace.go),
// ufs_rename (rename.go), ufs_setattr (setattr.go), ffs_setextattr
// (xattr_write.go), ffs_valloc and ufs_inactive (ialloc.go). Inode changes
// are copied into their inode block in the cache at once (iupdate). File
// data bypasses the cache where it can (writeLocked): whole blocks go
// straight from the caller's memory to the device, a run of blocks
// contiguous on disk in one write, and part of a block already written
// that has no buffer is written in place; a new block written in part, or
// one with a buffer (a fragment tail just moved), goes through its buffer.
//
// # Write ordering
//
// Without soft updates FreeBSD keeps the disk recoverable by fsck by
// writing some buffers synchronously. The engine calls a WriteOrder at
// exactly those points, each named for its rule:
//
//   - InodeBeforeEntry: a new inode, or one whose link count was raised,
//     reaches the disk before the directory entry naming it (and a
//     directory's inode after it grew by a chunk, before the entry in
//     that chunk);
//   - EntryAdded: the directory block with a new or rewritten entry is
//     written at once (ufs_direnter's bwrite);
//   - EntryRemoved: the directory block without the entry is written
//     before the link count of its inode is lowered;
//   - PointerCleared: the inode or indirect block that no longer points at
//     blocks is written before those blocks are freed in the maps
//     (truncation, shrinking extended attribute areas);
//   - BlockInitialised: a new indirect block, a new directory's first
//     chunk, or new extended attribute data is written before the pointer
//     to it;
//   - InodeUpdated: everything else (delayed).
//
// SyncOrder (the default without soft updates) writes the buffer at each
// point; AsyncOrder (Options.Async, mount -o async) writes none early.
// Options.Order supplies another policy. Inode blocks initialised by the
// allocator (cg_initediblk) are always written before the group that
// claims them.
//
// A filesystem with FS_DOSOFTDEP runs with soft updates instead (package
// softdep, wired in softdep.go): the ordering points write nothing, and
// the engine reports each metadata change to softdep.Deps, which records
// the dependencies, rolls back the unsafe parts of a buffer while it is
// written (the cache's BeforeWrite hook) and frees blocks and inodes only
// once no pointer to them can reach the disk. Its guarantees are in
// softdep's package documentation.
//
// # Locks
//
// FS.syncMu (Sync, Close) → FS.renameMu (a rename that moves a directory
// to another parent or exchanges one, so that ufs_checkpath's walk up the
// ".." entries sees a tree no other rename changes) → Inode.mu, several
// in ascending inode number (lockInodes; an operation that finds the
// inode to lock only under its directory's lock drops the directory,
// locks both in order, and checks the entry again; a newly allocated
// inode, which nothing can reach yet, is locked while its directory is
// held) → softdep.Deps' round lock (only Sync, Fsync, Close, the syncer
// and an allocation short of space run a round; a round takes no inode
// lock, and softdepHost.Unlinked only tries one) → the Allocator's mutex →
// FS.imu (the inode cache) →
// Inode.dhmu → FS.dirhashes.mu → the buffer cache's locks. Readers hold
// Inode.mu shared for one operation; callbacks (ReadDir's fn, Extents'
// fn) run with no directory or buffer lock held except, for Extents, the
// inode's shared lock: an Extents callback must not take that inode's
// lock exclusively. FS.imu and FS.dirhashes.mu are never held across I/O;
// the Allocator's mutex is, when a group is first read or an inode block
// initialised. Device writes of single buffers happen under the inode
// locks of the operation (FreeBSD's bwrite holds the vnode lock too).
package ufs
