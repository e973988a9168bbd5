package bcache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// fakeDev is an in-memory Device that counts and records I/O and can be
// told to fail.
type fakeDev struct {
	mu        sync.Mutex
	data      []byte
	reads     map[int64]int
	writes    []int64 // offsets, in order
	syncs     int
	failRead  bool
	failWrite bool
	inWrite   int // writes in progress (to catch overlapping writes)
	overlap   bool
	slow      time.Duration
}

func newFakeDev(size int) *fakeDev {
	d := &fakeDev{data: make([]byte, size), reads: map[int64]int{}}
	for i := range d.data {
		d.data[i] = byte(i / 512)
	}
	return d
}

func (d *fakeDev) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads[off]++
	if d.failRead {
		return 0, errors.New("injected read failure")
	}
	if off >= int64(len(d.data)) {
		return 0, io.EOF
	}
	n := copy(p, d.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *fakeDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	if d.failWrite {
		d.mu.Unlock()
		return 0, errors.New("injected write failure")
	}
	d.inWrite++
	if d.inWrite > 1 {
		d.overlap = true
	}
	slow := d.slow
	d.mu.Unlock()
	time.Sleep(slow)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inWrite--
	d.writes = append(d.writes, off)
	return copy(d.data[off:], p), nil
}

func (d *fakeDev) Sync() error { d.mu.Lock(); d.syncs++; d.mu.Unlock(); return nil }

func (d *fakeDev) at(off int64, n int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.data[off : off+int64(n)])
}

func (d *fakeDev) readCount(off int64) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads[off]
}

func TestGetReadsOnceAndHits(t *testing.T) {
	dev := newFakeDev(1 << 20)
	c := New(dev, Options{})
	for i := range 3 {
		b, err := c.Get(4096, 1024)
		if err != nil {
			t.Fatal(err)
		}
		b.RLock()
		if !bytes.Equal(b.Data(), dev.at(4096, 1024)) {
			t.Fatalf("get %d: wrong contents", i)
		}
		b.RUnlock()
		c.Release(b)
	}
	if n := dev.readCount(4096); n != 1 {
		t.Errorf("device reads = %d, want 1", n)
	}
	s := c.Stats()
	if s.Hits != 2 || s.Misses != 1 || s.Buffers != 1 || s.CleanBytes != 1024 {
		t.Errorf("stats = %v", s)
	}
	// The same offset with another size is another buffer.
	b, err := c.Get(4096, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(b)
	if n := dev.readCount(4096); n != 2 {
		t.Errorf("device reads = %d, want 2", n)
	}
}

func TestBadRequests(t *testing.T) {
	c := New(newFakeDev(1<<16), Options{})
	for _, tc := range []struct {
		off  int64
		size int
	}{{-1, 512}, {0, 0}, {0, -5}, {0, MaxBufSize + 1}} {
		if _, err := c.Get(tc.off, tc.size); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Get(%d, %d) = %v, want ErrBadRequest", tc.off, tc.size, err)
		}
	}
	// A read past the end of the device is an I/O error.
	if _, err := c.Get(1<<16-512, 1024); !errors.Is(err, ErrIO) {
		t.Errorf("short read: %v, want ErrIO", err)
	}
}

