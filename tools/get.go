package tools

// get: copy files out of an unmounted UFS2 filesystem to the host.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// GetOptions tunes Get.
type GetOptions struct {
	// NoOwners skips chown. Without it Get sets owners when it runs as
	// root and warns once otherwise.
	NoOwners bool
	// Warn, if set, receives each non-fatal problem as it happens (an
	// extended attribute the host refused, owners not set); they are also
	// in GetResult.Warnings.
	Warn func(error)
}

// GetResult counts what Get made.
type GetResult struct {
	Dirs, Files, Symlinks, Specials, HardLinks int
	Bytes                                      int64 // file data written (holes excluded)
	Warnings                                   []error
}

// ErrGetHost wraps host-side failures of Get (creating, writing or linking
// files on the host), as opposed to errors reading the filesystem.
var ErrGetHost = errors.New("tools: host file error")

// Get copies the file or tree at src in fsys to dest on the host.
//
// If dest is an existing directory and src is a directory, the contents of
// src go into dest and dest takes src's attributes (so "get / out" makes
// out a copy of the root); if dest is an existing directory and src is not,
// the copy is dest/<base of src>; otherwise dest is created.
//
// Preserved: contents, with holes left as holes (only allocated extents are
// written, the size set with truncate); permission bits including setuid,
// setgid and sticky; owners (as root); atime and mtime to the nanosecond
// (symlinks' own times too); symlinks; hard links (a second name of an
// inode becomes os.Link of the first copy); device nodes, fifos and
// sockets (mknod; device numbers decoded from FreeBSD's dev_t encoding);
// extended attributes: FreeBSD's user namespace as Linux "user.", the
// system namespace as "trusted." (readable and settable by root only, the
// closest Linux has to a namespace only the system may change). Failures to
// set extended attributes or owners are warnings, not errors. Directories
// get their modes and times after their contents. Not preserved: birth
// times and chflags flags (Linux has no equivalent to set).
//
// Get stops at the first error reading the filesystem or writing the host,
// and when ctx is done.
func Get(ctx context.Context, fsys *ufs.FS, src, dest string, opts GetOptions) (GetResult, error) {
	g := &getter{ctx: ctx, fs: fsys, opts: opts, links: map[ondisk.Ino]string{}, dirs: map[ondisk.Ino]bool{},
		owners: !opts.NoOwners && os.Geteuid() == 0}
	if !opts.NoOwners && !g.owners {
		g.warn(fmt.Errorf("not running as root: file owners are not set"))
	}
	ino, err := fsys.Namei(src)
	if err != nil {
		return g.res, fmt.Errorf("%s: %w", src, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return g.res, fmt.Errorf("%s: %w", src, err)
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		if st.IsDir() {
			err = g.dir(st, dest, true)
			return g.res, err
		}
		base := filepath.Base(filepath.Clean("/" + src))
		dest = filepath.Join(dest, base)
	}
	err = g.entry(st, dest)
	return g.res, err
}

type getter struct {
	ctx    context.Context
	fs     *ufs.FS
	opts   GetOptions
	owners bool
	res    GetResult
	links  map[ondisk.Ino]string // first host path of each multiply-linked inode
	dirs   map[ondisk.Ino]bool   // directories entered (a cycle is corruption)
	buf    []byte
}

func (g *getter) warn(err error) {
	g.res.Warnings = append(g.res.Warnings, err)
	if g.opts.Warn != nil {
		g.opts.Warn(err)
	}
}

func hostErr(op, path string, err error) error {
	return fmt.Errorf("%w: %s %s: %w", ErrGetHost, op, path, err)
}

// entry copies one inode to host path p, which must not exist (a leftover
// non-directory there is replaced).
func (g *getter) entry(st ufs.Stat, p string) error {
	if err := g.ctx.Err(); err != nil {
		return err
	}
	if st.IsDir() {
		return g.dir(st, p, false)
	}
	if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
		if err := os.Remove(p); err != nil {
			return hostErr("remove", p, err)
		}
	}
	if st.Nlink > 1 {
		if first, ok := g.links[st.Ino]; ok {
			if err := os.Link(first, p); err != nil {
				return hostErr("link", p, err)
			}
			g.res.HardLinks++
			return nil
		}
		g.links[st.Ino] = p
	}
	perm := uint32(st.Perm())
	switch st.Type() {
	case ondisk.IFREG:
		if err := g.file(st, p); err != nil {
			return err
		}
		g.res.Files++
	case ondisk.IFLNK:
		target, err := g.fs.Readlink(st.Ino)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := os.Symlink(target, p); err != nil {
			return hostErr("symlink", p, err)
		}
		g.res.Symlinks++
	case ondisk.IFCHR, ondisk.IFBLK:
		major, minor := FreeBSDDevParts(st.Rdev)
		kind := uint32(unix.S_IFCHR)
		if st.Type() == ondisk.IFBLK {
			kind = unix.S_IFBLK
		}
		if err := unix.Mknod(p, kind|perm&0o777, int(unix.Mkdev(major, minor))); err != nil {
			return hostErr("mknod", p, err)
		}
		g.res.Specials++
	case ondisk.IFIFO:
		if err := unix.Mkfifo(p, perm&0o777); err != nil {
			return hostErr("mkfifo", p, err)
		}
		g.res.Specials++
	case ondisk.IFSOCK:
		if err := unix.Mknod(p, unix.S_IFSOCK|perm&0o777, 0); err != nil {
			return hostErr("mknod", p, err)
		}
		g.res.Specials++
	default:
		return fmt.Errorf("%s: %w: inode %d has file type 0%o", p, ufs.ErrCorrupt, st.Ino, st.Type())
	}
	return g.attrs(st, p)
}

