package mount

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// mountFS is the state one mount shares between its nodes.
type mountFS struct {
	eng   Engine
	weng  WriteEngine // eng when the mount is read-write, else nil
	log   *slog.Logger
	noACL bool   // -o noacl: no default ACL inheritance either
	bsize uint32 // st_blksize: the filesystem block size
	refs  refs
	// writes is held shared by every request that changes the
	// filesystem and exclusively by a snapshot's creation, which holds
	// writers off as FreeBSD's suspension does (control.go).
	writes sync.RWMutex
}

// node is one inode as go-fuse sees it. Its StableAttr carries the inode
// number (the FUSE node ID too, with fs.Options.ExternalNodeID) and di_gen,
// so that (node ID, generation) is a file handle valid across mounts.
type node struct {
	fs.Inode
	m *mountFS
}

var (
	_ fs.InodeEmbedder      = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeLookupNoder    = (*node)(nil)
	_ fs.NodeLookupParenter = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeStatxer        = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeLseeker        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
)

func (n *node) ino() ondisk.Ino { return ondisk.Ino(n.StableAttr().Ino) }

// newChild returns the go-fuse inode for ino, found under parent, and
// fills out. Directory entries naming the root or a reserved inode are
// corruption: the root has no other name, and go-fuse could not give it a
// second node.
func (m *mountFS) newChild(ctx context.Context, parent *fs.Inode, ino ondisk.Ino, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if ino <= m.eng.Root() {
		m.log.Error("directory entry names a reserved inode", "op", "lookup", "ino", uint64(parent.StableAttr().Ino), "target", uint64(ino))
		return nil, syscall.EIO
	}
	st, err := m.eng.Stat(ino)
	if err != nil {
		return nil, m.errno("lookup", uint64(ino), err)
	}
	m.fillAttr(&out.Attr, &st)
	id := fs.StableAttr{Mode: uint32(st.Type()), Ino: uint64(ino), Gen: uint64(st.Gen)}
	return parent.NewInode(ctx, &node{m: m}, id), 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ino, err := n.m.eng.Lookup(n.ino(), name)
	if err != nil {
		return nil, n.m.errno("lookup", uint64(n.ino()), err)
	}
	return n.m.newChild(ctx, &n.Inode, ino, out)
}

// LookupNode resolves a node ID with no path (an NFS file handle after a
// restart). Called on the root only; the kernel checks the generation.
func (n *node) LookupNode(ctx context.Context, id uint64, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if id > uint64(^ondisk.Ino(0)) {
		return nil, syscall.ESTALE
	}
	ino := ondisk.Ino(id)
	if ino == n.m.eng.Root() {
		return nil, syscall.ESTALE // the root is node 1, never looked up by number
	}
	st, err := n.m.eng.Stat(ino)
	if err != nil {
		if errors.Is(err, ufs.ErrNotFound) || errors.Is(err, ufs.ErrInvalid) {
			return nil, syscall.ESTALE
		}
		return nil, n.m.errno("lookupnode", id, err)
	}
	n.m.fillAttr(&out.Attr, &st)
	sa := fs.StableAttr{Mode: uint32(st.Type()), Ino: id, Gen: uint64(st.Gen)}
	return n.NewInode(ctx, &node{m: n.m}, sa), 0
}

// LookupParent finds the parent of a directory and the directory's name
// in it (NFS reconnecting a file handle).
func (n *node) LookupParent(ctx context.Context, out *fuse.EntryOut) (*fs.Inode, string, syscall.Errno) {
	me := n.ino()
	if !n.IsDir() || me == n.m.eng.Root() {
		return nil, "", syscall.ESTALE
	}
	pino, err := n.m.eng.Lookup(me, "..")
	if err != nil {
		return nil, "", n.m.errno("lookupparent", uint64(me), err)
	}
	var name string
	err = n.m.eng.ReadDirAt(pino, 0, func(d ufs.Dirent) bool {
		if d.Ino == me && d.Name != "." && d.Name != ".." {
			name = d.Name
			return false
		}
		return true
	})
	if err != nil {
		return nil, "", n.m.errno("lookupparent", uint64(pino), err)
	}
	if name == "" {
		return nil, "", syscall.ESTALE
	}
	if pino == n.m.eng.Root() {
		st, err := n.m.eng.Stat(pino)
		if err != nil {
			return nil, "", n.m.errno("lookupparent", uint64(pino), err)
		}
		n.m.fillAttr(&out.Attr, &st)
		return n.Root(), name, 0
	}
	p, errno := n.m.newChild(ctx, n.Root(), pino, out)
	return p, name, errno
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	st, err := n.m.eng.Stat(n.ino())
	if err != nil {
		return n.m.errno("getattr", uint64(n.ino()), err)
	}
	n.m.fillAttr(&out.Attr, &st)
	return 0
}

