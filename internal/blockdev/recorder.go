package blockdev

import (
	"fmt"
	"io"
	"sync"
)

// OpKind says what a recorded Op did.
type OpKind uint8

const (
	OpWrite OpKind = iota + 1 // a WriteAt: Data was written at Off
	OpSync                    // a Sync that succeeded
)

func (k OpKind) String() string {
	switch k {
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one recorded operation. For OpSync, Off and Data are zero.
type Op struct {
	Kind OpKind
	Off  int64
	Data []byte // a private copy of what was written; do not modify
}

func (o Op) String() string {
	if o.Kind == OpWrite {
		return fmt.Sprintf("write %d bytes at %d", len(o.Data), o.Off)
	}
	return o.Kind.String()
}

// Recorder is a Device that passes everything to another Device and logs each
// write and each flush, in the order the device saw them.
//
// The log is a linearisation: writes and syncs run one at a time under the
// recorder's lock, so a write before an OpSync in the log returned before that
// Sync began and is durable after it, and overlapping writes land in log
// order. A crash test replays a prefix of the log (Apply) onto a copy of the
// starting image to get what a power cut at that point could leave; a prefix
// ending just after an OpSync is what the device is guaranteed to hold.
// Only what reached the device is logged: the n bytes a failed write did
// write, and no failed sync. Reads are not serialised.
type Recorder struct {
	d Device

	mu  sync.Mutex // protects ops, and serialises WriteAt and Sync on d
	ops []Op
}

var _ Device = (*Recorder)(nil)

// NewRecorder returns a Recorder over d with an empty log.
func NewRecorder(d Device) *Recorder { return &Recorder{d: d} }

// Ops returns the log so far. The slice is the caller's; the Data in it is
// shared and must not be modified.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Reset empties the log, e.g. after setting up the image a test starts from.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = nil
}

func (r *Recorder) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.d.WriteAt(p, off)
	if n > 0 {
		r.ops = append(r.ops, Op{Kind: OpWrite, Off: off, Data: append([]byte(nil), p[:n]...)})
	}
	return n, err
}

func (r *Recorder) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.d.Sync(); err != nil {
		return err
	}
	r.ops = append(r.ops, Op{Kind: OpSync})
	return nil
}

func (r *Recorder) ReadAt(p []byte, off int64) (int, error) { return r.d.ReadAt(p, off) }
func (r *Recorder) Size() int64                             { return r.d.Size() }
func (r *Recorder) Close() error                            { return r.d.Close() }
func (r *Recorder) ReadOnly() bool                          { return r.d.ReadOnly() }
func (r *Recorder) Name() string                            { return r.d.Name() }

// Apply replays ops onto dst in order: each OpWrite as a WriteAt, each OpSync
// as a Sync. It stops at the first failure and says which op it was.
func Apply(dst Device, ops []Op) error {
	for i, op := range ops {
		switch op.Kind {
		case OpWrite:
			n, err := dst.WriteAt(op.Data, op.Off)
			if err == nil && n < len(op.Data) {
				err = io.ErrShortWrite
			}
			if err != nil {
				return fmt.Errorf("%s: replaying op %d (%v): %w", dst.Name(), i, op, err)
			}
		case OpSync:
			if err := dst.Sync(); err != nil {
				return fmt.Errorf("%s: replaying op %d (%v): %w", dst.Name(), i, op, err)
			}
		default:
			return fmt.Errorf("%s: replaying op %d: unknown kind %v", dst.Name(), i, op.Kind)
		}
	}
	return nil
}
