package ufs

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// TestFreedBlockReusedAtOnce: a truncation hands a block to soft updates
// to free once the cleared pointer is durable; a round does that at once
// and the block, the only one free, goes to another file, which writes
// part of it into a fresh buffer. The truncation must not drop that
// buffer afterwards (it dropped its own blocks' buffers after handing them
// over): the other file's data would be lost and the pointer to the block
// would wait for ever for its contents, failing every fsync after it
// with ErrStuck (issue 18's concurrent fsync failures, and a directory
// block left holding a removed directory's entries after a crash).
func TestFreedBlockReusedAtOnce(t *testing.T) {
	mem := blockdev.NewMemBytes(emptyImage(t, geomBigSU))
	fsys, err := Open(mem, Options{UseReserve: true, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	bsize := int(fsys.sb.Bsize)
	root := fsys.Root()
	a := mustIno(t)(fsys.Create(root, "a", 0o644, 0, 0))
	b := mustIno(t)(fsys.Create(root, "b", 0o644, 0, 0))
	fill := mustIno(t)(fsys.Create(root, "fill", 0o644, 0, 0))
	// a: one block, durable. b: its last block allocated, a hole before.
	if _, err := fsys.WriteAt(a, bytes.Repeat([]byte{'A'}, bsize), 0); err != nil {
		t.Fatal(err)
	}
	must(t, fsys.Truncate(b, uint64(4*bsize)))
	must(t, fsys.Fsync(a, false))
	// No whole block free after this.
	blk := bytes.Repeat([]byte{'F'}, bsize)
	for off := int64(0); ; off += int64(bsize) {
		if _, err := fsys.WriteAt(fill, blk, off); err != nil {
			if !errors.Is(err, ErrNoSpace) {
				t.Fatal(err)
			}
			break
		}
	}
	must(t, fsys.Sync())
	freed := fsys.blockOf(t, a, 0)
	var got ondisk.Frag
	small := []byte("written into a fresh block of b")
	testHookFreed = func() {
		testHookFreed = nil
		must(t, fsys.sd.Round()) // the free of a's block carried out
		if _, err := fsys.WriteAt(b, small, 0); err != nil {
			t.Errorf("write to b: %v", err)
			return
		}
		got = fsys.blockOf(t, b, 0)
	}
	t.Cleanup(func() { testHookFreed = nil })
	must(t, fsys.Truncate(a, 0))
	if got != freed {
		t.Fatalf("b's first block is %d, not a's freed block %d: the test did not set the scene", got, freed)
	}
	if err := fsys.Fsync(b, false); err != nil {
		t.Fatalf("fsync of b: %v", err)
	}
	must(t, fsys.Close())
	fsys, err = Open(mem, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	buf := make([]byte, bsize)
	if _, err := fsys.ReadAt(b, buf, 0); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), small...), make([]byte, bsize-len(small))...)
	if !bytes.Equal(buf, want) {
		t.Errorf("b's first block after remount starts %q, want %q and zeroes", buf[:40], small)
	}
	checkFS(t, fsys)
}

// blockOf returns the disk address of direct block lbn of inode ino.
func (fs *FS) blockOf(t *testing.T, ino ondisk.Ino, lbn int) ondisk.Frag {
	t.Helper()
	ip, err := fs.OpenInode(ino)
	if err != nil {
		t.Fatal(err)
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	return ip.din.Db[lbn]
}
