// Package newfs builds an empty UFS2 filesystem as FreeBSD 14's newfs(8)
// does, so that the images it writes look like FreeBSD's to the byte where
// FreeBSD is deterministic.
//
// # Geometry
//
// Compute is mkfs's arithmetic and nothing else: from the device size and
// the options it derives the block and fragment sizes, the inode density,
// the cylinder group size (the largest group whose map still fits in one
// block, keeping at least MINCYLGRPS groups, then shrunk until the last
// group can hold its own metadata), the offsets inside a group
// (sblkno, cblkno, iblkno, dblkno), the summary area at the first data
// block of group 0, and every other superblock field: fs_maxcontig =
// MAXPHYS/bsize (1 MiB on 64-bit FreeBSD 14, so 32 with 32 KiB blocks) and
// fs_contigsumsize = min(maxcontig, 16); fs_maxbpg = bsize/8; fs_metaspace
// = half of minfree; fs_maxsymlinklen = 120; the superblock at 65536
// (UFS2's SBLOCK_UFS2; FreeBSD's newfs has no option for the other boot
// area sizes the UFS2 paper lists, and neither has this one); metadata
// check-hashes on for superblocks, cylinder groups and inodes
// (FS_METACKHASH with CK_SUPERBLOCK|CK_CYLGRP|CK_INODE); soft updates on
// (FreeBSD 14 turns them on by default for UFS2). FreeBSD leaves
// fs_old_inodefmt and fs_mtime zero for UFS2; so does this package.
// Values FreeBSD silently adjusts (a fragment smaller than bsize/8, a
// block smaller than the fragment, a density too high for 2^32 inodes) are
// adjusted the same way and reported in Layout.Notes with mkfs's wording.
//
// Where mkfs has a slip that only shows with unusual options, Compute does
// what mkfs evidently meant: -d larger than 16 blocks is reduced to 16
// blocks, and the size in sectors is not reinterpreted after a block size
// increase.
//
// # What Format writes
//
// In order: the last sector of the filesystem (read and written back, to
// prove it is reachable), the magic numbers of a stale superblock at 8192
// and its copies (UFS1 as FreeBSD does, and a makefs-style UFS2 one), the
// primary superblock with FS_BAD_MAGIC, then for each cylinder group its
// superblock copy (fs_sblockactualloc naming the copy's own place), its
// group block and its first two blocks of inodes (cg_initediblk inodes,
// each with a random di_gen); then the root directory and /.snap blocks,
// the summary area, and last the real superblock and the fsrecovery
// record in the final 20 bytes of the sector before it. Nothing else: the
// other inode blocks are initialised by the allocator when first needed,
// and the data area is never written, so a 1 TiB image file takes a few
// hundred MiB of disk.
//
// The root directory is inode 2 (mode 0755, three links); /.snap is inode
// 3 (mode 0775, group operator = gid 5, owner root), each in one fragment
// of its own block of group 0, as mkfs allocates them. Their inodes have
// di_gen 0 as mkfs leaves them. -n omits /.snap.
//
// # Options not provided
//
// -O 1 (UFS1), -j (journaled soft updates: FreeBSD runs tunefs for it),
// -p and -T (BSD disklabels), -X (mkfs's test exits). The command rejects
// them with a message.
package newfs
