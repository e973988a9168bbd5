package bcache

import (
	"strings"
	"testing"
)

// named prefixes the calls a recHooks records, so that a chain's order
// shows in one shared list.
type named struct {
	*recHooks
	name string
	log  *[]string
}

func (n named) CopyOnWrite(b *Buf) error {
	*n.log = append(*n.log, n.name+" cow")
	return n.recHooks.CopyOnWrite(b)
}

func (n named) BeforeWrite(b *Buf) []byte {
	*n.log = append(*n.log, n.name+" before")
	return n.recHooks.BeforeWrite(b)
}

func (n named) AfterWrite(b *Buf, err error) bool {
	*n.log = append(*n.log, n.name+" after")
	return n.recHooks.AfterWrite(b, err)
}

// TestChain: a copy-on-write hook and a rolling-back one chained in that
// order are called in that order; the first's error cancels the write
// before the second hears of it; the rolled-back copy is what is written;
// either hook keeps the buffer dirty.
func TestChain(t *testing.T) {
	tests := []struct {
		name            string
		failCOW, keepA  bool
		wantLog         string
		wantDisk        string
		wantDirty, fail bool
	}{
		{"in order", false, false, "snap cow,soft cow,snap before,soft before,snap after,soft after", "REW!", false, false},
		{"first keeps dirty", false, true, "snap cow,soft cow,snap before,soft before,snap after,soft after", "REW!", true, false},
		{"copy-on-write fails", true, false, "snap cow", "\x01\x01\x01\x01", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := newFakeDev(1 << 16)
			var log []string
			snap := named{&recHooks{dev: dev, oldSeen: map[int64][]byte{}, failCOW: tc.failCOW, keep: tc.keepA}, "snap", &log}
			soft := named{&recHooks{dev: dev, oldSeen: map[int64][]byte{}, rollback: true}, "soft", &log}
			c := New(dev, Options{})
			c.SetHooks(Chain(snap, NopHooks{}, nil, soft))
			b, err := c.Get(512, 512)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release(b)
			b.Lock()
			copy(b.Data(), "NEW!")
			_ = c.MarkDirty(b)
			b.Unlock()
			if err := c.Flush(); tc.fail != (err != nil) {
				t.Fatalf("Flush = %v", err)
			}
			if got := strings.Join(log, ","); got != tc.wantLog {
				t.Errorf("calls %s, want %s", got, tc.wantLog)
			}
			if got := string(dev.at(512, 4)); got != tc.wantDisk {
				t.Errorf("device has %q, want %q", got, tc.wantDisk)
			}
			if c.Dirty(b) != tc.wantDirty {
				t.Errorf("dirty = %v, want %v", c.Dirty(b), tc.wantDirty)
			}
		})
	}
	if _, ok := Chain(nil, NopHooks{}).(NopHooks); !ok {
		t.Error("a chain of nothing is not NopHooks")
	}
	one := &recHooks{}
	if got := Chain(one); got != Hooks(one) {
		t.Errorf("a chain of one is %T, not the hook itself", got)
	}
}
