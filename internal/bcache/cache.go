package bcache

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/ufs2/ufs2/internal/blockdev"
)

// Sentinel errors.
var (
	// ErrIO wraps a failed or short device read or write.
	ErrIO = errors.New("bcache: I/O error")
	// ErrReadOnly: MarkDirty on a cache opened read-only.
	ErrReadOnly = errors.New("bcache: cache is read-only")
	// ErrBadRequest: a negative offset, a size out of range, or a buffer
	// used after its last Release.
	ErrBadRequest = errors.New("bcache: bad request")
	// ErrDeferWrite: returned by Hooks.CopyOnWrite, the write is put off,
	// not failed: the buffer stays dirty and FlushBuf returns nil (a
	// snapshot's copy of the old contents must be made first, outside the
	// write).
	ErrDeferWrite = errors.New("bcache: write deferred")
)

// MaxBufSize is the largest buffer the cache hands out (MAXBSIZE).
const MaxBufSize = 1 << 16

// Device is what the cache reads and writes: blockdev.Device satisfies it,
// and tests use fakes.
type Device interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
}

// Hooks lets higher layers take part in writes (see the package
// documentation for when each is called). Any method may be a no-op;
// NopHooks implements all three as such.
type Hooks interface {
	// CopyOnWrite is called before b's contents overwrite what is on the
	// device at b.Off(); an error cancels the write (b stays dirty).
	CopyOnWrite(b *Buf) error
	// BeforeWrite returns the bytes to write: b.Data() itself or a copy of
	// the same length with unsafe parts rolled back.
	BeforeWrite(b *Buf) []byte
	// AfterWrite is called after every write BeforeWrite began, with the
	// write's error: nil once the bytes BeforeWrite returned are on the
	// device (not necessarily on stable storage: Flush syncs after). It
	// returns whether b must stay dirty even though it was written (a
	// write with parts rolled back must be made again later).
	AfterWrite(b *Buf, err error) (keepDirty bool)
}

// NopHooks does nothing: it writes the buffer as it is.
type NopHooks struct{}

func (NopHooks) CopyOnWrite(*Buf) error      { return nil }
func (NopHooks) BeforeWrite(b *Buf) []byte   { return b.data }
func (NopHooks) AfterWrite(*Buf, error) bool { return false }

// Options configures a Cache.
type Options struct {
	// MaxBytes bounds the bytes held by clean, unreferenced buffers; 0
	// means DefaultMaxBytes.
	MaxBytes int64
	// ReadOnly makes MarkDirty fail with ErrReadOnly.
	ReadOnly bool
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// DefaultMaxBytes is the cache size when Options.MaxBytes is 0.
const DefaultMaxBytes = 32 << 20

type key struct {
	off  int64
	size int
}

// Cache is a buffer cache over one device. It is safe for concurrent use.
type Cache struct {
	dev Device
	ro  bool
	max int64
	log *slog.Logger

	// mu protects everything below and the fields of every Buf marked
	// "guarded by Cache.mu". Never held across I/O or hook calls.
	mu         sync.Mutex
	hooks      Hooks
	bufs       map[key]*Buf
	lru        *list.List // clean buffers with refs == 0, most recently released first
	cleanBytes int64      // bytes of the buffers on lru
	dirtyBytes int64
	totalBytes int64
	stats      Stats
}

// Stats counts cache activity.
type Stats struct {
	Hits, Misses, Evictions, Writes int64
	KeptDirty                       int64 // writes after which AfterWrite kept the buffer dirty
	Deferred                        int64 // writes CopyOnWrite put off (ErrDeferWrite)
	Buffers                         int   // buffers in the map
	Bytes, DirtyBytes, CleanBytes   int64 // bytes held, dirty, on the LRU
}

// Buf is one cached disk range.
type Buf struct {
	c   *Cache
	key key

	// ready is closed when data holds the device contents (or err is
	// set); until then only the goroutine that created the Buf touches
	// data and err.
	ready chan struct{}
	err   error

	// mu is the contents lock: RLock to read Data, Lock to change it.
	mu   sync.RWMutex
	data []byte

	// wmu is held across one write of the buffer (the hooks and the
	// device write), so that two writes of it never overlap: the device
	// always ends up with the bytes of the last write begun, and the
	// hooks see writes one at a time. Taken before mu.
	wmu sync.Mutex

	// Guarded by Cache.mu.
	refs     int
	dirty    bool
	dirtyGen uint64        // bumped by each MarkDirty
	elem     *list.Element // on Cache.lru when clean and unreferenced
	inMap    bool
	invalid  bool // dropped at its last Release, whatever its state
}

// New returns a cache over dev.
func New(dev Device, opts Options) *Cache {
	c := &Cache{
		dev:  dev,
		ro:   opts.ReadOnly,
		max:  opts.MaxBytes,
		log:  opts.Logger,
		bufs: make(map[key]*Buf),
		lru:  list.New(),
	}
	if c.max <= 0 {
		c.max = DefaultMaxBytes
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.hooks = NopHooks{}
	return c
}

// SetHooks registers the write hooks (nil restores NopHooks). Call it
// before buffers are written.
func (c *Cache) SetHooks(h Hooks) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		h = NopHooks{}
	}
	c.hooks = h
}

