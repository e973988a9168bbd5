// Package testutil holds helpers for the project's tests: host tools
// (Debian's makefs and sleuthkit), deterministic host trees for interop
// tests, and a tree comparer.
//
// Only _test.go files import this package (internal/lint enforces it), and
// it imports nothing of the project but ondisk and internal/blockdev.
//
// # Host tools
//
// RequireTool fails — never skips — when an executable is missing, naming
// the Debian package to install. Makefs wraps Debian's NetBSD-derived
// makefs; Fsstat, Fls and TskRecover wrap sleuthkit.
//
// Facts about the tools on Debian (makefs 20190105, sleuthkit 4.11.1)
// that tests must respect:
//
//   - makefs -o version=2 writes the UFS2 superblock at byte 8192
//     (fs_sblockloc = 8192), not at 65536 as FreeBSD's newfs does:
//     NetBSD's makefs hard-codes SBLOCK_UFS1 "because makefs is used for
//     small filesystems". Default geometry: 8 KiB blocks, 1 KiB fragments.
//     Without -s or -M, makefs sizes the image to fit and fails on tiny
//     trees ("Filesystem size 32 < minimum size of 40"); Makefs passes
//     -M 1m when no size is given.
//   - sleuthkit looks for a UFS2 superblock only at 65536 and 262144 (and
//     UFS1 at 8192), so fsstat, fls and tsk_recover cannot read the UFS2
//     images Debian's makefs writes. They read UFS1 makefs images and UFS2
//     images with the superblock at 65536 (this project's own newfs).
//   - tsk_recover -f ufs2 is accepted, but the type only selects the UFS
//     driver: a UFS1 image is recovered as well.
//   - tsk_recover recovers the bytes of non-empty regular files and little
//     else (no modes, times, hard links, empty files or fast symlinks):
//     see TskRecover and ContentOnly.
package testutil
