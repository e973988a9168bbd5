package blockdev

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// blockExclusive is or-ed into the flags of a writable block-device open:
// Linux then refuses the open while the device is mounted or otherwise
// claimed (EBUSY), and claims it against mounts while it is open.
const blockExclusive = unix.O_EXCL

// lockFile takes a non-blocking flock on f: exclusive or shared. A conflict
// returns EWOULDBLOCK.
func lockFile(f *os.File, exclusive bool) error {
	how := unix.LOCK_SH | unix.LOCK_NB
	if exclusive {
		how = unix.LOCK_EX | unix.LOCK_NB
	}
	return control(f, func(fd uintptr) error {
		for {
			err := unix.Flock(int(fd), how)
			if err != unix.EINTR {
				return err
			}
		}
	})
}

// blockDeviceSize asks the kernel for the size in bytes (BLKGETSIZE64).
func blockDeviceSize(f *os.File) (int64, error) {
	var size uint64
	err := control(f, func(fd uintptr) error {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size)))
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if size > 1<<62 {
		return 0, fmt.Errorf("the kernel reports an impossible size %d", size)
	}
	return int64(size), nil
}

// logicalSectorSize asks the kernel for the logical sector size (BLKSSZGET),
// the unit of the LBAs in a partition table.
func logicalSectorSize(f *os.File) (int, error) {
	var ss int
	err := control(f, func(fd uintptr) error {
		var err error
		ss, err = unix.IoctlGetInt(int(fd), unix.BLKSSZGET)
		return err
	})
	if err == nil && (ss < 512 || ss > 65536 || ss&(ss-1) != 0) {
		err = fmt.Errorf("the kernel reports an impossible sector size %d", ss)
	}
	return ss, err
}

// fdatasync flushes f's data, and the metadata needed to read it back, to
// stable storage.
func fdatasync(f *os.File) error {
	return control(f, func(fd uintptr) error {
		for {
			err := unix.Fdatasync(int(fd))
			if err != unix.EINTR {
				return err
			}
		}
	})
}

// control runs fn on f's descriptor, which stays open until fn returns.
func control(f *os.File, fn func(fd uintptr) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := rc.Control(func(fd uintptr) { fnErr = fn(fd) }); err != nil {
		return err
	}
	return fnErr
}

// Mounted reports whether target (PATH or PATH@N) is mounted, and where.
//
// A block device is mounted if it, or one of its partitions, is the device of
// a mount in /proc/self/mountinfo; for PATH@N only the whole device and
// partition N count. An image file is mounted if a loop device backed by it
// (/sys/block/loop*/loop/backing_file, compared by device and inode) is
// mounted in the same sense. Anything else — a FUSE mount of the image by
// another ufs2, say — is not seen here; the flock in Open catches that one.
func Mounted(target string) (where string, ok bool, err error) {
	path, partition, err := ParseTarget(target)
	if err != nil {
		return "", false, err
	}
	mp, ok, err := findMount(path, partition)
	return mp.dir, ok, err
}

// mountPoint is a mount that uses a target.
type mountPoint struct {
	dir string // where it is mounted
	via string // the loop device it is mounted through, if any
}

// findMount implements Mounted for path and partition (0 for all). Its
// errors name path.
func findMount(path string, partition int) (mountPoint, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return mountPoint{}, false, causef(ErrNotFound, err, "%s: no such file or device", path)
		}
		return mountPoint{}, false, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	mounts, err := readMountinfo()
	if err != nil {
		return mountPoint{}, false, fmt.Errorf("%s: cannot tell whether it is mounted: %w", path, err)
	}
	if len(mounts) == 0 {
		return mountPoint{}, false, nil
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		devs := withPartitions(st.Rdev, partition)
		if dir, ok := mountedOn(mounts, devs); ok {
			return mountPoint{dir: dir}, true, nil
		}
	case unix.S_IFREG:
		for _, loop := range loopsBackedBy(st.Dev, st.Ino) {
			devs := withPartitions(loop.dev, partition)
			if dir, ok := mountedOn(mounts, devs); ok {
				return mountPoint{dir: dir, via: loop.path}, true, nil
			}
		}
	}
	return mountPoint{}, false, nil
}

