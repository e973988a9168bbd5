package mount

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// WriteEngine is what a read-write mount needs beyond Engine. A mount of
// an engine that lacks it is read-only.
type WriteEngine interface {
	Engine
	Create(dir ondisk.Ino, name string, mode uint16, uid, gid uint32) (ondisk.Ino, error)
	Mknod(dir ondisk.Ino, name string, mode uint16, uid, gid uint32, rdev uint64) (ondisk.Ino, error)
	Mkdir(dir ondisk.Ino, name string, mode uint16, uid, gid uint32) (ondisk.Ino, error)
	Symlink(dir ondisk.Ino, name, target string, uid, gid uint32) (ondisk.Ino, error)
	Link(ino, dir ondisk.Ino, name string) error
	Unlink(dir ondisk.Ino, name string) error
	Rmdir(dir ondisk.Ino, name string) error
	Rename(odir ondisk.Ino, oname string, ndir ondisk.Ino, nname string, flags ufs.RenameFlags) error
	Setattr(ino ondisk.Ino, a ufs.SetAttr) (ufs.Stat, error)
	WriteAt(ino ondisk.Ino, p []byte, off int64) (int, error)
	Truncate(ino ondisk.Ino, size uint64) error
	Fallocate(ino ondisk.Ino, off, length int64, keepSize bool) error
	PunchHole(ino ondisk.Ino, off, length int64) error
	Fsync(ino ondisk.Ino, dataOnly bool) error
	Sync() error
	SetXattr(ino ondisk.Ino, ns uint8, name string, value []byte, flags ufs.XattrFlags) error
	RemoveXattr(ino ondisk.Ino, ns uint8, name string) error
	// Ref and Unref bracket every open file: an inode unlinked while
	// referenced lives until the last Unref.
	Ref(ino ondisk.Ino) error
	Unref(ino ondisk.Ino)
}

var _ WriteEngine = (*ufs.FS)(nil)

// refs counts the engine references this mount holds, so that whatever a
// vanished connection left behind is dropped before the engine closes.
type refs struct {
	mu sync.Mutex
	n  map[ondisk.Ino]int
}

func (m *mountFS) ref(ino ondisk.Ino) error {
	if err := m.weng.Ref(ino); err != nil {
		return err
	}
	m.refs.mu.Lock()
	m.refs.n[ino]++
	m.refs.mu.Unlock()
	return nil
}

func (m *mountFS) unref(ino ondisk.Ino) {
	m.refs.mu.Lock()
	if m.refs.n[ino] <= 0 {
		m.refs.mu.Unlock()
		m.log.Error("release of an inode this mount holds no reference on", "op", "release", "ino", uint64(ino))
		return
	}
	m.refs.n[ino]--
	if m.refs.n[ino] == 0 {
		delete(m.refs.n, ino)
	}
	m.refs.mu.Unlock()
	m.weng.Unref(ino)
}

// dropRefs releases every reference still held (after the connection
// ended).
func (m *mountFS) dropRefs() {
	if m.weng == nil {
		return
	}
	m.refs.mu.Lock()
	left := m.refs.n
	m.refs.n = map[ondisk.Ino]int{}
	m.refs.mu.Unlock()
	for ino, k := range left {
		for range k {
			m.weng.Unref(ino)
		}
	}
}

// fileHandle is an open regular file of a read-write mount: it holds an
// engine reference so that the file outlives its last name.
type fileHandle struct {
	n    *node
	once sync.Once
}

var (
	_ fs.FileReleaser = (*fileHandle)(nil)
	_ fs.FileFlusher  = (*fileHandle)(nil)
)

func (f *fileHandle) Release(ctx context.Context) syscall.Errno {
	defer f.n.m.writeOp()()
	f.once.Do(func() { f.n.m.unref(f.n.ino()) })
	return 0
}

// Flush is close(2); the data is already with the engine.
func (f *fileHandle) Flush(ctx context.Context) syscall.Errno { return 0 }

