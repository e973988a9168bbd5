package mount

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// TestSnapshotRead builds a snapshot in FreeBSD's form by hand — a file
// flagged SF_SNAPSHOT as large as the filesystem, listed in fs_snapinum,
// holding copies of some blocks, BLK_NOCOPY for one, 0 ("not copied") for
// the rest — then changes the live blocks under it as a later write with
// copy-on-write would. Read through the engine the snapshot is the frozen
// image: copies where it has them, zeros for BLK_NOCOPY, the live blocks
// elsewhere; opened as a filesystem it holds the files as they were.
// fsck accepts the image, and the engine refuses to write it.
func TestSnapshotRead(t *testing.T) {
	img := newImage(t, 32<<20)
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Repeat([]byte("as it was "), 10000)
	a, err := fsys.Create(fsys.Root(), "a", 0o644, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.WriteAt(a, old, 0); err != nil {
		t.Fatal(err)
	}
	snapDir, err := fsys.Mkdir(fsys.Root(), ".snap", 0o775, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := fsys.Create(snapDir, "before", 0o400, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.Sync(); err != nil {
		t.Fatal(err)
	}
	sb := fsys.Superblock()
	bsize := int64(sb.Bsize)
	aBlock, err := fsys.Bmap(a, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot copies a's first block (logical block = filesystem
	// block number).
	lbn := int64(aBlock) / int64(sb.Frag)
	frozen := make([]byte, bsize)
	if _, err := dev.ReadAt(frozen, lbn*bsize); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.WriteAt(snap, frozen, lbn*bsize); err != nil {
		t.Fatal(err)
	}
	// FreeBSD allocates a snapshot's last block at creation: it copies
	// the live one, as for any block that must be a copy.
	numblks := (sb.Size + int64(sb.Frag) - 1) / int64(sb.Frag)
	last := make([]byte, bsize)
	if _, err := dev.ReadAt(last, (numblks-1)*bsize); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.WriteAt(snap, last, (numblks-1)*bsize); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}

	// By hand, what creation would have done: the flag, the size, one
	// BLK_NOCOPY (the boot block, unused), and the superblock's list.
	e := editImage(t, img)
	d := e.inode(snap)
	d.Flags |= ondisk.SFSnapshot
	if d.Size != uint64(numblks*bsize) {
		t.Fatalf("snapshot size %d, want %d", d.Size, numblks*bsize)
	}
	d.Db[0] = ondisk.BlkNoCopy
	e.putInode(snap, d)
	e.sb.Snapinum[0] = uint32(snap)
	e.putSuperblock()
	// Later changes to the live filesystem, with the old contents copied.
	e.write(0, bytes.Repeat([]byte{0xee}, int(bsize)*2))
	e.write(e.sb.FragOffset(aBlock), bytes.Repeat([]byte("changed   "), int(bsize)/10+1)[:bsize])
	checkImage(t, img)

	live := openReadOnly(t, img)
	s, err := live.SnapshotByName("before")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.SnapshotByName("nope"); err == nil || !strings.Contains(err.Error(), "before") {
		t.Errorf("an unknown snapshot: %v, want the names there are", err)
	}
	sd := live.SnapshotDevice(s)
	block := make([]byte, bsize)
	for _, c := range []struct {
		name string
		lbn  int64
		want []byte
	}{
		{"BLK_NOCOPY reads zeros", 0, make([]byte, bsize)},
		{"not copied reads the live block", 1, bytes.Repeat([]byte{0xee}, int(bsize))},
		{"a copy reads the copy", lbn, frozen},
	} {
		if _, err := sd.ReadAt(block, c.lbn*bsize); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(block, c.want) {
			t.Errorf("%s: block %d differs", c.name, c.lbn)
		}
	}
	if _, err := sd.WriteAt(block, 0); err == nil {
		t.Error("a snapshot device took a write")
	}

	// The frozen filesystem, and the live one.
	frozenFS, err := ufs.Open(sd, ufs.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("opening the snapshot as a filesystem: %v", err)
	}
	defer frozenFS.Close()
	for _, c := range []struct {
		fsys *ufs.FS
		want string
	}{{frozenFS, "as it was "}, {live, "changed   "}} {
		ino, err := c.fsys.Namei("/a")
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 10)
		if _, err := c.fsys.ReadAt(ino, got, 0); err != nil || string(got) != c.want {
			t.Errorf("/a starts %q (%v), want %q", got, err, c.want)
		}
	}
	if _, err := os.Stat(img); err != nil {
		t.Fatal(err)
	}
}
