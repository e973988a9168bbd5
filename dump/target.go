package dump

// Where restore makes files: a host directory (restore's current
// directory), or the root of a UFS2 filesystem opened through the engine.
// Paths are relative to the target's root, slash-separated, "" for the
// root itself.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// target is what restore needs of the place it restores into. Creating
// calls replace a non-directory already at the name.
type target interface {
	name(rel string) string // the path for messages
	mkdir(rel string) error // an existing directory is fine
	remove(rel string) error
	removeAll(rel string) error
	link(oldRel, newRel string) error
	create(rel string) (targetFile, error)
	symlink(linkTarget, rel string) error
	mknod(rel string, h *Header) error
	// setAttrs sets owner (when owners), mode, extended attributes, times
	// and, where the target has them, flags; problems short of failing
	// go to warn.
	setAttrs(rel string, a *fileAttr, owners bool, warn func(error)) error
	readFile(rel string) ([]byte, error)
	writeFile(rel string, data []byte) error
}

// targetFile is a regular file being restored.
type targetFile interface {
	FileData
	// finish flushes the data, sets the size (a hole may end the file)
	// and, if a is not nil, the attributes as setAttrs does, and closes.
	finish(size int64, a *fileAttr, owners bool, warn func(error)) error
	written() int64
}

// hostTarget is a host directory.
type hostTarget struct {
	dir  string
	wbuf []byte // the write buffer, shared by the files
}

func (h *hostTarget) name(rel string) string {
	return filepath.Join(h.dir, filepath.FromSlash(rel))
}

func (h *hostTarget) mkdir(rel string) error {
	p := h.name(rel)
	if err := os.Mkdir(p, 0o700); err != nil {
		if fi, serr := os.Lstat(p); serr != nil || !fi.IsDir() {
			return hostErr("mkdir", p, err)
		}
	}
	return nil
}

func (h *hostTarget) remove(rel string) error {
	p := h.name(rel)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return hostErr("remove", p, err)
	}
	return nil
}

func (h *hostTarget) removeAll(rel string) error {
	if err := os.RemoveAll(h.name(rel)); err != nil {
		return hostErr("remove", h.name(rel), err)
	}
	return nil
}

func (h *hostTarget) link(oldRel, newRel string) error {
	p := h.name(newRel)
	if err := removeExisting(p); err != nil {
		return err
	}
	if err := os.Link(h.name(oldRel), p); err != nil {
		return hostErr("link", p, err)
	}
	return nil
}

func (h *hostTarget) create(rel string) (targetFile, error) {
	p := h.name(rel)
	// open(2) itself: os.OpenFile would fstat the file too, a syscall
	// more per file when restoring many small ones
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open(p, flags, 0o600)
	if err == unix.EEXIST {
		if err := removeExisting(p); err != nil {
			return nil, err
		}
		fd, err = unix.Open(p, flags, 0o600)
	}
	if err != nil {
		return nil, hostErr("create", p, err)
	}

	if h.wbuf == nil {
		h.wbuf = make([]byte, 0, fileWriteRun)
	}
	return &hostFile{fileWriter{fd: fd, p: p, buf: h.wbuf[:0]}}, nil
}

type hostFile struct{ fileWriter }

func (f *hostFile) written() int64 { return f.bytes }

func (f *hostFile) finish(size int64, a *fileAttr, owners bool, warn func(error)) error {
	err := f.flush()
	if err == nil && size > f.end {
		if terr := unix.Ftruncate(f.fd, size); terr != nil {
			err = hostErr("truncate", f.p, terr)
		}
	}
	if err == nil && a != nil {
		err = setHostAttrs(fdOps(f.fd), f.p, a, owners, warn)
	}
	if cerr := unix.Close(f.fd); err == nil && cerr != nil {
		err = hostErr("close", f.p, cerr)
	}
	return err
}

func (h *hostTarget) symlink(linkTarget, rel string) error {
	p := h.name(rel)
	if err := removeExisting(p); err != nil {
		return err
	}
	if err := os.Symlink(linkTarget, p); err != nil {
		return hostErr("symlink", p, err)
	}
	return nil
}