// newInode is what a new inode in a directory gets: owner, permission
// bits, and the ACLs inherited from the directory's default ACL.
type newInode struct {
	uid, gid uint32
	perm     uint16
	access   []byte // FreeBSD form of the access ACL to store, or nil
	dflt     []byte // default ACL to copy (new directories), or nil
}

// plan works out a new inode of type and permission bits mode in
// directory n, as a Linux filesystem with POSIX ACLs does:
//
//   - owner: the caller's uid and gid, or the directory's gid when the
//     directory is set-group-ID (System V semantics, Linux's default); a
//     new directory there is set-group-ID too;
//   - permissions: with a default ACL on the directory, the mode is masked
//     by it and the ACL becomes the new inode's access ACL (stored only if
//     it says more than the mode), and a new directory inherits the
//     default ACL; without one, the caller's umask applied (umaskFS: the
//     mount asks the kernel not to apply it itself, FUSE_DONT_MASK, since
//     it must not when a default ACL exists).
func (n *node) plan(ctx context.Context, mode uint32) (newInode, syscall.Errno) {
	var ni newInode
	ni.perm = uint16(mode & 0o7777)
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return ni, syscall.EIO
	}
	ni.uid, ni.gid = c.Uid, c.Gid
	dir := n.ino()
	st, err := n.m.eng.Stat(dir)
	if err != nil {
		return ni, n.m.errno("create", uint64(dir), err)
	}
	isDir := mode&unix.S_IFMT == unix.S_IFDIR
	if st.Mode&ondisk.ISGID != 0 {
		ni.gid = st.GID
		if isDir {
			ni.perm |= ondisk.ISGID
		}
	}
	if mode&unix.S_IFMT == unix.S_IFLNK {
		return ni, 0 // symlinks are 0777, whatever the umask and ACLs
	}
	var dflt []aclEntry
	if !n.m.noACL {
		raw, err := n.m.eng.GetXattr(dir, ondisk.ExtattrNamespaceSystem, bsdACLDefaultName)
		switch {
		case errors.Is(err, ufs.ErrNoAttr):
		case err != nil:
			return ni, n.m.errno("create", uint64(dir), err)
		default:
			if dflt, err = decodeOldACL(raw); err == nil {
				err = checkACL(dflt)
			}
			if err != nil {
				return ni, n.m.errno("create", uint64(dir), fmt.Errorf("%w: directory %d: default ACL: %w", ufs.ErrCorrupt, dir, err))
			}
			if isDir && len(dflt) > 0 {
				ni.dflt = raw
			}
		}
	}
	if len(dflt) == 0 {
		return ni, 0 // umaskFS applied the umask
	}
	perm, needed := aclCreateMasq(dflt, ni.perm&0o777)
	ni.perm = ni.perm&0o7000 | perm
	if needed {
		raw, err := encodeOldACL(dflt)
		if err != nil {
			return ni, n.m.errno("create", uint64(dir), err)
		}
		ni.access = raw
	}
	return ni, 0
}

// umaskFS wraps the node API's raw filesystem to apply the caller's umask
// to CREATE, MKDIR and MKNOD, which carry it, when the parent directory
// has no default ACL; with one, the ACL masks the mode instead (node.plan).
// The kernel leaves both to the filesystem (FUSE_DONT_MASK).
type umaskFS struct {
	fuse.RawFileSystem
	m *mountFS
}

func (u *umaskFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	in.Mode = u.m.umask(in.NodeId, in.Mode, in.Umask)
	return u.RawFileSystem.Create(cancel, in, name, out)
}

func (u *umaskFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	in.Mode = u.m.umask(in.NodeId, in.Mode, in.Umask)
	return u.RawFileSystem.Mkdir(cancel, in, name, out)
}

func (u *umaskFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	in.Mode = u.m.umask(in.NodeId, in.Mode, in.Umask)
	return u.RawFileSystem.Mknod(cancel, in, name, out)
}

// umask returns mode with umask applied, unless directory nodeID has a
// default ACL.
func (m *mountFS) umask(nodeID uint64, mode, umask uint32) uint32 {
	if !m.noACL {
		dir := m.eng.Root()
		if nodeID != fuse.FUSE_ROOT_ID {
			dir = ondisk.Ino(nodeID)
		}
		if _, err := m.eng.GetXattr(dir, ondisk.ExtattrNamespaceSystem, bsdACLDefaultName); err == nil {
			return mode
		}
	}
	return mode &^ (umask & 0o777)
}

