package tools

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ufs"
)

// fastTempDir is t.TempDir on /dev/shm when that is a tmpfs with at
// least 2 GiB free: creating, reading and removing tens of thousands of
// files there takes a fraction of the time it takes on a busy disk. Else
// it is t.TempDir.
func fastTempDir(t testing.TB) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC ||
		int64(st.Bavail)*st.Bsize < 2<<30 {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "ufs2-tools-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return dir
}

// newImage formats a sparse image file of size bytes with newfs's
// defaults and returns its path.
func newImage(t testing.TB, size int64) string {
	t.Helper()
	return newImageIn(t, t.TempDir(), size)
}

// newImageIn is newImage in directory dir.
func newImageIn(t testing.TB, dir string, size int64) string {
	t.Helper()
	img := filepath.Join(dir, "put.img")
	dev, err := blockdev.Open(img, blockdev.Options{Create: true, CreateSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newfs.Format(context.Background(), dev, newfs.DefaultParams()); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// openRW opens img read-write with the engine; async skips the
// synchronous writes that order metadata updates (mount -o async).
func openRW(t testing.TB, img string, async bool) *ufs.FS {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{Async: async})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	if fsys.ReadOnly() {
		fsys.Close()
		t.Fatalf("%s opened read-only: %s", img, fsys.ReadOnlyReason())
	}
	return fsys
}

// closeChecked checks the engine's summaries against its maps, closes
// fsys and runs fsck -n -f on img, which must find nothing.
func closeChecked(t testing.TB, fsys *ufs.FS, img string) {
	t.Helper()
	if ds, err := fsys.Check(); err != nil || len(ds) > 0 {
		t.Errorf("alloc.Check: %v %v", ds, err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	fsckClean(t, img)
}

// fsckClean runs fsck -n -f on img and fails the test on any problem.
func fsckClean(t testing.TB, img string) {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	var out bytes.Buffer
	rep, err := fsck.Check(context.Background(), dev, fsck.Options{Mode: fsck.No, Force: true, Output: &out})
	if err != nil || !rep.Clean || len(rep.Problems) > 0 {
		t.Errorf("fsck -n -f: %v, %d problems:\n%s", err, len(rep.Problems), out.String())
	}
}

// addSpecials adds to host tree dir what testutil.MakeTree does not make:
// a fifo, a device node, a socket, and extended attributes in the user
// and trusted namespaces on some files and directories.
func addSpecials(t testing.TB, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o620))
	must(unix.Mknod(filepath.Join(dir, "tty9"), unix.S_IFCHR|0o600, int(unix.Mkdev(4, 9))))
	must(unix.Mknod(filepath.Join(dir, "loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0x10009))))
	must(unix.Mknod(filepath.Join(dir, "sock"), unix.S_IFSOCK|0o755, 0))
	var files, dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.Type().IsRegular():
			files = append(files, p)
		case d.IsDir():
			dirs = append(dirs, p)
		}
		return nil
	})
	must(err)
	for i, p := range files {
		if i%7 != 0 {
			continue
		}
		must(unix.Lsetxattr(p, "user.test", []byte(fmt.Sprintf("value of %d", i)), 0))
		if i%14 == 0 {
			must(unix.Lsetxattr(p, "user.big", bytes.Repeat([]byte{byte(i)}, 1000), 0))
		}
	}
	must(unix.Lsetxattr(dirs[len(dirs)/2], "user.dir", []byte("d"), 0))
	must(unix.Lsetxattr(files[1], "trusted.sys", []byte("system namespace"), 0))
	must(unix.Lsetxattr(dir, "user.root", []byte("root of the tree"), 0))
}

// hostXattrs lists the user.* and trusted.* attributes of p as "name=value".
func hostXattrs(t testing.TB, p string) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "trusted.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		out = append(out, name+"="+string(v[:m]))
	}
	sort.Strings(out)
	return out
}

