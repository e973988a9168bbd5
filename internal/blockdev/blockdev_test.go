package blockdev

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestParseTarget(t *testing.T) {
	dir := t.TempDir()
	literal := filepath.Join(dir, "odd@2")
	if err := os.WriteFile(literal, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target string
		path   string
		part   int
		err    error
	}{
		{target: "disk.img", path: "disk.img"},
		{target: "disk.img@2", path: "disk.img", part: 2},
		{target: "disk.img@12", path: "disk.img", part: 12},
		{target: "a@b@3", path: "a@b", part: 3},
		{target: "user@host.img", path: "user@host.img"},
		{target: "/dev/sda@1", path: "/dev/sda", part: 1},
		{target: literal, path: literal},
		{target: literal + "@1", path: literal, part: 1},
		{target: "", err: ErrBadTarget},
		{target: "disk.img@", err: ErrBadTarget},
		{target: "disk.img@0", err: ErrBadTarget},
		{target: "@3", err: ErrBadTarget},
		{target: "disk.img@99999999999999999999", err: ErrBadTarget},
	}
	for _, tt := range tests {
		path, part, err := ParseTarget(tt.target)
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseTarget(%q) error = %v, want %v", tt.target, err, tt.err)
			continue
		}
		if err != nil {
			checkMessage(t, err)
			continue
		}
		if path != tt.path || part != tt.part {
			t.Errorf("ParseTarget(%q) = %q, %d; want %q, %d", tt.target, path, part, tt.path, tt.part)
		}
	}
}

// checkMessage fails if err's message is not a single line.
func checkMessage(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error message %q is not one line", msg)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.img")
	if err := os.WriteFile(existing, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.img")
	tests := []struct {
		name   string
		target string
		opts   Options
		err    error
	}{
		{"missing file", missing, Options{}, ErrNotFound},
		{"missing file read-only", missing, Options{ReadOnly: true}, ErrNotFound},
		{"missing image of a partition", missing + "@1", Options{Create: true, CreateSize: 1 << 20}, ErrNotFound},
		{"missing directory on create", filepath.Join(dir, "no", "such.img"), Options{Create: true, CreateSize: 1 << 20}, ErrNotFound},
		{"create without size", missing, Options{Create: true}, ErrBadOptions},
		{"negative size", missing, Options{Create: true, CreateSize: -1}, ErrBadOptions},
		{"grow without size", existing, Options{Grow: true}, ErrBadOptions},
		{"create read-only", missing, Options{Create: true, CreateSize: 1 << 20, ReadOnly: true}, ErrBadOptions},
		{"grow a partition", existing + "@1", Options{Grow: true, CreateSize: 1 << 20}, ErrBadOptions},
		{"directory", dir, Options{}, ErrBadTarget},
		{"character device", "/dev/null", Options{ReadOnly: true}, ErrBadTarget},
		{"no partition table", existing + "@1", Options{}, ErrNoPartition},
		{"bad partition number", existing + "@0", Options{}, ErrBadTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(tt.target, tt.opts)
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("Open(%q, %+v) = %v, want %v", tt.target, tt.opts, err, tt.err)
			}
			checkMessage(t, err)
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Open left %s behind (stat: %v)", missing, err)
	}
}

