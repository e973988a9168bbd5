package blockdev

import (
	"sync"
)

// Mem is an in-memory Device for tests. It follows the same bounds rules as
// a file-backed Device. Close keeps the contents and the Mem stays usable, so
// a test can unmount a filesystem and mount the same Mem again.
type Mem struct {
	name string
	ro   bool
	s    *memStore // shared with read-only views
}

type memStore struct {
	mu  sync.RWMutex // protects the bytes of buf (its length never changes)
	buf []byte
}

var _ Device = (*Mem)(nil)

// NewMem returns a zero-filled writable Mem of size bytes (0 if size < 0).
func NewMem(size int64) *Mem {
	if size < 0 {
		size = 0
	}
	return &Mem{name: "mem", s: &memStore{buf: make([]byte, size)}}
}

// NewMemBytes returns a writable Mem holding a copy of b.
func NewMemBytes(b []byte) *Mem {
	return &Mem{name: "mem", s: &memStore{buf: append([]byte(nil), b...)}}
}

// ReadOnlyView returns a read-only Mem sharing m's contents: writes through m
// are visible in it, writes to it fail with ErrReadOnly.
func (m *Mem) ReadOnlyView() *Mem {
	return &Mem{name: m.name, ro: true, s: m.s}
}

// Bytes returns a copy of the contents.
func (m *Mem) Bytes() []byte {
	m.s.mu.RLock()
	defer m.s.mu.RUnlock()
	return append([]byte(nil), m.s.buf...)
}

func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	n, short := clampRead(m.name, len(p), off, int64(len(m.s.buf)))
	if n == 0 {
		return 0, short
	}
	m.s.mu.RLock()
	copy(p[:n], m.s.buf[off:])
	m.s.mu.RUnlock()
	return n, short
}

func (m *Mem) WriteAt(p []byte, off int64) (int, error) {
	if m.ro {
		return 0, errorf(ErrReadOnly, "%s: opened read-only; cannot write", m.name)
	}
	if err := checkWrite(m.name, len(p), off, int64(len(m.s.buf))); err != nil {
		return 0, err
	}
	m.s.mu.Lock()
	copy(m.s.buf[off:], p)
	m.s.mu.Unlock()
	return len(p), nil
}

func (m *Mem) Size() int64    { return int64(len(m.s.buf)) }
func (m *Mem) Sync() error    { return nil }
func (m *Mem) Close() error   { return nil }
func (m *Mem) ReadOnly() bool { return m.ro }
func (m *Mem) Name() string   { return m.name }
