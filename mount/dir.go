package mount

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// dirBatch is how many entries a directory handle reads from the engine
// at a time.
const dirBatch = 256

// dirHandle is an open directory. Entries are read in batches with
// ufs.FS.ReadDirAt; each entry's d_off is the byte offset of the next one
// in the directory (Dirent.Next), so telldir/seekdir and a READDIR the
// kernel restarts at any offset work without keeping state.
type dirHandle struct {
	n   *node
	ref bool // holds an engine reference (read-write mounts)

	// mu protects the fields below (go-fuse already serialises calls on
	// one handle; the lock keeps the race detector's view simple).
	mu   sync.Mutex
	off  int64        // where the next batch starts
	buf  []ufs.Dirent // entries read but not yet returned
	eof  bool
	last ufs.Dirent // the entry Readdirent returned last
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileLookuper     = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
)

// OpendirHandle opens a directory; on a read-write mount the handle holds
// an engine reference, so a directory removed while open reads as empty
// rather than vanishing.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ino := n.ino()
	if _, err := n.m.eng.Stat(ino); err != nil {
		return nil, 0, n.m.errno("opendir", uint64(ino), err)
	}
	d := &dirHandle{n: n}
	if n.m.weng != nil {
		if err := n.m.ref(ino); err != nil {
			return nil, 0, n.m.errno("opendir", uint64(ino), err)
		}
		d.ref = true
	}
	return d, 0, 0
}

func (d *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	if d.ref {
		d.n.m.unref(d.n.ino())
	}
}

// Readdirent returns the next entry, or nil at the end.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if len(d.buf) == 0 {
			if d.eof {
				return nil, 0
			}
			if errno := d.fill(); errno != 0 {
				return nil, errno
			}
			continue
		}
		e := d.buf[0]
		d.buf = d.buf[1:]
		mode := fileMode(e.Type)
		if e.Type == ondisk.DTWht {
			continue // a whiteout (union mounts) is no file
		}
		if mode == 0 {
			st, err := d.n.m.eng.Stat(e.Ino)
			if err != nil {
				return nil, d.n.m.errno("readdir", uint64(e.Ino), err)
			}
			mode = uint32(st.Type())
		}
		d.last = e
		return &fuse.DirEntry{Name: e.Name, Ino: uint64(e.Ino), Mode: mode, Off: uint64(e.Next)}, 0
	}
}

// fill reads the next batch of entries.
// Preconditions: d.mu held.
func (d *dirHandle) fill() syscall.Errno {
	d.buf = d.buf[:0]
	err := d.n.m.eng.ReadDirAt(d.n.ino(), d.off, func(e ufs.Dirent) bool {
		d.buf = append(d.buf, e)
		return len(d.buf) < dirBatch
	})
	if err != nil {
		return d.n.m.errno("readdir", uint64(d.n.ino()), err)
	}
	if len(d.buf) < dirBatch {
		d.eof = true
	}
	if len(d.buf) > 0 {
		d.off = d.buf[len(d.buf)-1].Next
	}
	return 0
}

// Seekdir restarts the listing at offset off, a d_off given out earlier
// (or 0).
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off > 1<<62 {
		return syscall.EINVAL
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.off, d.buf, d.eof = int64(off), d.buf[:0], false
	return 0
}

// Lookup answers READDIRPLUS's lookup of the entry just returned from the
// inode number it carries, without scanning the directory again; any
// other name goes through the directory.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	if last.Name == name && last.Ino != 0 {
		return d.n.m.newChild(ctx, &d.n.Inode, last.Ino, out)
	}
	return d.n.Lookup(ctx, name, out)
}

// Fsyncdir writes the directory's blocks and inode.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if d.n.m.weng == nil {
		return 0 // nothing is ever dirty
	}
	return d.n.m.errno("fsyncdir", uint64(d.n.ino()), d.n.m.weng.Fsync(d.n.ino(), flags&1 != 0))
}
