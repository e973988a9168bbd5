package softdep

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

var (
	imgOnce sync.Once
	imgData []byte
	imgErr  error
)

// emptyImage is an empty 8 MiB UFS2 image with 4 KiB blocks and 512-byte
// fragments.
func emptyImage(t *testing.T) []byte {
	t.Helper()
	imgOnce.Do(func() {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		if imgErr = os.Mkdir(src, 0o755); imgErr != nil {
			return
		}
		img := filepath.Join(dir, "img")
		testutil.MakefsWith(t, src, img, testutil.MakefsOptions{Version: 2, Size: "8m", Bsize: 4096, Fsize: 512, Extra: []string{"-o", "density=4096"}})
		imgData, imgErr = os.ReadFile(img)
	})
	if imgErr != nil {
		t.Fatal(imgErr)
	}
	return append([]byte(nil), imgData...)
}

// failDev fails writes while fail is set.
type failDev struct {
	*blockdev.Mem
	mu   sync.Mutex
	fail bool
}

func (f *failDev) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return 0, errors.New("injected write failure")
	}
	return f.Mem.WriteAt(p, off)
}

// fakeHost plays the engine: it counts group versions and records frees.
type fakeHost struct {
	mu       sync.Mutex
	d        *Deps
	cache    *bcache.Cache
	sb       *ondisk.Superblock
	vers     map[ondisk.Cg]uint64
	dirtyCg  map[ondisk.Cg]bool
	freed    []Extent
	freedIno []ondisk.Ino
	pending  int64
	pendIno  int32
	unlinked []ondisk.Ino
}

// alloc records an allocation in group c and returns its version.
func (h *fakeHost) alloc(c ondisk.Cg) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vers[c]++
	h.dirtyCg[c] = true
	return h.vers[c]
}

func (h *fakeHost) PushGroups() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.dirtyCg {
		b, err := h.cache.Get(h.sb.FragOffset(h.sb.Cgtod(c)), int(h.sb.Cgsize))
		if err != nil {
			return err
		}
		b.Lock()
		err = h.cache.MarkDirty(b)
		h.d.CgPushed(c, h.vers[c])
		b.Unlock()
		h.cache.Release(b)
		if err != nil {
			return err
		}
		delete(h.dirtyCg, c)
	}
	return nil
}

func (h *fakeHost) FreeBlock(p ondisk.Frag, size int, _ ondisk.Ino) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.freed = append(h.freed, Extent{p, int64(size)})
	return nil
}

func (h *fakeHost) FreeInode(ino ondisk.Ino, _ uint16) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.freedIno = append(h.freedIno, ino)
	return nil
}

func (h *fakeHost) AddPending(sectors int64, inodes int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending += sectors
	h.pendIno += inodes
}

func (h *fakeHost) Unlinked(ino ondisk.Ino) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unlinked = append(h.unlinked, ino)
	return true
}

type env struct {
	t     *testing.T
	sb    *ondisk.Superblock
	dev   *failDev
	cache *bcache.Cache
	d     *Deps
	host  *fakeHost
}

func newEnv(t *testing.T) *env {
	t.Helper()
	mem := blockdev.NewMemBytes(emptyImage(t))
	sb, _, err := ondisk.FindSuperblock(mem)
	if err != nil {
		t.Fatal(err)
	}
	dev := &failDev{Mem: mem}
	cache := bcache.New(dev, bcache.Options{})
	h := &fakeHost{cache: cache, sb: sb, vers: map[ondisk.Cg]uint64{}, dirtyCg: map[ondisk.Cg]bool{}}
	d := New(sb, cache, dev, h, Options{MaxRounds: 8})
	h.d = d
	return &env{t: t, sb: sb, dev: dev, cache: cache, d: d, host: h}
}

func (e *env) round() {
	e.t.Helper()
	if err := e.d.Round(); err != nil {
		e.t.Fatal(err)
	}
}

