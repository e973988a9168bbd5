// Package alloc is FreeBSD's allocation policy for UFS2 (sys/ufs/ffs/ffs_alloc.c
// of FreeBSD 14) over cylinder-group maps: which fragment, block, cluster or
// inode to hand out, and how to take it back. It knows nothing of files,
// buffers or devices. It reaches cylinder groups through Groups, an interface
// the engine implements over its buffer cache, and it keeps the summaries
// (per-group struct csum, each group's cg_cs, fs_cstotal, cg_frsum, the
// cluster map and cluster summary) in step with the maps on every change.
//
// # Policies
//
//   - Blocks (AllocBlock, ffs_alloc): try the preferred block, then the next
//     free block after it in the same group, then groups by quadratic rehash
//     from the preferred one, then every group in turn (ffs_hashalloc).
//     Fragments come from the smallest free run that fits (cg_frsum), or a
//     whole block is split. BlkPref is ffs_blkpref_ufs2: a file's first blocks
//     go to its inode's group, directory blocks and indirect blocks to the
//     group's metadata zone (cgmeta, the first fs_metaspace fragments of the
//     data area), and every fs_maxbpg blocks the file moves on to the next
//     group with at least the average number of free blocks (fs_cgrotor).
//   - Fragments grow (ReallocFrag, ffs_realloccg) in place when the following
//     fragments of the block are free (ffs_fragextend); otherwise a new place
//     is found and the old fragments are freed. Under fs_optim == FS_OPTTIME
//     the new place is a whole block whose tail is freed again at once, so
//     that further growth extends in place; the switch between FS_OPTTIME
//     and FS_OPTSPACE follows fragmentation as FreeBSD's does.
//   - Clusters (AllocCluster, ffs_clusteralloc): a run of free blocks found
//     through the cluster map. FreeBSD calls it only from ffs_reallocblks;
//     the engine may call it when it lays out a sequential write.
//   - Inodes (AllocInode, ffs_valloc): a directory's group is chosen by
//     ffs_dirpref (Orlov): top-level directories go to a lightly used group
//     chosen from a random start; others stay near their parent while the
//     group has no deficit of inodes or blocks and the run of directories
//     made there without files in between (fs_contigdirs, kept in core) stays
//     under a limit derived from fs_avgfilesize and fs_avgfpdir. Other inodes
//     go near their directory. Inode blocks are initialised lazily: when the
//     chosen inode is within one block of cg_initediblk, Groups.InitInodeBlock
//     is asked to write the next block of zeroed inodes (with generation
//     numbers) and cg_initediblk grows by one block of inodes — never more
//     at a time.
//   - Freeing (FreeBlock, FreeInode; ffs_blkfree_cg, ffs_freefile) puts the
//     fragments back, reassembles whole blocks, and lowers cg_irotor. Freeing
//     something already free, or metadata, or outside the filesystem, is
//     ErrCorrupt: nothing is changed, Options.NeedsFsck is told, and the call
//     fails. Nothing here panics on what the maps say.
//
// The reserve: a caller that is not root may not take the last fs_minfree
// percent of the data area (freespace(fs, fs_minfree) in fs.h). When an
// allocation finds no space, Options.Pending (soft updates, later) is asked
// once to finish pending frees, and the allocation is tried again before
// ErrNoSpace (or ErrNoInodes) is returned — softdep_request_cleanup's place
// in ffs_alloc and ffs_valloc.
//
// # Summaries
//
// The Allocator updates, in place, the *ondisk.Superblock (fs_cstotal,
// fs_cgrotor, fs_optim, fs_pendingblocks, fs_pendinginodes) and the
// []ondisk.Csum (the fs_csp array) it is given by New; the caller owns them
// and writes them to disk, reading them only inside Locked. cs_numclusters in
// fs_cstotal is left alone, as FreeBSD's allocator leaves it. Check recounts
// everything from the maps and returns each disagreement; the engine may run
// it after mount or in tests, fsck's pass 5 does the same job offline.
//
// # Concurrency
//
// One mutex (Allocator.mu) serialises the Allocator: every method may be
// called from any goroutine, and Groups methods are called with the mutex
// held, so they must not call back into the Allocator. The cylinder groups
// that Groups.Cg returns are changed only under the mutex; the engine must
// encode or write them (CylGroup.Sync) only inside Locked. PendingFree.Help
// and Options.NeedsFsck are called without the mutex and may call the
// Allocator. Lock order (outer to inner): the engine's inode locks → the
// Allocator's mutex → whatever Groups takes inside (the buffer cache). A
// per-group lock, as FreeBSD has, would let groups be searched in parallel;
// one lock is enough for now.
package alloc