// inherit stores the ACLs plan worked out on new inode ino.
func (n *node) inherit(op string, ino ondisk.Ino, ni newInode) syscall.Errno {
	for _, a := range []struct {
		name string
		raw  []byte
	}{{bsdACLAccessName, ni.access}, {bsdACLDefaultName, ni.dflt}} {
		if a.raw == nil {
			continue
		}
		if err := n.m.weng.SetXattr(ino, ondisk.ExtattrNamespaceSystem, a.name, a.raw, ufs.XattrFlags{}); err != nil {
			return n.m.errno(op, uint64(ino), err)
		}
	}
	return 0
}

// created finishes an operation that made inode ino: it fills out and
// returns the new node.
func (n *node) created(ctx context.Context, op string, ino ondisk.Ino, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	st, err := n.m.eng.Stat(ino)
	if err != nil {
		return nil, n.m.errno(op, uint64(ino), err)
	}
	n.m.fillAttr(&out.Attr, &st)
	id := fs.StableAttr{Mode: uint32(st.Type()), Ino: uint64(ino), Gen: uint64(st.Gen)}
	return n.NewInode(ctx, &node{m: n.m}, id), 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return nil, nil, 0, syscall.EROFS
	}
	ni, errno := n.plan(ctx, mode|unix.S_IFREG)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	ino, err := n.m.weng.Create(n.ino(), name, ni.perm, ni.uid, ni.gid)
	switch {
	case errors.Is(err, ufs.ErrExist) && flags&syscall.O_EXCL == 0:
		// Created by someone else since the kernel looked: open it.
		ino, err = n.m.eng.Lookup(n.ino(), name)
	case err == nil:
		if errno := n.inherit("create", ino, ni); errno != 0 {
			return nil, nil, 0, errno
		}
	}
	if err != nil {
		return nil, nil, 0, n.m.errno("create", uint64(n.ino()), err)
	}
	child, errno := n.created(ctx, "create", ino, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	cn := child.Operations().(*node)
	if err := n.m.ref(ino); err != nil {
		return nil, nil, 0, n.m.errno("create", uint64(ino), err)
	}
	return child, &fileHandle{n: cn}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return nil, syscall.EROFS
	}
	ni, errno := n.plan(ctx, mode|unix.S_IFDIR)
	if errno != 0 {
		return nil, errno
	}
	ino, err := n.m.weng.Mkdir(n.ino(), name, ni.perm, ni.uid, ni.gid)
	if err != nil {
		return nil, n.m.errno("mkdir", uint64(n.ino()), err)
	}
	if errno := n.inherit("mkdir", ino, ni); errno != 0 {
		return nil, errno
	}
	return n.created(ctx, "mkdir", ino, out)
}

