package blockdev

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// holder is a process that holds a flock on an image file, as far as
// /proc shows it.
type holder struct {
	pid     int
	write   bool   // an exclusive lock
	cmdline string // its command line, shortened; "" if unreadable
	mounted string // the mount point of a FUSE mount of the image by it
}

// String reads "process 123 (ufs2 mount disk.img /mnt), which has it
// mounted on /mnt".
func (h holder) String() string {
	s := "process " + strconv.Itoa(h.pid)
	if h.cmdline != "" {
		s += " (" + h.cmdline + ")"
	}
	if h.mounted != "" {
		s += ", which has it mounted on " + h.mounted
	}
	return s
}

// lockHolders lists the processes that hold a flock on
// f's file, from /proc/locks (whose lines read "1: FLOCK ADVISORY WRITE
// PID MAJ:MIN:INO 0 EOF", the device numbers in hex). It finds nothing
// without /proc, and nothing for a file on a filesystem whose locks name
// another device than stat does; callers then say less.
func lockHolders(f *os.File) []holder {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	lf, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer lf.Close()
	var hs []holder
	sc := bufio.NewScanner(lf)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// A waiter's line has "->" before FLOCK; it holds nothing.
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil {
			continue
		}
		h := holder{pid: pid, write: fields[3] == "WRITE", cmdline: cmdline(pid)}
		h.mounted = fuseMountOf(pid, st.Dev, st.Ino)
		hs = append(hs, h)
	}
	return hs
}

// cmdline returns process pid's command line with its arguments joined
// by spaces, cut to 100 bytes.
func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

// fuseMountOf returns the mount point of a FUSE mount whose source
// (ufs2 mount's fsname, the target as given) is the file dev:ino, read
// relative to process pid's working directory when it is not absolute.
func fuseMountOf(pid int, dev, ino uint64) string {
	mounts, err := readMountinfo()
	if err != nil {
		return ""
	}
	for _, m := range mounts {
		if !strings.HasPrefix(m.fstype, "fuse") || m.source == "" {
			continue
		}
		src := m.source
		if path, _, err := ParseTarget(src); err == nil {
			src = path
		}
		if !filepath.IsAbs(src) {
			src = filepath.Join("/proc", strconv.Itoa(pid), "cwd", src)
		}
		var st unix.Stat_t
		if unix.Stat(src, &st) == nil && st.Dev == dev && st.Ino == ino {
			return m.dir
		}
	}
	return ""
}

// describeHolders names the holders for a message: "held by process 12
// (...)", or "" if none was found.
func describeHolders(hs []holder) string {
	if len(hs) == 0 {
		return ""
	}
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.String())
	}
	return strings.Join(parts, "; ")
}
