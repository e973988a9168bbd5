package testutil

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

func TestRequireTool(t *testing.T) {
	f := &fakeTB{TB: t}
	RequireTool(f, "sh", "dash")
	if f.fatal != "" {
		t.Fatalf("RequireTool(sh) failed: %s", f.fatal)
	}
	RequireTool(f, "no-such-tool-ufs2", "ufs2-tools")
	want := "no-such-tool-ufs2 not found: install the Debian package ufs2-tools (apt-get install ufs2-tools)"
	if f.fatal != want {
		t.Fatalf("RequireTool(missing) = %q, want %q", f.fatal, want)
	}
}

func TestMakeTreeDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	MakeTree(t, a, Small())
	MakeTree(t, b, Small())
	AssertSameTree(t, a, b, CompareOpts{Times: true, Owners: true})
	other := Small()
	other.Seed = 2
	MakeTree(t, c, other)
	if len(CompareTrees(t, a, c, CompareOpts{})) == 0 {
		t.Errorf("trees of seeds 1 and 2 are the same")
	}
}

// treeStats summarises a tree for the shape tests.
type treeStats struct {
	dirs, files, empty, symlinks, longSymlinks, maxDepth int
	multiLinked, crossDirLinks                           int
	modes                                                map[uint32]bool
	biggest                                              int64
	sizes                                                map[int64]bool
	nsTimes                                              int
}

