package fsck

// Kinds of problem. Every Problem carries one, set where the problem is
// reported, so that a program can tell what soft updates may leave behind
// after a crash (the leaks, which Leak reports) from damage.
//
// The leaks are the inconsistencies fsck_ffs(8) lists as the only ones a
// filesystem with soft updates can have after a crash, and which its
// preen mode (and the background check) repairs without asking:
// unreferenced inodes, link counts too high, blocks and inodes marked in
// use that nothing uses, di_blocks too high, wrong summary counts; and a
// file size past the last allocated block (FFS_SET_SIZE of the background
// check: soft updates do not order the growth of a file's size against
// the pointers in its indirect blocks, see ffs_softdep.c's
// initiate_write_inodeblock).
const (
	// KindUnrefInode: an allocated inode no directory entry names
	// (UNREF FILE, UNREF DIR, a zero-length directory cleared in pass 4).
	KindUnrefInode = "unreferenced-inode"
	// KindLinkCountHigh: a link count larger than the references found.
	KindLinkCountHigh = "link-count-high"
	// KindBlockCountHigh: di_blocks larger than the blocks found.
	KindBlockCountHigh = "block-count-high"
	// KindBitmapLeak: a block or inode marked in use in its group's map
	// that nothing uses.
	KindBitmapLeak = "bitmap-leak"
	// KindSummary: counts that disagree with the maps: cylinder-group
	// and superblock totals, the fragment and cluster summaries.
	KindSummary = "summary"
	// KindSizeBeyondEnd: a file whose size reaches past its last
	// allocated block (past the direct blocks).
	KindSizeBeyondEnd = "size-beyond-end"

	// KindBitmapMissing: a block or inode in use but marked free.
	KindBitmapMissing = "bitmap-missing"
	// KindLinkCountLow: a link count smaller than the references found.
	KindLinkCountLow = "link-count-low"
	// KindBlockCountLow: di_blocks smaller than the blocks found.
	KindBlockCountLow = "block-count-low"
	// KindInodeCheckHash: an inode failing its check-hash.
	KindInodeCheckHash = "inode-check-hash"
	// KindBadInode: an inode with an impossible mode, size or block
	// pointers (UNKNOWN FILE TYPE, PARTIALLY ALLOCATED or TRUNCATED).
	KindBadInode = "bad-inode"
	// KindBadBlock: a block pointer outside the filesystem.
	KindBadBlock = "bad-block"
	// KindDupBlock: a block claimed twice.
	KindDupBlock = "duplicate-block"
	// KindBadExtattr: an extended attribute area that does not parse.
	KindBadExtattr = "bad-extattr"
	// KindBadCg: a cylinder group failing its checks, or directories
	// missing from its count.
	KindBadCg = "bad-cylinder-group"
	// KindBadDir: a directory whose blocks or size are damaged
	// (DIRECTORY CORRUPTED, TOO SHORT, CONTAINS EMPTY BLOCKS).
	KindBadDir = "bad-directory"
	// KindBadEntry: a directory entry naming a free, cleared or
	// out-of-range inode, or with a wrong type.
	KindBadEntry = "bad-entry"
	// KindBadDot: a missing or wrong "." entry.
	KindBadDot = "bad-dot"
	// KindBadDotdot: a missing or wrong ".." entry.
	KindBadDotdot = "bad-dotdot"
	// KindExtraDirLink: a second name for a directory.
	KindExtraDirLink = "extraneous-directory-link"
	// KindDirLoop: directories unreachable in a loop.
	KindDirLoop = "directory-loop"
	// KindRoot: the root directory is missing or damaged.
	KindRoot = "root"
	// KindLostFound: lost+found cannot be used.
	KindLostFound = "lost+found"
	// KindSuperblock: the superblock or the summary area is damaged.
	KindSuperblock = "superblock"
	// KindPreen: a question a preen may not answer (the problem before
	// it says why).
	KindPreen = "cannot-preen"
)

// leakKinds are the kinds Leak accepts.
var leakKinds = map[string]bool{
	KindUnrefInode:     true,
	KindLinkCountHigh:  true,
	KindBlockCountHigh: true,
	KindBitmapLeak:     true,
	KindSummary:        true,
	KindSizeBeyondEnd:  true,
}

// Leak reports whether the problem is one soft updates may leave after a
// crash (see the kinds above); anything else is damage.
func (p Problem) Leak() bool { return leakKinds[p.Kind] }

// IsLeakKind reports whether kind is one of the leak kinds.
func IsLeakKind(kind string) bool { return leakKinds[kind] }
