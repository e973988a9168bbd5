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
	// onPush, when set, runs at the start of every PushGroups (a round
	// beginning), with the number of the push.
	onPush func(n int)
	pushes int
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
	h.pushes++
	if fn := h.onPush; fn != nil {
		n := h.pushes
		h.mu.Unlock()
		fn(n)
		h.mu.Lock()
	}
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

func (h *fakeHost) BeforeRound() {}

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
	cache.SetHooks(d)
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

// TestWaitProgress: a wait fails only after MaxRounds rounds in a row
// without progress, not after MaxRounds rounds: here each round makes one
// of 3*MaxRounds markers writable, and the wait for all of them succeeds.
func TestWaitProgress(t *testing.T) {
	e := newEnv(t)
	d := e.d
	n := 3 * d.opts.MaxRounds
	var deps []Dep
	d.mu.Lock()
	for i := range n {
		deps = append(deps, d.newMarker(e.sb.FragOffset(e.dataFrag(20+i)), int(e.sb.Fsize)))
	}
	d.mu.Unlock()
	e.host.onPush = func(k int) {
		if k <= n {
			e.block(e.dataFrag(20+k-1), int(e.sb.Fsize), byte(k))
		}
	}
	if err := d.Wait(deps...); err != nil {
		t.Fatalf("Wait for %d markers written one a round: %v", n, err)
	}
	if e.host.pushes < n {
		t.Fatalf("done after %d rounds, before the last marker could be written", e.host.pushes)
	}
}

// TestFsyncSkipsOperationInProgress: an fsync does not wait for an
// attribute area or a block pointer whose inode has not been written
// since (the operation making them still holds the inode), and waits for
// them once it has.
func TestFsyncSkipsOperationInProgress(t *testing.T) {
	e := newEnv(t)
	other := testIno + 1
	e.inode(other, &ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1})
	fsize := int(e.sb.Fsize)
	xp, dp := e.dataFrag(9), e.dataFrag(10)
	din := ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1}
	e.inode(testIno, &din)
	if err := e.d.Fsync(testIno); err != nil {
		t.Fatal(err)
	}
	// Both changes made, their blocks written, the inode not yet.
	fr := e.d.ExtArea(testIno, din.Extb, 0, [ondisk.NXaddr]ondisk.Frag{xp}, 100, []Fresh{{P: xp, Size: fsize, CgVer: e.host.alloc(0)}})
	if len(fr.Now) != 0 || fr.Deferred != 0 {
		t.Fatalf("a new attribute area frees %+v", fr)
	}
	e.d.NewBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: 0}, dp, fsize, e.host.alloc(0), false, -1)
	e.block(xp, fsize, 'a')
	e.block(dp, fsize, 'd')
	if err := e.d.Fsync(other); err != nil {
		t.Fatalf("fsync of another inode while an operation is in progress: %v", err)
	}
	if got := e.disk(testIno); got.Extb[0] != 0 || got.Db[0] != 0 {
		t.Fatalf("the inode's unwritten changes reached the disk: extb %d db %d", got.Extb[0], got.Db[0])
	}
	din.Extb[0], din.Extsize, din.Db[0], din.Size, din.Blocks = xp, 100, dp, 10, 2
	e.inode(testIno, &din)
	if err := e.d.Fsync(other); err != nil {
		t.Fatal(err)
	}
	if got := e.disk(testIno); got.Extb[0] != xp || got.Extsize != 100 || got.Db[0] != dp || got.Size != 10 {
		t.Fatalf("once the operation wrote its inode, an fsync of another inode left extb %d extsize %d db %d size %d on disk",
			got.Extb[0], got.Extsize, got.Db[0], got.Size)
	}
}

