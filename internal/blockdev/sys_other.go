//go:build !linux

package blockdev

import (
	"errors"
	"os"
)

// Elsewhere than Linux the project only works on image files: no flock, no
// block-device ioctls, no mount table.

const blockExclusive = 0

var errUnsupported = errors.New("block devices are supported only on Linux; use an image file")

func lockFile(*os.File, bool) error                   { return nil }
func blockDeviceSize(*os.File) (int64, error)         { return 0, errUnsupported }
func logicalSectorSize(*os.File) (int, error)         { return 0, errUnsupported }
func fdatasync(f *os.File) error                      { return f.Sync() }
func findMount(string, int) (mountPoint, bool, error) { return mountPoint{}, false, nil }
func lockHolders(*os.File) []holder                   { return nil }
func describeHolders([]holder) string                 { return "" }

// holder is a process holding a lock on an image; none are found here.
type holder struct{ mounted string }

// mountPoint is a mount that uses a target.
type mountPoint struct {
	dir string // where it is mounted
	via string // the loop device it is mounted through, if any
}

// Mounted reports whether target is mounted. Off Linux it cannot tell and
// says no.
func Mounted(target string) (where string, ok bool, err error) {
	if _, _, err := ParseTarget(target); err != nil {
		return "", false, err
	}
	return "", false, nil
}