// Off is the buffer's disk byte offset.
func (b *Buf) Off() int64 { return b.key.off }

// Size is the buffer's length in bytes.
func (b *Buf) Size() int { return b.key.size }

// Data is the buffer's contents. Hold RLock to read it, Lock to change it.
func (b *Buf) Data() []byte { return b.data }

// Lock takes the contents lock exclusively (to change Data).
func (b *Buf) Lock() { b.mu.Lock() }

// Unlock releases Lock.
func (b *Buf) Unlock() { b.mu.Unlock() }

// RLock takes the contents lock shared (to read Data).
func (b *Buf) RLock() { b.mu.RLock() }

// RUnlock releases RLock.
func (b *Buf) RUnlock() { b.mu.RUnlock() }

// TryRLock takes the shared lock if nobody holds the exclusive one, and
// reports whether it did (for diagnostics that must not wait).
func (b *Buf) TryRLock() bool { return b.mu.TryRLock() }

func checkRange(off int64, size int) error {
	if off < 0 || size <= 0 || size > MaxBufSize {
		return fmt.Errorf("%w: offset %d size %d", ErrBadRequest, off, size)
	}
	return nil
}

// Get returns the buffer for size bytes at off, reading it from the device
// if it is not cached. The caller must Release it.
func (c *Cache) Get(off int64, size int) (*Buf, error) { return c.get(off, size, true) }

// GetNoRead is Get for a range whose old contents do not matter: a buffer
// not in the cache comes back zero-filled without reading the device.
func (c *Cache) GetNoRead(off int64, size int) (*Buf, error) { return c.get(off, size, false) }

func (c *Cache) get(off int64, size int, read bool) (*Buf, error) {
	if err := checkRange(off, size); err != nil {
		return nil, err
	}
	k := key{off, size}
	c.mu.Lock()
	if b, ok := c.bufs[k]; ok {
		b.refs++
		if b.elem != nil {
			c.lru.Remove(b.elem)
			b.elem = nil
			c.cleanBytes -= int64(size)
		}
		c.stats.Hits++
		c.mu.Unlock()
		<-b.ready
		if b.err != nil {
			err := b.err
			c.Release(b)
			return nil, err
		}
		return b, nil
	}
	b := &Buf{c: c, key: k, ready: make(chan struct{}), refs: 1, inMap: true}
	c.bufs[k] = b
	c.totalBytes += int64(size)
	c.stats.Misses++
	c.evictLocked()
	c.mu.Unlock()

	b.data = make([]byte, size)
	if read {
		b.err = c.readFull(b.data, off)
	}
	if b.err != nil {
		// Leave the map so that a later Get retries the read; goroutines
		// already waiting see the error.
		c.mu.Lock()
		c.unmapLocked(b)
		c.mu.Unlock()
		close(b.ready)
		c.Release(b)
		return nil, fmt.Errorf("read %d bytes at %d: %w", size, off, b.err)
	}
	close(b.ready)
	return b, nil
}

func (c *Cache) readFull(p []byte, off int64) error {
	if err := blockdev.ReadFull(c.dev, p, off); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return nil
}

// Lookup returns the buffer for (off, size) if it is cached and its read
// finished, referenced (Release it), or nil. It never does I/O: the engine
// uses it to read file data straight from the device unless a newer copy
// is in the cache.
func (c *Cache) Lookup(off int64, size int) *Buf {
	c.mu.Lock()
	b, ok := c.bufs[key{off, size}]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	select {
	case <-b.ready:
	default:
		c.mu.Unlock()
		return nil
	}
	if b.err != nil {
		c.mu.Unlock()
		return nil
	}
	b.refs++
	if b.elem != nil {
		c.lru.Remove(b.elem)
		b.elem = nil
		c.cleanBytes -= int64(b.key.size)
	}
	c.stats.Hits++
	c.mu.Unlock()
	return b
}

// Release drops a reference taken by Get, GetNoRead or Lookup. A clean
// buffer whose last reference goes joins the LRU list (or is dropped if
// Invalidate was called); a dirty one stays until it is written.
func (c *Cache) Release(b *Buf) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.refs <= 0 {
		c.log.Error("bcache: release of unreferenced buffer", "off", b.key.off, "size", b.key.size)
		return
	}
	b.refs--
	if b.refs > 0 {
		return
	}
	if b.invalid {
		if b.dirty {
			b.dirty = false
			c.dirtyBytes -= int64(b.key.size)
		}
		c.unmapLocked(b)
		return
	}
	if !b.inMap || b.dirty {
		return
	}
	b.elem = c.lru.PushFront(b)
	c.cleanBytes += int64(b.key.size)
	c.evictLocked()
}

// Invalidate marks a referenced buffer to be dropped at its last Release
// without being written, dirty or not: the write half calls it for a block
// it has freed. The buffer leaves the map at once, so a Get of the same
// range that follows (the block reallocated) makes a new buffer even while
// others (a Flush in progress) still hold references to the old one. The
// caller must hold a reference.
func (c *Cache) Invalidate(b *Buf) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b.invalid = true
	c.unmapLocked(b)
}

