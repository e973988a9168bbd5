package ufs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// makeImage builds a UFS2 image of srcDir with makefs and returns its path.
func makeImage(t testing.TB, srcDir string, o testutil.MakefsOptions) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ufs2.img")
	o.Version = 2
	testutil.MakefsWith(t, srcDir, img, o)
	return img
}

// openImage opens an image file read-only as a filesystem, closed at the
// end of the test.
func openImage(t testing.TB, img string) *FS {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(dev, Options{ReadOnly: true})
	if err != nil {
		dev.Close()
		t.Fatalf("Open(%s): %v", img, err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

func blockdevMem(img []byte) blockdev.Device { return blockdev.NewMemBytes(img) }

// openBytes opens an in-memory image.
func openBytes(img []byte) (*FS, error) {
	return Open(blockdev.NewMemBytes(img), Options{ReadOnly: true})
}

// imageEditor patches an image file in place: the tests use it to build
// what makefs cannot (sparse files, triple indirect blocks, extended
// attributes, check-hashes).
type imageEditor struct {
	t   testing.TB
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
	return &imageEditor{t: t, f: f, sb: sb, loc: loc}
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

// fragOff is the byte offset of fragment f.
func (e *imageEditor) fragOff(f ondisk.Frag) int64 { return e.sb.FragOffset(f) }

// lookupIno finds the inode of path in img with the package under test.
func lookupIno(t testing.TB, img, path string) ondisk.Ino {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(dev, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	ino, err := fs.Namei(path)
	if err != nil {
		t.Fatalf("Namei(%s): %v", path, err)
	}
	return ino
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}
