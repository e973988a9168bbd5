package dump

// Making files on the host from dump headers: creation by type, then
// owner, mode, extended attributes and times.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
)

// ErrHost wraps failures to create or change files on the host.
var ErrHost = errors.New("restore: host file error")

func hostErr(op, p string, err error) error {
	return fmt.Errorf("%w: %s %s: %w", ErrHost, op, p, err)
}

// hostXattrName maps a FreeBSD extended attribute namespace to Linux's, as
// ufs2 get does: user to "user.", system to "trusted.".
func hostXattrName(ns uint8, name string) (string, bool) {
	switch ns {
	case ondisk.ExtattrNamespaceUser:
		return "user." + name, true
	case ondisk.ExtattrNamespaceSystem:
		return "trusted." + name, true
	}
	return "", false
}

// devParts splits a FreeBSD dev_t into major and minor (sys/types.h).
func devParts(dev uint64) (major, minor uint32) {
	major = uint32((dev>>32)&0xffffff00) | uint32((dev>>8)&0xff)
	minor = uint32((dev>>24)&0xff00) | uint32(dev&0xffff00ff)
	return major, minor
}

// hostDev is the Linux device number of a header's c_rdev.
func hostDev(h *Header) uint64 {
	major, minor := devParts(uint64(uint32(h.Rdev)))
	return unix.Mkdev(major, minor)
}

// Xattr is one extended attribute of a dumped file, in FreeBSD's terms.
type Xattr struct {
	Namespace uint8
	Name      string
	Value     []byte
}

// ParseXattrs decodes an extended attribute area as the dump carries it.
func ParseXattrs(area []byte) ([]Xattr, error) {
	var out []Xattr
	err := ondisk.WalkExtattrs(area, func(_ int, e ondisk.Extattr) bool {
		if e.Namespace != ondisk.ExtattrNamespaceEmpty {
			out = append(out, Xattr{Namespace: e.Namespace, Name: string(e.Name), Value: bytes.Clone(e.Value)})
		}
		return true
	})
	return out, err
}

// hostAttrOps are the calls that set a host file's attributes, through
// its path or through an open descriptor.
type hostAttrOps struct {
	chown    func(uid, gid int) error
	chmod    func(mode uint32) error // nil for a symlink, whose mode Linux ignores
	setxattr func(name string, v []byte) error
	utimens  func(ts []unix.Timespec) error
}

// pathOps sets the attributes of the host path p (a symlink itself).
func pathOps(p string, symlink bool) hostAttrOps {
	ops := hostAttrOps{
		chown:    func(uid, gid int) error { return unix.Lchown(p, uid, gid) },
		setxattr: func(name string, v []byte) error { return unix.Lsetxattr(p, name, v, 0) },
		utimens: func(ts []unix.Timespec) error {
			return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		},
	}
	if !symlink {
		ops.chmod = func(mode uint32) error { return unix.Chmod(p, mode) }
	}
	return ops
}

// fdOps sets the attributes of the open file fd.
func fdOps(fd int) hostAttrOps {
	return hostAttrOps{
		chown:    func(uid, gid int) error { return unix.Fchown(fd, uid, gid) },
		chmod:    func(mode uint32) error { return unix.Fchmod(fd, mode) },
		setxattr: func(name string, v []byte) error { return unix.Fsetxattr(fd, name, v, 0) },
		utimens: func(ts []unix.Timespec) error {
			// futimens: utimensat with a NULL path
			if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
				return e
			}
			return nil
		},
	}
}

// setHostAttrs sets owner (when owners), mode, extended attributes and
// times of the host file p from a, in that order (chown clears the setuid
// bits; the others change ctime only). Owners and extended attributes
// that cannot be set are warnings.
func setHostAttrs(ops hostAttrOps, p string, a *fileAttr, owners bool, warn func(error)) error {
	if owners {
		if err := ops.chown(int(a.UID), int(a.GID)); err != nil {
			warn(fmt.Errorf("%s: chown %d:%d: %w", p, a.UID, a.GID, err))
		}
	}
	if ops.chmod != nil {
		if err := ops.chmod(uint32(a.Mode & 0o7777)); err != nil {
			return hostErr("chmod", p, err)
		}
	}
	if len(a.EA) > 0 {
		xs, err := ParseXattrs(a.EA)
		if err != nil {
			warn(fmt.Errorf("%s: extended attributes: %w (the rest skipped)", p, err))
		}
		for _, x := range xs {
			name, ok := hostXattrName(x.Namespace, x.Name)
			if !ok {
				warn(fmt.Errorf("%s: extended attribute in namespace %d: no Linux namespace for it; skipped", p, x.Namespace))
				continue
			}
			if err := ops.setxattr(name, x.Value); err != nil {
				warn(fmt.Errorf("%s: setting extended attribute %s: %w", p, name, err))
			}
		}
	}
	ts := []unix.Timespec{{Sec: a.Atime, Nsec: int64(a.Atimensec)}, {Sec: a.Mtime, Nsec: int64(a.Mtimensec)}}
	if err := ops.utimens(ts); err != nil {
		return hostErr("utimensat", p, err)
	}
	return nil
}

// fileWriter receives a regular file's data from Reader.ReadFile and
// writes it in runs of up to fileWriteRun bytes: records contiguous in the
// file are gathered, a hole ends a run.
type fileWriter struct {
	fd    int // a raw descriptor: an *os.File costs an fcntl or two per file
	p     string
	buf   []byte
	off   int64 // file offset of buf[0]
	bytes int64 // written
	end   int64 // the end of the last data written
}

const fileWriteRun = 1 << 20

func (w *fileWriter) Data(off int64, b []byte) error {
	if len(w.buf) > 0 && (off != w.off+int64(len(w.buf)) || len(w.buf)+len(b) > fileWriteRun) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(w.buf) == 0 {
		w.off = off
		if w.buf == nil {
			w.buf = make([]byte, 0, min(fileWriteRun, 64<<10))
		}
	}
	w.buf = append(w.buf, b...)
	return nil
}

// flush writes the gathered run.
func (w *fileWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := unix.Pwrite(w.fd, w.buf, w.off)
	n = max(n, 0)
	if err == nil && n < len(w.buf) {
		err = unix.EIO
	}
	w.bytes += int64(n)
	w.end = max(w.end, w.off+int64(n))
	w.buf = w.buf[:0]
	if err != nil {
		return hostErr("write", w.p, err)
	}
	return nil
}

// collector gathers a small file's data (a symlink target, a directory).
type collector struct {
	b     []byte
	limit int64
}

func (c *collector) Data(off int64, b []byte) error {
	if off+int64(len(b)) > c.limit {
		return fmt.Errorf("%w: more than %d bytes", ErrFormat, c.limit)
	}
	if need := int(off) + len(b); need > len(c.b) {
		c.b = append(c.b, make([]byte, need-len(c.b))...)
	}
	copy(c.b[off:], b)
	return nil
}

// removeExisting removes a non-directory at p; a missing p is fine.
func removeExisting(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return hostErr("lstat", p, err)
	}
	if fi.IsDir() {
		return hostErr("replace", p, fs.ErrExist)
	}
	if err := os.Remove(p); err != nil {
		return hostErr("remove", p, err)
	}
	return nil
}