// unmapLocked removes b from the map and the LRU list.
// Preconditions: c.mu held.
func (c *Cache) unmapLocked(b *Buf) {
	if !b.inMap {
		return
	}
	if b.elem != nil {
		c.lru.Remove(b.elem)
		b.elem = nil
		c.cleanBytes -= int64(b.key.size)
	}
	if c.bufs[b.key] == b {
		delete(c.bufs, b.key)
	}
	b.inMap = false
	c.totalBytes -= int64(b.key.size)
}

// evictLocked drops least recently used clean buffers while the cache holds
// more than its budget.
// Preconditions: c.mu held.
func (c *Cache) evictLocked() {
	for c.totalBytes-c.dirtyBytes > c.max {
		e := c.lru.Back()
		if e == nil {
			return
		}
		b := e.Value.(*Buf)
		c.unmapLocked(b)
		c.stats.Evictions++
	}
}

// MarkDirty records that b's contents changed and must be written. Call it
// with b's exclusive lock held, after the change.
func (c *Cache) MarkDirty(b *Buf) error {
	if c.ro {
		return fmt.Errorf("%w: buffer at %d", ErrReadOnly, b.key.off)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.refs <= 0 || !b.inMap {
		return fmt.Errorf("%w: MarkDirty of a released buffer at %d", ErrBadRequest, b.key.off)
	}
	b.dirtyGen++
	if !b.dirty {
		b.dirty = true
		c.dirtyBytes += int64(b.key.size)
	}
	return nil
}

// Dirty reports whether b has changes not yet written.
func (c *Cache) Dirty(b *Buf) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.dirty
}

// FlushBuf writes b if it is dirty: CopyOnWrite, BeforeWrite, the device
// write, AfterWrite. The caller holds a reference and not b's exclusive
// lock. It does not sync the device. Writes of one buffer never overlap:
// a FlushBuf waits for another one of the same buffer to finish.
func (c *Cache) FlushBuf(b *Buf) error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.RLock()
	defer b.mu.RUnlock()
	c.mu.Lock()
	if !b.dirty || b.invalid {
		c.mu.Unlock()
		return nil
	}
	gen := b.dirtyGen
	h := c.hooks
	c.mu.Unlock()

	if err := h.CopyOnWrite(b); err != nil {
		if errors.Is(err, ErrDeferWrite) {
			c.mu.Lock()
			c.stats.Deferred++
			c.mu.Unlock()
			return nil // stays dirty, for a later flush
		}
		return fmt.Errorf("buffer at %d: copy-on-write: %w", b.key.off, err)
	}
	out := h.BeforeWrite(b)
	if len(out) != b.key.size {
		err := fmt.Errorf("%w: BeforeWrite returned %d bytes for a %d-byte buffer at %d", ErrBadRequest, len(out), b.key.size, b.key.off)
		h.AfterWrite(b, err)
		return err
	}
	n, err := c.dev.WriteAt(out, b.key.off)
	if err == nil && n != len(out) {
		err = io.ErrShortWrite
	}
	if err != nil {
		err = fmt.Errorf("%w: write %d bytes at %d: %w", ErrIO, len(out), b.key.off, err)
		h.AfterWrite(b, err)
		return err
	}
	keep := h.AfterWrite(b, nil)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Writes++
	if keep {
		c.stats.KeptDirty++
	}
	if !keep && b.dirty && b.dirtyGen == gen {
		b.dirty = false
		c.dirtyBytes -= int64(b.key.size)
		if b.refs == 0 && b.inMap {
			b.elem = c.lru.PushFront(b)
			c.cleanBytes += int64(b.key.size)
			c.evictLocked()
		}
	}
	return nil
}

// Flush writes every dirty buffer in ascending offset order, then syncs the
// device. It returns the first error after trying every buffer.
func (c *Cache) Flush() error {
	first := c.WriteDirty()
	if c.ro {
		return first
	}
	if err := c.dev.Sync(); err != nil && first == nil {
		first = fmt.Errorf("%w: sync: %w", ErrIO, err)
	}
	return first
}

// WriteDirty writes every buffer dirty when it is called, in ascending
// offset order, without syncing the device (soft updates sync on their
// own schedule). It returns the first error after trying every buffer.
func (c *Cache) WriteDirty() error {
	c.mu.Lock()
	var dirty []*Buf
	for _, b := range c.bufs {
		if b.dirty {
			b.refs++
			dirty = append(dirty, b)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(dirty, func(x, y *Buf) int {
		return cmp.Or(cmp.Compare(x.key.off, y.key.off), cmp.Compare(x.key.size, y.key.size))
	})
	var first error
	for _, b := range dirty {
		if err := c.FlushBuf(b); err != nil && first == nil {
			first = err
		}
		c.Release(b)
	}
	return first
}

// DirtyBytes is the number of bytes waiting to be written.
func (c *Cache) DirtyBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirtyBytes
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Buffers = len(c.bufs)
	s.Bytes = c.totalBytes
	s.DirtyBytes = c.dirtyBytes
	s.CleanBytes = c.cleanBytes
	return s
}
