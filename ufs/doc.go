// Package ufs is the filesystem engine: a UFS2 filesystem opened on a
// block device, its inodes, block map, directories, symlinks and extended
// attributes.
//
// This is the read half. Open finds the superblock (ondisk.FindSuperblock),
// applies FreeBSD's rules to it (prepareSuperblock), decides with
// WriteRefusal whether the filesystem may be written, and reads the
// cylinder-group summaries. An FS owns the device, the buffer cache
// (internal/bcache) and the inode cache; nothing is global.
//
// The API speaks in inode numbers, which the mount layer uses as node IDs:
// Root, Lookup, Namei/NameiFollow, ReadDir/ReadDirAt, Stat, ReadAt,
// Readlink, Xattrs/ListXattr/GetXattr, Bmap, Extents and
// SeekData/SeekHole. OpenInode gives the in-core *Inode for callers that
// need one.
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
// size, sblksize).
//
// # Locks
//
// Inode.mu (several in ascending inode number) → FS.imu → bcache's locks.
// Readers hold Inode.mu shared for one operation; callbacks (ReadDir's fn,
// Extents' fn) run with no directory or buffer lock held except, for
// Extents, the inode's shared lock: an Extents callback must not take that
// inode's lock exclusively.
//
// # For the write half
//
// Inode.dirty (guarded by FS.imu) marks an inode whose din must be copied
// into its inode block (encoded with ondisk.Dinode.EncodeWithHash) before
// the inode leaves the cache; iput already keeps dirty inodes. FS.Close
// flushes the cache; the write half adds writing dirty inodes, the
// summaries (fs.cs) and the superblock before that flush. Writes must
// check fs.ro and return ErrReadOnly.
package ufs
