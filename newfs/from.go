package newfs

// Filling a filesystem from a host directory tree: newfs --from, and the
// core of tools.Put (which sits above this package and calls it).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// ErrHost wraps host-side failures of copying a tree in (a file that
// cannot be read, a directory that cannot be listed), as opposed to errors
// of the filesystem being written.
var ErrHost = errors.New("newfs: host file error")

// CopyOptions tunes a Copier.
type CopyOptions struct {
	// Warn, if set, receives each non-fatal problem as it happens (an
	// extended attribute with no FreeBSD namespace, one the filesystem
	// refused); they are also in CopyResult.Warnings.
	Warn func(error)
}

// CopyResult counts what a Copier made.
type CopyResult struct {
	Dirs, Files, Symlinks, Specials, HardLinks int
	Bytes                                      int64 // file data written (holes and zero blocks excluded)
	Warnings                                   []error
}

// hostKey names a host inode, to find the second name of a hard link.
type hostKey struct{ dev, ino uint64 }

// A Copier copies host files and trees into an open, writable filesystem,
// as makefs and mke2fs -d do:
//
//   - regular files with their contents; holes of the host file (found
//     with SEEK_DATA and SEEK_HOLE) and whole filesystem blocks of zeros
//     are not written, so they become holes, and the size is set with
//     Truncate;
//   - directories, symlinks (fast or slow as their length decides), block
//     and character devices (Linux device numbers re-encoded as FreeBSD's
//     dev_t), fifos and sockets;
//   - permission bits including setuid, setgid and sticky; owner and group
//     (the host's numbers); atime and mtime to the nanosecond (symlinks'
//     own times too; birth times become the mtime when that is older than
//     the copy, by the UFS2 paper's utimes rule);
//   - hard links: a second name of a host inode already copied by this
//     Copier becomes ufs.Link to the first copy;
//   - extended attributes: Linux "user.NAME" goes to FreeBSD's user
//     namespace, "trusted.NAME" to the system namespace (the mapping
//     tools.Get reverses); others (security.*, POSIX ACLs in system.*)
//     have no place and are skipped with a warning, as are attributes the
//     filesystem refuses (device nodes take none).
//
// A name that exists in the filesystem is replaced: a non-directory is
// unlinked first (like tar and rsync, not rewritten in place), a directory
// copied onto a directory is merged into it and takes the source's
// attributes (extended attributes the source lacks stay); a non-directory
// onto a directory is an error (ErrIsDir).
// Not copied: chattr flags, file birth times and ctimes (Linux gives no way
// to read the one or set the other).
//
// Host files are read with O_NOATIME where the host allows, so copying
// does not change the source's atime. A Copier is not safe for concurrent
// use.
type Copier struct {
	fs    *ufs.FS
	opts  CopyOptions
	res   CopyResult
	links map[hostKey]ondisk.Ino
	bsize int
	buf   []byte
	zero  []byte
}

// NewCopier returns a Copier writing into fsys.
func NewCopier(fsys *ufs.FS, opts CopyOptions) *Copier {
	sb := fsys.Superblock()
	bs := int(sb.Bsize)
	if bs <= 0 {
		bs = 32768
	}
	return &Copier{fs: fsys, opts: opts, links: map[hostKey]ondisk.Ino{}, bsize: bs}
}

// Result returns what the Copier has made so far.
func (c *Copier) Result() CopyResult { return c.res }

func (c *Copier) warn(err error) {
	c.res.Warnings = append(c.res.Warnings, err)
	if c.opts.Warn != nil {
		c.opts.Warn(err)
	}
}

func hostErr(op, p string, err error) error {
	return fmt.Errorf("%w: %s %s: %w", ErrHost, op, p, err)
}

// Populate fills the root directory of fsys from host directory dir, as
// newfs --from does: dir's contents become the root's, and the root takes
// dir's mode, owner, times and extended attributes. Entries already in the
// root (/.snap) are merged or replaced as Copier describes.
func Populate(ctx context.Context, fsys *ufs.FS, dir string, opts CopyOptions) (CopyResult, error) {
	c := NewCopier(fsys, opts)
	err := c.Fill(ctx, dir, fsys.Root(), "/")
	return c.Result(), err
}

