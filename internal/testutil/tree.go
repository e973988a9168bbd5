package testutil

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TreeSpec describes a host tree for MakeTree. The same spec (Seed
// included) always gives the same tree: names, sizes, contents, modes,
// links and times.
type TreeSpec struct {
	Seed int64 // seeds every choice and every byte

	Depth int // deepest directory level below the root (at least 1)
	Dirs  int // directories besides the root; one chain of them reaches Depth

	Files       int // small regular files of random content
	MaxFileSize int // small files are 0..MaxFileSize bytes, including fragment and block boundaries
	EmptyFiles  int // extra zero-length files

	BigFileSize int64 // if > 0, one file "big.bin" of this many random bytes
	SparseSize  int64 // if > 0, one file "sparse.bin" of this size: 64 KiB of data at each end, a hole between

	ShortSymlinks  int // symlinks with short targets (fast symlinks in UFS2); some dangle
	LongSymlinks   int // symlinks with targets of LongSymlinkLen bytes (slow symlinks); all dangle
	LongSymlinkLen int // 0 means 150

	HardLinks int // files given 2 or 3 names, some in other directories

	// Modes gives files 0000, 0600, 0755, 04755, 02755, 0444 and others, and
	// directories 01777, 02755, 0700; otherwise files are 0644 and
	// directories 0755. When the test does not run as root, 0000 becomes
	// 0400 so that the tree stays readable.
	Modes bool
}

// DefaultTree is the tree of the project's acceptance test: depth 6,
// about 1000 files up to 40 KiB, a 40 MiB file, empty files, short and
// 150-byte symlinks, hard links and unusual modes. No sparse file: set
// SparseSize for one.
func DefaultTree() TreeSpec {
	return TreeSpec{
		Seed:          1,
		Depth:         6,
		Dirs:          60,
		Files:         1000,
		MaxFileSize:   40 << 10,
		EmptyFiles:    8,
		BigFileSize:   40 << 20,
		ShortSymlinks: 20,
		LongSymlinks:  10,
		HardLinks:     12,
		Modes:         true,
	}
}

// Small is DefaultTree scaled down for fast tests: depth 4, 50 files, a
// 2 MiB file.
func Small() TreeSpec {
	return TreeSpec{
		Seed:          1,
		Depth:         4,
		Dirs:          8,
		Files:         50,
		MaxFileSize:   40 << 10,
		EmptyFiles:    3,
		BigFileSize:   2 << 20,
		ShortSymlinks: 4,
		LongSymlinks:  3,
		HardLinks:     4,
		Modes:         true,
	}
}

// Unusual modes handed out in turn when spec.Modes is set.
var (
	fileModes = []uint32{0o000, 0o600, 0o755, 0o4755, 0o2755, 0o444, 0o640, 0o700, 0o6755}
	dirModes  = []uint32{0o1777, 0o2755, 0o700, 0o750}
)

// Sizes given to the first small files, so that every tree crosses the
// usual fragment and block boundaries (clamped to MaxFileSize).
var boundarySizes = []int{1, 511, 512, 1023, 1024, 1025, 4095, 4096, 4097, 8191, 8192, 8193, 32768, 40960}

// treeBuilder holds the state of one MakeTree.
type treeBuilder struct {
	t    testing.TB
	root string
	src  *rand.ChaCha8
	rng  *rand.Rand

	dirs   []string // relative, "." first; parents before children
	files  []string // regular files, first name of each
	ftimes map[string]bool
}

// MakeTree fills dir (which must exist; it is normally t.TempDir()) with
// the tree spec describes. It fails the test on any host error.
func MakeTree(t testing.TB, dir string, spec TreeSpec) {
	t.Helper()
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(spec.Seed))
	copy(seed[8:], "ufs2 testutil tree")
	src := rand.NewChaCha8(seed)
	b := &treeBuilder{t: t, root: dir, src: src, rng: rand.New(src), ftimes: map[string]bool{}}
	if err := b.build(spec); err != nil {
		t.Fatalf("MakeTree(seed %d): %v", spec.Seed, err)
	}
}

func (b *treeBuilder) path(rel string) string { return filepath.Join(b.root, rel) }