// freeBSDMakedevFromLinux turns a Linux dev_t (as mknod(2) passes it) into
// FreeBSD's encoding for di_rdev.
func freeBSDMakedevFromLinux(dev uint32) uint64 {
	major, minor := unix.Major(uint64(dev)), unix.Minor(uint64(dev))
	return uint64(major&0xffffff00)<<32 | uint64(major&0xff)<<8 |
		uint64(minor&0xff00)<<24 | uint64(minor&0xffff00ff)
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return nil, syscall.EROFS
	}
	ni, errno := n.plan(ctx, mode)
	if errno != 0 {
		return nil, errno
	}
	var rdev uint64
	typ := uint16(mode & unix.S_IFMT)
	switch typ {
	case ondisk.IFCHR, ondisk.IFBLK:
		rdev = freeBSDMakedevFromLinux(dev)
	case ondisk.IFIFO, ondisk.IFSOCK, ondisk.IFREG:
	case 0:
		typ = ondisk.IFREG
	default:
		return nil, syscall.EINVAL
	}
	ino, err := n.m.weng.Mknod(n.ino(), name, typ|ni.perm, ni.uid, ni.gid, rdev)
	if err != nil {
		return nil, n.m.errno("mknod", uint64(n.ino()), err)
	}
	if errno := n.inherit("mknod", ino, ni); errno != 0 {
		return nil, errno
	}
	return n.created(ctx, "mknod", ino, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return nil, syscall.EROFS
	}
	ni, errno := n.plan(ctx, unix.S_IFLNK|0o777)
	if errno != 0 {
		return nil, errno
	}
	ino, err := n.m.weng.Symlink(n.ino(), name, target, ni.uid, ni.gid)
	if err != nil {
		return nil, n.m.errno("symlink", uint64(n.ino()), err)
	}
	return n.created(ctx, "symlink", ino, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return nil, syscall.EROFS
	}
	ino := ondisk.Ino(target.EmbeddedInode().StableAttr().Ino)
	if err := n.m.weng.Link(ino, n.ino(), name); err != nil {
		return nil, n.m.errno("link", uint64(ino), err)
	}
	return n.created(ctx, "link", ino, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return syscall.EROFS
	}
	return n.m.errno("unlink", uint64(n.ino()), n.m.weng.Unlink(n.ino(), name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return syscall.EROFS
	}
	return n.m.errno("rmdir", uint64(n.ino()), n.m.weng.Rmdir(n.ino(), name))
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return 0, syscall.EROFS
	}
	if err := n.m.eng.WaitResident(ctx, n.ino(), 0, -1); err != nil {
		return 0, n.m.errno("write", uint64(n.ino()), err)
	}
	k, err := n.m.weng.WriteAt(n.ino(), data, off)
	if err != nil && k == 0 {
		return 0, n.m.errno("write", uint64(n.ino()), err)
	}
	return uint32(k), 0
}

// Allocate is fallocate(2): mode 0 and FALLOC_FL_KEEP_SIZE allocate; UFS
// cannot punch holes or collapse ranges.
func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return syscall.EROFS
	}
	if off > 1<<62 || size > 1<<62 {
		return syscall.EFBIG
	}
	keep := mode&unix.FALLOC_FL_KEEP_SIZE != 0
	var err error
	switch mode &^ unix.FALLOC_FL_KEEP_SIZE {
	case 0:
		err = n.m.weng.Fallocate(n.ino(), int64(off), int64(size), keep)
	case unix.FALLOC_FL_PUNCH_HOLE:
		// Linux requires KEEP_SIZE with PUNCH_HOLE.
		if !keep {
			return syscall.EOPNOTSUPP
		}
		err = n.m.weng.PunchHole(n.ino(), int64(off), int64(size))
	case unix.FALLOC_FL_ZERO_RANGE:
		// Zeros that stay allocated: the blocks freed, then allocated
		// again zero-filled (and the size grown unless KEEP_SIZE).
		if err = n.m.weng.PunchHole(n.ino(), int64(off), int64(size)); err == nil {
			err = n.m.weng.Fallocate(n.ino(), int64(off), int64(size), keep)
		}
	default:
		return syscall.EOPNOTSUPP
	}
	return n.m.errno("fallocate", uint64(n.ino()), err)
}

// Fsync writes the file's data and inode (flags bit 0: fdatasync).
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.m.weng == nil {
		return 0 // nothing is ever dirty
	}
	return n.m.errno("fsync", uint64(n.ino()), n.m.weng.Fsync(n.ino(), flags&1 != 0))
}

// Rename is rename(2) and renameat2(2) with RENAME_NOREPLACE and
// RENAME_EXCHANGE; RENAME_WHITEOUT has no meaning here.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return syscall.EROFS
	}
	if flags&^(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE) != 0 {
		return syscall.EINVAL
	}
	rf := ufs.RenameFlags{NoReplace: flags&unix.RENAME_NOREPLACE != 0, Exchange: flags&unix.RENAME_EXCHANGE != 0}
	ndir := ondisk.Ino(newParent.EmbeddedInode().StableAttr().Ino)
	return n.m.errno("rename", uint64(n.ino()), n.m.weng.Rename(n.ino(), name, ndir, newName, rf))
}

