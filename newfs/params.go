package newfs

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/ufs2/ufs2/ondisk"
)

// Defaults of FreeBSD 14's newfs (newfs.h, newfs.c).
const (
	DefaultFsize      = 4096       // DFL_FRAGSIZE
	DefaultBsize      = 32768      // DFL_BLKSIZE
	NFPI              = 2          // fragments per inode for the default density
	DefaultSectorSize = 512        // for image files (and devices that do not say)
	MaxBlksPerCg      = 0x7fffffff // MAXBLKSPERCG: "as many as fit"
	MaxPhys           = 1 << 20    // MAXPHYS on 64-bit FreeBSD 14: sets the default maxcontig
	OperatorGID       = 5          // gid of group operator on FreeBSD: the group of /.snap
	rootLinkCount     = 3          // ".", ".." and .snap's ".."
	snapLinkCount     = 2          // ".snap" in / and its own "."
	dirMode           = ondisk.IFDIR | 0o755
	snapExtraMode     = 0o020 // group write on /.snap
	regressionTime    = 1000000000
	sbWipeLimit       = 1 << 20 // copies of a stale superblock cleared at most
	dinodeGenOff      = 80      // offset of di_gen in struct ufs2_dinode
)

// Sentinel errors. Every error from Compute and Format matches one of them
// (or a blockdev / context error) under errors.Is.
var (
	// ErrBadParam: an option has a value newfs cannot use.
	ErrBadParam = errors.New("newfs: bad parameter")
	// ErrTooSmall: the device or the requested size cannot hold a filesystem.
	ErrTooSmall = errors.New("newfs: filesystem too small")
	// ErrTooLarge: the requested size is larger than the device.
	ErrTooLarge = errors.New("newfs: filesystem larger than the device")
	// ErrUnsupported: a FreeBSD option this implementation does not provide.
	ErrUnsupported = errors.New("newfs: unsupported option")
	// ErrInternal: the filesystem newfs built does not add up; a bug.
	ErrInternal = errors.New("newfs: internal inconsistency")
)

