package mount

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// TestCreateSnapshot takes a snapshot of an unmounted image with files on
// it: the image is clean to fsck, lists the snapshot, is refused for
// writing; the snapshot, opened as a filesystem, is itself a clean
// filesystem holding the same files (its own file expunged: an empty
// regular file), and its copies of the maps count its blocks free.
func TestCreateSnapshot(t *testing.T) {
	img := newImage(t, 96<<20)
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Mkdir(fsys.Root(), ".snap", 0o775, 0, 5); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for i, n := range []int{0, 100, 5000, 40000, 300000, 3 << 20} {
		name := "f" + strings.Repeat("x", i)
		data := bytes.Repeat([]byte{byte('a' + i)}, n)
		ino, err := fsys.Create(fsys.Root(), name, 0o644, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.WriteAt(ino, data, 0); err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	s, err := fsys.CreateSnapshot("first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Create(fsys.Root(), "after", 0o644, 0, 0); err != nil {
		t.Errorf("a write after the snapshot: %v", err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	checkImage(t, img)
	if fb := os.Getenv("FBSD_TOOLS"); fb != "" {
		checkWithFreeBSD(t, fb, img)
	}

	live := openReadOnly(t, img)
	snaps, err := live.Snapshots()
	if err != nil || len(snaps) != 1 || snaps[0].Name != "first" || snaps[0].Ino != s.Ino {
		t.Fatalf("Snapshots = %+v, %v", snaps, err)
	}
	st, err := live.Stat(s.Ino)
	if err != nil {
		t.Fatal(err)
	}
	sb := live.Superblock()
	numblks := (sb.Size + int64(sb.Frag) - 1) / int64(sb.Frag)
	if st.Flags&ondisk.SFSnapshot == 0 || st.Mode&0o7777 != 0o440 || st.GID != 5 || int64(st.Size) != (numblks+1)*int64(sb.Bsize) {
		t.Errorf("snapshot inode: flags 0x%x mode %o gid %d size %d", st.Flags, st.Mode, st.GID, st.Size)
	}

	// The frozen image, written out as a file: a clean filesystem.
	sd := live.SnapshotDevice(s)
	frozenImg := filepath.Join(t.TempDir(), "frozen.img")
	out := make([]byte, sd.Size()-int64(sb.Bsize)) // without the block list
	if _, err := sd.ReadAt(out, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(frozenImg, out, 0o644); err != nil {
		t.Fatal(err)
	}
	fdev, err := blockdev.Open(frozenImg, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	rep, err := fsck.Check(context.Background(), fdev, fsck.Options{Mode: fsck.No, Force: true, Output: &log})
	fdev.Close()
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("fsck -n -f of the snapshot's image: %v\n%s", err, log.String())
	}
	if fb := os.Getenv("FBSD_TOOLS"); fb != "" {
		checkWithFreeBSD(t, fb, frozenImg)
	}
	frozen, err := ufs.Open(sd, ufs.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	for name, want := range files {
		ino, err := frozen.Namei("/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if n, err := frozen.ReadAt(ino, got, 0); n != len(want) || !bytes.Equal(got, want) {
			t.Errorf("/%s in the snapshot: %d bytes, %v", name, n, err)
		}
	}
	self, err := frozen.Namei("/.snap/first")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := frozen.Stat(self); err != nil || st.Size != 0 || st.Flags&ondisk.SFSnapshot != 0 {
		t.Errorf("the snapshot's own file in the snapshot: %+v, %v; want an empty plain file", st, err)
	}
	// Free in the frozen image: what is free now plus the snapshot's own.
	if got, want := frozen.Statfs().Bfree, live.Statfs().Bfree+st.Blocks*512/uint64(sb.Fsize); got != want {
		t.Errorf("the snapshot's image has %d free fragments, want %d (free now plus the snapshot's)", got, want)
	}
}

// TestDeleteSnapshot: deleting the snapshot gives back exactly what it
// held, leaves the image clean (ours and FreeBSD's fsck) and writable.
func TestDeleteSnapshot(t *testing.T) {
	img := newImage(t, 64<<20)
	open := func(o ufs.Options) *ufs.FS {
		t.Helper()
		dev, err := blockdev.Open(img, blockdev.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := ufs.Open(dev, o)
		if err != nil {
			t.Fatal(err)
		}
		return fsys
	}
	fsys := open(ufs.Options{})
	if _, err := fsys.Mkdir(fsys.Root(), ".snap", 0o775, 0, 5); err != nil {
		t.Fatal(err)
	}
	ino, err := fsys.Create(fsys.Root(), "f", 0o644, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.WriteAt(ino, bytes.Repeat([]byte("x"), 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	before := fsys.Statfs()
	if _, err := fsys.CreateSnapshot("s"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	fsys = open(ufs.Options{})
	if fsys.ReadOnly() {
		t.Errorf("a filesystem with one snapshot opened read-only: %s", fsys.ReadOnlyReason())
	}
	if err := fsys.DeleteSnapshot("nope"); err == nil {
		t.Error("deleting an unknown snapshot succeeded")
	}
	if err := fsys.DeleteSnapshot("s"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	checkImage(t, img)
	if fb := os.Getenv("FBSD_TOOLS"); fb != "" {
		checkWithFreeBSD(t, fb, img)
	}
	fsys = open(ufs.Options{})
	defer fsys.Close()
	if fsys.ReadOnly() {
		t.Fatalf("read-only after the snapshot's deletion: %s", fsys.ReadOnlyReason())
	}
	if after := fsys.Statfs(); after.Bfree != before.Bfree || after.Ffree != before.Ffree {
		t.Errorf("after the deletion %d free fragments, %d free inodes; before the snapshot %d, %d", after.Bfree, after.Ffree, before.Bfree, before.Ffree)
	}
}

// checkWithFreeBSD runs FreeBSD's fsck_ffs -n -f (built by
// shared/oracles/fbsd-tools into $FBSD_TOOLS) on img; a by-hand check.
func checkWithFreeBSD(t *testing.T, dir, img string) {
	t.Helper()
	out, err := runTool(filepath.Join(dir, "fsck_ffs"), "-n", "-f", img)
	t.Logf("FreeBSD fsck_ffs -n -f %s:\n%s", filepath.Base(img), out)
	if err != nil || !strings.Contains(out, "files,") || strings.Contains(out, "? no") {
		t.Errorf("FreeBSD's fsck_ffs did not find %s clean (%v)", filepath.Base(img), err)
	}
}

func runTool(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
