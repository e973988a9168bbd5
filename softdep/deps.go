package softdep

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
)

// Sentinel errors.
var (
	// ErrStuck: rounds of writes and flushes did not make what was waited
	// for durable (a dependency that cannot be satisfied: a bug).
	ErrStuck = errors.New("softdep: dependencies do not converge")
	// ErrClosed: the Deps was stopped.
	ErrClosed = errors.New("softdep: stopped")
)

// Extent is a run of fragments.
type Extent struct {
	P    ondisk.Frag
	Size int64 // bytes
}

// Host is what the engine provides.
type Host interface {
	// PushGroups copies every changed cylinder group into its buffer in
	// the cache (calling CgPushed for each, under the buffer's lock).
	PushGroups() error
	// FreeBlock and FreeInode give back to the allocator what a deferred
	// free held; AddPending adjusts fs_pendingblocks (in DEV_BSIZE
	// sectors) and fs_pendinginodes.
	FreeBlock(p ondisk.Frag, size int, ino ondisk.Ino) error
	FreeInode(ino ondisk.Ino, mode uint16) error
	AddPending(sectors int64, inodes int32)
	// Unlinked tells the engine that the removals of inode ino's names
	// are durable (it asked with Deps.Unlinked): it may free it now. It
	// returns false when it could not look at the inode now (busy); the
	// call is then repeated at the next RunCallbacks.
	Unlinked(ino ondisk.Ino) bool
	// BeforeRound runs before each round, with no lock of soft updates
	// held: what a round's writes wait for that the write hooks could not
	// do themselves (snapshots' copies of old contents).
	BeforeRound()
}

// Syncer is the device flush (blockdev.Device.Sync).
type Syncer interface{ Sync() error }

// Options configure a Deps.
type Options struct {
	// Interval between the syncer's rounds; 0 means DefaultInterval.
	Interval time.Duration
	// MaxRounds bounds the rounds in a row without progress that Fsync,
	// Sync and Wait run, and the rounds Drain runs, before they give up
	// with ErrStuck; 0 means DefaultMaxRounds.
	MaxRounds int
	// Logger receives errors of background rounds; nil discards.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultInterval  = time.Second
	DefaultMaxRounds = 64
)

// state is the life of an item.
type state uint8

const (
	pending   state = iota // not written yet (rolled back in every write)
	writing                // in a write not yet completed
	written                // in a completed write, not yet flushed
	durable                // on stable storage
	cancelled              // no longer needed
)

// base is what every item has.
type base struct {
	seq uint64
	st  state
	gen uint64 // written: the flush that makes it durable must be numbered above gen
}

func (b *base) finished() bool { return b.st == durable || b.st == cancelled }

// Dep is something that becomes true once, when something reaches stable
// storage.
type Dep interface {
	done(d *Deps) bool
}

// marker is satisfied by the first write of the buffer at off (of at
// least size bytes) that begins after the marker is made.
type marker struct {
	base
	off  int64
	size int
}

func (m *marker) done(*Deps) bool { return m.finished() }

// cgDep: cylinder group c durable with its contents at version ver or
// later (Host's numbering, see CgPushed).
type cgDep struct {
	c   ondisk.Cg
	ver uint64
}

func (c cgDep) done(d *Deps) bool { return d.cgState(c.c).durable >= c.ver }

// inoDep: the inode written, not zeroed, at version ver or later.
type inoDep struct {
	st  *inodeState
	ver uint64
}

func (i inoDep) done(*Deps) bool { return i.st.durableVer >= i.ver }

// allDone reports whether every dep is done.
func (d *Deps) allDone(deps []Dep) bool {
	for _, x := range deps {
		if !x.done(d) {
			return false
		}
	}
	return true
}

// cgState tracks one cylinder group's buffer.
type cgState struct {
	pushed  uint64 // version in the buffer (CgPushed)
	durable uint64 // version durable
	// inits are blocks of inodes initialised for the group whose zeroed
	// inodes are not yet durable: until they are, the group is written
	// with cg_initediblk below them.
	inits []cgInit
}

// cgInit is one block of inodes claimed by raising cg_initediblk from
// from.
type cgInit struct {
	from uint32
	m    *marker
}

// InodesInitialised records that buffer b now holds a block of zeroed
// inodes of group c, which the group is about to claim by raising
// cg_initediblk from from: the group is written with cg_initediblk at
// most from until b is durable (FreeBSD orders this with a barrier write).
// Call it before the allocator raises cg_initediblk.
func (d *Deps) InodesInitialised(c ondisk.Cg, from uint32, b *bcache.Buf) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := d.cgState(c)
	cs.inits = append(cs.inits, cgInit{from: from, m: d.newMarker(b.Off(), b.Size())})
}