// inode writes din as inode ino through UpdateInode.
func (e *env) inode(ino ondisk.Ino, din *ondisk.Dinode) {
	e.t.Helper()
	off := e.sb.FragOffset(e.sb.InoToFsba(ino))
	within := e.sb.InoToFsbo(ino) * ondisk.DinodeSize
	b, err := e.cache.Get(off, int(e.sb.Bsize))
	if err != nil {
		e.t.Fatal(err)
	}
	defer e.cache.Release(b)
	b.Lock()
	defer b.Unlock()
	if err := e.d.UpdateInode(b, within, ino, din); err != nil {
		e.t.Fatal(err)
	}
	if err := e.cache.MarkDirty(b); err != nil {
		e.t.Fatal(err)
	}
}

// disk decodes inode ino as it is on the device.
func (e *env) disk(ino ondisk.Ino) ondisk.Dinode {
	e.t.Helper()
	raw := make([]byte, ondisk.DinodeSize)
	if _, err := e.dev.ReadAt(raw, e.sb.InoOffset(ino)); err != nil {
		e.t.Fatal(err)
	}
	var d ondisk.Dinode
	if err := d.Decode(raw); err != nil {
		e.t.Fatal(err)
	}
	if err := ondisk.VerifyDinodeHash(e.sb, raw); err != nil {
		e.t.Errorf("inode %d on disk: %v", ino, err)
	}
	return d
}

// block fills a new block's buffer with v.
func (e *env) block(p ondisk.Frag, size int, v byte) {
	e.t.Helper()
	b, err := e.cache.GetNoRead(e.sb.FragOffset(p), size)
	if err != nil {
		e.t.Fatal(err)
	}
	defer e.cache.Release(b)
	b.Lock()
	defer b.Unlock()
	for i := range b.Data() {
		b.Data()[i] = v
	}
	if err := e.cache.MarkDirty(b); err != nil {
		e.t.Fatal(err)
	}
}

// dataFrag is a fragment of the data area of group 0 well past anything
// makefs used.
func (e *env) dataFrag(n int) ondisk.Frag {
	return e.sb.Cgdmin(0) + ondisk.Frag(800+n*int(e.sb.Frag))
}

const testIno = ondisk.Ino(20)

// TestPointerWaitsForBlockAndGroup: a pointer to a new block reaches the
// disk only once the block's contents and its group are durable; until
// then the inode is written with the pointer rolled back and its size cut
// to what is there.
func TestPointerWaitsForBlockAndGroup(t *testing.T) {
	e := newEnv(t)
	p := e.dataFrag(0)
	fsize := int(e.sb.Fsize)
	v := e.host.alloc(0)
	e.d.NewBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: 0}, p, fsize, v, false, -1)
	din := ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1, Size: 100, Blocks: 1}
	din.Db[0] = p
	e.inode(testIno, &din)
	e.block(p, fsize, 'x')
	e.round()
	if got := e.disk(testIno); got.Db[0] != 0 || got.Size != 0 || got.Mode != din.Mode {
		t.Fatalf("after one round: db[0] %d size %d mode 0%o, want the pointer and size rolled back", got.Db[0], got.Size, got.Mode)
	}
	ib, _ := e.cache.Get(e.sb.FragOffset(e.sb.InoToFsba(testIno)), int(e.sb.Bsize))
	if !e.cache.Dirty(ib) {
		t.Error("inode block clean after a rolled-back write")
	}
	e.round()
	if got := e.disk(testIno); got.Db[0] != p || got.Size != 100 {
		t.Fatalf("after two rounds: db[0] %d size %d, want %d and 100", got.Db[0], got.Size, p)
	}
	if e.cache.Dirty(ib) {
		t.Error("inode block still dirty once written as it is")
	}
	e.cache.Release(ib)
	if s := e.d.Stats(); s.Items != 0 {
		t.Errorf("%d items left", s.Items)
	}
}

