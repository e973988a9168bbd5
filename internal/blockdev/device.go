package blockdev

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Device is a random-access block device. Safe for concurrent ReadAt/WriteAt.
//
// Offsets are bytes from the start of the device (of the partition, for a
// partition target). Nothing is read or written outside [0, Size()): reads
// at or past the end return io.EOF, writes that would cross it fail with
// ErrOutOfRange and write nothing.
type Device interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Size() int64    // usable bytes (partition size for a partition)
	Sync() error    // fdatasync (flush to stable storage)
	Close() error   // release the device (and its lock)
	ReadOnly() bool // opened read-only: WriteAt fails with ErrReadOnly
	Name() string   // the target as given, for messages
}

// Options says how Open treats the target.
type Options struct {
	// ReadOnly opens without write access: O_RDONLY, a shared flock on an
	// image file, no O_EXCL on a block device, no mount check.
	ReadOnly bool
	// Create makes the image file if it is missing (requires CreateSize > 0).
	// An existing file or device is opened as it is.
	Create bool
	// CreateSize is, with Create, the size of a new image file (sparse, via
	// ftruncate). If the file exists and is smaller it is NOT grown unless
	// Grow is true.
	CreateSize int64
	// Grow extends an existing image file smaller than CreateSize to
	// CreateSize (sparse). Block devices and partitions cannot grow.
	Grow bool
	// AllowInUse, with ReadOnly, opens an image file that another
	// process holds for writing (a live read-write mount, an offline
	// command changing it) instead of failing with ErrBusy. The Device
	// then holds no lock and reads what is on disk while the other
	// process may be writing it; InUse says so, for a warning. This is
	// for the tools that only read (dumpfs, fsck -n, ls, get), as FreeBSD
	// lets dumpfs and fsck -n read a mounted filesystem.
	AllowInUse bool
}

// validate rejects contradictory options before anything is touched.
func (o Options) validate(target string, partition int) error {
	switch {
	case o.CreateSize < 0:
		return errorf(ErrBadOptions, "%s: negative image size %d", target, o.CreateSize)
	case o.Create && o.CreateSize == 0:
		return errorf(ErrBadOptions, "%s: creating an image needs a size greater than zero", target)
	case o.Grow && o.CreateSize == 0:
		return errorf(ErrBadOptions, "%s: growing an image needs the size to grow it to", target)
	case o.AllowInUse && !o.ReadOnly:
		return errorf(ErrBadOptions, "%s: only a read-only open may share an image with a writer", target)
	case o.ReadOnly && (o.Create || o.Grow):
		return errorf(ErrBadOptions, "%s: cannot create or grow an image opened read-only; drop one of the two", target)
	case o.Grow && partition > 0:
		return errorf(ErrBadOptions, "%s: cannot grow a partition; resize it with a partitioning tool", target)
	}
	return nil
}

// Open opens target (PATH or PATH@N, see ParseTarget) as a Device.
//
// A writable open of a mounted target fails with ErrMounted; a target
// another process holds fails with ErrBusy; a missing file fails with
// ErrNotFound unless opts.Create asks for it to be made.
func Open(target string, opts Options) (Device, error) {
	path, partition, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	if err := opts.validate(target, partition); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if opts.Create && partition == 0 {
			return createFile(target, path, opts)
		}
		if partition > 0 {
			return nil, causef(ErrNotFound, err, "%s: %s does not exist (the image and its partition table must exist before a partition can be opened)", target, path)
		}
		return nil, causef(ErrNotFound, err, "%s: no such file or device (check the path)", target)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	if !fi.Mode().IsRegular() && !isBlockDevice(fi.Mode()) {
		return nil, errorf(ErrBadTarget, "%s: %s is a %s, not an image file or a block device", target, path, describeMode(fi.Mode()))
	}
	if !opts.ReadOnly {
		if err := refuseMounted(target, path, partition); err != nil {
			return nil, err
		}
	}
	var d *fileDevice
	if isBlockDevice(fi.Mode()) {
		d, err = openBlockDevice(target, path, opts)
	} else {
		d, err = openFile(target, path, opts)
	}
	if err != nil {
		return nil, err
	}
	if partition > 0 {
		if err := d.selectPartition(path, partition); err != nil {
			_ = d.f.Close()
			return nil, err
		}
	}
	return d, nil
}