func TestFileCreateReadWriteSync(t *testing.T) {
	const size = 1 << 20
	path := filepath.Join(t.TempDir(), "disk.img")
	d, err := Open(path, Options{Create: true, CreateSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != size || d.ReadOnly() || d.Name() != path {
		t.Fatalf("new device: Size %d ReadOnly %v Name %q", d.Size(), d.ReadOnly(), d.Name())
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 >= size {
		t.Errorf("new image is not sparse: %d bytes allocated", st.Blocks*512)
	}
	data := bytes.Repeat([]byte("ufs2"), 1024)
	checkReadWrite(t, d, data)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// The data is in the file, the size is unchanged, and Create on an
	// existing file opens it as it is.
	d, err = Open(path, Options{Create: true, CreateSize: size / 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != size {
		t.Errorf("reopened Size = %d, want %d", d.Size(), size)
	}
	got := make([]byte, len(data))
	if _, err := d.ReadAt(got, 8192); err != nil || !bytes.Equal(got, data) {
		t.Errorf("after reopen: read %v, data equal %v", err, bytes.Equal(got, data))
	}
	if _, err := d.ReadAt(got, -1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("ReadAt(-1) = %v, want ErrOutOfRange", err)
	}
}

// lastByte is what checkReadWrite writes to the last 100 bytes of a device.
const lastByte = 0xab

// checkReadWrite writes data at 8192 on d and checks it reads back, then
// checks the bounds rules at the end of d, writing lastByte to its last 100
// bytes.
func checkReadWrite(t *testing.T, d Device, data []byte) {
	t.Helper()
	if n, err := d.WriteAt(data, 8192); err != nil || n != len(data) {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	got := make([]byte, len(data))
	if n, err := d.ReadAt(got, 8192); err != nil || n != len(data) || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt = %d, %v; data equal %v", n, err, bytes.Equal(got, data))
	}
	size := d.Size()
	wbuf := bytes.Repeat([]byte{lastByte}, 100)
	rbuf := make([]byte, 100)
	tests := []struct {
		name    string
		write   bool
		off     int64
		wantN   int
		wantErr error
	}{
		{"read at end", false, size, 0, io.EOF},
		{"read past end", false, size + 4096, 0, io.EOF},
		{"read across end", false, size - 10, 10, io.EOF},
		{"read last bytes", false, size - 100, 100, nil},
		{"write last bytes", true, size - 100, 100, nil},
		{"write across end", true, size - 10, 0, ErrOutOfRange},
		{"write at end", true, size, 0, ErrOutOfRange},
		{"write at negative offset", true, -1, 0, ErrOutOfRange},
		{"write at huge offset", true, 1<<63 - 1, 0, ErrOutOfRange},
	}
	for _, tt := range tests {
		var n int
		var err error
		if tt.write {
			n, err = d.WriteAt(wbuf, tt.off)
		} else {
			n, err = d.ReadAt(rbuf, tt.off)
		}
		if n != tt.wantN || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: n, err = %d, %v; want %d, %v", tt.name, n, err, tt.wantN, tt.wantErr)
		}
	}
}

func TestGrow(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantSize int64
	}{
		{"open without size", Options{}, 4096},
		{"create does not grow", Options{Create: true, CreateSize: 8192}, 4096},
		{"grow", Options{Grow: true, CreateSize: 8192}, 8192},
		{"create and grow", Options{Create: true, Grow: true, CreateSize: 8192}, 8192},
		{"grow never shrinks", Options{Grow: true, CreateSize: 1024}, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := Open(path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() != tt.wantSize {
				t.Errorf("Size = %d, want %d", d.Size(), tt.wantSize)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != tt.wantSize {
				t.Errorf("file size = %v (%v), want %d", fi.Size(), err, tt.wantSize)
			}
		})
	}
}

func TestFlock(t *testing.T) {
	rw, ro := Options{}, Options{ReadOnly: true}
	tests := []struct {
		name          string
		first, second Options
		err           error
	}{
		{"writer then writer", rw, rw, ErrBusy},
		{"writer then reader", rw, ro, ErrBusy},
		{"reader then writer", ro, rw, ErrBusy},
		{"reader then reader", ro, ro, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			d1, err := Open(path, Options{Create: true, CreateSize: 1 << 16})
			if err != nil {
				t.Fatal(err)
			}
			d1.Close()
			d1, err = Open(path, tt.first)
			if err != nil {
				t.Fatal(err)
			}
			d2, err := Open(path, tt.second)
			if !errors.Is(err, tt.err) {
				t.Fatalf("second Open = %v, want %v", err, tt.err)
			}
			if err != nil {
				checkMessage(t, err)
			} else {
				d2.Close()
			}
			// Closing releases the lock.
			d1.Close()
			d2, err = Open(path, tt.second)
			if err != nil {
				t.Fatalf("Open after Close = %v", err)
			}
			d2.Close()
		})
	}
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.ReadOnly() {
		t.Error("ReadOnly() = false")
	}
	if n, err := d.WriteAt([]byte{1}, 0); n != 0 || !errors.Is(err, ErrReadOnly) {
		t.Errorf("WriteAt = %d, %v; want ErrReadOnly", n, err)
	}
	if err := d.Sync(); err != nil {
		t.Errorf("Sync = %v", err)
	}
	b := make([]byte, 1)
	if _, err := d.ReadAt(b, 4095); err != nil || b[0] != 7 {
		t.Errorf("ReadAt = %v, %v", b, err)
	}
}

func TestConcurrentIO(t *testing.T) {
	devs := map[string]Device{"mem": NewMem(1 << 20)}
	d, err := Open(filepath.Join(t.TempDir(), "disk.img"), Options{Create: true, CreateSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	devs["file"] = d
	for name, d := range devs {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				blk := bytes.Repeat([]byte{byte(g + 1)}, 4096)
				got := make([]byte, 4096)
				for i := range 16 {
					off := int64(g*16+i) * 4096
					if _, err := d.WriteAt(blk, off); err != nil {
						t.Errorf("%s: WriteAt: %v", name, err)
						return
					}
					if _, err := d.ReadAt(got, off); err != nil || !bytes.Equal(got, blk) {
						t.Errorf("%s: ReadAt: %v", name, err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

func TestMem(t *testing.T) {
	m := NewMem(64 << 10)
	checkReadWrite(t, m, []byte("hello, mem"))
	if got := m.Bytes()[8192:8202]; string(got) != "hello, mem" {
		t.Errorf("Bytes()[8192:] = %q", got)
	}
	// Bytes is a copy.
	b := m.Bytes()
	b[8192] = 'X'
	if m.Bytes()[8192] != 'h' {
		t.Error("Bytes() aliases the contents")
	}
	// Close keeps the contents.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := m.ReadAt(one, 8192); err != nil || one[0] != 'h' {
		t.Errorf("after Close: %q, %v", one, err)
	}
	ro := m.ReadOnlyView()
	if _, err := ro.WriteAt(one, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only view WriteAt = %v", err)
	}
	if _, err := m.WriteAt([]byte("j"), 8192); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.ReadAt(one, 8192); err != nil || one[0] != 'j' {
		t.Errorf("view does not see writes: %q, %v", one, err)
	}
	if NewMem(-1).Size() != 0 {
		t.Error("NewMem(-1) has a size")
	}
	if got := NewMemBytes([]byte("abc")).Bytes(); string(got) != "abc" {
		t.Errorf("NewMemBytes: %q", got)
	}
}

func TestRecorderApply(t *testing.T) {
	base := NewMem(1 << 16)
	if _, err := base.WriteAt([]byte("start"), 0); err != nil {
		t.Fatal(err)
	}
	start := base.Bytes()
	r := NewRecorder(base)

	type step struct {
		off  int64
		data string // "" for a Sync
	}
	steps := []step{{100, "aaaa"}, {200, "bbbb"}, {0, ""}, {102, "CC"}, {65530, "edge"}, {0, ""}, {300, "tail"}}
	for _, s := range steps {
		if s.data == "" {
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := r.WriteAt([]byte(s.data), s.off); err != nil {
			t.Fatal(err)
		}
	}
	// A write that fails is not logged.
	if _, err := r.WriteAt([]byte("past the end"), 1<<16-2); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("out-of-range write through recorder = %v", err)
	}
	ops := r.Ops()
	if len(ops) != len(steps) {
		t.Fatalf("recorded %d ops, want %d: %v", len(ops), len(steps), ops)
	}
	for i, s := range steps {
		op := ops[i]
		if s.data == "" {
			if op.Kind != OpSync {
				t.Errorf("op %d = %v, want sync", i, op)
			}
		} else if op.Kind != OpWrite || op.Off != s.off || string(op.Data) != s.data {
			t.Errorf("op %d = %v %q, want write %q at %d", i, op, op.Data, s.data, s.off)
		}
	}

	// Replaying every prefix onto the starting image gives what the device
	// held after that many ops; the whole log gives the final image.
	for cut := 0; cut <= len(ops); cut++ {
		dst := NewMemBytes(start)
		if err := Apply(dst, ops[:cut]); err != nil {
			t.Fatalf("Apply(%d ops): %v", cut, err)
		}
		want := NewMemBytes(start)
		for _, s := range steps[:cut] {
			if s.data != "" {
				want.WriteAt([]byte(s.data), s.off)
			}
		}
		if !bytes.Equal(dst.Bytes(), want.Bytes()) {
			t.Errorf("prefix of %d ops replays wrong", cut)
		}
	}
	if !bytes.Equal(func() []byte { d := NewMemBytes(start); Apply(d, ops); return d.Bytes() }(), base.Bytes()) {
		t.Error("full replay differs from the recorded device")
	}

	// Apply reports the op that failed.
	small := NewMem(1000)
	if err := Apply(small, ops); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Apply onto a small device = %v, want ErrOutOfRange", err)
	}
	if err := Apply(NewMem(10), []Op{{Kind: 0}}); err == nil {
		t.Error("Apply accepted an unknown op kind")
	}

	// The recorder's data is a copy, and Reset empties the log.
	buf := []byte("mutable")
	r.Reset()
	r.WriteAt(buf, 400)
	buf[0] = 'X'
	if ops := r.Ops(); len(ops) != 1 || string(ops[0].Data) != "mutable" {
		t.Errorf("after Reset and one write: %v", ops)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	m := NewMem(1 << 20)
	r := NewRecorder(m)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			blk := bytes.Repeat([]byte{byte(g)}, 512)
			for i := range 32 {
				// Overlapping writes: the last in log order must win.
				r.WriteAt(blk, int64(i%4)*512)
				if i%8 == 0 {
					r.Sync()
				}
				r.Ops()
			}
		}()
	}
	wg.Wait()
	ops := r.Ops()
	if len(ops) != 8*32+8*4 {
		t.Errorf("recorded %d ops, want %d", len(ops), 8*32+8*4)
	}
	dst := NewMem(1 << 20)
	if err := Apply(dst, ops); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), m.Bytes()) {
		t.Error("replay of a concurrent log differs from the device")
	}
}

// TestAllowInUse: a read-only open with AllowInUse goes on while another
// open holds the image for writing, without a lock (a later writer still
// meets only the first one), and InUse names the holder; without a
// writer there is nothing to warn of. Writers keep failing with ErrBusy
// naming the holder.
func TestAllowInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	d, err := Open(path, Options{Create: true, CreateSize: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	share := Options{ReadOnly: true, AllowInUse: true}
	alone, err := Open(path, share)
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := InUse(alone); ok {
		t.Errorf("InUse of an image nobody else holds: %q", w)
	}
	alone.Close()

	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pid := fmt.Sprintf("process %d", os.Getpid())
	r, err := Open(path, share)
	if err != nil {
		t.Fatalf("read-only open sharing with a writer: %v", err)
	}
	warning, ok := InUse(r)
	if !ok || !strings.Contains(warning, pid) {
		t.Errorf("InUse = %q, %v; want a warning naming %s", warning, ok, pid)
	}
	if _, err := r.WriteAt([]byte{1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("WriteAt of a shared read-only device: %v", err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrBusy) {
		t.Errorf("plain read-only open beside a writer: %v, want ErrBusy", err)
	}
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), pid) {
		t.Errorf("second writer: %v; want ErrBusy naming %s", err, pid)
	}
	r.Close()
	if _, err := Open(path, Options{AllowInUse: true}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("AllowInUse without ReadOnly: %v, want ErrBadOptions", err)
	}
}