// TestDurabilityNeedsFlush: a pointer written but not flushed satisfies
// nothing; a failed write puts what it carried back.
func TestDurabilityNeedsFlush(t *testing.T) {
	e := newEnv(t)
	p := e.dataFrag(1)
	fsize := int(e.sb.Fsize)
	e.d.NewBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: 0}, p, fsize, e.host.alloc(0), false, -1)
	din := ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1, Size: 10, Blocks: 1}
	din.Db[0] = p
	e.inode(testIno, &din)
	e.block(p, fsize, 'y')
	if err := e.host.PushGroups(); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.WriteDirty(); err != nil { // written, not flushed
		t.Fatal(err)
	}
	if err := e.cache.WriteDirty(); err != nil {
		t.Fatal(err)
	}
	if got := e.disk(testIno); got.Db[0] != 0 {
		t.Fatalf("pointer written before a flush: db[0] %d", got.Db[0])
	}
	if err := e.d.syncDevice(); err != nil {
		t.Fatal(err)
	}
	e.dev.fail = true
	if err := e.cache.WriteDirty(); err == nil {
		t.Fatal("injected failure not seen")
	}
	e.dev.fail = false
	if got := e.disk(testIno); got.Db[0] != 0 {
		t.Fatalf("failed write changed the disk: db[0] %d", got.Db[0])
	}
	e.round()
	e.round()
	if got := e.disk(testIno); got.Db[0] != p {
		t.Fatalf("after the device works again: db[0] %d, want %d", got.Db[0], p)
	}
}

// TestNewInodeZeroedUntilGroup: a new inode is written zeroed (its
// generation kept) until its group is durable.
func TestNewInodeZeroedUntilGroup(t *testing.T) {
	e := newEnv(t)
	e.d.NewInode(testIno, e.host.alloc(e.sb.InoToCg(testIno)))
	din := ondisk.Dinode{Mode: ondisk.IFREG | 0o600, Nlink: 1, Gen: 77}
	e.inode(testIno, &din)
	e.round()
	if got := e.disk(testIno); got.Mode != 0 || got.Gen != 77 {
		t.Fatalf("after one round: mode 0%o gen %d, want zeroed with gen 77", got.Mode, got.Gen)
	}
	e.round()
	if got := e.disk(testIno); got.Mode != din.Mode || got.Nlink != 1 {
		t.Fatalf("after two rounds: mode 0%o nlink %d", got.Mode, got.Nlink)
	}
}

// dirBlock makes a directory block at p holding entries (name -> ino) in
// one chunk, dirtied, and records each as added with add.
func (e *env) dirBlock(p ondisk.Frag, entries []ondisk.Direct, add func(b *bcache.Buf, d ondisk.Direct)) *bcache.Buf {
	e.t.Helper()
	b, err := e.cache.GetNoRead(e.sb.FragOffset(p), int(e.sb.Fsize))
	if err != nil {
		e.t.Fatal(err)
	}
	b.Lock()
	pos := 0
	for i, d := range entries {
		d.Reclen = uint16(ondisk.DirectSize(len(d.Name)))
		if i == len(entries)-1 {
			d.Reclen = uint16(ondisk.DirBlkSize - pos)
		}
		if err := d.Encode(b.Data()[pos:]); err != nil {
			e.t.Fatal(err)
		}
		pos += int(d.Reclen)
		if add != nil {
			add(b, d)
		}
	}
	if err := e.cache.MarkDirty(b); err != nil {
		e.t.Fatal(err)
	}
	b.Unlock()
	return b
}

// entryIno reads the d_ino of the entry named name in the chunk at p on
// disk (0 when missing).
func (e *env) entryIno(p ondisk.Frag, name string) ondisk.Ino {
	raw := make([]byte, ondisk.DirBlkSize)
	if _, err := e.dev.ReadAt(raw, e.sb.FragOffset(p)); err != nil {
		e.t.Fatal(err)
	}
	var ino ondisk.Ino
	_ = ondisk.DirChunkEntries(raw, func(_ int, d ondisk.Direct) bool {
		if string(d.Name) == name {
			ino = d.Ino
			return false
		}
		return true
	})
	if ino == 0 {
		// A rolled-back entry keeps its name with d_ino 0.
		for i := 0; i+8 < len(raw); {
			reclen := int(binary.LittleEndian.Uint16(raw[i+4:]))
			if reclen == 0 {
				break
			}
			i += reclen
		}
	}
	return ino
}