func isBlockDevice(m fs.FileMode) bool {
	return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// refuseMounted fails with ErrMounted if the target is mounted.
func refuseMounted(target, path string, partition int) error {
	mp, ok, err := findMount(path, partition)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	how := ""
	if mp.via != "" {
		how = " through " + mp.via
	}
	return errorf(ErrMounted, "%s: mounted on %s%s; unmount it first or open it read-only", target, mp.dir, how)
}

// createFile makes a new sparse image of opts.CreateSize bytes. If the file
// appears between Open's stat and here, it is opened as an existing one.
func createFile(target, path string, opts Options) (*fileDevice, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if errors.Is(err, fs.ErrExist) {
		return openFile(target, path, opts)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, causef(ErrNotFound, err, "%s: cannot create the image: its directory does not exist", target)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: cannot create the image: %w", target, err)
	}
	if err := lockFile(f, true); err != nil {
		hs := lockHolders(f)
		_ = f.Close()
		return nil, lockError(target, err, false, hs)
	}
	if err := f.Truncate(opts.CreateSize); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("%s: cannot size the new image to %d bytes: %w", target, opts.CreateSize, err)
	}
	return &fileDevice{f: f, name: target, size: opts.CreateSize}, nil
}

// openFile opens an existing regular image file and locks it.
func openFile(target, path string, opts Options) (*fileDevice, error) {
	flag := os.O_RDWR
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, openError(target, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	if !fi.Mode().IsRegular() {
		// Replaced between Open's stat and the open.
		_ = f.Close()
		return nil, errorf(ErrBadTarget, "%s: %s changed while being opened; try again", target, path)
	}
	inUse := ""
	if err := lockFile(f, !opts.ReadOnly); err != nil {
		if !opts.AllowInUse || !errors.Is(err, syscall.EWOULDBLOCK) {
			hs := lockHolders(f)
			_ = f.Close()
			return nil, lockError(target, err, opts.ReadOnly, hs)
		}
		inUse = inUseWarning(target, lockHolders(f))
	}
	size := fi.Size()
	if opts.Grow && opts.CreateSize > size {
		if err := f.Truncate(opts.CreateSize); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("%s: cannot grow the image from %d to %d bytes: %w", target, size, opts.CreateSize, err)
		}
		size = opts.CreateSize
	}
	return &fileDevice{f: f, name: target, size: size, ro: opts.ReadOnly, inUse: inUse}, nil
}

// openBlockDevice opens a block device, O_EXCL when writable, and asks the
// kernel for its size.
func openBlockDevice(target, path string, opts Options) (*fileDevice, error) {
	flag := os.O_RDWR | blockExclusive
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if errors.Is(err, syscall.EBUSY) {
		return nil, causef(ErrBusy, err, "%s: the kernel reports the device in use (mounted, held by md/LVM/device-mapper, or opened exclusively by another program); stop that user or open it read-only", target)
	}
	if err != nil {
		return nil, openError(target, err)
	}
	size, err := blockDeviceSize(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: cannot get the device size: %w", target, err)
	}
	if opts.Grow && opts.CreateSize > size {
		_ = f.Close()
		return nil, errorf(ErrBadOptions, "%s: a block device cannot grow (it has %d bytes, %d were asked for)", target, size, opts.CreateSize)
	}
	d := &fileDevice{f: f, name: target, size: size, ro: opts.ReadOnly, block: true}
	return d, nil
}

func openError(target string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return causef(ErrNotFound, err, "%s: no such file or device (check the path)", target)
	case errors.Is(err, syscall.EROFS):
		return causef(ErrReadOnly, err, "%s: it is on read-only storage; open it read-only", target)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied (run as a user that may write it, or open it read-only): %w", target, err)
	}
	return fmt.Errorf("%s: %w", target, err)
}

// lockError explains a failed flock, naming the processes that hold the
// image (hs) when /proc shows them.
func lockError(target string, err error, readOnly bool, hs []holder) error {
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%s: cannot lock the image: %w", target, err)
	}
	what := "another process has the image open"
	if readOnly {
		what = "another process has the image open for writing"
	}
	if who := describeHolders(hs); who != "" {
		what = "in use by " + who
	}
	if mp := mountedBy(hs); mp != "" {
		return causef(ErrBusy, err, "%s: %s; unmount it first (umount %s)", target, what, mp)
	}
	return causef(ErrBusy, err, "%s: %s; wait for it to finish or stop it", target, what)
}