// rollCg lowers cg_initediblk in a write of group c's buffer below the
// inode blocks not yet durable. It reports whether it did. Preconditions:
// d.mu.
func (d *Deps) rollCg(c ondisk.Cg, cs *cgState, data []byte, out *[]byte) bool {
	keep := cs.inits[:0]
	low := ^uint32(0)
	for _, in := range cs.inits {
		if in.m.finished() {
			continue
		}
		keep = append(keep, in)
		low = min(low, in.from)
	}
	clear(cs.inits[len(keep):])
	cs.inits = keep
	if len(keep) == 0 {
		return false
	}
	if *out == nil {
		*out = append([]byte(nil), data...)
	}
	cg, err := ondisk.DecodeCg(d.sb, c, *out)
	if err != nil {
		d.log.Error("softdep: undecodable cylinder group in its buffer", "cg", c, "err", err)
		return true
	}
	if cg.Initediblk > low {
		cg.Initediblk = low
		cg.Sync()
	}
	return true
}

// bufDeps is what lives in one buffer (by disk offset).
type bufDeps struct {
	inodes  []*inodeState
	allocs  []*allocItem // pointers in this indirect block
	adds    []*dirAdd
	rems    []*dirRem
	markers []*marker
}

func (b *bufDeps) empty() bool {
	return len(b.inodes) == 0 && len(b.allocs) == 0 && len(b.adds) == 0 && len(b.rems) == 0 && len(b.markers) == 0
}

// inoWrite is one inode as a write carried it.
type inoWrite struct {
	st     *inodeState
	ver    uint64
	size   uint64
	zeroed bool
}

// writeRec is one buffer write in progress or completed.
type writeRec struct {
	markers []*marker
	allocs  []*allocItem
	exts    []*extItem
	adds    []*dirAdd
	rems    []*dirRem
	inodes  []inoWrite
	cg      *cgState
	cgVer   uint64
	gen     uint64
	rolled  bool
}

// items is every item of a write, for state changes.
func (r *writeRec) each(fn func(*base)) {
	for _, m := range r.markers {
		fn(&m.base)
	}
	for _, a := range r.allocs {
		fn(&a.base)
	}
	for _, e := range r.exts {
		fn(&e.base)
	}
	for _, a := range r.adds {
		fn(&a.base)
	}
	for _, x := range r.rems {
		fn(&x.base)
	}
}

// freeWork is a deferred free.
type freeWork struct {
	base
	ino     ondisk.Ino
	blocks  []Extent
	inode   bool // free inode ino (mode)
	mode    uint16
	deps    []Dep
	parent  *inodeState // a link ("..") to release when done
	sectors int64
}

// Stats counts what soft updates did.
type Stats struct {
	Rounds, Flushes      int64
	Writes, RolledBack   int64 // buffer writes seen, and those with something rolled back
	FreedNow, FreedLater int64 // frees done at once, and deferred ones done
	Items, Frees, Inodes int   // live now
	Callback             int64 // Host.Unlinked calls
}

// Deps is the soft-updates state of one filesystem.
type Deps struct {
	sb    *ondisk.Superblock // geometry only
	cache *bcache.Cache
	dev   Syncer
	host  Host
	log   *slog.Logger
	opts  Options
	cgOff map[int64]ondisk.Cg // cylinder-group buffer offsets

	roundMu sync.Mutex // one round at a time
	// roundsBegun numbers the rounds as they begin; roundsDone is the
	// number of the last one ended (rounds run one at a time). Guarded by
	// mu.
	roundsBegun, roundsDone uint64
	cbMu                    sync.Mutex // one run of the callbacks at a time

	// mu protects everything below and every item, inode state and
	// buffer record. Never held across I/O or a Host call.
	mu       sync.Mutex
	seq      uint64
	flushGen uint64 // number of the next flush to begin
	bufs     map[int64]*bufDeps
	inodes   map[ondisk.Ino]*inodeState
	cgs      map[ondisk.Cg]*cgState
	bySlot   map[Slot]*allocItem        // the newest item of each slot
	byBlock  map[ondisk.Frag]*allocItem // the newest item of each new block
	indirs   map[ondisk.Frag]*indirInfo
	inflight map[*bcache.Buf]*writeRec
	written  []*writeRec
	frees    []*freeWork
	remsLive []*dirRem
	// addsVisible are entries written but not yet in the directory on
	// disk (dirAdd.visible), still live.
	addsVisible []*dirAdd
	holds       []*hold
	live        map[uint64]liveEntry // unfinished items, by seq
	callbacks   []ondisk.Ino
	stats       Stats
	stopped     bool
	stop, kick  chan struct{}
	wg          sync.WaitGroup
}