func TestEvictionRespectsBudgetRefsAndDirty(t *testing.T) {
	dev := newFakeDev(1 << 20)
	c := New(dev, Options{MaxBytes: 4 * 4096})
	held, err := c.Get(0, 4096) // stays referenced throughout
	if err != nil {
		t.Fatal(err)
	}
	dirty, err := c.Get(4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	dirty.Lock()
	dirty.Data()[0] = 0xEE
	if err := c.MarkDirty(dirty); err != nil {
		t.Fatal(err)
	}
	dirty.Unlock()
	c.Release(dirty)
	for i := int64(2); i < 40; i++ {
		b, err := c.Get(i*4096, 4096)
		if err != nil {
			t.Fatal(err)
		}
		c.Release(b)
		s := c.Stats()
		if s.Bytes-s.DirtyBytes > 4*4096 {
			t.Fatalf("after %d gets: %d clean bytes held, budget %d", i, s.Bytes-s.DirtyBytes, 4*4096)
		}
	}
	if c.Stats().Evictions == 0 {
		t.Fatal("nothing evicted")
	}
	// The referenced and the dirty buffer survived: getting them again
	// reads nothing.
	for _, off := range []int64{0, 4096} {
		b, err := c.Get(off, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if n := dev.readCount(off); n != 1 {
			t.Errorf("buffer at %d was re-read (%d reads)", off, n)
		}
		if off == 4096 && b.Data()[0] != 0xEE {
			t.Errorf("dirty buffer lost its change")
		}
		c.Release(b)
	}
	c.Release(held)
	// An evicted buffer is read again.
	b, err := c.Get(2*4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(b)
	if n := dev.readCount(2 * 4096); n != 2 {
		t.Errorf("evicted buffer reads = %d, want 2", n)
	}
}

func TestFlushWritesInOrderAndSyncs(t *testing.T) {
	dev := newFakeDev(1 << 20)
	c := New(dev, Options{})
	for _, off := range []int64{8192, 0, 4096} {
		b, err := c.Get(off, 1024)
		if err != nil {
			t.Fatal(err)
		}
		b.Lock()
		copy(b.Data(), fmt.Sprintf("buffer %d", off))
		if err := c.MarkDirty(b); err != nil {
			t.Fatal(err)
		}
		b.Unlock()
		c.Release(b)
	}
	if c.DirtyBytes() != 3*1024 {
		t.Fatalf("DirtyBytes = %d", c.DirtyBytes())
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(dev.writes), "[0 4096 8192]"; got != want {
		t.Errorf("write order %s, want %s", got, want)
	}
	if dev.syncs != 1 || c.DirtyBytes() != 0 {
		t.Errorf("syncs %d dirty %d", dev.syncs, c.DirtyBytes())
	}
	if got := string(dev.at(4096, 11)); got != "buffer 4096" {
		t.Errorf("device has %q", got)
	}
	// A second flush writes nothing.
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(dev.writes) != 3 {
		t.Errorf("clean buffers rewritten: %v", dev.writes)
	}
	// Flushed buffers are clean and evictable again.
	if s := c.Stats(); s.CleanBytes != 3*1024 {
		t.Errorf("clean bytes %d", s.CleanBytes)
	}
}

func TestFlushBufOne(t *testing.T) {
	dev := newFakeDev(1 << 16)
	c := New(dev, Options{})
	a, _ := c.Get(0, 512)
	b, _ := c.Get(512, 512)
	for _, x := range []*Buf{a, b} {
		x.Lock()
		x.Data()[0] = 0x77
		_ = c.MarkDirty(x)
		x.Unlock()
	}
	if err := c.FlushBuf(b); err != nil {
		t.Fatal(err)
	}
	if c.Dirty(b) || !c.Dirty(a) {
		t.Errorf("dirty after FlushBuf(b): a %v b %v", c.Dirty(a), c.Dirty(b))
	}
	if dev.at(512, 1)[0] != 0x77 || dev.at(0, 1)[0] == 0x77 {
		t.Error("FlushBuf wrote the wrong buffer")
	}
	c.Release(a)
	c.Release(b)
}

func TestReadOnly(t *testing.T) {
	c := New(newFakeDev(1<<16), Options{ReadOnly: true})
	b, err := c.Get(0, 512)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(b)
	if err := c.MarkDirty(b); !errors.Is(err, ErrReadOnly) {
		t.Errorf("MarkDirty = %v, want ErrReadOnly", err)
	}
}

func TestReadErrorIsNotCached(t *testing.T) {
	dev := newFakeDev(1 << 16)
	c := New(dev, Options{})
	dev.failRead = true
	if _, err := c.Get(0, 512); !errors.Is(err, ErrIO) {
		t.Fatalf("Get = %v, want ErrIO", err)
	}
	dev.failRead = false
	b, err := c.Get(0, 512)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	c.Release(b)
	if s := c.Stats(); s.Buffers != 1 || s.Bytes != 512 {
		t.Errorf("stats after failed and good read: %v", s)
	}
}

func TestGetNoReadLookupInvalidate(t *testing.T) {
	dev := newFakeDev(1 << 16)
	c := New(dev, Options{})
	if b := c.Lookup(1024, 512); b != nil {
		t.Fatal("Lookup found an uncached buffer")
	}
	b, err := c.GetNoRead(1024, 512)
	if err != nil {
		t.Fatal(err)
	}
	if dev.readCount(1024) != 0 {
		t.Error("GetNoRead read the device")
	}
	if !bytes.Equal(b.Data(), make([]byte, 512)) {
		t.Error("GetNoRead buffer not zeroed")
	}
	b.Lock()
	b.Data()[0] = 1
	_ = c.MarkDirty(b)
	b.Unlock()
	c.Release(b)
	l := c.Lookup(1024, 512)
	if l == nil || l.Data()[0] != 1 {
		t.Fatal("Lookup missed the cached buffer")
	}
	c.Invalidate(l)
	c.Release(l)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(dev.writes) != 0 {
		t.Errorf("invalidated dirty buffer written: %v", dev.writes)
	}
	if s := c.Stats(); s.Buffers != 0 || s.DirtyBytes != 0 || s.Bytes != 0 {
		t.Errorf("stats after invalidate: %v", s)
	}
}

// recHooks records hook calls; rollback makes BeforeWrite return a copy
// with the first byte replaced, failCOW makes CopyOnWrite fail.
type recHooks struct {
	dev      *fakeDev
	calls    []string
	oldSeen  map[int64][]byte // device contents seen by CopyOnWrite
	rollback bool
	failCOW  bool
	keep     bool    // AfterWrite keeps the buffer dirty
	errs     []error // errors AfterWrite saw
}

func (h *recHooks) CopyOnWrite(b *Buf) error {
	h.calls = append(h.calls, fmt.Sprintf("cow %d", b.Off()))
	if h.failCOW {
		return errors.New("snapshot full")
	}
	h.oldSeen[b.Off()] = h.dev.at(b.Off(), b.Size())
	return nil
}

func (h *recHooks) BeforeWrite(b *Buf) []byte {
	h.calls = append(h.calls, fmt.Sprintf("before %d", b.Off()))
	if !h.rollback {
		return b.Data()
	}
	out := bytes.Clone(b.Data())
	out[0] = 'R'
	return out
}

func (h *recHooks) AfterWrite(b *Buf, err error) bool {
	h.calls = append(h.calls, fmt.Sprintf("after %d", b.Off()))
	h.errs = append(h.errs, err)
	return h.keep
}

func TestHooks(t *testing.T) {
	tests := []struct {
		name              string
		rollback, failCOW bool
		keep              bool
		wantCalls         string
		wantDisk          string // first 4 bytes on the device after Flush
		wantDirty         bool
	}{
		{"plain", false, false, false, "[cow 512 before 512 after 512]", "NEW!", false},
		{"rollback", true, false, false, "[cow 512 before 512 after 512]", "REW!", false},
		{"rollback kept dirty", true, false, true, "[cow 512 before 512 after 512]", "REW!", true},
		{"cow fails", false, true, false, "[cow 512]", "\x01\x01\x01\x01", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := newFakeDev(1 << 16)
			h := &recHooks{dev: dev, oldSeen: map[int64][]byte{}, rollback: tc.rollback, failCOW: tc.failCOW, keep: tc.keep}
			c := New(dev, Options{})
			c.SetHooks(h)
			b, err := c.Get(512, 512)
			if err != nil {
				t.Fatal(err)
			}
			b.Lock()
			copy(b.Data(), "NEW!")
			_ = c.MarkDirty(b)
			b.Unlock()
			err = c.Flush()
			if tc.failCOW != (err != nil) {
				t.Fatalf("Flush = %v", err)
			}
			if got := fmt.Sprint(h.calls); got != tc.wantCalls {
				t.Errorf("calls %s, want %s", got, tc.wantCalls)
			}
			if got := string(dev.at(512, 4)); got != tc.wantDisk {
				t.Errorf("device has %q, want %q", got, tc.wantDisk)
			}
			if c.Dirty(b) != tc.wantDirty {
				t.Errorf("dirty = %v", c.Dirty(b))
			}
			if string(b.Data()[:4]) != "NEW!" {
				t.Errorf("buffer contents changed by the hooks: %q", b.Data()[:4])
			}
			if old, ok := h.oldSeen[512]; ok && old[0] != 1 {
				t.Errorf("CopyOnWrite saw %x, want the old contents", old[:4])
			}
			c.Release(b)
		})
	}
}

// TestConcurrent hammers one cache from many goroutines: readers check
// that a buffer's contents are never torn, writers bump counters and
// flushers write. Run with -race.
func TestConcurrent(t *testing.T) {
	dev := newFakeDev(1 << 20)
	for i := range dev.data {
		dev.data[i] = 0
	}
	c := New(dev, Options{MaxBytes: 8 * 1024})
	const workers, iters, nbufs = 8, 300, 32
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iters {
				off := int64((w*7+i*13)%nbufs) * 1024
				b, err := c.Get(off, 1024)
				if err != nil {
					errc <- err
					return
				}
				switch i % 3 {
				case 0: // write: every byte the same value
					b.Lock()
					v := b.Data()[0] + 1
					for j := range b.Data() {
						b.Data()[j] = v
					}
					err = c.MarkDirty(b)
					b.Unlock()
				case 1:
					b.RLock()
					for _, x := range b.Data() {
						if x != b.Data()[0] {
							err = fmt.Errorf("torn buffer at %d", off)
							break
						}
					}
					b.RUnlock()
				case 2:
					err = c.FlushBuf(b)
				}
				c.Release(b)
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.DirtyBytes != 0 {
		t.Errorf("dirty after flush: %v", s)
	}
	// Every block on the device is uniform (no torn writes).
	for off := 0; off < nbufs*1024; off += 1024 {
		blk := dev.at(int64(off), 1024)
		if !bytes.Equal(blk, bytes.Repeat(blk[:1], 1024)) {
			t.Fatalf("device block at %d torn", off)
		}
	}
}

// TestConcurrentMissReadsOnce: goroutines missing on the same key share
// one device read.
func TestConcurrentMissReadsOnce(t *testing.T) {
	dev := newFakeDev(1 << 16)
	c := New(dev, Options{})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			b, err := c.Get(2048, 2048)
			if err != nil {
				t.Error(err)
				return
			}
			c.Release(b)
		}()
	}
	close(start)
	wg.Wait()
	if n := dev.readCount(2048); n != 1 {
		t.Errorf("device reads = %d, want 1", n)
	}
}

// TestInvalidateThenGet: a buffer invalidated while another holder (a
// Flush) still references it must not be handed out again: a Get of the
// same range gets a fresh buffer, and the old one's contents never reach
// the device.
func TestInvalidateThenGet(t *testing.T) {
	dev := newFakeDev(1 << 16)
	c := New(dev, Options{})
	old, err := c.GetNoRead(4096, 1024)
	if err != nil {
		t.Fatal(err)
	}
	old.Lock()
	old.Data()[0] = 0xAA
	_ = c.MarkDirty(old)
	old.Unlock()
	other := c.Lookup(4096, 1024) // a second holder, as Flush would be
	if other != old {
		t.Fatal("Lookup did not find the buffer")
	}
	c.Invalidate(old)
	c.Release(old)
	fresh, err := c.GetNoRead(4096, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || fresh.Data()[0] != 0 {
		t.Fatal("Get after Invalidate returned the invalidated buffer")
	}
	fresh.Lock()
	fresh.Data()[0] = 0x55
	if err := c.MarkDirty(fresh); err != nil {
		t.Fatal(err)
	}
	fresh.Unlock()
	if err := c.MarkDirty(other); err == nil {
		t.Error("MarkDirty of an invalidated buffer succeeded")
	}
	if err := c.FlushBuf(other); err != nil {
		t.Fatal(err)
	}
	c.Release(other)
	c.Release(fresh)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := dev.at(4096, 1)[0]; got != 0x55 {
		t.Errorf("device byte 0x%x, want the fresh buffer's 0x55", got)
	}
	if s := c.Stats(); s.DirtyBytes != 0 || s.Buffers != 1 {
		t.Errorf("stats: %+v", s)
	}
}

// TestAfterWriteError: a failed write reaches AfterWrite with its error
// and leaves the buffer dirty.
func TestAfterWriteError(t *testing.T) {
	dev := newFakeDev(1 << 16)
	h := &recHooks{dev: dev, oldSeen: map[int64][]byte{}}
	c := New(dev, Options{})
	c.SetHooks(h)
	b, err := c.Get(1024, 512)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(b)
	b.Lock()
	copy(b.Data(), "data")
	_ = c.MarkDirty(b)
	b.Unlock()
	dev.failWrite = true
	if err := c.FlushBuf(b); !errors.Is(err, ErrIO) {
		t.Fatalf("FlushBuf = %v, want ErrIO", err)
	}
	if len(h.errs) != 1 || h.errs[0] == nil {
		t.Fatalf("AfterWrite errors %v, want one failure", h.errs)
	}
	if !c.Dirty(b) {
		t.Fatal("buffer clean after a failed write")
	}
	dev.failWrite = false
	if err := c.FlushBuf(b); err != nil {
		t.Fatal(err)
	}
	if len(h.errs) != 2 || h.errs[1] != nil || c.Dirty(b) {
		t.Fatalf("after the retry: errors %v, dirty %v", h.errs, c.Dirty(b))
	}
}

// TestWriteDirty writes every dirty buffer and does not sync; Flush does
// both.
func TestWriteDirty(t *testing.T) {
	dev := newFakeDev(1 << 16)
	c := New(dev, Options{})
	for _, off := range []int64{4096, 512, 2048} {
		b, err := c.Get(off, 512)
		if err != nil {
			t.Fatal(err)
		}
		b.Lock()
		b.Data()[0] = 'x'
		_ = c.MarkDirty(b)
		b.Unlock()
		c.Release(b)
	}
	if err := c.WriteDirty(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dev.writes) != "[512 2048 4096]" || dev.syncs != 0 {
		t.Fatalf("writes %v syncs %d, want [512 2048 4096] and none", dev.writes, dev.syncs)
	}
	if c.DirtyBytes() != 0 {
		t.Fatalf("%d dirty bytes left", c.DirtyBytes())
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if dev.syncs != 1 || len(dev.writes) != 3 {
		t.Fatalf("Flush of a clean cache: writes %v syncs %d", dev.writes, dev.syncs)
	}
}

// TestWritesDoNotOverlap: concurrent FlushBufs of one buffer write one
// at a time.
func TestWritesDoNotOverlap(t *testing.T) {
	dev := newFakeDev(1 << 16)
	dev.slow = time.Millisecond
	c := New(dev, Options{})
	b, err := c.Get(0, 512)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(b)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.Lock()
			b.Data()[0] = byte(i)
			_ = c.MarkDirty(b)
			b.Unlock()
			if err := c.FlushBuf(b); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if dev.overlap {
		t.Fatal("two writes of one buffer overlapped")
	}
}