// Setattr is chmod, chown, truncate and utimensat. The kernel has checked
// the caller's permissions (default_permissions) and clears setuid and
// setgid bits itself where POSIX asks.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return syscall.EROFS
	}
	var a ufs.SetAttr
	if m, ok := in.GetMode(); ok {
		mode := uint16(m & 0o7777)
		a.Mode = &mode
	}
	if uid, ok := in.GetUID(); ok {
		a.UID = &uid
	}
	if gid, ok := in.GetGID(); ok {
		a.GID = &gid
	}
	if size, ok := in.GetSize(); ok {
		a.Size = &size
	}
	if in.Valid&fuse.FATTR_ATIME != 0 {
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			a.AtimeNow = true
		} else if t, ok := in.GetATime(); ok {
			a.Atime = &t
		}
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			a.MtimeNow = true
		} else if t, ok := in.GetMTime(); ok {
			a.Mtime = &t
		}
	}
	st, err := n.m.weng.Setattr(n.ino(), a)
	if err != nil {
		return n.m.errno("setattr", uint64(n.ino()), err)
	}
	n.m.fillAttr(&out.Attr, &st)
	return 0
}

// setACL stores a POSIX ACL from its Linux form. For the access ACL the
// mode takes the owner, group-or-mask and other permissions; an access ACL
// that says no more than the mode is not stored at all (as Linux
// filesystems do), and neither is an empty default ACL.
func (n *node) setACL(ino ondisk.Ino, x xattrName, data []byte, xf ufs.XattrFlags) syscall.Errno {
	st, err := n.m.eng.Stat(ino)
	if err != nil {
		return n.m.errno("setxattr", uint64(ino), err)
	}
	if x.acl == defaultACL && !st.IsDir() {
		return syscall.EACCES // Linux's answer for a default ACL on a file
	}
	raw, perm, err := aclFromLinux(data)
	if err != nil {
		return syscall.EINVAL
	}
	entries, _ := decodeOldACL(raw)
	minimal := len(entries) <= 3
	if minimal {
		err = n.m.weng.RemoveXattr(ino, x.ns, x.name)
		if errors.Is(err, ufs.ErrNoAttr) {
			err = nil
		}
	} else {
		err = n.m.weng.SetXattr(ino, x.ns, x.name, raw, xf)
	}
	if err != nil {
		return n.m.errno("setxattr", uint64(ino), err)
	}
	if x.acl == accessACL && len(entries) > 0 {
		mode := st.Mode&0o7000 | perm
		if _, err := n.m.weng.Setattr(ino, ufs.SetAttr{Mode: &mode}); err != nil {
			return n.m.errno("setxattr", uint64(ino), err)
		}
	}
	return 0
}

// Setxattr stores an attribute; see xattr.go for the names. A POSIX ACL
// is converted to FreeBSD's form and its owner, group (or mask) and other
// permissions become the mode's, as ufs_setacl does.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return syscall.EROFS
	}
	x, ok := parseXattrName(attr)
	if !ok {
		return syscall.EOPNOTSUPP
	}
	ino := n.ino()
	var xf ufs.XattrFlags
	xf.Create = flags&unix.XATTR_CREATE != 0
	xf.Replace = flags&unix.XATTR_REPLACE != 0
	if x.acl != noACL {
		return n.setACL(ino, x, data, xf)
	}
	return n.m.errno("setxattr", uint64(ino), n.m.weng.SetXattr(ino, x.ns, x.name, data, xf))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	defer n.m.writeOp()()
	if n.m.weng == nil {
		return syscall.EROFS
	}
	x, ok := parseXattrName(attr)
	if !ok {
		return syscall.ENODATA
	}
	return n.m.errno("removexattr", uint64(n.ino()), n.m.weng.RemoveXattr(n.ino(), x.ns, x.name))
}

// writeOp holds off a snapshot's creation for the length of a request that
// changes the filesystem; it returns the release.
func (m *mountFS) writeOp() func() {
	m.writes.RLock()
	return m.writes.RUnlock
}