// dir copies directory st to p; existing says p is already a directory.
func (g *getter) dir(st ufs.Stat, p string, existing bool) error {
	if g.dirs[st.Ino] {
		return fmt.Errorf("%s: %w: directory inode %d reached twice (a directory cycle)", p, ufs.ErrCorrupt, st.Ino)
	}
	g.dirs[st.Ino] = true
	if !existing {
		if err := os.Mkdir(p, 0o700); err != nil && !(errors.Is(err, fs.ErrExist) && isDir(p)) {
			return hostErr("mkdir", p, err)
		}
	}
	g.res.Dirs++
	type child struct {
		name string
		ino  ondisk.Ino
	}
	var kids []child
	err := g.fs.ReadDir(st.Ino, func(e ufs.Dirent) bool {
		if e.Name != "." && e.Name != ".." {
			kids = append(kids, child{e.Name, e.Ino})
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, k := range kids {
		cst, err := g.fs.Stat(k.ino)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(p, k.name), err)
		}
		if err := g.entry(cst, filepath.Join(p, k.name)); err != nil {
			return err
		}
	}
	return g.attrs(st, p)
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// file writes the allocated extents of regular file st to a new file p and
// sets its size, leaving holes as holes.
func (g *getter) file(st ufs.Stat, p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return hostErr("create", p, err)
	}
	err = g.copyData(st, f, p)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = hostErr("close", p, cerr)
	}
	return err
}

func (g *getter) copyData(st ufs.Stat, f *os.File, p string) error {
	var exts []ufs.Extent
	if err := g.fs.Extents(st.Ino, 0, func(e ufs.Extent) bool {
		exts = append(exts, e)
		return true
	}); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if g.buf == nil {
		g.buf = make([]byte, 1<<20)
	}
	for _, e := range exts {
		for off := e.Off; off < e.Off+e.Len; {
			if err := g.ctx.Err(); err != nil {
				return err
			}
			n := min(int64(len(g.buf)), e.Off+e.Len-off)
			m, err := g.fs.ReadAt(st.Ino, g.buf[:n], off)
			if int64(m) != n {
				return fmt.Errorf("%s: reading %d bytes at %d: %w", p, n, off, err)
			}
			if _, err := f.WriteAt(g.buf[:n], off); err != nil {
				return hostErr("write", p, err)
			}
			g.res.Bytes += n
			off += n
		}
	}
	if err := f.Truncate(int64(st.Size)); err != nil {
		return hostErr("truncate", p, err)
	}
	return nil
}

// attrs sets owner, mode, extended attributes and times of host path p
// from st, in that order: chown clears setuid and setgid, and the times go
// last because the others change ctime (and xattrs nothing else).
func (g *getter) attrs(st ufs.Stat, p string) error {
	link := st.Type() == ondisk.IFLNK
	if g.owners {
		if err := unix.Lchown(p, int(st.UID), int(st.GID)); err != nil {
			g.warn(fmt.Errorf("%s: chown %d:%d: %w", p, st.UID, st.GID, err))
		}
	}
	if !link {
		if err := unix.Chmod(p, uint32(st.Perm())); err != nil {
			return hostErr("chmod", p, err)
		}
	}
	if st.Extsize > 0 {
		xs, err := g.fs.Xattrs(st.Ino)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, x := range xs {
			name, ok := HostXattrName(x.Namespace, x.Name)
			if !ok {
				g.warn(fmt.Errorf("%s: extended attribute %s.%s: no Linux namespace for it; skipped", p, ufs.NamespaceName(x.Namespace), x.Name))
				continue
			}
			if err := unix.Lsetxattr(p, name, x.Value, 0); err != nil {
				g.warn(fmt.Errorf("%s: setting extended attribute %s: %w", p, name, err))
			}
		}
	}
	ts := []unix.Timespec{
		{Sec: st.Atime.Unix(), Nsec: int64(st.Atime.Nanosecond())},
		{Sec: st.Mtime.Unix(), Nsec: int64(st.Mtime.Nanosecond())},
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return hostErr("utimensat", p, err)
	}
	return nil
}

// HostXattrName maps a FreeBSD extended attribute to its Linux name: the
// user namespace to "user.<name>", the system namespace to
// "trusted.<name>". Other namespaces have no mapping.
func HostXattrName(ns uint8, name string) (string, bool) {
	switch ns {
	case ondisk.ExtattrNamespaceUser:
		return "user." + name, true
	case ondisk.ExtattrNamespaceSystem:
		return "trusted." + name, true
	}
	return "", false
}