// Fill copies the contents of host directory src into directory dir of
// the filesystem (named at for messages) and then gives dir src's
// attributes.
func (c *Copier) Fill(ctx context.Context, src string, dir ondisk.Ino, at string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return hostErr("lstat", src, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return hostErr("fill from", src, unix.ENOTDIR)
	}
	return c.fillDir(ctx, src, &st, dir, at)
}

// Entry copies host path src (not following a final symlink) to name in
// directory dir of the filesystem (dir named at for messages), replacing
// what is there, and returns the new entry's inode.
func (c *Copier) Entry(ctx context.Context, src string, dir ondisk.Ino, at, name string) (ondisk.Ino, error) {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return 0, hostErr("lstat", src, err)
	}
	return c.entry(ctx, src, &st, dir, path.Join(at, name), name)
}

func (c *Copier) entry(ctx context.Context, src string, st *unix.Stat_t, dir ondisk.Ino, at, name string) (ondisk.Ino, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	typ := st.Mode & unix.S_IFMT
	key := hostKey{uint64(st.Dev), st.Ino}
	old, err := c.fs.Lookup(dir, name)
	switch {
	case err == nil && typ != unix.S_IFDIR && st.Nlink > 1 && c.links[key] == old:
		return old, nil // already a link to this Copier's copy
	case err == nil:
		ost, err := c.fs.Stat(old)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", at, err)
		}
		if ost.IsDir() {
			if typ != unix.S_IFDIR {
				return 0, fmt.Errorf("%s: %w: cannot replace a directory with a non-directory", at, ufs.ErrIsDir)
			}
			return old, c.fillDir(ctx, src, st, old, at)
		}
		if err := c.fs.Unlink(dir, name); err != nil {
			return 0, fmt.Errorf("%s: %w", at, err)
		}
	case !errors.Is(err, ufs.ErrNotFound):
		return 0, fmt.Errorf("%s: %w", at, err)
	}

	if typ != unix.S_IFDIR && st.Nlink > 1 {
		if first, ok := c.links[key]; ok {
			if err := c.fs.Link(first, dir, name); err != nil {
				return 0, fmt.Errorf("%s: %w", at, err)
			}
			c.res.HardLinks++
			return first, nil
		}
	}

	perm := uint16(st.Mode & 0o7777)
	var ino ondisk.Ino
	switch typ {
	case unix.S_IFDIR:
		ino, err = c.fs.Mkdir(dir, name, perm, st.Uid, st.Gid)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", at, err)
		}
		return ino, c.fillDir(ctx, src, st, ino, at)
	case unix.S_IFREG:
		ino, err = c.fs.Create(dir, name, perm, st.Uid, st.Gid)
		if err == nil {
			err = c.copyData(ctx, src, st, ino, at)
		}
		c.res.Files++
	case unix.S_IFLNK:
		target, rerr := os.Readlink(src)
		if rerr != nil {
			return 0, hostErr("readlink", src, rerr)
		}
		ino, err = c.fs.Symlink(dir, name, target, st.Uid, st.Gid)
		c.res.Symlinks++
	case unix.S_IFCHR, unix.S_IFBLK:
		ftype := uint16(ondisk.IFCHR)
		if typ == unix.S_IFBLK {
			ftype = ondisk.IFBLK
		}
		ino, err = c.fs.Mknod(dir, name, ftype|perm, st.Uid, st.Gid, FreeBSDMakedev(unix.Major(st.Rdev), unix.Minor(st.Rdev)))
		c.res.Specials++
	case unix.S_IFIFO:
		ino, err = c.fs.Mknod(dir, name, ondisk.IFIFO|perm, st.Uid, st.Gid, 0)
		c.res.Specials++
	case unix.S_IFSOCK:
		ino, err = c.fs.Mknod(dir, name, ondisk.IFSOCK|perm, st.Uid, st.Gid, 0)
		c.res.Specials++
	default:
		return 0, hostErr("copy", src, fmt.Errorf("unknown file type 0%o", typ))
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", at, err)
	}
	if st.Nlink > 1 {
		c.links[key] = ino
	}
	return ino, c.attrs(src, st, ino, at, false)
}

