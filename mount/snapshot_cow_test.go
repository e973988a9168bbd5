package mount

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// treeOf reads every regular file of fsys (path -> contents), and the
// names of every directory.
func treeOf(t *testing.T, fsys *ufs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(dir ondisk.Ino, path string)
	walk = func(dir ondisk.Ino, path string) {
		var ents []ufs.Dirent
		if err := fsys.ReadDir(dir, func(e ufs.Dirent) bool { ents = append(ents, e); return true }); err != nil {
			t.Fatalf("readdir %s: %v", path, err)
		}
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." || path == "" && e.Name == ".snap" {
				continue
			}
			p := path + "/" + e.Name
			st, err := fsys.Stat(e.Ino)
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			switch {
			case st.IsDir():
				out[p+"/"] = ""
				walk(e.Ino, p)
			case st.Type() == ondisk.IFREG:
				b := make([]byte, st.Size)
				if _, err := fsys.ReadAt(e.Ino, b, 0); err != nil && st.Size > 0 {
					t.Fatalf("read %s: %v", p, err)
				}
				out[p] = string(b)
			}
		}
	}
	walk(fsys.Root(), "")
	return out
}

// TestSnapshotCopyOnWrite: with a snapshot present, every path that
// overwrites or frees a block — buffer-cache writes (inodes, directories,
// indirect blocks, fragments), direct file-data writes, frees by removal,
// truncation and hole punching, fragments moved by growth — first gives the
// snapshot the old contents. Through the engine, then through a FUSE
// mount: the snapshot reads as the tree at its creation while the live
// filesystem has the changes, both images are clean to fsck, with and
// without soft updates.
func TestSnapshotCopyOnWrite(t *testing.T) {
	for _, su := range []bool{true, false} {
		t.Run(fmt.Sprintf("softdep=%v", su), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "cow.img")
			dev, err := blockdev.Open(img, blockdev.Options{Create: true, CreateSize: 96 << 20})
			if err != nil {
				t.Fatal(err)
			}
			p := newfs.DefaultParams()
			p.SoftUpdates = su
			if _, err := newfs.Format(context.Background(), dev, p); err != nil {
				t.Fatal(err)
			}
			fsys, err := ufs.Open(dev, ufs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			root := fsys.Root()
			mk := func(dir ondisk.Ino, name string, data []byte) ondisk.Ino {
				ino, err := fsys.Create(dir, name, 0o644, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fsys.WriteAt(ino, data, 0); err != nil {
					t.Fatal(err)
				}
				return ino
			}
			big := mk(root, "big", bytes.Repeat([]byte("big data block "), 150000)) // 2.2 MB: indirect blocks
			small := mk(root, "small", []byte("a small fragment file"))
			mk(root, "gone", bytes.Repeat([]byte("to be removed "), 20000))
			cut := mk(root, "cut", bytes.Repeat([]byte("to be truncated "), 40000))
			dir, err := fsys.Mkdir(root, "dir", 0o755, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 40 {
				mk(dir, fmt.Sprintf("entry-%02d", i), []byte(strings.Repeat("e", i*100)))
			}
			before := treeOf(t, fsys)
			if _, err := fsys.CreateSnapshot("s"); err != nil {
				t.Fatal(err)
			}

			// Every kind of change, through the engine.
			if _, err := fsys.WriteAt(big, bytes.Repeat([]byte("NEW"), 400000), 100000); err != nil { // whole blocks: direct writes
				t.Fatal(err)
			}
			if _, err := fsys.WriteAt(big, []byte("partial overwrite"), 5); err != nil { // in place, part of a block
				t.Fatal(err)
			}
			if _, err := fsys.WriteAt(small, bytes.Repeat([]byte("grown "), 3000), 21); err != nil { // fragment moved
				t.Fatal(err)
			}
			if err := fsys.Unlink(root, "gone"); err != nil { // frees
				t.Fatal(err)
			}
			if err := fsys.Truncate(cut, 1000); err != nil {
				t.Fatal(err)
			}
			if err := fsys.PunchHole(big, 1500000, 300000); err != nil {
				t.Fatal(err)
			}
			for i := range 40 {
				if i%3 == 0 {
					if err := fsys.Unlink(dir, fmt.Sprintf("entry-%02d", i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := fsys.Rename(dir, "entry-01", root, "moved", ufs.RenameFlags{}); err != nil {
				t.Fatal(err)
			}
			mk(dir, "new-after", bytes.Repeat([]byte("n"), 70000))
			if err := fsys.SetXattr(small, ondisk.ExtattrNamespaceUser, "k", []byte("v"), ufs.XattrFlags{}); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Close(); err != nil {
				t.Fatal(err)
			}
			checkSnapshotImage(t, img, before, "s")
			live := openReadOnly(t, img)
			if now := treeOf(t, live); now["/moved"] == "" || now["/big"] == before["/big"] {
				t.Error("the live filesystem does not show the changes")
			}
			live.Close()

			// And through a mount.
			mnt, srv := mountImage(t, img, Options{})
			if srv.ReadOnly() {
				t.Fatal("a filesystem with one snapshot mounted read-only")
			}
			if err := os.WriteFile(filepath.Join(mnt, "big"), []byte("rewritten through the mount"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(mnt, "dir")); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(mnt, "cut"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 500); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := srv.Unmount(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Wait(); err != nil {
				t.Fatal(err)
			}
			checkSnapshotImage(t, img, before, "s")

			// rm of the snapshot through the mount deletes it.
			mnt, srv = mountImage(t, img, Options{})
			if err := os.Remove(filepath.Join(mnt, ".snap", "s")); err != nil {
				t.Fatalf("rm of the snapshot: %v", err)
			}
			if err := srv.Unmount(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Wait(); err != nil {
				t.Fatal(err)
			}
			checkImage(t, img)
			live = openReadOnly(t, img)
			if snaps, err := live.Snapshots(); err != nil || len(snaps) != 0 {
				t.Errorf("after rm: snapshots %+v, %v", snaps, err)
			}
		})
	}
}

// checkSnapshotImage checks that img is clean, and that its snapshot name
// is a clean filesystem holding the tree want.
func checkSnapshotImage(t *testing.T, img string, want map[string]string, name string) {
	t.Helper()
	checkImage(t, img)
	fb := os.Getenv("FBSD_TOOLS")
	if fb != "" {
		checkWithFreeBSD(t, fb, img)
	}
	live := openReadOnly(t, img)
	defer live.Close() // now: the image is mounted again after
	s, err := live.SnapshotByName(name)
	if err != nil {
		t.Fatal(err)
	}
	sd := live.SnapshotDevice(s)
	sb := live.Superblock()
	raw := make([]byte, sd.Size()-int64(sb.Bsize))
	if _, err := sd.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	frozenImg := filepath.Join(t.TempDir(), "frozen.img")
	if err := os.WriteFile(frozenImg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	fdev, err := blockdev.Open(frozenImg, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fdev.Close()
	var log strings.Builder
	rep, err := fsck.Check(context.Background(), fdev, fsck.Options{Mode: fsck.No, Force: true, Output: &log})
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("fsck -n -f of the snapshot: %v\n%s", err, log.String())
	}
	if fb != "" {
		checkWithFreeBSD(t, fb, frozenImg)
	}
	frozen, err := ufs.Open(fdev, ufs.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	got := treeOf(t, frozen)
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w {
			t.Errorf("snapshot %s: %s has %d bytes (present %v), want the %d it had", name, p, len(g), ok, len(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("snapshot %s: %s appeared after it was taken", name, p)
		}
	}
}

// openReadOnly opens img read-only with the engine, closed at the test's end.
func openReadOnly(t *testing.T, img string) *ufs.FS {
	t.Helper()
	ro, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(ro, ufs.Options{ReadOnly: true})
	if err != nil {
		ro.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}