// TestEntryWaitsForInode: an entry naming an inode reaches the disk only
// after the inode (with the link) does; a removal lowers the link count on
// disk only once the block without the entry is durable, and then the
// engine hears of it (Unlinked).
func TestEntryWaitsForInode(t *testing.T) {
	e := newEnv(t)
	dirp := e.dataFrag(2)
	din := ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1}
	e.inode(testIno, &din)
	var added Dep
	b := e.dirBlock(dirp, []ondisk.Direct{
		{Ino: 2, Type: ondisk.DTDir, Name: []byte(".")},
		{Ino: 2, Type: ondisk.DTDir, Name: []byte("..")},
		{Ino: testIno, Type: ondisk.DTReg, Name: []byte("file")},
	}, func(b *bcache.Buf, d ondisk.Direct) {
		if d.Ino == testIno {
			added = e.d.DirAdd(b, Entry{Dir: 2, Name: "file", Ino: testIno, Type: ondisk.DTReg})
		}
	})
	defer e.cache.Release(b)
	e.round()
	if got := e.entryIno(dirp, "file"); got != 0 {
		t.Fatalf("entry on disk before its inode: d_ino %d", got)
	}
	if err := e.d.Wait(added); err != nil {
		t.Fatal(err)
	}
	if got := e.entryIno(dirp, "file"); got != testIno {
		t.Fatalf("entry after Wait: d_ino %d", got)
	}

	// Remove it: the inode's link count stays 1 on disk until the block
	// without the entry is durable.
	b.Lock()
	binary.LittleEndian.PutUint32(b.Data()[24:], 0) // the third entry starts at 12+12
	_ = e.cache.MarkDirty(b)
	e.d.DirRemove(b, 2, "file", testIno, nil)
	b.Unlock()
	din.Nlink = 0
	e.inode(testIno, &din)
	if e.d.Unlinked(testIno) {
		t.Fatal("Unlinked says free now with the removal not durable")
	}
	if err := e.host.PushGroups(); err != nil {
		t.Fatal(err)
	}
	ib, _ := e.cache.Get(e.sb.FragOffset(e.sb.InoToFsba(testIno)), int(e.sb.Bsize))
	if err := e.cache.FlushBuf(ib); err != nil { // the inode first: still one link
		t.Fatal(err)
	}
	e.cache.Release(ib)
	if got := e.disk(testIno); got.Nlink != 1 {
		t.Fatalf("link count on disk %d before the removal is durable, want 1", got.Nlink)
	}
	e.round()
	e.d.RunCallbacks()
	if len(e.host.unlinked) != 1 || e.host.unlinked[0] != testIno {
		t.Fatalf("Unlinked calls %v, want [%d]", e.host.unlinked, testIno)
	}
	e.round()
	if got := e.disk(testIno); got.Nlink != 0 {
		t.Fatalf("link count on disk %d after the removal is durable, want 0", got.Nlink)
	}
}