// fillDir copies the entries of host directory src into directory dir,
// then sets dir's attributes (after the contents, which change its
// times).
func (c *Copier) fillDir(ctx context.Context, src string, st *unix.Stat_t, dir ondisk.Ino, at string) error {
	names, err := readDirNames(src)
	if err != nil {
		return hostErr("read directory", src, err)
	}
	c.res.Dirs++
	for _, n := range names {
		p := filepath.Join(src, n)
		var cst unix.Stat_t
		if err := unix.Lstat(p, &cst); err != nil {
			return hostErr("lstat", p, err)
		}
		if _, err := c.entry(ctx, p, &cst, dir, path.Join(at, n), n); err != nil {
			return err
		}
	}
	return c.attrs(src, st, dir, at, true)
}

// readDirNames lists host directory p in name order, with O_NOATIME where
// the host allows so that copying leaves the directory's atime alone.
func readDirNames(p string) ([]string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		f, err = os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY, 0)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// attrs sets extended attributes, then (with setOwner) mode and owner,
// and last the times of inode ino from the host's st. setOwner is false
// for inodes just made with the right mode and owner.
func (c *Copier) attrs(src string, st *unix.Stat_t, ino ondisk.Ino, at string, setOwner bool) error {
	if err := c.xattrs(src, ino, at); err != nil {
		return err
	}
	a := ufs.SetAttr{
		Atime: ptr(time.Unix(st.Atim.Sec, st.Atim.Nsec)),
		Mtime: ptr(time.Unix(st.Mtim.Sec, st.Mtim.Nsec)),
	}
	if setOwner {
		a.UID, a.GID = &st.Uid, &st.Gid
		a.Mode = ptr(uint16(st.Mode & 0o7777))
	}
	if _, err := c.fs.Setattr(ino, a); err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// xattrs copies the host's extended attributes of src onto ino.
func (c *Copier) xattrs(src string, ino ondisk.Ino, at string) error {
	names, err := listXattrs(src)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return hostErr("listxattr", src, err)
	}
	for _, n := range names {
		ns, name, ok := FreeBSDXattrName(n)
		if !ok {
			c.warn(fmt.Errorf("%s: extended attribute %s: no FreeBSD namespace for it; skipped", at, n))
			continue
		}
		val, err := getXattr(src, n)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue // removed meanwhile
			}
			return hostErr("getxattr "+n, src, err)
		}
		if err := c.fs.SetXattr(ino, ns, name, val, ufs.XattrFlags{}); err != nil {
			if errors.Is(err, ufs.ErrNotSupported) || errors.Is(err, ufs.ErrXattrSpace) ||
				errors.Is(err, ufs.ErrNameTooLong) || errors.Is(err, ufs.ErrInvalid) {
				c.warn(fmt.Errorf("%s: extended attribute %s: %w; skipped", at, n, err))
				continue
			}
			return fmt.Errorf("%s: setting extended attribute %s: %w", at, n, err)
		}
	}
	return nil
}

// FreeBSDXattrName maps a Linux extended attribute name to FreeBSD's
// namespace and name: "user.NAME" to the user namespace, "trusted.NAME"
// to the system namespace (tools.HostXattrName is the reverse). Other
// Linux namespaces have no mapping.
func FreeBSDXattrName(linux string) (ns uint8, name string, ok bool) {
	switch {
	case strings.HasPrefix(linux, "user.") && len(linux) > len("user."):
		return ondisk.ExtattrNamespaceUser, linux[len("user."):], true
	case strings.HasPrefix(linux, "trusted.") && len(linux) > len("trusted."):
		return ondisk.ExtattrNamespaceSystem, linux[len("trusted."):], true
	}
	return 0, "", false
}

// listXattrs returns the names of the extended attributes of p (not
// following a symlink).
func listXattrs(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Llistxattr(p, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+1024)
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range bytes.Split(buf[:n], []byte{0}) {
			if len(s) > 0 {
				names = append(names, string(s))
			}
		}
		return names, nil
	}
}

