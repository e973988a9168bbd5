package tools

// get: copy files out of an unmounted UFS2 filesystem to the host.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// GetOptions tunes Get.
type GetOptions struct {
	// NoOwners skips chown. Without it Get sets owners when it runs as
	// root and warns once otherwise.
	NoOwners bool
	// Force replaces host files (anything but directories) that a copied
	// non-directory lands on, as cp -f does. Without it such a file is
	// ErrHostExists and Get writes nothing.
	Force bool
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

// Empty reports whether nothing was made on the host.
func (r GetResult) Empty() bool {
	return r.Dirs+r.Files+r.Symlinks+r.Specials+r.HardLinks == 0
}

// String reads "2 directories, 5 files (1234 bytes), 1 symlink", naming
// only what there is.
func (r GetResult) String() string {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(r.Dirs, "directory", "directories")
	add(r.Files, "file", "files")
	if r.Files > 0 {
		parts[len(parts)-1] += fmt.Sprintf(" (%d bytes)", r.Bytes)
	}
	add(r.Symlinks, "symlink", "symlinks")
	add(r.Specials, "special file", "special files")
	add(r.HardLinks, "hard link", "hard links")
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

var (
	// ErrGetHost wraps host-side failures of Get (creating, writing or
	// linking files on the host), as opposed to errors reading the
	// filesystem.
	ErrGetHost = errors.New("tools: host file error")
	// ErrHostExists: a host file (not a directory) is where Get would put
	// a non-directory, and GetOptions.Force was not given.
	ErrHostExists = errors.New("exists on the host")
	// ErrHostKind: a host directory is where Get would put a
	// non-directory, or a host non-directory where it would put a
	// directory. Force does not replace either (cp refuses them too).
	ErrHostKind = errors.New("exists on the host as another kind of file")
)

// Get copies the file or tree at src in fsys to dest on the host, by
// cp -R's rules:
//
// If dest is an existing directory (or a symlink to one), the copy is
// dest/<base of src>; otherwise it is dest itself, made in its parent.
// The root has no name: "get / DIR" with DIR existing copies the root's
// contents into DIR. A directory that already exists where the copy puts a
// directory is entered and filled, its own mode, owner and times left as
// they are; whatever else exists on the host is never changed: a file in
// the way of a copied non-directory is ErrHostExists unless opts.Force
// (then it is replaced), and a directory in the way of a non-directory or
// a non-directory in the way of a directory is ErrHostKind. These are
// checked before anything is written, so a refused Get writes nothing.
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
// and when ctx is done; the GetResult returned with the error counts what
// it had made by then.
func Get(ctx context.Context, fsys *ufs.FS, src, dest string, opts GetOptions) (GetResult, error) {
	g := &getter{ctx: ctx, fs: fsys, opts: opts, links: map[ondisk.Ino]string{}, dirs: map[ondisk.Ino]string{},
		owners: !opts.NoOwners && os.Geteuid() == 0}
	ino, err := fsys.Namei(src)
	if err != nil {
		return g.res, fmt.Errorf("%s: %w", src, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return g.res, fmt.Errorf("%s: %w", src, err)
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		if base := path.Base(cleanPath(src)); base != "/" {
			dest = filepath.Join(dest, base)
		}
	}
	g.src, g.dest = cleanPath(src), dest
	if err := g.check(st, dest); err != nil {
		return g.res, err
	}
	if !opts.NoOwners && !g.owners {
		g.warn(fmt.Errorf("not running as root: file owners are not set"))
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
	dirs   map[ondisk.Ino]string // directories entered, by path (a cycle is corruption)
	buf    []byte
	// src and dest are the image path copied and its host destination:
	// errors of the image name the image path (inImage).
	src, dest string
}

// inImage is the image path that host path p (dest or below) copies.
func (g *getter) inImage(p string) string {
	rel, err := filepath.Rel(g.dest, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return path.Join(g.src, filepath.ToSlash(rel))
}

func (g *getter) warn(err error) {
	g.res.Warnings = append(g.res.Warnings, err)
	if g.opts.Warn != nil {
		g.opts.Warn(err)
	}
}

func hostErr(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // its path is path
	}
	return fmt.Errorf("%w: %s %s: %w", ErrGetHost, op, path, err)
}

// hostState is what the host has at a path a copy would land on.
type hostState int

const (
	hostAbsent   hostState = iota // nothing: the copy is made there
	hostDir                       // a directory where a directory goes: entered, left as it is
	hostReplaced                  // a file in the way, removed first (Force)
)

// landing says what the host has at p, where the copy of st goes, by
// Get's rules; an error is a conflict (ErrHostExists, ErrHostKind) or p
// that cannot be examined.
func (g *getter) landing(st ufs.Stat, p string) (hostState, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return hostAbsent, nil
	}
	if err != nil {
		return 0, hostErr("lstat", p, err)
	}
	switch {
	case st.IsDir() && fi.IsDir():
		return hostDir, nil
	case st.IsDir():
		return 0, fmt.Errorf("%s: %w: a %s where the copy has a directory", p, ErrHostKind, describeHost(fi))
	case fi.IsDir():
		return 0, fmt.Errorf("%s: %w: a directory where the copy has a %s", p, ErrHostKind, describeType(st.Type()))
	case !g.opts.Force:
		return 0, fmt.Errorf("%s: %w", p, ErrHostExists)
	}
	return hostReplaced, nil
}

// check walks the copy of st to p before anything is written and returns
// the first conflict with what the host has. Only trees that exist on the
// host are read: below a path the host lacks nothing can be in the way.
func (g *getter) check(st ufs.Stat, p string) error {
	if err := g.ctx.Err(); err != nil {
		return err
	}
	state, err := g.landing(st, p)
	if err != nil || state != hostDir {
		return err
	}
	kids, err := g.children(st, p)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := g.check(k.st, filepath.Join(p, k.name)); err != nil {
			return err
		}
	}
	return nil
}

// statChild is a directory entry of the image with its inode's attributes.
type statChild struct {
	name string
	st   ufs.Stat
}

// children lists directory st's entries but "." and "..", for host path p
// (in messages).
func (g *getter) children(st ufs.Stat, p string) ([]statChild, error) {
	type entry struct {
		name string
		ino  ondisk.Ino
	}
	var ents []entry
	err := g.fs.ReadDir(st.Ino, func(e ufs.Dirent) bool {
		if e.Name != "." && e.Name != ".." {
			ents = append(ents, entry{e.Name, e.Ino})
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.inImage(p), err)
	}
	kids := make([]statChild, 0, len(ents))
	for _, e := range ents {
		cst, err := g.fs.Stat(e.ino)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.inImage(filepath.Join(p, e.name)), err)
		}
		kids = append(kids, statChild{e.name, cst})
	}
	return kids, nil
}

// entry copies one inode to host path p, by landing's rules (which check
// has already applied to the whole tree; a conflict met here appeared
// since, and stops the copy).
func (g *getter) entry(st ufs.Stat, p string) error {
	if err := g.ctx.Err(); err != nil {
		return err
	}
	state, err := g.landing(st, p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return g.dir(st, p, state == hostDir)
	}
	if state == hostReplaced {
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
			return fmt.Errorf("%s: %w", g.inImage(p), err)
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
		return fmt.Errorf("%s: %w: unknown file type 0%o", g.inImage(p), ufs.ErrCorrupt, st.Type())
	}
	return g.attrs(st, p)
}

// dir copies directory st to p; existing says p was already a directory
// on the host, which is filled but keeps its own attributes.
func (g *getter) dir(st ufs.Stat, p string, existing bool) error {
	if at, ok := g.dirs[st.Ino]; ok {
		return fmt.Errorf("%s: %w: the directory %s again (a directory cycle)", g.inImage(p), ufs.ErrCorrupt, g.inImage(at))
	}
	g.dirs[st.Ino] = p
	if !existing {
		if err := os.Mkdir(p, 0o700); err != nil {
			return hostErr("mkdir", p, err)
		}
		g.res.Dirs++
	}
	kids, err := g.children(st, p)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := g.entry(k.st, filepath.Join(p, k.name)); err != nil {
			return err
		}
	}
	if existing {
		return nil
	}
	return g.attrs(st, p)
}

// describeHost names the kind of host file fi for a message.
func describeHost(fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device node"
	}
	return "special file"
}

// describeType names an inode's file type for a message.
func describeType(t uint16) string {
	switch t {
	case ondisk.IFREG:
		return "file"
	case ondisk.IFLNK:
		return "symlink"
	case ondisk.IFIFO:
		return "fifo"
	case ondisk.IFSOCK:
		return "socket"
	case ondisk.IFCHR, ondisk.IFBLK:
		return "device node"
	}
	return "special file"
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
		return fmt.Errorf("%s: %w", g.inImage(p), err)
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
				return fmt.Errorf("%s: reading %d bytes at %d: %w", g.inImage(p), n, off, err)
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
			return fmt.Errorf("%s: %w", g.inImage(p), err)
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