func (n *node) Statx(ctx context.Context, f fs.FileHandle, flags uint32, mask uint32, out *fuse.StatxOut) syscall.Errno {
	st, err := n.m.eng.Stat(n.ino())
	if err != nil {
		return n.m.errno("statx", uint64(n.ino()), err)
	}
	n.m.fillStatx(&out.Statx, &st)
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	target, err := n.m.eng.Readlink(n.ino())
	if err != nil {
		return nil, n.m.errno("readlink", uint64(n.ino()), err)
	}
	return []byte(target), 0
}

// Open opens a regular file. Every change to a file goes through the
// kernel on this mount (the device is locked against other writers), so
// the kernel's page cache of the file is never stale and is kept across
// opens (FOPEN_KEEP_CACHE; the mount also asks the kernel not to drop it
// when it sees a new mtime). On a read-write mount the handle holds an
// engine reference, so that an unlinked open file lives until closed.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ino := n.ino()
	if n.m.weng == nil && (flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0) {
		return nil, 0, syscall.EROFS
	}
	st, err := n.m.eng.Stat(ino)
	switch {
	case errors.Is(err, ufs.ErrNotFound) || err == nil && uint64(st.Gen) != n.StableAttr().Gen:
		// The kernel's node outlived its inode: another process removed
		// the last name between the lookup and this open, and the number
		// may already belong to a new file. ESTALE makes the kernel look
		// the name up again and retry (O_CREAT then creates), as a local
		// filesystem would have opened or created.
		return nil, 0, syscall.ESTALE
	case err != nil:
		return nil, 0, n.m.errno("open", uint64(ino), err)
	}
	if st.IsDir() {
		return nil, 0, syscall.EISDIR
	}
	if n.m.weng == nil {
		return nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	if err := n.m.ref(ino); err != nil {
		return nil, 0, n.m.errno("open", uint64(ino), err)
	}
	return &fileHandle{n: n}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if err := n.m.eng.WaitResident(ctx, n.ino(), off, off+int64(len(dest))); err != nil {
		return nil, n.m.errno("read", uint64(n.ino()), err)
	}
	k, err := n.m.eng.ReadAt(n.ino(), dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.m.errno("read", uint64(n.ino()), err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE (the kernel handles the others).
func (n *node) Lseek(ctx context.Context, f fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	if off > 1<<63-1 {
		return 0, syscall.ENXIO
	}
	var (
		res int64
		err error
	)
	switch whence {
	case unix.SEEK_DATA:
		res, err = n.m.eng.SeekData(n.ino(), int64(off))
	case unix.SEEK_HOLE:
		res, err = n.m.eng.SeekHole(n.ino(), int64(off))
	default:
		return 0, syscall.EINVAL
	}
	if err != nil {
		return 0, n.m.errno("lseek", uint64(n.ino()), err)
	}
	return uint64(res), 0
}

// Statfs reports the engine's numbers (FreeBSD's ffs_statfs): sizes in
// fragments, the minfree reserve kept out of f_bavail.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st := n.m.eng.Statfs()
	out.Blocks = st.Blocks
	out.Bfree = st.Bfree
	out.Bavail = uint64(max(st.Bavail, 0))
	out.Files = st.Files
	out.Ffree = st.Ffree
	out.Bsize = uint32(st.Iosize)
	out.Frsize = uint32(st.Bsize)
	out.NameLen = st.NameMax
	return 0
}