// getXattr returns the value of extended attribute name of p (not
// following a symlink).
func getXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Lgetxattr(p, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+256)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// FreeBSDMakedev encodes a major and minor device number as FreeBSD's
// dev_t (sys/types.h makedev), the form di_rdev holds.
func FreeBSDMakedev(major, minor uint32) uint64 {
	return uint64(major&0xffffff00)<<32 | uint64(major&0xff)<<8 |
		uint64(minor&0xff00)<<24 | uint64(minor&0xffff00ff)
}

// copyBuf is the largest read of host data at a time.
const copyBuf = 1 << 20

// copyData copies the data of host file src (st is its stat) into the
// new regular file ino: only the host's data regions, and within them only
// filesystem blocks that are not all zeros; the size is set at the end.
func (c *Copier) copyData(ctx context.Context, src string, st *unix.Stat_t, ino ondisk.Ino, at string) error {
	size := st.Size
	if size == 0 {
		return nil
	}
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_NOATIME|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(src, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return hostErr("open", src, err)
	}
	defer unix.Close(fd)
	if c.buf == nil {
		c.buf = make([]byte, copyBuf)
		c.zero = make([]byte, c.bsize)
	}
	var end int64 // end of the last write
	copyRange := func(from, to int64) error {
		for off := from; off < to; {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := int(min(int64(len(c.buf)), to-off))
			m, err := readFull(fd, c.buf[:n], off)
			if err != nil {
				return hostErr("read", src, err)
			}
			if m == 0 {
				return nil // the file shrank meanwhile
			}
			if err := c.writeNonZero(ino, c.buf[:m], off, &end); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
			off += int64(m)
		}
		return nil
	}
	if st.Blocks*512 >= size {
		// Fully allocated on the host: no holes to look for.
		err = copyRange(0, size)
	} else {
		err = dataRegions(fd, src, size, copyRange)
	}
	if err != nil {
		return err
	}
	if end < size {
		if err := c.fs.Truncate(ino, uint64(size)); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
	}
	return nil
}

// dataRegions calls fn for each data region of the open file fd (host
// path src) below size, as SEEK_DATA and SEEK_HOLE find them; a host
// filesystem without them gives the whole file as one region.
func dataRegions(fd int, src string, size int64, fn func(from, to int64) error) error {
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil
		}
		if errors.Is(err, unix.EINVAL) && off == 0 {
			return fn(0, size)
		}
		if err != nil {
			return hostErr("seek data", src, err)
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return hostErr("seek hole", src, err)
		}
		h = min(h, size)
		if d >= h {
			return nil
		}
		if err := fn(d, h); err != nil {
			return err
		}
		off = h
	}
	return nil
}

// readFull reads len(p) bytes at off, fewer only at the end of the file.
func readFull(fd int, p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pread(fd, p[done:], off+int64(done))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			break
		}
		done += n
	}
	return done, nil
}

// writeNonZero writes p, which sits at byte off of the file, skipping the
// filesystem blocks (aligned in the file) that are all zeros; *end
// becomes the end of the last write.
func (c *Copier) writeNonZero(ino ondisk.Ino, p []byte, off int64, end *int64) error {
	bs := int64(c.bsize)
	start := -1 // start in p of the pending run of non-zero blocks
	flush := func(to int) error {
		if start < 0 {
			return nil
		}
		n, err := c.fs.WriteAt(ino, p[start:to], off+int64(start))
		c.res.Bytes += int64(n)
		if err != nil {
			return err
		}
		*end = off + int64(to)
		start = -1
		return nil
	}
	for i := 0; i < len(p); {
		// The block of the file holding p[i] ends at blockEnd.
		blockEnd := int((off+int64(i))/bs*bs + bs - off)
		j := min(blockEnd, len(p))
		if bytes.Equal(p[i:j], c.zero[:j-i]) {
			if err := flush(i); err != nil {
				return err
			}
		} else if start < 0 {
			start = i
		}
		i = j
	}
	return flush(len(p))
}
