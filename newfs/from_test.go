package newfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// fromImage formats a sparse image file of size bytes and opens it
// read-write with the engine; Cleanup checks the maps against the
// summaries and closes it.
func fromImage(t *testing.T, size int64, p Params) *ufs.FS {
	t.Helper()
	path := filepath.Join(t.TempDir(), "from.img")
	dev, err := blockdev.Open(path, blockdev.Options{Create: true, CreateSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Format(context.Background(), dev, p); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	if fsys.ReadOnly() {
		t.Fatalf("engine opened newfs's image read-only: %s", fsys.ReadOnlyReason())
	}
	t.Cleanup(func() {
		if ds, err := fsys.Check(); err != nil || len(ds) > 0 {
			t.Errorf("alloc.Check: %v %v", ds, err)
		}
		if err := fsys.Close(); err != nil && !errors.Is(err, ufs.ErrClosed) {
			t.Error(err)
		}
	})
	return fsys
}

func TestFreeBSDMakedev(t *testing.T) {
	for _, tt := range []struct {
		major, minor uint32
		want         uint64
	}{
		{0, 0, 0},
		{4, 5, 0x405},
		{0xff, 0xff, 0xffff},
		{0x100, 0x100, 0x0000010100000000},
		{0x00123456, 0x00abcdef, 0x001234cd00ab56ef},
	} {
		if got := FreeBSDMakedev(tt.major, tt.minor); got != tt.want {
			t.Errorf("FreeBSDMakedev(%#x, %#x) = %#x, want %#x", tt.major, tt.minor, got, tt.want)
		}
	}
}

func TestFreeBSDXattrName(t *testing.T) {
	for _, tt := range []struct {
		linux string
		ns    uint8
		name  string
		ok    bool
	}{
		{"user.foo", ondisk.ExtattrNamespaceUser, "foo", true},
		{"user.a.b", ondisk.ExtattrNamespaceUser, "a.b", true},
		{"trusted.x", ondisk.ExtattrNamespaceSystem, "x", true},
		{"user.", 0, "", false},
		{"security.selinux", 0, "", false},
		{"system.posix_acl_access", 0, "", false},
		{"foo", 0, "", false},
	} {
		ns, name, ok := FreeBSDXattrName(tt.linux)
		if ns != tt.ns || name != tt.name || ok != tt.ok {
			t.Errorf("FreeBSDXattrName(%q) = %d, %q, %v; want %d, %q, %v", tt.linux, ns, name, ok, tt.ns, tt.name, tt.ok)
		}
	}
}

// writeAt writes data at off of host file p (created if missing).
func writeAt(t *testing.T, p string, data []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// TestCopierFileData copies host files with holes and zero blocks and
// checks the contents read back and that neither holes nor zero blocks
// were allocated.
func TestCopierFileData(t *testing.T) {
	fsys := fromImage(t, 256<<20, DefaultParams())
	bs := int64(fsys.Superblock().Bsize)
	src := t.TempDir()
	data := bytes.Repeat([]byte("UFS2 data block "), int(bs)/16)
	tests := []struct {
		name      string
		make      func(p string)
		allocated int64 // bytes of data blocks the copy may hold at most
	}{
		{"empty", func(p string) { writeAt(t, p, nil, 0) }, 0},
		{"one byte", func(p string) { writeAt(t, p, []byte{7}, 0) }, bs},
		{"block and a bit", func(p string) { writeAt(t, p, append(append([]byte{}, data...), 1, 2, 3), 0) }, 2 * bs},
		{"zero block inside data", func(p string) {
			writeAt(t, p, data, 0)
			writeAt(t, p, make([]byte, bs), bs)
			writeAt(t, p, data, 2*bs)
		}, 2 * bs},
		{"all zeros", func(p string) { writeAt(t, p, make([]byte, 3*bs+5), 0) }, bs},
		{"trailing hole", func(p string) {
			writeAt(t, p, data, 0)
			if err := os.Truncate(p, 10<<20); err != nil {
				t.Fatal(err)
			}
		}, 2 * bs},
		{"data at both ends", func(p string) {
			writeAt(t, p, data[:100], 0)
			writeAt(t, p, data[:100], 64<<20)
		}, 2 * bs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(src, tt.name)
			tt.make(p)
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			c := NewCopier(fsys, CopyOptions{})
			ino, err := c.Entry(context.Background(), p, fsys.Root(), "/", tt.name)
			if err != nil {
				t.Fatal(err)
			}
			st, err := fsys.Stat(ino)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size != uint64(len(want)) {
				t.Fatalf("size %d, want %d", st.Size, len(want))
			}
			got := make([]byte, len(want))
			if n, err := fsys.ReadAt(ino, got, 0); n != len(want) {
				t.Fatalf("read %d of %d bytes: %v", n, len(want), err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("contents differ")
			}
			var alloc int64
			if err := fsys.Extents(ino, 0, func(e ufs.Extent) bool { alloc += e.Len; return true }); err != nil {
				t.Fatal(err)
			}
			if alloc > tt.allocated {
				t.Errorf("%d bytes allocated, want at most %d", alloc, tt.allocated)
			}
		})
	}
}

// TestPopulate fills a root from a host tree with every file type and
// checks what the engine holds: the root's attributes from the directory,
// /.snap kept, hard links, device numbers, xattrs mapped, times to the
// nanosecond.
func TestPopulate(t *testing.T) {
	fsys := fromImage(t, 256<<20, DefaultParams())
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d", "e"), 0o755))
	writeAt(t, filepath.Join(src, "d", "f"), []byte("hello"), 0)
	must(os.Link(filepath.Join(src, "d", "f"), filepath.Join(src, "d", "e", "g")))
	must(os.Symlink("../f", filepath.Join(src, "d", "e", "l")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(unix.Mknod(filepath.Join(src, "cdev"), unix.S_IFCHR|0o600, int(unix.Mkdev(4, 0x12345))))
	must(unix.Mknod(filepath.Join(src, "sock"), unix.S_IFSOCK|0o755, 0))
	must(unix.Setxattr(filepath.Join(src, "d", "f"), "user.color", []byte("blue"), 0))
	must(unix.Setxattr(filepath.Join(src, "d"), "trusted.secret", []byte{0, 1, 2}, 0))
	must(unix.Chmod(filepath.Join(src, "d", "f"), 0o4751))
	must(unix.Chmod(filepath.Join(src, "d", "e"), 0o1777))
	must(os.Lchown(filepath.Join(src, "d", "e"), 1234, 5678))
	must(os.Lchown(filepath.Join(src, "d", "e", "l"), 42, 43))
	must(os.Chmod(src, 0o750))
	must(os.Lchown(src, 7, 8))
	mt := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	at := time.Date(2002, 3, 4, 5, 6, 7, 987654321, time.UTC)
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	for _, p := range []string{"d/e/l", "d/f", "d/e", "d", "fifo", ""} {
		must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}

	res, err := Populate(context.Background(), fsys, src, CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 1 || res.HardLinks != 1 || res.Symlinks != 1 || res.Specials != 3 || res.Dirs != 3 {
		t.Errorf("result %+v", res)
	}
	stat := func(p string) ufs.Stat {
		t.Helper()
		ino, err := fsys.Namei(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		st, err := fsys.Stat(ino)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, tt := range []struct {
		path     string
		mode     uint16
		uid, gid uint32
		times    bool
	}{
		{"/", ondisk.IFDIR | 0o750, 7, 8, true},
		{"/.snap", ondisk.IFDIR | 0o775, 0, 5, false},
		{"/d", ondisk.IFDIR | 0o755, 0, 0, true},
		{"/d/e", ondisk.IFDIR | 0o1777, 1234, 5678, true},
		{"/d/f", ondisk.IFREG | 0o4751, 0, 0, true},
		{"/d/e/g", ondisk.IFREG | 0o4751, 0, 0, true},
		{"/d/e/l", ondisk.IFLNK | 0o777, 42, 43, true},
		{"/fifo", ondisk.IFIFO | 0o640, 0, 0, true},
		{"/cdev", ondisk.IFCHR | 0o600, 0, 0, false},
		{"/sock", ondisk.IFSOCK | 0o755, 0, 0, false},
	} {
		st := stat(tt.path)
		if st.Mode != tt.mode || st.UID != tt.uid || st.GID != tt.gid {
			t.Errorf("%s: mode 0%o %d:%d, want 0%o %d:%d", tt.path, st.Mode, st.UID, st.GID, tt.mode, tt.uid, tt.gid)
		}
		if tt.times && (!st.Mtime.Equal(mt) || !st.Atime.Equal(at)) {
			t.Errorf("%s: mtime %v atime %v, want %v %v", tt.path, st.Mtime, st.Atime, mt, at)
		}
		if tt.times && st.Birthtime.After(st.Mtime) {
			t.Errorf("%s: birth time %v after mtime %v", tt.path, st.Birthtime, st.Mtime)
		}
	}
	if f, g := stat("/d/f"), stat("/d/e/g"); f.Ino != g.Ino || f.Nlink != 2 {
		t.Errorf("hard link: inodes %d and %d, %d links", f.Ino, g.Ino, f.Nlink)
	}
	if st := stat("/cdev"); st.Rdev != FreeBSDMakedev(4, 0x12345) {
		t.Errorf("cdev rdev %#x, want %#x", st.Rdev, FreeBSDMakedev(4, 0x12345))
	}
	if v, err := fsys.GetXattr(stat("/d/f").Ino, ondisk.ExtattrNamespaceUser, "color"); err != nil || string(v) != "blue" {
		t.Errorf("user.color: %q %v", v, err)
	}
	if v, err := fsys.GetXattr(stat("/d").Ino, ondisk.ExtattrNamespaceSystem, "secret"); err != nil || !bytes.Equal(v, []byte{0, 1, 2}) {
		t.Errorf("trusted.secret: %q %v", v, err)
	}
	ino, _ := fsys.Namei("/d/e/l")
	if target, err := fsys.Readlink(ino); err != nil || target != "../f" {
		t.Errorf("symlink: %q %v", target, err)
	}
}

// TestCopierReplace copies onto existing names: files are replaced,
// directories merged, and a file onto a directory refused.
func TestCopierReplace(t *testing.T) {
	fsys := fromImage(t, 128<<20, DefaultParams())
	src := t.TempDir()
	ctx := context.Background()
	root := fsys.Root()
	writeAt(t, filepath.Join(src, "file"), []byte("new contents"), 0)
	if err := os.MkdirAll(filepath.Join(src, "dir", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(src, "dir", "sub", "x"), []byte("x"), 0)

	old, err := fsys.Create(root, "file", 0o600, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.WriteAt(old, bytes.Repeat([]byte("old "), 20000), 0); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Link(old, root, "other"); err != nil {
		t.Fatal(err)
	}
	dir, err := fsys.Mkdir(root, "dir", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Create(dir, "keep", 0o644, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Create(dir, "sub", 0o644, 0, 0); err != nil { // a file where src has a directory
		t.Fatal(err)
	}

	c := NewCopier(fsys, CopyOptions{})
	ino, err := c.Entry(ctx, filepath.Join(src, "file"), root, "/", "file")
	if err != nil {
		t.Fatal(err)
	}
	if ino == old {
		t.Error("the file was rewritten in place, not replaced")
	}
	buf := make([]byte, 100)
	if n, _ := fsys.ReadAt(ino, buf, 0); string(buf[:n]) != "new contents" {
		t.Errorf("replaced file holds %q", buf[:n])
	}
	if st, err := fsys.Stat(old); err != nil || st.Nlink != 1 || st.Size != 80000 {
		t.Errorf("the other link's inode: %+v %v", st, err)
	}
	if got, err := c.Entry(ctx, filepath.Join(src, "dir"), root, "/", "dir"); err != nil || got != dir {
		t.Fatalf("merge into dir: inode %d (want %d), %v", got, dir, err)
	}
	for _, p := range []string{"/dir/keep", "/dir/sub/x"} {
		if _, err := fsys.Namei(p); err != nil {
			t.Errorf("%s after merge: %v", p, err)
		}
	}
	if st, _ := fsys.Stat(dir); st.Perm() != 0o700 {
		t.Errorf("merged directory mode 0%o, want the source's 0700", st.Perm())
	}
	if _, err := c.Entry(ctx, filepath.Join(src, "file"), dir, "/dir", "sub"); !errors.Is(err, ufs.ErrIsDir) {
		t.Errorf("file onto a directory: %v, want ErrIsDir", err)
	}
	if _, err := c.Entry(ctx, filepath.Join(src, "missing"), root, "/", "missing"); !errors.Is(err, ErrHost) {
		t.Errorf("missing source: %v, want ErrHost", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Entry(cctx, filepath.Join(src, "dir"), root, "/", "dir2"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
