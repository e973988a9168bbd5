package newfs

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/blockdev"
)

// WithDiscard returns dev with a Discard method that works on path, the
// image file or block device dev was opened from (a whole one: not a
// partition of it, whose offsets would differ). Discarding punches a hole
// in an image file (fallocate PUNCH_HOLE, the file keeps its size) and
// issues BLKDISCARD on a block device. Closing the result closes dev too.
func WithDiscard(dev blockdev.Device, path string) (blockdev.Device, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot open for discarding: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	block := fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	if !block && !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, errf(1, ErrUnsupported, "%s: not an image file or a block device; cannot discard", path)
	}
	return &discardDevice{Device: dev, f: f, block: block}, nil
}

type discardDevice struct {
	blockdev.Device
	f     *os.File
	block bool
}

var _ Discarder = (*discardDevice)(nil)

func (d *discardDevice) Discard(off, length int64) error {
	if off < 0 || length < 0 || off+length > d.Size() {
		return fmt.Errorf("%s: discard of %d bytes at %d: %w", d.Name(), length, off, blockdev.ErrOutOfRange)
	}
	if length == 0 {
		return nil
	}
	var err error
	if d.block {
		r := [2]uint64{uint64(off), uint64(length)}
		_, _, e := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&r)))
		if e != 0 {
			err = e
		}
	} else {
		err = unix.Fallocate(int(d.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	}
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) {
			return errf(1, ErrUnsupported, "%s: the device does not support discarding (%v)", d.Name(), err)
		}
		return fmt.Errorf("%s: discard: %w", d.Name(), err)
	}
	return nil
}

func (d *discardDevice) Close() error {
	err := d.f.Close()
	if err2 := d.Device.Close(); err == nil {
		err = err2
	}
	return err
}