func (b *treeBuilder) randomDir() string { return b.dirs[b.rng.IntN(len(b.dirs))] }

// name returns a varied entry name: mostly short, sometimes long (up to
// the 255-byte UFS limit), with dots, spaces or UTF-8.
func (b *treeBuilder) name(prefix string, i int) string {
	n := fmt.Sprintf("%s%04d", prefix, i)
	switch b.rng.IntN(20) {
	case 0:
		return n + "." + strings.Repeat("L", 255-len(n)-1)
	case 1:
		return n + strings.Repeat("_long", 1+b.rng.IntN(20))
	case 2:
		return n + " with spaces.txt"
	case 3:
		return n + "-ünïcødé"
	case 4:
		return "." + n
	}
	return n
}

func (b *treeBuilder) build(spec TreeSpec) error {
	depth := max(spec.Depth, 1)
	ndirs := max(spec.Dirs, depth)
	b.dirs = []string{"."}
	parent := "."
	for i := range depth {
		d := filepath.Join(parent, fmt.Sprintf("deep%d", i+1))
		if err := os.Mkdir(b.path(d), 0o755); err != nil {
			return err
		}
		b.dirs = append(b.dirs, d)
		parent = d
	}
	for i := depth; i < ndirs; i++ {
		d := filepath.Join(b.randomDir(), b.name("dir", i))
		if err := os.Mkdir(b.path(d), 0o755); err != nil {
			return err
		}
		b.dirs = append(b.dirs, d)
	}

	buf := make([]byte, max(spec.MaxFileSize, 64<<10))
	for i := range spec.Files {
		size := 0
		switch {
		case spec.MaxFileSize <= 0:
		case i < len(boundarySizes):
			size = min(boundarySizes[i], spec.MaxFileSize)
		default:
			// A spread of sizes: a quarter tiny, a quarter under 4 KiB,
			// the rest up to the maximum.
			limit := []int{100, 4096, spec.MaxFileSize, spec.MaxFileSize}[b.rng.IntN(4)]
			size = b.rng.IntN(min(limit, spec.MaxFileSize) + 1)
		}
		b.src.Read(buf[:size])
		f := filepath.Join(b.randomDir(), b.name("f", i))
		if err := os.WriteFile(b.path(f), buf[:size], 0o644); err != nil {
			return err
		}
		b.files = append(b.files, f)
	}
	for i := range spec.EmptyFiles {
		f := filepath.Join(b.randomDir(), fmt.Sprintf("empty%d", i))
		if err := os.WriteFile(b.path(f), nil, 0o644); err != nil {
			return err
		}
		b.files = append(b.files, f)
	}
	if spec.BigFileSize > 0 {
		f := filepath.Join(b.dirs[len(b.dirs)/2], "big.bin")
		if err := b.writeRandom(f, spec.BigFileSize, buf); err != nil {
			return err
		}
		b.files = append(b.files, f)
	}
	if spec.SparseSize > 0 {
		f := filepath.Join(b.dirs[1], "sparse.bin")
		if err := b.writeSparse(f, spec.SparseSize, buf); err != nil {
			return err
		}
		b.files = append(b.files, f)
	}

	// Symlinks: short ones point at real files (relative to the link's
	// directory) or nowhere; long ones are 150 bytes of dangling path.
	for i := range spec.ShortSymlinks {
		dir := b.randomDir()
		target := fmt.Sprintf("nowhere%d", i)
		if i%2 == 0 && len(b.files) > 0 {
			rel, err := filepath.Rel(dir, b.files[b.rng.IntN(len(b.files))])
			if err == nil && len(rel) <= 60 {
				target = rel
			}
		}
		if err := b.symlink(target, filepath.Join(dir, fmt.Sprintf("sl%d", i))); err != nil {
			return err
		}
	}
	longLen := spec.LongSymlinkLen
	if longLen <= 0 {
		longLen = 150
	}
	for i := range spec.LongSymlinks {
		target := fmt.Sprintf("../long%d/", i)
		for len(target) < longLen {
			target += fmt.Sprintf("seg%d/", b.rng.IntN(1000))
		}
		target = target[:longLen]
		if err := b.symlink(target, filepath.Join(b.randomDir(), fmt.Sprintf("longsl%d", i))); err != nil {
			return err
		}
	}

	// Hard links: every third group stays in its directory, the others
	// get names elsewhere. Files are chosen among distinct small files.
	if spec.HardLinks > 0 && len(b.files) > 0 {
		for n, idx := range b.rng.Perm(len(b.files))[:min(spec.HardLinks, len(b.files))] {
			f := b.files[idx]
			for k := range 1 + b.rng.IntN(2) {
				dir := filepath.Dir(f)
				if n%3 != 0 {
					dir = b.randomDir()
				}
				link := filepath.Join(dir, fmt.Sprintf("hl%d_%d", n, k))
				if err := os.Link(b.path(f), b.path(link)); err != nil {
					return err
				}
			}
		}
	}

	// Modes, then times: files and symlinks first, directories last and
	// deepest first, since adding entries changes a directory's times.
	root := os.Geteuid() == 0
	for i, f := range b.files {
		mode := uint32(0o644)
		if spec.Modes && i < 3*len(fileModes) {
			mode = fileModes[i%len(fileModes)]
			if mode == 0 && !root {
				mode = 0o400
			}
		}
		if err := unix.Chmod(b.path(f), mode); err != nil {
			return fmt.Errorf("chmod %s: %w", f, err)
		}
	}
	for i, f := range b.files {
		mtime := b.time(i == 0)
		if err := setTimes(b.path(f), b.time(false), mtime); err != nil {
			return err
		}
	}
	for i, d := range b.dirs[1:] {
		mode := uint32(0o755)
		if spec.Modes && i < 2*len(dirModes) {
			mode = dirModes[i%len(dirModes)]
		}
		if err := unix.Chmod(b.path(d), mode); err != nil {
			return fmt.Errorf("chmod %s: %w", d, err)
		}
	}
	if err := unix.Chmod(b.root, 0o755); err != nil {
		return err
	}
	dirs := slices.Clone(b.dirs)
	slices.SortStableFunc(dirs, func(x, y string) int {
		return strings.Count(y, string(filepath.Separator)) - strings.Count(x, string(filepath.Separator)) +
			boolInt(x == ".") - boolInt(y == ".")
	})
	for _, d := range dirs {
		if err := setTimes(b.path(d), b.time(false), b.time(false)); err != nil {
			return err
		}
	}
	return nil
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// symlink makes a symlink and gives it its own times (lutimes).
func (b *treeBuilder) symlink(target, link string) error {
	if err := os.Symlink(target, b.path(link)); err != nil {
		return err
	}
	return setTimes(b.path(link), b.time(false), b.time(false))
}

// time returns a fixed-by-seed time between 2001 and 2031 with
// nanoseconds, or a time past 2038 when late is set.
func (b *treeBuilder) time(late bool) time.Time {
	base := time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
	if late {
		base = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return base.Add(time.Duration(b.rng.Int64N(int64(30*365*24*time.Hour))) / time.Second * time.Second).
		Add(time.Duration(b.rng.IntN(1e9)))
}

// setTimes sets atime and mtime of path without following a symlink.
func setTimes(path string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lutimes %s: %w", path, err)
	}
	return nil
}

// writeRandom writes size random bytes to rel, buf at a time.
func (b *treeBuilder) writeRandom(rel string, size int64, buf []byte) error {
	f, err := os.OpenFile(b.path(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	for left := size; left > 0; {
		n := int(min(left, int64(len(buf))))
		b.src.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= int64(n)
	}
	return f.Close()
}

// writeSparse writes up to 64 KiB of random data at each end of a file of
// size bytes, seeking over the middle so that it stays a hole.
func (b *treeBuilder) writeSparse(rel string, size int64, buf []byte) error {
	f, err := os.OpenFile(b.path(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	chunk := min(size/3, 64<<10, int64(len(buf)))
	b.src.Read(buf[:chunk])
	_, err = f.Write(buf[:chunk])
	if err == nil {
		_, err = f.Seek(size-chunk, io.SeekStart)
	}
	if err == nil {
		b.src.Read(buf[:chunk])
		_, err = f.Write(buf[:chunk])
	}
	if err == nil {
		err = f.Truncate(size) // covers chunk == 0
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