// TestDirectoryHasNoHole: a directory growing past its direct blocks (a
// new tree through ReplaceTree) while its last direct block is not on
// disk yet is written without the tree and with its size cut to the
// blocks that are there, never with a hole fsck_ffs calls damage.
func TestDirectoryHasNoHole(t *testing.T) {
	e := newEnv(t)
	bsize := int(e.sb.Bsize)
	din := ondisk.Dinode{Mode: ondisk.IFDIR | 0o755, Nlink: 2}
	for i := range ondisk.NDaddr - 1 {
		din.Db[i] = e.dataFrag(i)
	}
	din.Size = uint64((ondisk.NDaddr - 1) * bsize)
	e.inode(testIno, &din)
	e.round()

	// Block 11, never written (its buffer is not made), then a new
	// tree for block 12 whose blocks are written.
	last := e.dataFrag(ondisk.NDaddr - 1)
	e.d.NewBlock(Slot{Ino: testIno, Kind: SlotDirect, Index: ondisk.NDaddr - 1}, last, bsize, e.host.alloc(0), false, -1)
	din.Db[ondisk.NDaddr-1] = last
	din.Size = uint64(ondisk.NDaddr * bsize)
	top, data := e.dataFrag(ondisk.NDaddr), e.dataFrag(ondisk.NDaddr+1)
	e.d.ReplaceTree(Slot{Ino: testIno, Kind: SlotIndirect, Index: 0}, nil,
		[]Fresh{{P: top, Size: bsize, CgVer: e.host.alloc(0)}, {P: data, Size: bsize, CgVer: e.host.alloc(0)}},
		int64(din.Size))
	din.Ib[0] = top
	din.Size = uint64((ondisk.NDaddr + 1) * bsize)
	e.inode(testIno, &din)
	e.block(top, bsize, 0)
	e.block(data, bsize, 0)
	for round := range 3 {
		e.round()
		got := e.disk(testIno)
		if got.Ib[0] != 0 || got.Db[ondisk.NDaddr-1] != 0 || got.Size != uint64((ondisk.NDaddr-1)*bsize) {
			t.Fatalf("round %d: db[11] %d ib[0] %d size %d; want both rolled back and size %d",
				round, got.Db[ondisk.NDaddr-1], got.Ib[0], got.Size, (ondisk.NDaddr-1)*bsize)
		}
	}
	// Once block 11 is written, everything goes.
	e.block(last, bsize, 0)
	e.round()
	e.round()
	if got := e.disk(testIno); got.Ib[0] != top || got.Db[ondisk.NDaddr-1] != last || got.Size != din.Size {
		t.Fatalf("at the end: db[11] %d ib[0] %d size %d; want %d %d %d", got.Db[ondisk.NDaddr-1], got.Ib[0], got.Size, last, top, din.Size)
	}
}

// isDone reports whether dep is satisfied, without running rounds.
func (e *env) isDone(dep Dep) bool {
	e.d.mu.Lock()
	defer e.d.mu.Unlock()
	return dep.done(e.d)
}

// TestEntryWaitsForDirectory: an entry is durable only once the
// directory on disk holds it: the pointer to a new directory block, and
// the size over a new chunk, durable first (else a rename could remove the
// old name of a file whose new one is not on disk yet).
func TestEntryWaitsForDirectory(t *testing.T) {
	e := newEnv(t)
	dirIno := testIno + 1
	file := ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1}
	e.inode(testIno, &file)
	e.round()
	e.round()

	// A new block: its entry waits for the pointer.
	dirp := e.dataFrag(5)
	e.d.NewBlock(Slot{Ino: dirIno, Kind: SlotDirect, Index: 0}, dirp, int(e.sb.Fsize), e.host.alloc(0), false, -1)
	dir := ondisk.Dinode{Mode: ondisk.IFDIR | 0o755, Nlink: 2, Size: ondisk.DirBlkSize, Blocks: 1}
	dir.Db[0] = dirp
	e.inode(dirIno, &dir)
	var added Dep
	b := e.dirBlock(dirp, []ondisk.Direct{
		{Ino: dirIno, Type: ondisk.DTDir, Name: []byte(".")},
		{Ino: 2, Type: ondisk.DTDir, Name: []byte("..")},
		{Ino: testIno, Type: ondisk.DTReg, Name: []byte("file")},
	}, func(b *bcache.Buf, d ondisk.Direct) {
		if d.Ino == testIno {
			added = e.d.DirAdd(b, Entry{Dir: dirIno, Name: "file", Ino: testIno, Type: ondisk.DTReg})
		}
	})
	defer e.cache.Release(b)
	e.round()
	if got := e.entryIno(dirp, "file"); got != testIno {
		t.Fatalf("entry not written as it is: d_ino %d", got)
	}
	if got := e.disk(dirIno); got.Db[0] != 0 {
		t.Fatalf("pointer to the block written before the block was durable")
	}
	if e.isDone(added) {
		t.Fatal("entry counts as durable while its block's pointer is not on disk")
	}
	if err := e.d.Wait(added); err != nil {
		t.Fatal(err)
	}
	if got := e.disk(dirIno); got.Db[0] != dirp {
		t.Fatalf("after Wait: db[0] %d, want %d", got.Db[0], dirp)
	}

	// A new chunk in a block on disk: its entry waits for the size.
	dir2 := dirIno + 1
	p2 := e.dataFrag(8)
	blk, err := e.cache.GetNoRead(e.sb.FragOffset(p2), int(e.sb.Bsize))
	if err != nil {
		t.Fatal(err)
	}
	defer e.cache.Release(blk)
	blk.Lock()
	for c := 0; c < len(blk.Data()); c += ondisk.DirBlkSize {
		d := ondisk.Direct{Reclen: ondisk.DirBlkSize}
		if c == 0 {
			d = ondisk.Direct{Ino: dir2, Type: ondisk.DTDir, Name: []byte("."), Reclen: ondisk.DirBlkSize}
		}
		if err := d.Encode(blk.Data()[c:]); err != nil {
			t.Fatal(err)
		}
	}
	_ = e.cache.MarkDirty(blk)
	blk.Unlock()
	dir = ondisk.Dinode{Mode: ondisk.IFDIR | 0o755, Nlink: 2, Size: ondisk.DirBlkSize, Blocks: 8}
	dir.Db[0] = p2
	e.inode(dir2, &dir)
	e.round()
	e.round()
	blk.Lock()
	d := ondisk.Direct{Ino: testIno, Type: ondisk.DTReg, Name: []byte("again"), Reclen: ondisk.DirBlkSize}
	if err := d.Encode(blk.Data()[ondisk.DirBlkSize:]); err != nil {
		t.Fatal(err)
	}
	_ = e.cache.MarkDirty(blk)
	again := e.d.DirAdd(blk, Entry{Dir: dir2, Name: "again", Ino: testIno, Type: ondisk.DTReg, NewChunk: true})
	blk.Unlock()
	e.round()
	e.round()
	if e.isDone(again) {
		t.Fatal("entry in a new chunk counts as durable before the directory's size")
	}
	dir.Size = 2 * ondisk.DirBlkSize
	e.inode(dir2, &dir)
	if err := e.d.Wait(again); err != nil {
		t.Fatal(err)
	}
	if got := e.disk(dir2); got.Size != 2*ondisk.DirBlkSize {
		t.Fatalf("after Wait: size %d", got.Size)
	}

	// A paired entry in a new chunk cannot be paired: a removal written
	// with it would show before it.
	blk.Lock()
	d = ondisk.Direct{Ino: testIno, Type: ondisk.DTReg, Name: []byte("paired"), Reclen: ondisk.DirBlkSize}
	if err := d.Encode(blk.Data()[2*ondisk.DirBlkSize:]); err != nil {
		t.Fatal(err)
	}
	_ = e.cache.MarkDirty(blk)
	paired := e.d.DirAdd(blk, Entry{Dir: dir2, Name: "paired", Ino: testIno, Type: ondisk.DTReg, NewChunk: true, Paired: true})
	blk.Unlock()
	if e.d.Pairable(paired) {
		t.Fatal("an entry in a new chunk is pairable before the directory's size is durable")
	}
	dir.Size = 3 * ondisk.DirBlkSize
	e.inode(dir2, &dir)
	e.round()
	e.round()
	if !e.d.Pairable(paired) {
		t.Fatal("not pairable once the directory's size is durable")
	}
}

