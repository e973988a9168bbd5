package blockdev

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// attachLoop attaches img to a free loop device (with partition scanning if
// partscan) and detaches it in t.Cleanup. It returns "" when this machine
// has no loop devices at all, having logged why; the caller then returns.
// If /dev/loop-control exists, loop devices are expected to work and a
// failure fails the test.
func attachLoop(t *testing.T, img string, partscan bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: loop devices cannot be attached; skipping the loop-device test")
		return ""
	}
	losetup, err := exec.LookPath("losetup")
	if err != nil {
		t.Log("losetup is not installed (package util-linux / mount); skipping the loop-device test")
		return ""
	}
	args := []string{"-f", "--show"}
	if partscan {
		args = append(args, "-P")
	}
	out, err := exec.Command(losetup, append(args, img)...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if _, statErr := os.Stat("/dev/loop-control"); statErr == nil {
			t.Fatalf("losetup %s %s: %v: %s (/dev/loop-control exists, so a free /dev/loopN was expected: check that the loop module is loaded and loop device nodes can be created)",
				strings.Join(args, " "), img, err, msg)
		}
		t.Logf("no loop devices here (/dev/loop-control is missing; losetup said %q); skipping the loop-device test", msg)
		return ""
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	if partscan {
		// A kernel built without partition parsers (CONFIG_EFI_PARTITION,
		// CONFIG_MSDOS_PARTITION) ignores -P; partx reads the table in
		// user space and adds the partitions with BLKPG.
		if _, err := os.Stat(dev + "p1"); err != nil {
			if run(t, "partx", "-a", dev) {
				t.Cleanup(func() { run(t, "partx", "-d", dev) })
			}
		}
	}
	return dev
}

// run runs a command and logs its output if it fails; it reports success.
func run(t *testing.T, name string, args ...string) bool {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Logf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		return false
	}
	return true
}

func TestLoopDevice(t *testing.T) {
	const size = 8 << 20
	img := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	dev := attachLoop(t, img, false)
	if dev == "" {
		return
	}
	d, err := Open(dev, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", dev, err)
	}
	defer d.Close()
	if d.Size() != size {
		t.Errorf("Size = %d, want %d (from BLKGETSIZE64)", d.Size(), size)
	}
	checkReadWrite(t, d, bytes.Repeat([]byte("loop"), 1024))
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}

	// O_EXCL: a second writer is refused by the kernel, a reader is not.
	if d2, err := Open(dev, Options{}); !errors.Is(err, ErrBusy) {
		if err == nil {
			d2.Close()
		}
		t.Errorf("second writable Open(%s) = %v, want ErrBusy", dev, err)
	} else {
		checkMessage(t, err)
	}
	ro, err := Open(dev, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open alongside a writer: %v", err)
	}
	got := make([]byte, 4)
	if _, err := ro.ReadAt(got, 8192); err != nil || string(got) != "loop" {
		t.Errorf("read-only ReadAt = %q, %v", got, err)
	}
	ro.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// What went through the loop device is in the image file.
	if whole := readFile(t, img); string(whole[8192:8196]) != "loop" {
		t.Errorf("image file at 8192 = %q after writing the loop device", whole[8192:8196])
	}
	if _, err := Open(dev+"@1", Options{ReadOnly: true}); !errors.Is(err, ErrNoPartition) {
		t.Errorf("Open(%s@1) on a device without a table = %v, want ErrNoPartition", dev, err)
	}
	if where, ok, err := Mounted(dev); err != nil || ok {
		t.Errorf("Mounted(%s) = %q, %v, %v; want not mounted", dev, where, ok, err)
	}
}

