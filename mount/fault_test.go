package mount

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ufs"
)

// faultDev is a device that fails chosen operations with EIO: every write,
// every flush, or the reads that touch [readFrom, readTo).
type faultDev struct {
	blockdev.Device
	mu                        sync.Mutex
	writes, syncs             bool
	readFrom, readTo          int64
	failedW, failedS, failedR int
}

var errInjected = errors.New("injected device error")

func (d *faultDev) set(fn func(d *faultDev)) {
	d.mu.Lock()
	fn(d)
	d.mu.Unlock()
}

func (d *faultDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	fail := d.writes
	if fail {
		d.failedW++
	}
	d.mu.Unlock()
	if fail {
		return 0, errInjected
	}
	return d.Device.WriteAt(p, off)
}

func (d *faultDev) Sync() error {
	d.mu.Lock()
	fail := d.syncs
	if fail {
		d.failedS++
	}
	d.mu.Unlock()
	if fail {
		return errInjected
	}
	return d.Device.Sync()
}

func (d *faultDev) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	fail := off < d.readTo && off+int64(len(p)) > d.readFrom
	if fail {
		d.failedR++
	}
	d.mu.Unlock()
	if fail {
		return 0, errInjected
	}
	return d.Device.ReadAt(p, off)
}

// mountFaulty mounts img through a faultDev. Unless the test waits for the
// server itself, the cleanup unmounts it and requires a clean stop.
func mountFaulty(t *testing.T, img string, cleanup bool) (string, *Server, *faultDev) {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fd := &faultDev{Device: dev}
	fsys, err := ufs.Open(fd, ufs.Options{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	mnt := mountDir(t)
	srv, err := Mount(mnt, fsys, Options{})
	if err != nil {
		fsys.Close()
		t.Fatalf("Mount: %v", err)
	}
	if cleanup {
		t.Cleanup(func() { unmountCheck(t, srv) })
	}
	return mnt, srv, fd
}

// TestFailingDevice: writes and flushes that fail reach the user as EIO
// from fsync, again from every fsync while the device fails, never a
// silent success; the server keeps serving; once the device works again
// an fsync succeeds and what it covered is on the device. A read that
// fails gives EIO for that file only.
func TestFailingDevice(t *testing.T) {
	img := newImage(t, 64<<20)
	t.Cleanup(func() { checkImage(t, img) })
	mnt, _, fd := mountFaulty(t, img, true)
	p := filepath.Join(mnt, "a")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first := bytes.Repeat([]byte("before the fault "), 10000)
	if _, err := f.Write(first); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{"writes", "flushes"} {
		fd.set(func(d *faultDev) { d.writes, d.syncs = mode == "writes", mode == "flushes" })
		more := bytes.Repeat([]byte(mode+" fail "), 5000)
		if _, err := f.WriteAt(more, int64(len(first))); err != nil {
			t.Fatalf("%s failing: the write itself (cached) failed: %v", mode, err)
		}
		for i := range 2 {
			if err := f.Sync(); !errors.Is(err, unix.EIO) {
				t.Fatalf("%s failing: fsync %d = %v, want EIO", mode, i+1, err)
			}
		}
		// The server keeps serving.
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s failing: stat: %v", mode, err)
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got[len(first):], more) {
			t.Fatalf("%s failing: read back %d bytes, %v", mode, len(got), err)
		}
		fd.set(func(d *faultDev) { d.writes, d.syncs = false, false })
		if err := f.Sync(); err != nil {
			t.Fatalf("%s working again: fsync = %v", mode, err)
		}
		assertOnDevice(t, img, "/a", append(append([]byte(nil), first...), more...))
	}
	fd.mu.Lock()
	t.Logf("failed %d writes, %d flushes", fd.failedW, fd.failedS)
	fd.mu.Unlock()

	// A read that fails: EIO for the file it belongs to, not the others.
	other := filepath.Join(mnt, "other")
	if err := os.WriteFile(other, []byte("unharmed"), 0o644); err != nil {
		t.Fatal(err)
	}
	blk := fileBlockOnDevice(t, img, "/a")
	fd.set(func(d *faultDev) { d.readFrom, d.readTo = blk, blk+4096 })
	dfd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	if _, err := unix.Pread(dfd, buf, 0); !errors.Is(err, unix.EIO) {
		t.Errorf("O_DIRECT read of a block the device fails: %v, want EIO", err)
	}
	unix.Close(dfd)
	fd.set(func(d *faultDev) { d.readFrom, d.readTo = 0, 0 })
	if got, err := os.ReadFile(other); err != nil || string(got) != "unharmed" {
		t.Errorf("another file after the failed read: %q, %v", got, err)
	}
}

// TestFailingDeviceAtUnmount: a device that stops taking writes leaves the
// image as a crash at that instant would: fsck finds leaks at most.
func TestFailingDeviceAtUnmount(t *testing.T) {
	img := newImage(t, 64<<20)
	mnt, srv, fd := mountFaulty(t, img, false)
	for i := range 20 {
		p := filepath.Join(mnt, "d", strings.Repeat("x", i+1))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 40000*i), 0o644); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			os.Remove(filepath.Join(mnt, "d", strings.Repeat("x", i-2)))
		}
	}
	fd.set(func(d *faultDev) { d.writes = true })
	if err := srv.Unmount(); err != nil {
		t.Logf("unmount: %v", err)
	}
	err := srv.Wait()
	t.Logf("server after unmount with a failing device: %v", err)
	if err == nil {
		t.Error("the server reported a clean close although no write reached the device")
	}
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	var out strings.Builder
	rep, err := fsck.Check(context.Background(), dev, fsck.Options{Mode: fsck.No, Force: true, Output: &out})
	if err != nil {
		t.Fatalf("fsck -n -f: %v\n%s", err, out.String())
	}
	for _, pr := range rep.Problems {
		if !fsck.IsLeakKind(pr.Kind) {
			t.Errorf("fsck found %s, not a leak:\n%s", pr.Kind, out.String())
			break
		}
	}
}

// assertOnDevice checks that file path of the (still mounted) image img
// holds want on the device, through a copy opened by the engine.
func assertOnDevice(t *testing.T, img, path string, want []byte) {
	t.Helper()
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(blockdev.NewMemBytes(raw), ufs.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("copy of the mounted image: %v", err)
	}
	defer fsys.Close()
	ino, err := fsys.Namei(path)
	if err != nil {
		t.Fatalf("%s not on the device: %v", path, err)
	}
	got := make([]byte, len(want))
	if n, err := fsys.ReadAt(ino, got, 0); n != len(want) || !bytes.Equal(got, want) {
		t.Fatalf("%s on the device: %d bytes, %v; want the %d fsync'd", path, n, err, len(want))
	}
}

// fileBlockOnDevice returns the byte offset of the first data block of
// path in the (still mounted) image img, read from a copy of it.
func fileBlockOnDevice(t *testing.T, img, path string) int64 {
	t.Helper()
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(blockdev.NewMemBytes(raw), ufs.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	ino, err := fsys.Namei(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fsys.Bmap(ino, 0)
	if err != nil || p == 0 {
		t.Fatalf("%s: first block %d, %v", path, p, err)
	}
	sb := fsys.Superblock()
	return sb.FragOffset(p)
}