// compareXattrsAtimes checks what testutil.CompareTrees does not: the
// extended attributes of every entry, and the atimes (to the nanosecond)
// of files and directories. Run it before anything reads the trees'
// files, which moves atimes.
func compareXattrsAtimes(t testing.TB, want, got string) {
	t.Helper()
	bad := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		q := filepath.Join(got, rel)
		if w, g := hostXattrs(t, p), hostXattrs(t, q); !slices.Equal(w, g) {
			t.Errorf("%s: xattrs %q, want %q", rel, g, w)
			bad++
		}
		if d.Type().IsRegular() || d.IsDir() {
			var ws, gs unix.Stat_t
			if err := unix.Lstat(p, &ws); err != nil {
				return err
			}
			if err := unix.Lstat(q, &gs); err != nil {
				return err
			}
			if ws.Atim != gs.Atim {
				t.Errorf("%s: atime %v, want %v", rel, gs.Atim, ws.Atim)
				bad++
			}
		}
		if bad > 20 {
			return errors.New("too many differences")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPutGetRoundTrip puts a tree with every file type, unusual modes,
// hard links, a sparse file and extended attributes into an image, gets it
// back, and requires the same tree: types, modes, owners, times to the
// nanosecond, contents, symlinks, hard links, xattrs; fsck finds nothing.
func TestPutGetRoundTrip(t *testing.T) {
	spec := testutil.Small()
	spec.Modes = true
	spec.SparseSize = 16 << 20
	src := t.TempDir()
	testutil.MakeTree(t, src, spec)
	addSpecials(t, src)
	ctx := context.Background()
	opts := testutil.CompareOpts{Owners: true, Times: true}
	found, err := filepath.Glob(filepath.Join(src, "*", "sparse.bin"))
	if err != nil || len(found) != 1 {
		t.Fatalf("sparse.bin: %v %v", found, err)
	}
	sparse, _ := filepath.Rel(src, found[0])

	for _, tt := range []struct {
		name, dst, get string
	}{
		{"into the root", "/", "/"},
		{"new directory", "/copy", "/copy"},
		{"merged into a directory", "/sub", "/sub"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := newImage(t, 128<<20)
			fsys := openRW(t, img, false)
			if tt.dst == "/sub" {
				if _, err := Mkdir(fsys, "/sub", MkdirOptions{Mode: 0o755}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Put(ctx, fsys, src, tt.dst, PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) > 0 || res.Files == 0 || res.HardLinks == 0 || res.Specials != 4 {
				t.Errorf("result %+v", res)
			}
			// The sparse file stays sparse.
			ino, err := fsys.Namei(filepath.Join(tt.get, sparse))
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := fsys.Stat(ino); st.Blocks*512 > 1<<20 {
				t.Errorf("sparse.bin takes %d bytes in the image", st.Blocks*512)
			}
			out := filepath.Join(t.TempDir(), "out")
			if _, err := Get(ctx, fsys, tt.get, out, GetOptions{}); err != nil {
				t.Fatal(err)
			}
			rootSt, err := fsys.Stat(fsys.Root())
			if err != nil {
				t.Fatal(err)
			}
			closeChecked(t, fsys, img)
			if tt.get == "/" {
				// /.snap is newfs's, not the tree's; removing it from
				// the copy moves the copy's times, which go back.
				if err := os.Remove(filepath.Join(out, ".snap")); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(out, rootSt.Atime, rootSt.Mtime); err != nil {
					t.Fatal(err)
				}
			}
			compareXattrsAtimes(t, src, out)
			testutil.AssertSameTree(t, src, out, opts)
		})
	}
}

// TestPutErrors covers Put's refusals.
func TestPutErrors(t *testing.T) {
	img := newImage(t, 64<<20)
	fsys := openRW(t, img, false)
	defer closeChecked(t, fsys, img)
	ctx := context.Background()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Mkdir(fsys, "/d", MkdirOptions{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if _, err := Put(ctx, fsys, filepath.Join(src, "f"), "/d/f", PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Mkdir(fsys, "/e/f", MkdirOptions{Parents: true, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		src, dst string
		want     error
	}{
		{"missing source", filepath.Join(src, "nope"), "/x", ErrPutHost},
		{"missing parent", filepath.Join(src, "f"), "/no/such/x", ufs.ErrNotFound},
		{"parent is a file", filepath.Join(src, "f"), "/d/f/x", ufs.ErrNotDir},
		{"file over a directory", src, "/e", ufs.ErrIsDir},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Put(ctx, fsys, tt.src, tt.dst, PutOptions{})
			if !errors.Is(err, tt.want) {
				t.Errorf("Put(%s, %s) = %v, want %v", tt.src, tt.dst, err, tt.want)
			}
		})
	}
	// A file put onto an existing file replaces it; onto a directory it
	// lands inside.
	if _, err := Put(ctx, fsys, filepath.Join(src, "f"), "/d", PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Namei("/d/f"); err != nil {
		t.Error(err)
	}
}

// hostPaths lists a host tree as fls -r -p -u names it: "d/d path",
// "r/r path", "l/l path" and so on.
func hostPaths(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		kind := "r/r"
		switch {
		case d.IsDir():
			kind = "d/d"
		case d.Type()&fs.ModeSymlink != 0:
			kind = "l/l"
		}
		out = append(out, kind+" "+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// flsPaths runs fls -r -p -u and keeps "type path" of each line, less
// sleuthkit's virtual entries.
func flsPaths(t testing.TB, img string) []string {
	t.Helper()
	out, err := parseFls(testutil.Fls(t, img, "-r", "-p", "-u"))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parseFls is flsPaths on the output of fls -r -p -u, sorted.
func parseFls(listing string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		line := sc.Text()
		kind, rest, ok := strings.Cut(line, " ")
		_, p, ok2 := strings.Cut(rest, ":\t")
		if !ok || !ok2 {
			return nil, fmt.Errorf("fls line %q", line)
		}
		if kind == "V/V" {
			continue
		}
		out = append(out, kind+" "+p)
	}
	sort.Strings(out)
	return out, sc.Err()
}

// sameLists fails the test listing what is missing from got and what is
// extra in it.
func sameLists(t testing.TB, what string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	t.Errorf("%s lists %d entries, want %d", what, len(got), len(want))
	n := 0
	gs := map[string]bool{}
	for _, g := range got {
		gs[g] = true
	}
	ws := map[string]bool{}
	for _, w := range want {
		ws[w] = true
		if !gs[w] && n < 20 {
			t.Errorf("missing from %s: %s", what, w)
			n++
		}
	}
	for _, g := range got {
		if !ws[g] && n < 40 {
			t.Errorf("extra in %s: %s", what, g)
			n++
		}
	}
}

// bigTree makes the tree of TestPutRemovePut in dir: files in
// "many/dNNN/fNNN" (nDirs directories of perDir files of 0 to 4 KiB),
// one file of each of sizes in "sizes/gNNN/sNNNNN" (200 to a directory),
// testutil.Small's tree (symlinks fast and slow, hard links, unusual
// modes, a 2 MiB file) in "small", and "big/sparse.bin" of sparseSize
// bytes with data at the start, in the middle and at the end. It returns
// the number of regular files outside "small".
func bigTree(t testing.TB, dir string, nDirs, perDir int, sizes []int, sparseSize int64) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 20000))
	pool := make([]byte, slices.Max(sizes)+8192)
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}
	n := 0
	write := func(p string, size, seed int) {
		off := seed * 31 % 8192
		if err := os.WriteFile(p, pool[off:off+size], 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for d := range nDirs {
		sub := filepath.Join(dir, "many", fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range perDir {
			i := d*perDir + f
			write(filepath.Join(sub, fmt.Sprintf("f%03d", f)), i%4097, i)
		}
	}
	for i, size := range sizes {
		sub := filepath.Join(dir, "sizes", fmt.Sprintf("g%03d", i/200))
		if i%200 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		write(filepath.Join(sub, fmt.Sprintf("s%05d", size)), size, size)
	}
	small := testutil.Small()
	small.Modes = true
	if err := os.Mkdir(filepath.Join(dir, "small"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.MakeTree(t, filepath.Join(dir, "small"), small)
	if err := os.Mkdir(filepath.Join(dir, "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "big", "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, sparseSize / 2, sparseSize - 40000} {
		if _, err := f.WriteAt(pool[:40000], off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return n + 1
}

var sampleSizes = flag.Bool("put.sample", false,
	"TestPutRemovePut: files of every size to 8 KiB and each 512-byte boundary ±1 to 40 KiB (about 35 s under -race on two cores) instead of every size from 0 to 40 KiB (about 70 s); also with -short")

// putSizes is the file sizes of TestPutRemovePut: every size from 0 to
// 40 KiB when full; otherwise every size from 0 to 8 KiB (every fragment
// and block-tail case of the first two fragments' worth of blocks) and
// then each multiple of 512 up to 40 KiB, one byte less and one more.
func putSizes(full bool) []int {
	var sizes []int
	if full {
		for s := 0; s <= 40960; s++ {
			sizes = append(sizes, s)
		}
		return sizes
	}
	for s := 0; s <= 8192; s++ {
		sizes = append(sizes, s)
	}
	for s := 8192 + 512; s <= 40960; s += 512 {
		sizes = append(sizes, s-1, s, s+1)
	}
	return sizes
}

// TestPutRemovePut is issue 3's acceptance test: a host tree of 20,000
// files in 200 directories, a 2 GiB sparse file and files of every size
// from 0 to 40 KiB is put into a new image as /a; half of /a is removed
// (every other file, and whole directories); the tree is put again as /b.
// Sleuthkit's fls lists exactly the final tree, tsk_recover extracts
// exactly its contents and icat exactly the sparse file's; the engine's
// summaries agree with its maps and fsck finds nothing.
//
// Every size from 0 to 40 KiB (61,000 files, 840 MiB, put twice) takes
// about 70 s under -race on two cores, most of it the two puts
// (about 22 s each: the engine's per-file work, ten times slower under
// the race detector) and the removal (7 s); -short or -put.sample runs
// putSizes(false) instead (28,000 files, about 35 s).
func TestPutRemovePut(t *testing.T) {
	testutil.RequireTool(t, "tsk_recover", "sleuthkit")
	testutil.RequireTool(t, "cmp", "diffutils")
	start := time.Now()
	lap := func(what string) {
		t.Logf("%-28s %v", what, time.Since(start).Round(time.Millisecond))
	}
	src := fastTempDir(t)
	files := bigTree(t, src, 200, 100, putSizes(!*sampleSizes && !testing.Short()), 2<<30)
	lap(fmt.Sprintf("host tree of %d files", files))

	img := newImageIn(t, fastTempDir(t), 3<<30)
	// Without ordering writes the puts take half the time; the image at
	// the end is the same (the engine's own tests cover the ordering).
	fsys := openRW(t, img, true)
	ctx := context.Background()
	if _, err := Mkdir(fsys, "/a", MkdirOptions{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	res, err := Put(ctx, fsys, src, "/a", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files < files {
		t.Fatalf("put %d files, want %d", res.Files, files)
	}
	lap(fmt.Sprintf("put /a (%d MiB)", res.Bytes>>20))

	// What the image should hold at the end, as a host tree: /a is made
	// of hard links to src (tsk_recover loses hard links, so they cannot
	// confuse it), /b is src itself.
	want := fastTempDir(t)
	if out, err := exec.Command("cp", "-al", src, filepath.Join(want, "a")).CombinedOutput(); err != nil {
		t.Fatalf("cp -al: %v\n%s", err, out)
	}
	if err := os.Symlink(src, filepath.Join(want, "b")); err != nil {
		t.Fatal(err)
	}
	// Remove half of /a: whole directories of "many" (every fourth),
	// every other file elsewhere, and the sparse file.
	removed := 0
	err = filepath.WalkDir(filepath.Join(want, "a"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		base := d.Name()
		switch {
		case d.IsDir() && filepath.Base(filepath.Dir(p)) == "many" && (base[3]-'0')%4 == 0:
		case d.Type().IsRegular() && (base == "sparse.bin" || (base[len(base)-1]-'0')%2 == 1):
		default:
			return nil
		}
		if err := Remove(ctx, fsys, rel, RemoveOptions{Recursive: true}); err != nil {
			return err
		}
		if d.IsDir() {
			removed += 100
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			return fs.SkipDir
		}
		removed++
		return os.Remove(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	lap(fmt.Sprintf("removed %d files of /a", removed))
	if removed < files/2 {
		t.Fatalf("removed %d of %d files", removed, files)
	}
	if _, err := Put(ctx, fsys, src, "/b", PutOptions{}); err != nil {
		t.Fatal(err)
	}
	lap("put /b")
	// The directories tsk_recover extracts one by one, and the sparse file.
	var inos []ufs.Stat
	for _, p := range []string{"/a", "/b/many", "/b/sizes", "/b/small", "/b/big/sparse.bin"} {
		ino, err := fsys.Namei(p)
		if err != nil {
			t.Fatal(err)
		}
		st, err := fsys.Stat(ino)
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, st)
	}
	closeChecked(t, fsys, img)
	lap("alloc.Check, Close, fsck")

	// Sleuthkit's views of the image, all started at once (separate
	// processes): fls of the whole tree; tsk_recover -a of every
	// directory but big/ (-d; of the whole image it would write
	// sparse.bin's 2 GiB hole as zeros and compare them, a minute on a
	// busy machine); icat of sparse.bin, compared with the host file as
	// it streams. The comparisons then run as parallel subtests, two at
	// a time on two cores, each as soon as its tool is done.
	type toolRun struct {
		name string
		done chan error
	}
	start1 := func(name string, fn func() error) toolRun {
		r := toolRun{name, make(chan error, 1)}
		go func() { r.done <- fn() }()
		return r
	}
	var flsOut []string
	fls := start1("fls", func() error {
		out, err := exec.Command("fls", "-f", "ufs2", "-r", "-p", "-u", img).Output()
		if err != nil {
			return fmt.Errorf("fls: %v", err)
		}
		flsOut, err = parseFls(string(out))
		return err
	})
	icat := start1("icat", func() error { return icatSame(img, inos[4], filepath.Join(src, "big", "sparse.bin")) })
	// The largest first: the subtests start in this order.
	dirs := []struct {
		rel string
		st  ufs.Stat
	}{{"b/sizes", inos[2]}, {"a", inos[0]}, {"b/many", inos[1]}, {"b/small", inos[3]}}
	recovered := make([]string, len(dirs))
	recovers := make([]toolRun, len(dirs))
	for i, d := range dirs {
		recovered[i] = fastTempDir(t)
		recovers[i] = start1("tsk_recover /"+d.rel, func() error {
			out, err := exec.Command("tsk_recover", "-a", "-f", "ufs2", "-d", fmt.Sprint(d.st.Ino), img, recovered[i]).CombinedOutput()
			if err != nil {
				return fmt.Errorf("tsk_recover -d %d (/%s): %v\n%s", d.st.Ino, d.rel, err, out)
			}
			return nil
		})
	}
	t.Run("sleuthkit", func(t *testing.T) {
		for i, d := range dirs {
			t.Run("tsk_recover "+d.rel, func(t *testing.T) {
				t.Parallel()
				if err := <-recovers[i].done; err != nil {
					t.Fatal(err)
				}
				testutil.AssertSameTree(t, filepath.Join(want, d.rel), recovered[i], testutil.ContentOnly())
			})
		}
		t.Run("fls", func(t *testing.T) {
			t.Parallel()
			if err := <-fls.done; err != nil {
				t.Fatal(err)
			}
			wantPaths := []string{"d/d .snap", "d/d a", "d/d b"}
			for name, dir := range map[string]string{"a": filepath.Join(want, "a"), "b": src} {
				for _, p := range hostPaths(t, dir) {
					kind, rel, _ := strings.Cut(p, " ")
					wantPaths = append(wantPaths, kind+" "+name+"/"+rel)
				}
			}
			sort.Strings(wantPaths)
			sameLists(t, "fls", wantPaths, flsOut)
		})
		t.Run("icat sparse.bin", func(t *testing.T) {
			t.Parallel()
			if err := <-icat.done; err != nil {
				t.Error(err)
			}
		})
	})
	lap("fls, tsk_recover, icat, compare")
}

// icatSame compares sleuthkit's icat of inode st with host file want,
// byte for byte and in length, and the length with st's size. icat's
// output goes straight into cmp(1): the 2 GiB of a sparse file, most of
// it a hole read as zeros, never pass through the test's own code, which
// under the race detector took twenty seconds to read and compare them.
func icatSame(img string, st ufs.Stat, want string) error {
	if fi, err := os.Stat(want); err != nil {
		return err
	} else if fi.Size() != int64(st.Size) {
		return fmt.Errorf("inode %d has %d bytes, %s %d", st.Ino, st.Size, want, fi.Size())
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	icat := exec.Command("icat", "-f", "ufs2", img, fmt.Sprint(st.Ino))
	var icatErr, cmpOut bytes.Buffer
	icat.Stdout, icat.Stderr = pw, &icatErr
	cmp := exec.Command("cmp", "-", want)
	cmp.Stdin, cmp.Stdout, cmp.Stderr = pr, &cmpOut, &cmpOut
	errI := icat.Start()
	errC := cmp.Start()
	pw.Close()
	pr.Close()
	if errI == nil {
		errI = icat.Wait()
	}
	if errC == nil {
		errC = cmp.Wait()
	}
	switch {
	case errC != nil:
		// A difference stops cmp, and icat then fails writing: cmp's
		// finding is the one to report.
		return fmt.Errorf("icat %d | cmp - %s: %v: %s", st.Ino, want, errC, strings.TrimSpace(cmpOut.String()))
	case errI != nil:
		return fmt.Errorf("icat %d: %v: %s", st.Ino, errI, icatErr.String())
	}
	return nil
}