func TestLoopDevicePartition(t *testing.T) {
	img := makeImage(t, "gpt")
	dev := attachLoop(t, img, true)
	if dev == "" {
		return
	}
	d, err := Open(dev+"@2", Options{})
	if err != nil {
		t.Fatalf("Open(%s@2): %v", dev, err)
	}
	if d.Size() != part2Len {
		t.Errorf("Size = %d, want %d", d.Size(), part2Len)
	}
	if _, err := d.WriteAt([]byte("through the loop"), 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if got := readFile(t, img)[part2Start:][:16]; string(got) != "through the loop" {
		t.Errorf("image at partition 2's start = %q", got)
	}
	// The kernel's own partition device agrees on the size.
	if p, err := Open(dev+"p2", Options{ReadOnly: true}); err != nil {
		t.Logf("kernel partition device %sp2 not available: %v", dev, err)
	} else {
		if p.Size() != part2Len {
			t.Errorf("%sp2 Size = %d, want %d", dev, p.Size(), part2Len)
		}
		p.Close()
	}
}

// TestMounted mounts an ext2 filesystem (the only thing needed from it is a
// kernel mount) on a loop device, whole or in a partition, and checks that
// writable opens of the device and of its image are refused.
func TestMounted(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext2"); err != nil {
		t.Log("mkfs.ext2 is not installed; skipping the mount test")
		return
	}
	t.Run("whole", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "ext2.img")
		if err := os.WriteFile(img, make([]byte, 4<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		if !run(t, "mkfs.ext2", "-q", "-F", img) {
			t.Fatal("mkfs.ext2 failed")
		}
		dev := attachLoop(t, img, false)
		if dev == "" {
			return
		}
		dir := mountOrLog(t, dev)
		if dir == "" {
			return
		}
		for _, target := range []string{img, dev} {
			where, ok, err := Mounted(target)
			if err != nil || !ok || where != dir {
				t.Errorf("Mounted(%s) = %q, %v, %v; want %q, true", target, where, ok, err, dir)
			}
			_, err = Open(target, Options{})
			if !errors.Is(err, ErrMounted) {
				t.Errorf("writable Open(%s) of a mounted target = %v, want ErrMounted", target, err)
				continue
			}
			checkMessage(t, err)
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("message %q does not name the mount point %s", err, dir)
			}
		}
		// Reading a mounted image is allowed.
		ro, err := Open(img, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only Open of a mounted image: %v", err)
		}
		ro.Close()
		other := filepath.Join(t.TempDir(), "other.img")
		os.WriteFile(other, make([]byte, 4096), 0o644)
		if _, ok, err := Mounted(other); ok || err != nil {
			t.Errorf("Mounted(unrelated file) = %v, %v", ok, err)
		}
		if _, _, err := Mounted(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Mounted(missing) = %v, want ErrNotFound", err)
		}
	})
	t.Run("partition", func(t *testing.T) {
		img := makeImage(t, "gpt")
		dev := attachLoop(t, img, true)
		if dev == "" {
			return
		}
		part1 := dev + "p1"
		if _, err := os.Stat(part1); err != nil {
			t.Logf("%s did not appear (%v); skipping", part1, err)
			return
		}
		if !run(t, "mkfs.ext2", "-q", "-F", part1) {
			t.Fatal("mkfs.ext2 failed")
		}
		dir := mountOrLog(t, part1)
		if dir == "" {
			return
		}
		tests := []struct {
			target string
			err    error
		}{
			{img + "@1", ErrMounted},
			{img, ErrMounted}, // the whole image holds the mounted partition
			{img + "@2", nil}, // another partition of it does not
			{dev + "@1", ErrMounted},
			{dev, ErrMounted},
			{dev + "@2", ErrBusy}, // not mounted, but O_EXCL on the whole disk fails while a partition is mounted
		}
		for _, tt := range tests {
			d, err := Open(tt.target, Options{})
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("writable Open(%s) = %v, want %v", tt.target, err, tt.err)
			}
		}
	})
}

// mountOrLog mounts dev on a new directory and unmounts it in t.Cleanup. It
// returns "" if mounting is impossible here, having logged why.
func mountOrLog(t *testing.T, dev string) string {
	t.Helper()
	dir := t.TempDir()
	if !run(t, "mount", "-t", "ext2", dev, dir) {
		t.Log("cannot mount here; skipping the mount checks")
		return ""
	}
	t.Cleanup(func() {
		if !run(t, "umount", dir) {
			t.Errorf("umount %s failed", dir)
		}
	})
	return dir
}