// Error is a one-line failure with the exit status FreeBSD's newfs uses for
// it (1 for a bad option value, 13–40 for mkfs's own checks). It matches its
// sentinel under errors.Is.
type Error struct {
	Code int    // process exit status FreeBSD's newfs would use
	Msg  string // one line, FreeBSD's wording where there is one
	Err  error  // the sentinel
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func errf(code int, sentinel error, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// Params are newfs's options. Start from DefaultParams: for most fields zero
// means "FreeBSD's default", but Minfree, AvgFileSize and AvgFilesPerDir are
// taken as given. The comment names the FreeBSD option letter.
type Params struct {
	// Size is the filesystem size in bytes (-s; FreeBSD counts sectors of
	// SectorSize, the command converts). 0 uses the whole device less
	// Reserved. It is rounded down to a whole sector, then to a fragment.
	Size int64
	// Reserved is the number of sectors left unused at the end of the
	// device when Size is 0 (-r).
	Reserved int64
	// SectorSize is the device's sector size (-S); 0 means 512.
	SectorSize int

	Bsize   int // -b: block size; 0 = min(32768, 8*Fsize)
	Fsize   int // -f: fragment size; 0 = max(4096, SectorSize)
	Density int // -i: bytes of data space per inode; 0 = NFPI fragments
	Minfree int // -m: percentage of space held back from users (0..99)
	Optim   int // -o: ondisk.FSOptTime or ondisk.FSOptSpace

	AvgFileSize    int // -g: expected average file size
	AvgFilesPerDir int // -h: expected files per directory

	Maxcontig    int // -a: blocks per cluster; 0 = MAXPHYS/bsize
	Maxbsize     int // -d: largest extent; 0 = bsize
	Maxbpg       int // -e: blocks one file may take from a group; 0 = bsize/8
	MaxBlksPerCg int // -c: upper bound on fs_fpg; 0 = as many as fit
	// Metaspace is -k, the fragments per group held for metadata after
	// the inode blocks: 0 = half of minfree; negative = none.
	Metaspace int

	VolumeLabel string // -L: alphanumerics, '-' and '_', at most 31 bytes
	SoftUpdates bool   // -U: FS_DOSOFTDEP (FreeBSD 14's default for UFS2)
	NoSnapDir   bool   // -n: do not create /.snap
	Erase       bool   // -E: discard the old contents first
	Trim        bool   // -t: FS_TRIM (the kernel issues TRIM for freed blocks)
	Multilabel  bool   // -l: FS_MULTILABEL
	Gjournal    bool   // -J: FS_GJOURNAL
	// Regression is -R: a fixed time (10^9) and sequential "random"
	// numbers, for reproducible images.
	Regression bool

	// Logger receives progress and FreeBSD's informational notes; nil
	// discards them.
	Logger *slog.Logger
	// Progress, if set, is called after each cylinder group is written.
	Progress func(done, total uint32)
}

// DefaultParams returns FreeBSD 14's defaults for a UFS2 newfs.
func DefaultParams() Params {
	return Params{
		Minfree:        ondisk.MinFree,
		Optim:          ondisk.FSOptTime,
		AvgFileSize:    ondisk.AvgFileSize,
		AvgFilesPerDir: ondisk.AvgFilesPerDir,
		SoftUpdates:    true,
	}
}

// checkOptions applies newfs.c's option checks (exit status 1).
func (p *Params) checkOptions() error {
	isPow2 := func(v int) bool { return v > 0 && v&(v-1) == 0 }
	switch {
	case p.Size < 0:
		return errf(1, ErrBadParam, "%d: bad file system size", p.Size)
	case p.Reserved < 0:
		return errf(1, ErrBadParam, "%d: bad reserved size", p.Reserved)
	case p.SectorSize != 0 && (!isPow2(p.SectorSize) || p.SectorSize < ondisk.DevBSize || p.SectorSize > ondisk.MaxBSize):
		return errf(1, ErrBadParam, "%d: bad sector size (a power of 2 from 512 to 65536)", p.SectorSize)
	case p.Bsize < 0:
		return errf(1, ErrBadParam, "%d: bad block size", p.Bsize)
	case p.Bsize != 0 && p.Bsize < ondisk.MinBSize:
		return errf(1, ErrBadParam, "%d: block size too small, min is %d", p.Bsize, ondisk.MinBSize)
	case p.Bsize > ondisk.MaxBSize:
		return errf(1, ErrBadParam, "%d: block size too large, max is %d", p.Bsize, ondisk.MaxBSize)
	case p.Fsize < 0:
		return errf(1, ErrBadParam, "%d: bad fragment size", p.Fsize)
	case p.Density < 0:
		return errf(1, ErrBadParam, "%d: bad bytes per inode", p.Density)
	case p.Minfree < 0 || p.Minfree > 99:
		return errf(1, ErrBadParam, "%d: bad free space %%", p.Minfree)
	case p.Optim != ondisk.FSOptTime && p.Optim != ondisk.FSOptSpace:
		return errf(1, ErrBadParam, "%d: unknown optimization preference: use `space' or `time'", p.Optim)
	case p.AvgFileSize <= 0:
		return errf(14, ErrBadParam, "illegal expected average file size %d", p.AvgFileSize)
	case p.AvgFilesPerDir <= 0:
		return errf(15, ErrBadParam, "illegal expected number of files per directory %d", p.AvgFilesPerDir)
	case p.Maxcontig < 0:
		return errf(1, ErrBadParam, "%d: bad maximum contiguous blocks", p.Maxcontig)
	case p.Maxbsize != 0 && p.Maxbsize < ondisk.MinBSize:
		return errf(1, ErrBadParam, "%d: bad extent block size", p.Maxbsize)
	case p.Maxbpg < 0:
		return errf(1, ErrBadParam, "%d: bad blocks per file in a cylinder group", p.Maxbpg)
	case p.MaxBlksPerCg < 0:
		return errf(1, ErrBadParam, "%d: bad blocks per cylinder group", p.MaxBlksPerCg)
	}
	if err := CheckVolumeLabel(p.VolumeLabel); err != nil {
		return err
	}
	return nil
}

// CheckVolumeLabel applies newfs's rule for -L: alphanumerics, dashes and
// underscores, shorter than MAXVOLLEN.
func CheckVolumeLabel(label string) error {
	for _, c := range []byte(label) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return errf(1, ErrBadParam, "bad volume label. Valid characters are alphanumerics, dashes, and underscores.")
		}
	}
	if len(label) >= ondisk.MaxVolLen {
		return errf(1, ErrBadParam, "bad volume label. Length is longer than %d.", ondisk.MaxVolLen)
	}
	return nil
}
