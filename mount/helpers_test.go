package mount

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// makeImage builds a host tree from spec and a UFS2 image of it with
// Debian's makefs; it returns both paths.
func makeImage(t testing.TB, spec testutil.TreeSpec, size string) (src, img string) {
	t.Helper()
	src = filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.MakeTree(t, src, spec)
	img = filepath.Join(t.TempDir(), "ufs2.img")
	testutil.Makefs(t, src, img, size)
	return src, img
}

// mounted reports whether dir is a mount point in /proc/mounts.
func mounted(t testing.TB, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && unescapeMount(fields[1]) == dir {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountImage opens img with OpenTarget and mounts it on a fresh
// directory. Cleanup unmounts it (even if the test failed), waits for the
// server, and checks that nothing is left mounted.
func mountImage(t testing.TB, img string, o Options) (string, *Server) {
	t.Helper()
	testutil.RequireTool(t, "fusermount3", "fuse3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v (the mount tests need FUSE)", err)
	}
	fsys, err := OpenTarget(img, &o)
	if err != nil {
		t.Fatalf("OpenTarget(%s): %v", img, err)
	}
	mnt := mountDir(t)
	srv, err := Mount(mnt, fsys, o)
	if err != nil {
		fsys.Close()
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() { unmountCheck(t, srv) })
	return mnt, srv
}

// mountDir makes an empty directory for a mount point that every user
// can reach (t.TempDir's are private to root), removed after the test.
func mountDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ufs2-mount-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !mounted(t, dir) {
			os.Remove(dir)
		}
	})
	return dir
}

// unmountCheck unmounts srv if it is still mounted, waits for the server
// to finish and checks /proc/mounts.
func unmountCheck(t testing.TB, srv *Server) {
	t.Helper()
	if mounted(t, srv.Dir()) {
		if err := srv.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("server of %s did not stop after unmount", srv.Dir())
	}
	if mounted(t, srv.Dir()) {
		t.Errorf("%s is still mounted", srv.Dir())
	}
}

// imageEditor patches an image file in place, to build what makefs
// cannot: holes, extended attributes, device nodes, birth times, flags.
type imageEditor struct {
	t   testing.TB
	img string
	f   *os.File
	sb  *ondisk.Superblock
	loc int64
}

func editImage(t testing.TB, img string) *imageEditor {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	sb, loc, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	return &imageEditor{t: t, img: img, f: f, sb: sb, loc: loc}
}

func (e *imageEditor) read(off int64, n int) []byte {
	e.t.Helper()
	b := make([]byte, n)
	if _, err := e.f.ReadAt(b, off); err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *imageEditor) write(off int64, b []byte) {
	e.t.Helper()
	if _, err := e.f.WriteAt(b, off); err != nil {
		e.t.Fatal(err)
	}
}

// ino resolves a path of the image with the engine.
func (e *imageEditor) ino(path string) ondisk.Ino {
	e.t.Helper()
	dev, err := blockdev.Open(e.img, blockdev.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
	if err != nil {
		dev.Close()
		e.t.Fatal(err)
	}
	defer fsys.Close()
	ino, err := fsys.Namei(path)
	if err != nil {
		e.t.Fatalf("Namei(%s): %v", path, err)
	}
	return ino
}

func (e *imageEditor) inode(ino ondisk.Ino) *ondisk.Dinode {
	e.t.Helper()
	d, err := ondisk.DecodeDinode(e.read(e.sb.InoOffset(ino), ondisk.DinodeSize))
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *imageEditor) putInode(ino ondisk.Ino, d *ondisk.Dinode) {
	e.t.Helper()
	b := make([]byte, ondisk.DinodeSize)
	if err := d.EncodeWithHash(e.sb, b); err != nil {
		e.t.Fatal(err)
	}
	e.write(e.sb.InoOffset(ino), b)
}

func (e *imageEditor) putSuperblock() {
	e.t.Helper()
	e.write(e.loc, e.sb.EncodeWithHash())
}

// blockOf returns the disk address of a file's first block.
func (e *imageEditor) blockOf(path string) ondisk.Frag {
	e.t.Helper()
	d := e.inode(e.ino(path))
	if d.Db[0] == 0 {
		e.t.Fatalf("%s has no first block", path)
	}
	return d.Db[0]
}

// newImage formats an empty UFS2 image of size bytes with this project's
// newfs (FreeBSD's defaults: 32 KiB blocks, 4 KiB fragments, the
// superblock at 64 KiB, which sleuthkit reads), without /.snap.
func newImage(t testing.TB, size int64) string {
	t.Helper()
	return newImageDensity(t, size, 0)
}

// checkImage checks an unmounted image: the superblock is marked clean
// and fsck -n -f finds nothing.
func checkImage(t testing.TB, img string) {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	sb, _, err := ondisk.FindSuperblock(dev)
	if err != nil {
		t.Fatalf("%s after unmount: %v", img, err)
	}
	if sb.Clean != 1 {
		t.Errorf("%s: fs_clean %d after unmount, want 1", img, sb.Clean)
	}
	var out strings.Builder
	rep, err := fsck.Check(context.Background(), dev, fsck.Options{Mode: fsck.No, Force: true, Output: &out})
	if err != nil {
		t.Fatalf("fsck -n -f %s: %v\n%s", img, err, out.String())
	}
	if len(rep.Problems) > 0 || !rep.Clean {
		t.Errorf("fsck -n -f %s found problems:\n%s", img, out.String())
	}
}