// TestReplacedPointerStillWaited: a pointer cancelled because its slot
// changed again before reaching the disk (a tail moved) hands what waited
// for it to the pointer that took its place: here the entry of a new
// directory waits for the directory's first block wherever it moved.
func TestReplacedPointerStillWaited(t *testing.T) {
	e := newEnv(t)
	sub := testIno + 2
	fsize := int(e.sb.Fsize)
	first, moved := e.dataFrag(10), e.dataFrag(11)
	e.d.NewBlock(Slot{Ino: sub, Kind: SlotDirect, Index: 0}, first, fsize, e.host.alloc(0), false, -1)
	din := ondisk.Dinode{Mode: ondisk.IFDIR | 0o755, Nlink: 2, Size: ondisk.DirBlkSize, Blocks: 1}
	din.Db[0] = first
	e.inode(sub, &din)
	parentp := e.dataFrag(12)
	var added Dep
	b := e.dirBlock(parentp, []ondisk.Direct{
		{Ino: 2, Type: ondisk.DTDir, Name: []byte(".")},
		{Ino: 2, Type: ondisk.DTDir, Name: []byte("..")},
		{Ino: sub, Type: ondisk.DTDir, Name: []byte("sub")},
	}, func(b *bcache.Buf, d ondisk.Direct) {
		if d.Ino == sub {
			added = e.d.DirAdd(b, Entry{Dir: 2, Name: "sub", Ino: sub, Type: ondisk.DTDir, Mkdir: true})
		}
	})
	defer e.cache.Release(b)
	// The tail moves before anything was written; its new place is
	// never written here.
	e.d.MoveBlock(Slot{Ino: sub, Kind: SlotDirect, Index: 0}, first, fsize, moved, 2*fsize, e.host.alloc(0))
	din.Db[0], din.Size, din.Blocks = moved, 2*ondisk.DirBlkSize, 2
	e.inode(sub, &din)
	for range 3 {
		e.round()
	}
	if got := e.entryIno(parentp, "sub"); got != 0 {
		t.Fatalf("entry of the new directory on disk (d_ino %d) before its first block", got)
	}
	if e.isDone(added) {
		t.Fatal("entry done before the directory's block")
	}
}