func (h *hostTarget) mknod(rel string, hd *Header) error {
	p := h.name(rel)
	if err := removeExisting(p); err != nil {
		return err
	}
	mode := uint32(0o600)
	switch hd.Mode & ondisk.IFMT {
	case ondisk.IFCHR:
		mode |= unix.S_IFCHR
	case ondisk.IFBLK:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	if err := unix.Mknod(p, mode, int(hostDev(hd))); err != nil {
		return hostErr("mknod", p, err)
	}
	return nil
}

func (h *hostTarget) setAttrs(rel string, a *fileAttr, owners bool, warn func(error)) error {
	return setHostAttrs(pathOps(h.name(rel), a.Mode&ondisk.IFMT == ondisk.IFLNK), h.name(rel), a, owners, warn)
}

func (h *hostTarget) readFile(rel string) ([]byte, error) { return os.ReadFile(h.name(rel)) }

func (h *hostTarget) writeFile(rel string, data []byte) error {
	p := h.name(rel)
	tmp := p + ".new"
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// imageTarget is the root of a UFS2 filesystem: everything FreeBSD's
// restore sets comes back, file flags included.
type imageTarget struct {
	fsys *ufs.FS
	desc string // how to name the filesystem in messages
}

// NewImageTarget makes restore write into fsys, which must be open
// read-write; desc names it in messages.
func NewImageTarget(fsys *ufs.FS, desc string) Target {
	return Target{t: &imageTarget{fsys: fsys, desc: desc}}
}

// Target is a place to restore into other than a host directory
// (RestoreOptions.Into).
type Target struct{ t target }

func (m *imageTarget) name(rel string) string { return m.desc + ":/" + rel }

func (m *imageTarget) err(op, rel string, err error) error {
	return fmt.Errorf("%w: %s %s: %w", ErrHost, op, m.name(rel), err)
}

// parent resolves the directory holding rel and rel's last name.
func (m *imageTarget) parent(rel string) (ondisk.Ino, string, error) {
	dir, base := path.Split(rel)
	ino, err := m.fsys.Namei("/" + dir)
	if err != nil {
		return 0, "", m.err("lookup", dir, err)
	}
	return ino, base, nil
}

// clear removes a non-directory at rel, if any.
func (m *imageTarget) clear(dir ondisk.Ino, name, rel string) error {
	ino, err := m.fsys.Lookup(dir, name)
	if errors.Is(err, ufs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return m.err("lookup", rel, err)
	}
	st, err := m.fsys.Stat(ino)
	if err != nil {
		return m.err("stat", rel, err)
	}
	if st.IsDir() {
		return m.err("replace", rel, ufs.ErrIsDir)
	}
	if err := m.fsys.Unlink(dir, name); err != nil {
		return m.err("remove", rel, err)
	}
	return nil
}

func (m *imageTarget) mkdir(rel string) error {
	dir, name, err := m.parent(rel)
	if err != nil {
		return err
	}
	if _, err := m.fsys.Mkdir(dir, name, 0o700, 0, 0); err != nil {
		if ino, lerr := m.fsys.Lookup(dir, name); lerr == nil {
			if st, serr := m.fsys.Stat(ino); serr == nil && st.IsDir() {
				return nil
			}
		}
		return m.err("mkdir", rel, err)
	}
	return nil
}

func (m *imageTarget) remove(rel string) error {
	dir, name, err := m.parent(rel)
	if errors.Is(err, ufs.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	ino, err := m.fsys.Lookup(dir, name)
	if errors.Is(err, ufs.ErrNotFound) {
		return nil
	} else if err != nil {
		return m.err("lookup", rel, err)
	}
	st, err := m.fsys.Stat(ino)
	if err != nil {
		return m.err("stat", rel, err)
	}
	if st.IsDir() {
		err = m.fsys.Rmdir(dir, name)
	} else {
		err = m.fsys.Unlink(dir, name)
	}
	if err != nil {
		return m.err("remove", rel, err)
	}
	return nil
}

func (m *imageTarget) removeAll(rel string) error {
	ino, err := m.fsys.Namei("/" + rel)
	if errors.Is(err, ufs.ErrNotFound) {
		return nil
	} else if err != nil {
		return m.err("lookup", rel, err)
	}
	if st, err := m.fsys.Stat(ino); err == nil && st.IsDir() {
		var names []string
		if err := m.fsys.ReadDir(ino, func(d ufs.Dirent) bool {
			if d.Name != "." && d.Name != ".." {
				names = append(names, d.Name)
			}
			return true
		}); err != nil {
			return m.err("readdir", rel, err)
		}
		for _, n := range names {
			if err := m.removeAll(path.Join(rel, n)); err != nil {
				return err
			}
		}
	}
	return m.remove(rel)
}

func (m *imageTarget) link(oldRel, newRel string) error {
	ino, err := m.fsys.Namei("/" + oldRel)
	if err != nil {
		return m.err("lookup", oldRel, err)
	}
	dir, name, err := m.parent(newRel)
	if err != nil {
		return err
	}
	if err := m.clear(dir, name, newRel); err != nil {
		return err
	}
	if err := m.fsys.Link(ino, dir, name); err != nil {
		return m.err("link", newRel, err)
	}
	return nil
}

func (m *imageTarget) create(rel string) (targetFile, error) {
	dir, name, err := m.parent(rel)
	if err != nil {
		return nil, err
	}
	if err := m.clear(dir, name, rel); err != nil {
		return nil, err
	}
	ino, err := m.fsys.Create(dir, name, 0o600, 0, 0)
	if err != nil {
		return nil, m.err("create", rel, err)
	}
	return &imageFile{m: m, ino: ino, rel: rel}, nil
}

type imageFile struct {
	m     *imageTarget
	ino   ondisk.Ino
	rel   string
	bytes int64
}

func (f *imageFile) Data(off int64, b []byte) error {
	if bytes.Count(b, []byte{0}) == len(b) {
		return nil // an all-zero record stays a hole, as put keeps it
	}
	n, err := f.m.fsys.WriteAt(f.ino, b, off)
	f.bytes += int64(n)
	if err != nil {
		return f.m.err("write", f.rel, err)
	}
	return nil
}

func (f *imageFile) written() int64 { return f.bytes }

func (f *imageFile) finish(size int64, a *fileAttr, owners bool, warn func(error)) error {
	sz := uint64(size)
	if _, err := f.m.fsys.Setattr(f.ino, ufs.SetAttr{Size: &sz}); err != nil {
		return f.m.err("truncate", f.rel, err)
	}
	if a != nil {
		return f.m.setAttrs(f.rel, a, owners, warn)
	}
	return nil
}

func (m *imageTarget) symlink(linkTarget, rel string) error {
	dir, name, err := m.parent(rel)
	if err != nil {
		return err
	}
	if err := m.clear(dir, name, rel); err != nil {
		return err
	}
	if _, err := m.fsys.Symlink(dir, name, linkTarget, 0, 0); err != nil {
		return m.err("symlink", rel, err)
	}
	return nil
}

func (m *imageTarget) mknod(rel string, h *Header) error {
	dir, name, err := m.parent(rel)
	if err != nil {
		return err
	}
	if err := m.clear(dir, name, rel); err != nil {
		return err
	}
	if _, err := m.fsys.Mknod(dir, name, h.Mode&ondisk.IFMT|0o600, 0, 0, uint64(uint32(h.Rdev))); err != nil {
		return m.err("mknod", rel, err)
	}
	return nil
}

func (m *imageTarget) setAttrs(rel string, a *fileAttr, owners bool, warn func(error)) error {
	ino, err := m.fsys.Namei("/" + rel)
	if err != nil {
		return m.err("lookup", rel, err)
	}
	if len(a.EA) > 0 {
		xs, err := ParseXattrs(a.EA)
		if err != nil {
			warn(fmt.Errorf("%s: extended attributes: %w (the rest skipped)", m.name(rel), err))
		}
		for _, x := range xs {
			if err := m.fsys.SetXattr(ino, x.Namespace, x.Name, x.Value, ufs.XattrFlags{}); err != nil {
				warn(m.err("setting extended attribute "+x.Name+" of", rel, err))
			}
		}
	}
	perm := a.Mode &^ ondisk.IFMT
	at := time.Unix(a.Atime, int64(a.Atimensec))
	mt := time.Unix(a.Mtime, int64(a.Mtimensec))
	sa := ufs.SetAttr{Mode: &perm, Atime: &at, Mtime: &mt}
	if owners {
		sa.UID, sa.GID = &a.UID, &a.GID
	}
	if _, err := m.fsys.Setattr(ino, sa); err != nil {
		return m.err("setattr", rel, err)
	}
	// flags last: immutable or append-only would refuse the rest
	if a.Flags != 0 {
		fl := a.Flags
		if _, err := m.fsys.Setattr(ino, ufs.SetAttr{Flags: &fl}); err != nil {
			warn(m.err("chflags", rel, err))
		}
	}
	return nil
}

func (m *imageTarget) readFile(rel string) ([]byte, error) {
	ino, err := m.fsys.Namei("/" + rel)
	if err != nil {
		return nil, err
	}
	st, err := m.fsys.Stat(ino)
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size)
	n, err := m.fsys.ReadAt(ino, b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

func (m *imageTarget) writeFile(rel string, data []byte) error {
	f, err := m.create(rel)
	if err != nil {
		return err
	}
	if len(data) > 0 {
		if _, err := m.fsys.WriteAt(f.(*imageFile).ino, data, 0); err != nil {
			return m.err("write", rel, err)
		}
	}
	return f.finish(int64(len(data)), nil, false, nil)
}
