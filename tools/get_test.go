package tools

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

func openUFS(t testing.TB, img string) *ufs.FS {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

func makefs2(t testing.TB, src string, o testutil.MakefsOptions) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ufs2.img")
	o.Version = 2
	testutil.MakefsWith(t, src, img, o)
	return img
}

// sameTreeOpts is what an extraction of a makefs image must reproduce:
// everything CompareTrees checks, owners, and mtimes to the second
// (Debian's makefs drops nanoseconds; ufs's own tests pin that).
var sameTreeOpts = testutil.CompareOpts{Owners: true, Times: true, TimeGranularity: time.Second}

// TestGetDefaultTree is the acceptance test: testutil.DefaultTree through
// makefs, extracted with Get and with the built ufs2 binary, compared with
// the source tree.
func TestGetDefaultTree(t *testing.T) {
	src := t.TempDir()
	testutil.MakeTree(t, src, testutil.DefaultTree())
	img := makefs2(t, src, testutil.MakefsOptions{})

	out := filepath.Join(t.TempDir(), "out")
	res, err := Get(context.Background(), openUFS(t, img), "/", out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}
	if res.Files < 1000 || res.HardLinks < 12 || res.Symlinks != 30 || res.Bytes < 40<<20 {
		t.Errorf("result %+v", res)
	}
	testutil.AssertSameTree(t, src, out, sameTreeOpts)

	bin := buildUFS2(t)
	out2 := filepath.Join(t.TempDir(), "root") // an existing directory would keep its own attributes
	cmd := exec.Command(bin, "get", img, "/", out2)
	if b, err := cmd.CombinedOutput(); err != nil || len(b) != 0 {
		t.Fatalf("ufs2 get: %v\n%s", err, b)
	}
	testutil.AssertSameTree(t, src, out2, sameTreeOpts)
}