// TestFreeBlocks: a block whose pointer never reached the disk is freed
// at once; one that did waits until the write clearing it is durable.
func TestFreeBlocks(t *testing.T) {
	e := newEnv(t)
	fsize := int(e.sb.Fsize)
	p1, p2 := e.dataFrag(3), e.dataFrag(4)
	e.d.NewBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: 0}, p1, fsize, e.host.alloc(0), false, -1)
	din := ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1, Size: uint64(fsize), Blocks: 1}
	din.Db[0] = p1
	e.inode(testIno, &din)
	e.block(p1, fsize, 1)
	if err := e.d.Wait(e.d.BlocksWritten(testIno)); err != nil {
		t.Fatal(err)
	}
	// p1 is on disk; p2 is not yet.
	e.d.NewBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: 1}, p2, fsize, e.host.alloc(0), false, -1)
	din.Db[1], din.Size, din.Blocks = p2, uint64(2*fsize), 2
	e.inode(testIno, &din)
	e.block(p2, fsize, 2)

	din.Db[0], din.Db[1], din.Size, din.Blocks = 0, 0, 0, 0
	e.inode(testIno, &din)
	fr := e.d.FreeBlocks(testIno, []Extent{{p1, int64(fsize)}, {p2, int64(fsize)}}, []Dep{e.d.InodeWritten(testIno)})
	if len(fr.Now) != 1 || fr.Now[0].P != p2 {
		t.Fatalf("freed at once %v, want only %d", fr.Now, p2)
	}
	if fr.Deferred != int64(fsize)/ondisk.DevBSize {
		t.Fatalf("deferred %d sectors, want %d", fr.Deferred, fsize/ondisk.DevBSize)
	}
	if len(e.host.freed) != 0 {
		t.Fatalf("freed before the clearing write: %v", e.host.freed)
	}
	e.round()
	if len(e.host.freed) != 1 || e.host.freed[0].P != p1 {
		t.Fatalf("after the clearing write is durable: freed %v, want %d", e.host.freed, p1)
	}
	if e.host.pending != -int64(fsize)/ondisk.DevBSize {
		t.Fatalf("pending sectors taken off %d, want %d", e.host.pending, -fsize/ondisk.DevBSize)
	}
	if got := e.disk(testIno); got.Db[0] != 0 || got.Db[1] != 0 {
		t.Fatalf("disk pointers %v", got.Db[:2])
	}
}

// TestMoveBlock: a fragment tail moved to a bigger place is rolled back
// to the old fragment with the size cut to it, and the old fragment is
// freed once the new pointer is durable.
func TestMoveBlock(t *testing.T) {
	e := newEnv(t)
	fsize := int(e.sb.Fsize)
	old, nw := e.dataFrag(5), e.dataFrag(6)
	e.d.NewBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: 0}, old, fsize, e.host.alloc(0), false, -1)
	din := ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1, Size: 300, Blocks: 1}
	din.Db[0] = old
	e.inode(testIno, &din)
	e.block(old, fsize, 3)
	if err := e.d.Wait(e.d.BlocksWritten(testIno)); err != nil {
		t.Fatal(err)
	}
	fr := e.d.MoveBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: 0}, old, fsize, nw, 2*fsize, e.host.alloc(0))
	if len(fr.Now) != 0 || fr.Deferred != int64(fsize)/ondisk.DevBSize {
		t.Fatalf("MoveBlock frees %+v, want the old fragment deferred", fr)
	}
	din.Db[0], din.Size, din.Blocks = nw, uint64(fsize+300), 2
	e.inode(testIno, &din)
	ib, _ := e.cache.Get(e.sb.FragOffset(e.sb.InoToFsba(testIno)), int(e.sb.Bsize))
	if err := e.cache.FlushBuf(ib); err != nil {
		t.Fatal(err)
	}
	e.cache.Release(ib)
	if got := e.disk(testIno); got.Db[0] != old || got.Size != uint64(fsize) {
		t.Fatalf("rolled back: db[0] %d size %d, want %d and %d", got.Db[0], got.Size, old, fsize)
	}
	e.block(nw, 2*fsize, 4)
	e.round()
	e.round()
	e.round()
	if got := e.disk(testIno); got.Db[0] != nw || got.Size != din.Size {
		t.Fatalf("db[0] %d size %d, want %d and %d", got.Db[0], got.Size, nw, din.Size)
	}
	if len(e.host.freed) != 1 || e.host.freed[0].P != old {
		t.Fatalf("freed %v, want the old fragment %d", e.host.freed, old)
	}
}

// TestWaitStuck: something that can never be written makes Wait fail
// with ErrStuck instead of looping.
func TestWaitStuck(t *testing.T) {
	e := newEnv(t)
	d := e.d
	d.mu.Lock()
	m := d.newMarker(e.sb.FragOffset(e.dataFrag(7)), int(e.sb.Fsize)) // no buffer is ever written there
	d.mu.Unlock()
	if err := d.Wait(m); !errors.Is(err, ErrStuck) {
		t.Fatalf("Wait = %v, want ErrStuck", err)
	}
}