func statTree(t *testing.T, root string) treeStats {
	t.Helper()
	s := treeStats{modes: map[uint32]bool{}, sizes: map[int64]bool{}}
	names := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		s.maxDepth = max(s.maxDepth, strings.Count(rel, "/")+1)
		s.modes[st.Mode&0o7777|uint32(st.Mode&syscall.S_IFMT)] = true
		if info.ModTime().Nanosecond() != 0 {
			s.nsTimes++
		}
		switch {
		case info.IsDir():
			s.dirs++
		case info.Mode()&fs.ModeSymlink != 0:
			s.symlinks++
			if target, _ := os.Readlink(p); len(target) == 150 {
				s.longSymlinks++
			}
		case info.Mode().IsRegular():
			s.files++
			s.biggest = max(s.biggest, info.Size())
			s.sizes[info.Size()] = true
			if info.Size() == 0 {
				s.empty++
			}
			if st.Nlink > 1 {
				names[st.Ino] = append(names[st.Ino], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range names {
		s.multiLinked++
		if filepath.Dir(ps[0]) != filepath.Dir(ps[len(ps)-1]) {
			s.crossDirLinks++
		}
	}
	return s
}

func TestDefaultTreeShape(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 50 MiB tree")
	}
	dir := t.TempDir()
	start := time.Now()
	MakeTree(t, dir, DefaultTree())
	s := statTree(t, dir)
	t.Logf("DefaultTree in %v: %+v", time.Since(start), s)
	checkShape(t, s, 4, 1000, 40<<20)
}

func TestSmallTreeShape(t *testing.T) {
	dir := t.TempDir()
	spec := Small()
	spec.SparseSize = 3 << 20
	MakeTree(t, dir, spec)
	s := statTree(t, dir)
	checkShape(t, s, 4, 50, 3<<20)
	info, err := os.Stat(filepath.Join(dir, "deep1", "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if info.Size() != 3<<20 || st.Blocks*512 >= info.Size() {
		t.Errorf("sparse.bin: size %d, %d bytes allocated; want 3 MiB with a hole", info.Size(), st.Blocks*512)
	}
}

func checkShape(t *testing.T, s treeStats, depth, files int, biggest int64) {
	t.Helper()
	if s.maxDepth < depth+1 { // depth directories plus the files in the deepest
		t.Errorf("depth %d, want at least %d levels of directories", s.maxDepth-1, depth)
	}
	if s.files < files {
		t.Errorf("%d files, want at least %d", s.files, files)
	}
	if s.biggest != biggest {
		t.Errorf("biggest file %d bytes, want %d", s.biggest, biggest)
	}
	if s.empty < 3 || s.longSymlinks < 3 || s.symlinks <= s.longSymlinks || s.multiLinked < 4 || s.crossDirLinks < 1 {
		t.Errorf("empty files %d, symlinks %d of which 150-byte %d, multi-linked files %d (%d across directories)",
			s.empty, s.symlinks, s.longSymlinks, s.multiLinked, s.crossDirLinks)
	}
	for _, m := range []uint32{0o000, 0o600, 0o755, 0o4755, 0o2755, 0o444} {
		if !s.modes[m|syscall.S_IFREG] && (m != 0 || os.Geteuid() == 0) {
			t.Errorf("no file of mode %#o", m)
		}
	}
	for _, m := range []uint32{0o1777, 0o2755} {
		if !s.modes[m|syscall.S_IFDIR] {
			t.Errorf("no directory of mode %#o", m)
		}
	}
	if len(s.sizes) < files/2 {
		t.Errorf("only %d distinct file sizes", len(s.sizes))
	}
	if s.nsTimes < s.files/2 {
		t.Errorf("only %d entries have sub-second mtimes", s.nsTimes)
	}
}

// find returns the first path (relative, sorted walk order) under root
// for which pred holds.
func find(t *testing.T, root string, pred func(fs.FileInfo, *syscall.Stat_t) bool) string {
	t.Helper()
	var found string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if p != root && pred(info, info.Sys().(*syscall.Stat_t)) {
			found, _ = filepath.Rel(root, p)
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		t.Fatal("no entry matches")
	}
	return found
}

func TestCompareTreesDetects(t *testing.T) {
	orig := t.TempDir()
	MakeTree(t, orig, Small())
	isRegular := func(i fs.FileInfo, st *syscall.Stat_t) bool {
		return i.Mode().IsRegular() && st.Nlink == 1 && i.Size() > 100
	}
	mustOK := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	type test struct {
		name   string
		opts   CompareOpts
		mutate func(t *testing.T, dir string) string // returns the path changed
		want   string                                // substring of the expected differences; "" for none
		n      int                                   // how many differences: 0 means 1, -1 any number
	}
	tests := []test{
		{"same", CompareOpts{Times: true}, func(t *testing.T, dir string) string { return "" }, "", 0},
		{"one byte", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool { return i.Name() == "big.bin" })
			f, err := os.OpenFile(filepath.Join(dir, p), os.O_RDWR, 0)
			mustOK(err)
			defer f.Close()
			b := make([]byte, 1)
			_, err = f.ReadAt(b, 1234567)
			mustOK(err)
			b[0] ^= 0x40
			_, err = f.WriteAt(b, 1234567)
			mustOK(err)
			return p
		}, "content differs from byte 1234567", 0},
		{"size", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, isRegular)
			f, err := os.OpenFile(filepath.Join(dir, p), os.O_WRONLY|os.O_APPEND, 0)
			mustOK(err)
			_, err = f.Write([]byte{0})
			mustOK(errorsJoin(err, f.Close()))
			return p
		}, "size: want", 0},
		{"mode", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool { return st.Mode&0o7777 == 0o4755 })
			mustOK(syscall.Chmod(filepath.Join(dir, p), 0o755))
			return p
		}, "mode: want 04755, got 0755", 0},
		{"mode ignored", CompareOpts{IgnoreModes: true}, func(t *testing.T, dir string) string {
			p := find(t, dir, isRegular)
			mustOK(os.Chmod(filepath.Join(dir, p), 0o600))
			return p
		}, "", 0},
		{"sticky dir", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool { return st.Mode&0o7777 == 0o1777 })
			mustOK(syscall.Chmod(filepath.Join(dir, p), 0o777))
			return p
		}, "mode: want 01777, got 0777", 0},
		{"broken hard link", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool { return i.Mode().IsRegular() && st.Nlink > 1 })
			full := filepath.Join(dir, p)
			data, err := os.ReadFile(full)
			mustOK(err)
			info, err := os.Stat(full)
			mustOK(err)
			mustOK(os.Remove(full))
			mustOK(os.WriteFile(full, data, 0))
			mustOK(syscall.Chmod(full, info.Sys().(*syscall.Stat_t).Mode&0o7777))
			return p
		}, "hard links: want {", 2},
		{"new hard link", CompareOpts{}, func(t *testing.T, dir string) string {
			a := find(t, dir, isRegular)
			b := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool { return isRegular(i, st) && i.Name() != filepath.Base(a) })
			// Replace b by a link to a, keeping b's content: content and
			// modes may match by chance, the structure cannot.
			mustOK(os.Remove(filepath.Join(dir, b)))
			mustOK(os.Link(filepath.Join(dir, a), filepath.Join(dir, b)))
			return b
		}, "hard links: want {", -1},
		{"symlink target", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool { return i.Mode()&fs.ModeSymlink != 0 })
			mustOK(os.Remove(filepath.Join(dir, p)))
			mustOK(os.Symlink("elsewhere", filepath.Join(dir, p)))
			return p
		}, `symlink target: want`, 0},
		{"extra file", CompareOpts{}, func(t *testing.T, dir string) string {
			mustOK(os.WriteFile(filepath.Join(dir, "deep1", "extra"), []byte("x"), 0o644))
			return "deep1/extra"
		}, "extra in got (file)", 0},
		{"missing file", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, isRegular)
			mustOK(os.Remove(filepath.Join(dir, p)))
			return p
		}, "missing in got (file)", 0},
		{"type", CompareOpts{}, func(t *testing.T, dir string) string {
			p := find(t, dir, isRegular)
			mustOK(os.Remove(filepath.Join(dir, p)))
			mustOK(os.Mkdir(filepath.Join(dir, p), 0o644))
			return p
		}, "type: want file, got directory", 0},
		{"mtime", CompareOpts{Times: true}, func(t *testing.T, dir string) string {
			p := find(t, dir, isRegular)
			info, err := os.Stat(filepath.Join(dir, p))
			mustOK(err)
			m := info.ModTime().Add(time.Nanosecond)
			mustOK(os.Chtimes(filepath.Join(dir, p), m, m))
			return p
		}, "mtime: want", 0},
		{"mtime within granularity", CompareOpts{Times: true, TimeGranularity: time.Second}, func(t *testing.T, dir string) string {
			p := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool {
				return isRegular(i, st) && i.ModTime().Nanosecond() < 999_000_000
			})
			info, err := os.Stat(filepath.Join(dir, p))
			mustOK(err)
			m := info.ModTime().Add(time.Millisecond)
			mustOK(os.Chtimes(filepath.Join(dir, p), m, m))
			return p
		}, "", 0},
		{"symlink mtime", CompareOpts{Times: true}, func(t *testing.T, dir string) string {
			p := find(t, dir, func(i fs.FileInfo, st *syscall.Stat_t) bool { return i.Mode()&fs.ModeSymlink != 0 })
			mustOK(setTimes(filepath.Join(dir, p), time.Unix(1, 0), time.Unix(1, 0)))
			return p
		}, "mtime: want", 0},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, test{"owner", CompareOpts{Owners: true}, func(t *testing.T, dir string) string {
			p := find(t, dir, isRegular)
			mustOK(os.Lchown(filepath.Join(dir, p), 1234, 5678))
			return p
		}, "owner: want 0:0, got 1234:5678", 0})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			MakeTree(t, dir, Small())
			p := tt.mutate(t, dir)
			diffs := CompareTrees(t, orig, dir, tt.opts)
			if tt.want == "" {
				if len(diffs) != 0 {
					t.Fatalf("want no differences, got %q", diffs)
				}
				return
			}
			n := max(tt.n, 1)
			found := slices.ContainsFunc(diffs, func(d string) bool {
				return strings.HasPrefix(d, filepath.ToSlash(p)+": ") && strings.Contains(d, tt.want)
			})
			if !found || tt.n >= 0 && len(diffs) != n {
				t.Fatalf("want %d difference(s) for %s containing %q, got %q", n, p, tt.want, diffs)
			}
		})
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func TestFirstDifference(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := make([]byte, 600<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	a := write("a", big)
	b := write("b", big)
	short := write("short", big[:300<<10])
	big[512<<10+3]++
	c := write("c", big)
	for _, tc := range []struct {
		x, y string
		want int64
	}{{a, b, -1}, {a, c, 512<<10 + 3}, {a, short, 300 << 10}, {short, a, 300 << 10}} {
		got, err := firstDifference(tc.x, tc.y, make([]byte, 2*diffChunk))
		if err != nil || got != tc.want {
			t.Errorf("firstDifference(%s, %s) = %d, %v; want %d", filepath.Base(tc.x), filepath.Base(tc.y), got, err, tc.want)
		}
	}
}

// TestHostTools proves makefs and sleuthkit work on this machine and pins
// the facts the package documentation states about them.
func TestHostTools(t *testing.T) {
	src := t.TempDir()
	spec := Small()
	spec.SparseSize = 1 << 20
	MakeTree(t, src, spec)

	// UFS2: the superblock lands at 8192 with 8 KiB blocks, 1 KiB fragments.
	img2 := filepath.Join(t.TempDir(), "ufs2.img")
	Makefs(t, src, img2, "")
	sb := make([]byte, 1376)
	f, err := os.Open(img2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(sb, 8192)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	magic, bsize, fsize, sblockloc := le.Uint32(sb[1372:]), le.Uint32(sb[48:]), le.Uint32(sb[52:]), le.Uint64(sb[1000:])
	t.Logf("makefs -o version=2: magic %#x at 8192+1372, fs_sblockloc %d, bsize %d, fsize %d", magic, sblockloc, bsize, fsize)
	if magic != 0x19540119 || sblockloc != 8192 {
		t.Errorf("makefs UFS2 superblock: magic %#x, fs_sblockloc %d; want 0x19540119 at 8192 (did Debian's makefs change?)", magic, sblockloc)
	}
	if out, err := exec.Command("fsstat", "-f", "ufs2", img2).CombinedOutput(); err == nil {
		t.Logf("sleuthkit now reads makefs UFS2 images; the package documentation is out of date:\n%s", out)
	} else {
		t.Logf("fsstat on the makefs UFS2 image fails as documented: %s", strings.TrimSpace(string(out)))
	}

	// UFS1 image: sleuthkit reads it.
	img1 := filepath.Join(t.TempDir(), "ufs1.img")
	MakefsWith(t, src, img1, MakefsOptions{Version: 1})
	if out := Fsstat(t, img1); !strings.Contains(out, "File System Type: UFS 1") {
		t.Errorf("fsstat output lacks the file system type:\n%s", out)
	}
	if out := Fls(t, img1, "-r", "-p"); !strings.Contains(out, "deep1/deep2/deep3/deep4") {
		t.Errorf("fls -r -p does not list deep1/deep2/deep3/deep4:\n%s", out)
	}

	out := filepath.Join(t.TempDir(), "out")
	TskRecover(t, img1, out)
	AssertSameTree(t, src, out, ContentOnly())

	// Log what tsk_recover loses, by kind, for the acceptance tests' choice
	// of options.
	kinds := map[string]int{}
	examples := map[string]string{}
	for _, d := range CompareTrees(t, src, out, CompareOpts{Times: true}) {
		_, rest, _ := strings.Cut(d, ": ")
		k, _, _ := strings.Cut(rest, ":")
		k, _, _ = strings.Cut(k, " (")
		kinds[k]++
		if examples[k] == "" {
			examples[k] = d
		}
	}
	for k, n := range kinds {
		t.Logf("tsk_recover differences: %4d × %-16s e.g. %s", n, k, examples[k])
	}
}