var _ bcache.Hooks = (*Deps)(nil)

// New returns the soft-updates state for the filesystem sb describes,
// whose buffers are in cache, flushed through dev. The caller installs it
// as (part of) the cache's write hooks (bcache.Cache.SetHooks, in the
// engine's bcache.Chain) before any buffer is written.
func New(sb *ondisk.Superblock, cache *bcache.Cache, dev Syncer, host Host, opts Options) *Deps {
	d := &Deps{
		sb: sb, cache: cache, dev: dev, host: host, opts: opts, log: opts.Logger,
		cgOff:    map[int64]ondisk.Cg{},
		bufs:     map[int64]*bufDeps{},
		inodes:   map[ondisk.Ino]*inodeState{},
		cgs:      map[ondisk.Cg]*cgState{},
		bySlot:   map[Slot]*allocItem{},
		byBlock:  map[ondisk.Frag]*allocItem{},
		indirs:   map[ondisk.Frag]*indirInfo{},
		inflight: map[*bcache.Buf]*writeRec{},
		live:     map[uint64]liveEntry{},
		flushGen: 1,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.opts.Interval <= 0 {
		d.opts.Interval = DefaultInterval
	}
	if d.opts.MaxRounds <= 0 {
		d.opts.MaxRounds = DefaultMaxRounds
	}
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		d.cgOff[sb.FragOffset(sb.Cgtod(c))] = c
	}
	return d
}

func (d *Deps) nextSeq() uint64 {
	d.seq++
	return d.seq
}

func (d *Deps) buf(off int64) *bufDeps {
	b := d.bufs[off]
	if b == nil {
		b = &bufDeps{}
		d.bufs[off] = b
	}
	return b
}

func (d *Deps) cgState(c ondisk.Cg) *cgState {
	s := d.cgs[c]
	if s == nil {
		s = &cgState{}
		d.cgs[c] = s
	}
	return s
}

// CgPushed records that the buffer of cylinder group c now holds the
// group at version ver (the Host's count of changes to it: an allocation
// made at version v is in every push of version v or later). Call it with
// the buffer's lock held, after copying the group in.
func (d *Deps) CgPushed(c ondisk.Cg, ver uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.cgState(c)
	if ver > s.pushed {
		s.pushed = ver
	}
}

// newMarker makes a marker for the buffer at off. Preconditions: d.mu.
func (d *Deps) newMarker(off int64, size int) *marker {
	m := &marker{base: base{seq: d.nextSeq()}, off: off, size: size}
	bd := d.buf(off)
	bd.markers = append(bd.markers, m)
	return m
}

// Marker returns a Dep satisfied once a write of b that begins after now
// is durable. The caller has made the change to wait for in b already,
// and calls this with b's exclusive lock still held and b dirty (so that
// no write of the change can come before the marker, and one comes after).
func (d *Deps) Marker(b *bcache.Buf) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.newMarker(b.Off(), b.Size())
}

// InodeWritten returns a Dep satisfied once inode ino, as it is now, is
// durable.
func (d *Deps) InodeWritten(ino ondisk.Ino) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inode(ino)
	return inoDep{st, st.ver}
}

// Stats returns the counters.
func (d *Deps) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Items = len(d.live)
	s.Frees = len(d.frees)
	s.Inodes = len(d.inodes)
	return s
}

// CopyOnWrite implements bcache.Hooks (snapshots hook there).
func (d *Deps) CopyOnWrite(*bcache.Buf) error { return nil }

// liveEntry is an unfinished item: fsync says whether Fsync waits for it
// (pointers, attribute areas, entries; not removals and frees).
type liveEntry struct {
	b     *base
	fsync bool
	item  *allocItem // when it is a block pointer
	ext   *extItem   // when it is an attribute area
	add   *dirAdd    // when it is a directory entry (done, not finished, counts)
}

// inProgress reports whether e is a block pointer or an attribute area
// whose inode has not been updated since it was made: it belongs to an
// operation still holding that inode.
func (e liveEntry) inProgress() bool {
	return e.item != nil && e.item.minVer > e.item.owner.ver || e.ext != nil && e.ext.minVer > e.ext.owner.ver
}

// errorf wraps an error with the package's prefix.
func errorf(format string, args ...any) error { return fmt.Errorf("softdep: "+format, args...) }
