package blockdev

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors from this package match one of them under errors.Is
// and read as one line naming the target and what to do about it.
var (
	// ErrNotFound: the file or device does not exist.
	ErrNotFound = errors.New("blockdev: no such file or device")
	// ErrMounted: the target (or a partition of it, or a loop device backed
	// by it) is mounted, so it may not be opened for writing.
	ErrMounted = errors.New("blockdev: target is mounted")
	// ErrBusy: another process holds the target (a flock on an image, an
	// exclusive open of a block device).
	ErrBusy = errors.New("blockdev: target is in use")
	// ErrNoPartition: PATH@N names a partition that does not exist, or PATH
	// has no partition table that can be read.
	ErrNoPartition = errors.New("blockdev: no such partition")
	// ErrBadTarget: the target cannot be used: malformed PATH@N, a
	// directory, a character device.
	ErrBadTarget = errors.New("blockdev: bad target")
	// ErrBadOptions: Options that contradict each other or the target.
	ErrBadOptions = errors.New("blockdev: bad options")
	// ErrReadOnly: a write to a Device opened read-only.
	ErrReadOnly = errors.New("blockdev: device is read-only")
	// ErrOutOfRange: I/O outside [0, Size), or a partition that does not
	// fit on its device.
	ErrOutOfRange = errors.New("blockdev: offset out of range")
)

// targetError is a one-line message that still matches its sentinel (and the
// underlying system error, if any) under errors.Is and errors.As.
type targetError struct {
	msg  string
	errs []error // the sentinel first, then the cause if there is one
}

func (e *targetError) Error() string   { return e.msg }
func (e *targetError) Unwrap() []error { return e.errs }

// errorf returns an error reading as the formatted message and matching
// sentinel.
func errorf(sentinel error, format string, args ...any) error {
	return &targetError{msg: fmt.Sprintf(format, args...), errs: []error{sentinel}}
}

// causef is errorf that also wraps the system error that caused it.
func causef(sentinel, cause error, format string, args ...any) error {
	return &targetError{msg: fmt.Sprintf(format, args...), errs: []error{sentinel, cause}}
}
