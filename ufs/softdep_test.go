package ufs

import (
	"errors"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// TestSoftdepPendingFrees: with soft updates the space of a removed file
// shows in statfs at once (fs_pendingblocks), before its blocks are back
// in the maps, and an allocation that finds no space helps finish the
// pending frees instead of failing.
func TestSoftdepPendingFrees(t *testing.T) {
	m := newMemFS(t, geomSmallSU, Options{})
	fsys := m.fs
	if fsys.sd == nil {
		t.Fatal("not running with soft updates")
	}
	root := fsys.Root()
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i)
	}
	ino := mustIno(t)(fsys.Create(root, "big", 0o644, 0, 0))
	if _, err := fsys.WriteAt(ino, big, 0); err != nil {
		t.Fatal(err)
	}
	must(t, fsys.Sync())
	before := fsys.Statfs()
	must(t, fsys.Unlink(root, "big"))
	after := fsys.Statfs()
	freed := int64(after.Bfree) - int64(before.Bfree)
	want := int64(len(big)) / after.Bsize
	if freed < want {
		t.Errorf("statfs right after unlink: %d more free fragments, want at least %d", freed, want)
	}
	if after.Ffree != before.Ffree+1 {
		t.Errorf("statfs right after unlink: %d free inodes, want %d", after.Ffree, before.Ffree+1)
	}
	must(t, fsys.Sync())
	sb := fsys.Superblock()
	if sb.Pendingblocks != 0 || sb.Pendinginodes != 0 {
		t.Errorf("after sync: pending %d blocks %d inodes", sb.Pendingblocks, sb.Pendinginodes)
	}
	if got := fsys.Statfs(); got.Bfree != after.Bfree || got.Ffree != after.Ffree {
		t.Errorf("statfs after the frees landed: %d/%d free, %d/%d right after unlink", got.Bfree, got.Ffree, after.Bfree, after.Ffree)
	}
	checkFS(t, fsys)

	// Fill the filesystem, remove the filler, and fill it again at once:
	// the second fill finds the space only by helping the frees along.
	fill := func(name string) int64 {
		ino := mustIno(t)(fsys.Create(root, name, 0o644, 0, 0))
		chunk := make([]byte, 256<<10)
		var n int64
		for {
			w, err := fsys.WriteAt(ino, chunk, n)
			n += int64(w)
			if errors.Is(err, ErrNoSpace) {
				return n
			}
			if err != nil {
				t.Fatalf("filling %s: %v", name, err)
			}
		}
	}
	n1 := fill("fill1")
	must(t, fsys.Unlink(root, "fill1"))
	n2 := fill("fill2")
	if n2 < n1*9/10 {
		t.Errorf("refill after removing %d bytes wrote only %d", n1, n2)
	}
	must(t, fsys.Unlink(root, "fill2"))
	m.reopen()
	checkFS(t, m.fs)
}

// TestSoftdepFewFlushes: creating and removing many files waits on the
// device only now and then, not for each file.
func TestSoftdepFewFlushes(t *testing.T) {
	rec := blockdev.NewRecorder(blockdev.NewMemBytes(emptyImage(t, geomSmallSU)))
	fsys, err := Open(rec, Options{})
	must(t, err)
	defer fsys.Close()
	root := fsys.Root()
	const n = 400
	for i := range n {
		mustIno(t)(fsys.Create(root, "f"+itoa(i), 0o644, 0, 0))
	}
	for i := range n {
		must(t, fsys.Unlink(root, "f"+itoa(i)))
	}
	syncs := 0
	for _, op := range rec.Ops() {
		if op.Kind == blockdev.OpSync {
			syncs++
		}
	}
	if syncs > n/10 {
		t.Errorf("%d device flushes for %d creates and removes", syncs, n)
	}
	t.Logf("%d device flushes, %d writes for %d creates and removes", syncs, len(rec.Ops())-syncs, n)
}

// TestSoftdepBigDirectory: a directory growing past its direct blocks
// (into new indirect trees under soft updates) keeps every entry, across
// a remount, and its blocks add up.
func TestSoftdepBigDirectory(t *testing.T) {
	m := newMemFS(t, geomSmallSU, Options{MaxDirtyBytes: 256 << 10})
	fsys := m.fs
	dir := mustIno(t)(fsys.Mkdir(fsys.Root(), "big", 0o755, 0, 0))
	const n = 4000 // 12 blocks of 4 KiB hold fewer entries
	for i := range n {
		mustIno(t)(fsys.Create(dir, "entry-with-a-longish-name-"+itoa(i), 0o644, 0, 0))
		if i%1000 == 999 {
			must(t, fsys.Sync())
		}
	}
	st, err := fsys.Stat(dir)
	must(t, err)
	if st.Size <= ondisk.NDaddr*4096 {
		t.Fatalf("directory of %d bytes does not reach its indirect blocks", st.Size)
	}
	m.reopen()
	fsys = m.fs
	seen := 0
	must(t, fsys.ReadDir(dir, func(Dirent) bool { seen++; return true }))
	if seen != n+2 {
		t.Fatalf("%d entries after remount, want %d", seen, n+2)
	}
	for i := 0; i < n; i += 7 {
		must(t, fsys.Unlink(dir, "entry-with-a-longish-name-"+itoa(i)))
	}
	m.reopen()
	checkFS(t, m.fs)
}