// mountEntry is the part of a /proc/self/mountinfo line used here.
type mountEntry struct {
	dev    uint64 // field 3, major:minor of the mounted filesystem
	dir    string // field 5, the mount point
	fstype string // the field after "-", e.g. ext4 or fuse.ufs2
	source string // the field after the fstype, e.g. /dev/loop0
}

// readMountinfo parses /proc/self/mountinfo. Without /proc there is nothing
// to find, and nothing is reported mounted.
func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		dev, ok := parseDev(fields[2])
		if !ok {
			continue
		}
		m := mountEntry{dev: dev, dir: unescapeMountinfo(fields[4])}
		for i := 5; i+2 < len(fields); i++ {
			if fields[i] == "-" {
				m.fstype = fields[i+1]
				m.source = unescapeMountinfo(fields[i+2])
				break
			}
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	return mounts, nil
}

// mountedOn returns the mount point of the first mount of one of devs. A
// mount matches by its major:minor or, for filesystems that report an
// anonymous device (btrfs), by a /dev source naming one of devs.
func mountedOn(mounts []mountEntry, devs []uint64) (string, bool) {
	has := func(d uint64) bool {
		for _, x := range devs {
			if x == d {
				return true
			}
		}
		return false
	}
	for _, m := range mounts {
		if has(m.dev) {
			return m.dir, true
		}
	}
	for _, m := range mounts {
		if !strings.HasPrefix(m.source, "/dev/") {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(m.source, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && has(st.Rdev) {
			return m.dir, true
		}
	}
	return "", false
}

// withPartitions returns dev and the partitions of it that a writer of
// partition (0 for the whole device) could collide with: all of them for the
// whole device, partition alone otherwise.
func withPartitions(dev uint64, partition int) []uint64 {
	devs := []uint64{dev}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(dev), unix.Minor(dev))
	ents, err := os.ReadDir(sys)
	if err != nil {
		return devs
	}
	for _, e := range ents {
		num, err := readSysfs(filepath.Join(sys, e.Name(), "partition"))
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(num); err != nil || (partition != 0 && n != partition) {
			continue
		}
		s, err := readSysfs(filepath.Join(sys, e.Name(), "dev"))
		if err != nil {
			continue
		}
		if d, ok := parseDev(s); ok {
			devs = append(devs, d)
		}
	}
	return devs
}

// loopDevice is an attached loop device.
type loopDevice struct {
	path string // /dev/loopN
	dev  uint64
}

// loopsBackedBy lists the loop devices whose backing file is the file with
// the given device and inode numbers.
func loopsBackedBy(dev, ino uint64) []loopDevice {
	dirs, _ := filepath.Glob("/sys/block/loop*")
	var loops []loopDevice
	for _, dir := range dirs {
		backing, err := readSysfs(filepath.Join(dir, "loop", "backing_file"))
		if err != nil || backing == "" {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(backing, &st) != nil || st.Dev != dev || st.Ino != ino {
			continue
		}
		s, err := readSysfs(filepath.Join(dir, "dev"))
		if err != nil {
			continue
		}
		if d, ok := parseDev(s); ok {
			loops = append(loops, loopDevice{path: "/dev/" + filepath.Base(dir), dev: d})
		}
	}
	return loops
}

func readSysfs(name string) (string, error) {
	b, err := os.ReadFile(name)
	return strings.TrimSpace(string(b)), err
}

// parseDev parses "major:minor".
func parseDev(s string) (uint64, bool) {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return 0, false
	}
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return unix.Mkdev(uint32(a), uint32(b)), true
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in a mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
