// Package ondisk is the UFS2 on-disk format and nothing else: the superblock
// (struct fs), cylinder groups (struct cg) and their maps, the summary
// records (struct csum, struct csum_total), the 256-byte UFS2 inode
// (struct ufs2_dinode), directory entries (struct direct), the extended
// attribute record of the UFS2 paper's Figure 1 (struct extattr) and the
// recovery record newfs leaves for fsck (struct fsrecovery).
//
// The layouts and constants are those of FreeBSD 14.0 (sys/ufs/ffs/fs.h,
// sys/ufs/ufs/dinode.h, sys/ufs/ufs/dir.h, sys/ufs/ufs/extattr.h as of the
// releng/14.0 branch). Every on-disk integer is little-endian.
//
// Each struct lives in its own file with its fields in disk order; a field's
// comment gives its byte offset and its C name. Codecs are written by hand
// over []byte with a pair of cursors (reader, writer) and allocate nothing;
// Decode followed by Encode reproduces the input byte for byte, spare fields
// included. Decoders never panic on short or hostile input: they return
// ErrShort, and Validate methods return an error naming the field, its value
// and the limit it broke (wrapping ErrCorrupt).
//
// The fs.h macros become methods of *Superblock with the macro's name
// (Cgbase, Cgdmin, InoToFsba, Lblkno, Blkoff, Sblksize, ...). Distinct types
// keep the address units apart: Frag is a disk address in fragments (what
// block pointers hold), Lbn a logical block of a file, Ino an inode number,
// Cg a cylinder group number.
//
// The only "I/O" here is FindSuperblock, which reads through an io.ReaderAt
// the caller supplies; opening devices belongs to internal/blockdev.
package ondisk