// inUseWarning is the sentence InUse returns for an image opened under
// Options.AllowInUse while hs hold it.
func inUseWarning(target string, hs []holder) string {
	who := describeHolders(hs)
	if who == "" {
		who = "another process (a ufs2 mount or a command changing it)"
	}
	return fmt.Sprintf("%s is in use by %s; reading it read-only as it is on disk, which may not be consistent while it is being written (what the writer holds in memory is missing)", target, who)
}

// mountedBy returns the mount point of the first holder that has the
// image mounted, or "".
func mountedBy(hs []holder) string {
	for _, h := range hs {
		if h.mounted != "" {
			return h.mounted
		}
	}
	return ""
}

// InUse reports whether d was opened under Options.AllowInUse while
// another process held it for writing, with a one-line warning naming
// that process (and its mount point, for a mount) and what reading it may
// show. Devices other than Open's report false.
func InUse(d Device) (warning string, ok bool) {
	fd, isFile := d.(*fileDevice)
	if !isFile || fd.inUse == "" {
		return "", false
	}
	return fd.inUse, true
}

// fileDevice is a Device over an *os.File: a whole image or block device, or
// a window onto one (a partition). *os.File's ReadAt and WriteAt are pread
// and pwrite and are safe for concurrent use, and its Close waits for
// in-flight calls, so fileDevice needs no lock of its own; every field is
// set before Open returns and never changes.
type fileDevice struct {
	f     *os.File
	name  string // the target as given
	base  int64  // offset in f of the device's byte 0 (a partition's start)
	size  int64  // bytes usable from base
	ro    bool
	block bool   // f is a block device
	inUse string // InUse's warning: opened unlocked while another process writes
}

var _ Device = (*fileDevice)(nil)

func (d *fileDevice) Size() int64    { return d.size }
func (d *fileDevice) ReadOnly() bool { return d.ro }
func (d *fileDevice) Name() string   { return d.name }
func (d *fileDevice) Close() error   { return d.f.Close() }

func (d *fileDevice) ReadAt(p []byte, off int64) (int, error) {
	n, short := clampRead(d.name, len(p), off, d.size)
	if n == 0 {
		return 0, short
	}
	m, err := d.f.ReadAt(p[:n], d.base+off)
	if err == io.EOF {
		// The device promised these bytes at Open.
		return m, causef(io.ErrUnexpectedEOF, err, "%s: the file ends at offset %d, before the size it had when opened (%d); was it truncated?", d.name, off+int64(m), d.size)
	}
	if err != nil {
		return m, err
	}
	return m, short
}

func (d *fileDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.ro {
		return 0, errorf(ErrReadOnly, "%s: opened read-only; cannot write", d.name)
	}
	if err := checkWrite(d.name, len(p), off, d.size); err != nil {
		return 0, err
	}
	return d.f.WriteAt(p, d.base+off)
}

func (d *fileDevice) Sync() error {
	if d.ro {
		return nil
	}
	if err := fdatasync(d.f); err != nil {
		return fmt.Errorf("%s: flush: %w", d.name, err)
	}
	return nil
}

// clampRead returns how many of the want bytes at off lie inside a device of
// size bytes, and the error to return with them: nil if all of them, io.EOF
// if fewer.
func clampRead(name string, want int, off, size int64) (int, error) {
	if off < 0 {
		return 0, errorf(ErrOutOfRange, "%s: read at negative offset %d", name, off)
	}
	if want == 0 {
		return 0, nil
	}
	if off >= size {
		return 0, io.EOF
	}
	if rem := size - off; int64(want) > rem {
		return int(rem), io.EOF
	}
	return want, nil
}

// checkWrite fails unless n bytes at off lie inside a device of size bytes.
func checkWrite(name string, n int, off, size int64) error {
	if off < 0 || off > size || int64(n) > size-off {
		return errorf(ErrOutOfRange, "%s: write of %d bytes at offset %d does not fit in the device (%d bytes)", name, n, off, size)
	}
	return nil
}
