package mount

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPunchHoleMount: fallocate's PUNCH_HOLE|KEEP_SIZE through the mount
// frees the blocks (st_blocks goes down, SEEK_HOLE finds the hole) and the
// range reads as zeros; ZERO_RANGE zeroes and keeps the range allocated;
// PUNCH_HOLE without KEEP_SIZE is refused as Linux does. The image is
// clean after (mountRW's cleanup).
func TestPunchHoleMount(t *testing.T) {
	_, mnt, _ := mountRW(t, 64<<20)
	p := filepath.Join(mnt, "db")
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var before unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		t.Fatal(err)
	}
	const off, n = 100000, 500000
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		t.Fatalf("punch: %v", err)
	}
	clear(want[off : off+n])
	var after unix.Stat_t
	if err := unix.Fstat(fd, &after); err != nil {
		t.Fatal(err)
	}
	if after.Size != before.Size || after.Blocks >= before.Blocks {
		t.Errorf("after punching: size %d blocks %d; before %d, %d", after.Size, after.Blocks, before.Size, before.Blocks)
	}
	if h, err := unix.Seek(fd, 0, unix.SEEK_HOLE); err != nil || h <= off || h >= off+n {
		t.Errorf("SEEK_HOLE = %d, %v; want a hole inside [%d, %d)", h, err, off, off+n)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, 700000, 200000); err != nil {
		t.Fatalf("zero range: %v", err)
	}
	clear(want[700000:900000])
	if h, err := unix.Seek(fd, 600000, unix.SEEK_HOLE); err != nil || (h >= 700000 && h < 900000) {
		t.Errorf("SEEK_HOLE from 600000 = %d, %v: the zeroed range should stay allocated", h, err)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE, 0, 10); err != unix.EOPNOTSUPP {
		t.Errorf("PUNCH_HOLE without KEEP_SIZE: %v, want EOPNOTSUPP", err)
	}
	f.Close()
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("contents after punching and zeroing: %d bytes, %v, equal %v", len(got), err, bytes.Equal(got, want))
	}
}