func TestGetGeometriesAndSubtrees(t *testing.T) {
	src := t.TempDir()
	testutil.MakeTree(t, src, testutil.Small())
	img := makefs2(t, src, testutil.MakefsOptions{Bsize: 32768, Fsize: 4096})
	fsys := openUFS(t, img)
	out := filepath.Join(t.TempDir(), "all")
	if _, err := Get(context.Background(), fsys, "/", out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.AssertSameTree(t, src, out, sameTreeOpts)

	// A subdirectory to a new name, and a file into an existing directory.
	sub := filepath.Join(t.TempDir(), "sub")
	if _, err := Get(context.Background(), fsys, "/deep1/deep2", sub, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.AssertSameTree(t, filepath.Join(src, "deep1/deep2"), sub, testutil.CompareOpts{Owners: true, Times: true, TimeGranularity: time.Second, IgnoreHardLinks: true})
	dir := t.TempDir()
	big := findFile(t, src, "big.bin")
	rel, _ := filepath.Rel(src, big)
	if _, err := Get(context.Background(), fsys, "/"+rel, dir, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(big)
	got, err := os.ReadFile(filepath.Join(dir, "big.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("single file copy: %v", err)
	}
	if _, err := Get(context.Background(), fsys, "/nope", dir, GetOptions{}); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("missing path: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Get(ctx, fsys, "/", filepath.Join(t.TempDir(), "x"), GetOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Get: %v", err)
	}
}

func findFile(t *testing.T, root, name string) string {
	var found string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == name {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("%s not in %s", name, root)
	}
	return found
}

// TestGetSpecialFiles: device nodes, fifos, a 120-byte (slow) and a
// 119-byte (fast) symlink, nanosecond-free times on symlinks.
func TestGetSpecialFiles(t *testing.T) {
	src := t.TempDir()
	for _, n := range []struct {
		name string
		mode uint32
		dev  int
	}{
		{"null", unix.S_IFCHR | 0o666, int(unix.Mkdev(1, 3))},
		{"disk", unix.S_IFBLK | 0o640, int(unix.Mkdev(7, 200))},
		{"fifo", unix.S_IFIFO | 0o600, 0},
	} {
		if err := unix.Mknod(filepath.Join(src, n.name), n.mode, n.dev); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []int{119, 120} {
		if err := os.Symlink(strings.Repeat("t", l), filepath.Join(src, "link"+strings.Repeat("x", l-118))); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"null", "disk", "fifo", "linkx", "linkxx", "."} {
		ts := []unix.Timespec{{Sec: 1500000000}, {Sec: 1600000000 + int64(len(p))}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, p), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	img := makefs2(t, src, testutil.MakefsOptions{})
	out := filepath.Join(t.TempDir(), "out")
	res, err := Get(context.Background(), openUFS(t, img), "/", out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Specials != 3 || res.Symlinks != 2 {
		t.Errorf("result %+v", res)
	}
	testutil.AssertSameTree(t, src, out, sameTreeOpts)
	for _, n := range []string{"null", "disk"} {
		var a, b unix.Stat_t
		unix.Lstat(filepath.Join(src, n), &a)
		unix.Lstat(filepath.Join(out, n), &b)
		if a.Rdev != b.Rdev || a.Mode != b.Mode {
			t.Errorf("%s: rdev %x mode 0%o, want %x 0%o", n, b.Rdev, b.Mode, a.Rdev, a.Mode)
		}
	}
}

// editable returns a writable copy of an image and its superblock.
func editable(t *testing.T, img string) (*os.File, *ondisk.Superblock) {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	sb, _, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, sb
}

func inoOf(t *testing.T, img, p string) ondisk.Ino {
	fsys := openUFS(t, img)
	ino, err := fsys.Namei(p)
	if err != nil {
		t.Fatal(err)
	}
	fsys.Close()
	return ino
}

func patchInode(t *testing.T, f *os.File, sb *ondisk.Superblock, ino ondisk.Ino, edit func(*ondisk.Dinode)) {
	b := make([]byte, ondisk.DinodeSize)
	if _, err := f.ReadAt(b, sb.InoOffset(ino)); err != nil {
		t.Fatal(err)
	}
	d, _ := ondisk.DecodeDinode(b)
	edit(d)
	d.EncodeWithHash(sb, b)
	if _, err := f.WriteAt(b, sb.InoOffset(ino)); err != nil {
		t.Fatal(err)
	}
}

// TestGetSparseAndXattrs patches a makefs image (makefs writes holes as
// zeros and makes no extended attributes): a file with a hole between two
// blocks and past its end, and user and system attributes on it.
func TestGetSparseAndXattrs(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "sparse"), []byte("x"), 0o640)
	os.WriteFile(filepath.Join(src, "pad"), make([]byte, 4*8192), 0o644)
	img := makefs2(t, src, testutil.MakefsOptions{})
	ino, padIno := inoOf(t, img, "/sparse"), inoOf(t, img, "/pad")
	f, sb := editable(t, img)
	var blocks [4]ondisk.Frag
	patchInode(t, f, sb, padIno, func(d *ondisk.Dinode) {
		copy(blocks[:], d.Db[:4])
		d.Size = 0
		d.Blocks = 0
		d.Db = [ondisk.NDaddr]ondisk.Frag{}
	})
	bsize := int64(sb.Bsize)
	a := bytes.Repeat([]byte("A"), int(bsize))
	b := bytes.Repeat([]byte("B"), int(bsize))
	f.WriteAt(a, sb.FragOffset(blocks[0]))
	f.WriteAt(b, sb.FragOffset(blocks[1]))
	var area []byte
	for _, x := range []ondisk.Extattr{
		{Namespace: ondisk.ExtattrNamespaceUser, Name: []byte("note"), Value: []byte("kept")},
		{Namespace: ondisk.ExtattrNamespaceSystem, Name: []byte("dmfs"), Value: []byte{1, 2, 3}},
	} {
		rec := make([]byte, x.Len())
		x.Encode(rec)
		area = append(area, rec...)
	}
	f.WriteAt(area, sb.FragOffset(blocks[2]))
	size := 20*bsize + 123
	patchInode(t, f, sb, ino, func(d *ondisk.Dinode) {
		d.Db = [ondisk.NDaddr]ondisk.Frag{}
		d.Db[1] = blocks[0]
		d.Db[5] = blocks[1]
		d.Size = uint64(size)
		d.Blocks = uint64(3 * bsize / 512)
		d.Extb[0] = blocks[2]
		d.Extsize = uint32(len(area))
	})
	f.Sync()

	out := filepath.Join(t.TempDir(), "out")
	res, err := Get(context.Background(), openUFS(t, img), "/", out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 2*bsize {
		t.Errorf("wrote %d bytes, want %d (holes must be skipped)", res.Bytes, 2*bsize)
	}
	got, err := os.ReadFile(filepath.Join(out, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	copy(want[bsize:], a)
	copy(want[5*bsize:], b)
	if !bytes.Equal(got, want) {
		t.Error("sparse file contents differ")
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(out, "sparse"), &st)
	if st.Blocks*512 > 4*bsize {
		t.Errorf("host file uses %d bytes; holes were written", st.Blocks*512)
	}
	// Extended attributes: set, or reported when the host refuses.
	for _, x := range []struct{ name, value string }{{"user.note", "kept"}, {"trusted.dmfs", "\x01\x02\x03"}} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(out, "sparse"), x.name, buf)
		if err == nil {
			if string(buf[:n]) != x.value {
				t.Errorf("%s = %q", x.name, buf[:n])
			}
			continue
		}
		found := false
		for _, w := range res.Warnings {
			found = found || strings.Contains(w.Error(), x.name)
		}
		if !found {
			t.Errorf("%s neither set (%v) nor reported", x.name, err)
		}
	}
}

func TestHostXattrName(t *testing.T) {
	for _, tc := range []struct {
		ns   uint8
		name string
		want string
		ok   bool
	}{
		{ondisk.ExtattrNamespaceUser, "a.b", "user.a.b", true},
		{ondisk.ExtattrNamespaceSystem, "posix1e.acl_access", "trusted.posix1e.acl_access", true},
		{0, "x", "", false},
		{9, "x", "", false},
	} {
		got, ok := HostXattrName(tc.ns, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("HostXattrName(%d, %q) = %q, %v", tc.ns, tc.name, got, ok)
		}
	}
}

// buildUFS2 builds the ufs2 command once per test binary run.
func buildUFS2(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ufs2")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ufs2")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ufs2: %v\n%s", err, out)
	}
	return bin
}

// TestCommands runs ufs2 ls and ufs2 get on good and bad targets.
func TestCommands(t *testing.T) {
	bin := buildUFS2(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d/f"), []byte("hi"), 0o644)
	img := makefs2(t, src, testutil.MakefsOptions{})
	ufs1 := filepath.Join(t.TempDir(), "ufs1.img")
	testutil.MakefsWith(t, src, ufs1, testutil.MakefsOptions{Version: 1})
	junk := filepath.Join(t.TempDir(), "junk.img")
	os.WriteFile(junk, make([]byte, 1<<20), 0o644)
	dest := t.TempDir()

	tests := []struct {
		args     []string
		code     int
		want     string // in stdout for success, stderr for failure
		stdoutEq string
	}{
		{[]string{"ls", img}, 0, "d\n", "d\n"},
		{[]string{"ls", "-R", img}, 0, "/d:\nf\n", "/:\nd\n\n/d:\nf\n"},
		{[]string{"ls", "-l", img, "/d/f"}, 0, "-rw-r--r--  1 0 0         2 ", ""},
		{[]string{"ls", "/no/such/image"}, 1, "no such file", ""},
		{[]string{"ls", junk}, 1, "not a UFS2 filesystem", ""},
		{[]string{"ls", ufs1}, 1, "UFS1 is not supported; only UFS2", ""},
		{[]string{"ls", img, "/missing"}, 1, "/missing: No such file or directory", ""},
		{[]string{"ls"}, 64, "want TARGET", ""},
		{[]string{"get", img, "/d/f"}, 64, "want TARGET PATH DEST", ""},
		{[]string{"get", img, "/missing", dest}, 1, "/missing: No such file or directory", ""},
		{[]string{"get", ufs1, "/", dest}, 1, "UFS1 is not supported; only UFS2", ""},
		{[]string{"get", img, "/d/f", dest}, 0, "", ""},
	}
	for _, tc := range tests {
		cmd := exec.Command(bin, tc.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code {
			t.Errorf("ufs2 %v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
			continue
		}
		where := stdout.String()
		if code != 0 {
			where = stderr.String()
			if strings.Count(where, "\n") != 1 {
				t.Errorf("ufs2 %v: message is not one line: %q", tc.args, where)
			}
		}
		if !strings.Contains(where, tc.want) {
			t.Errorf("ufs2 %v: output %q does not contain %q", tc.args, where, tc.want)
		}
		if tc.stdoutEq != "" && stdout.String() != tc.stdoutEq {
			t.Errorf("ufs2 %v: stdout %q, want %q", tc.args, stdout.String(), tc.stdoutEq)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "f")); err != nil || string(b) != "hi" {
		t.Errorf("get of one file: %q, %v", b, err)
	}
}
