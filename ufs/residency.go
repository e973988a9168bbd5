package ufs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ufs2/ufs2/ondisk"
)

// Residency: the one seam through which every read and write of file data
// passes, shared by data migration (dmfs: the data lives in an archive)
// and shadow migration (it lives in the old tree). A file made
// non-resident past a byte barrier keeps its size; its bytes below the
// barrier are read as usual, a read that reaches past it asks the file's
// Source for the range and waits until the barrier has moved past the end
// of the read, and a write, truncation or fallocate waits until the whole
// file is resident (the barrier at its size), as the DMFS paper's
// restore does. The source brings the data in with Fill, which does not
// wait, and moves the barrier with SetBarrier; at the size the file is
// resident again and forgotten here.
//
// What is kept here is the engine's in-memory view; the record that
// survives a remount (a system extended attribute) is the migration
// layer's, which calls MakeNonResident again when it opens the filesystem.
// A filesystem with no non-resident file pays one atomic load per read.

// Source supplies the data of files past their barriers.
type Source interface {
	// Fetch asks for bytes [off, end) of inode ino, which lie past its
	// barrier. It may bring them in at once (Fill, then SetBarrier) or
	// start that elsewhere and return; an error it returns, or one given
	// to FailFetch, fails the reads waiting for the range.
	Fetch(ino ondisk.Ino, off, end int64) error
}

// residency is one non-resident file. Guarded by FS.resMu.
type residency struct {
	barrier int64
	src     Source
	// moved is closed, and replaced, whenever the barrier moves or a
	// fetch fails; waiters then look again.
	moved chan struct{}
	err   error // the last failed fetch, for the waiters it woke
}

// residents is the FS's table of non-resident files.
type residents struct {
	// mu is inner to Inode.mu and never held across I/O or a call of a
	// Source.
	mu sync.Mutex
	m  map[ondisk.Ino]*residency
	n  atomic.Int64 // len(m), read without mu: the reads' fast path
}

// MakeNonResident records that the data of regular file ino past byte
// barrier lives with src from now on. The caller (the migration layer) has
// put it there first; the blocks past the barrier may be freed after.
func (fs *FS) MakeNonResident(ino ondisk.Ino, barrier int64, src Source) error {
	if barrier < 0 || src == nil {
		return fmt.Errorf("%w: inode %d: barrier %d, source %v", ErrInvalid, ino, barrier, src)
	}
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if t := ip.din.Type(); t != ondisk.IFREG {
		return fmt.Errorf("%w: inode %d is not a regular file (mode 0%o)", ErrInvalid, ino, ip.din.Mode)
	}
	if barrier >= int64(ip.din.Size) {
		return nil // nothing past it
	}
	r := &fs.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[ondisk.Ino]*residency)
	}
	if old := r.m[ino]; old != nil {
		old.barrier, old.src = min(old.barrier, barrier), src
		return nil
	}
	r.m[ino] = &residency{barrier: barrier, src: src, moved: make(chan struct{})}
	r.n.Add(1)
	return nil
}

// Barrier returns the barrier of inode ino and whether it is non-resident.
func (fs *FS) Barrier(ino ondisk.Ino) (int64, bool) {
	if fs.res.n.Load() == 0 {
		return 0, false
	}
	fs.res.mu.Lock()
	defer fs.res.mu.Unlock()
	if x := fs.res.m[ino]; x != nil {
		return x.barrier, true
	}
	return 0, false
}

// SetBarrier moves the barrier of inode ino up to b (never down): the reads
// waiting for bytes below b go on. At or past the file's size the file is
// resident again.
func (fs *FS) SetBarrier(ino ondisk.Ino, b int64) error {
	st, err := fs.Stat(ino)
	if err != nil {
		return err
	}
	r := &fs.res
	r.mu.Lock()
	defer r.mu.Unlock()
	x := r.m[ino]
	if x == nil || b <= x.barrier {
		return nil
	}
	x.barrier, x.err = b, nil
	close(x.moved)
	x.moved = make(chan struct{})
	if b >= int64(st.Size) {
		delete(r.m, ino)
		r.n.Add(-1)
	}
	return nil
}

// FailFetch fails the reads of inode ino waiting for data past its
// barrier with err (the archive could not be read); later reads ask the
// source again.
func (fs *FS) FailFetch(ino ondisk.Ino, err error) {
	r := &fs.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if x := r.m[ino]; x != nil {
		x.err = err
		close(x.moved)
		x.moved = make(chan struct{})
	}
}

// WaitResident waits until bytes [off, end) of inode ino are resident
// (end < 0: the whole file), asking its source for them, or until ctx is
// done. Reads and writes call it themselves; the mount calls it first
// with the request's context, so that an interrupted request stops
// waiting.
func (fs *FS) WaitResident(ctx context.Context, ino ondisk.Ino, off, end int64) error {
	asked := false
	for {
		if fs.res.n.Load() == 0 {
			return nil
		}
		want := end
		if want < 0 {
			st, err := fs.Stat(ino) // before res.mu: Inode.mu is outer
			if err != nil {
				return err
			}
			want = int64(st.Size)
		}
		r := &fs.res
		r.mu.Lock()
		x := r.m[ino]
		if x == nil {
			r.mu.Unlock()
			return nil
		}
		if want <= x.barrier {
			r.mu.Unlock()
			return nil
		}
		if asked && x.err != nil {
			err := x.err
			r.mu.Unlock()
			return fmt.Errorf("%w: inode %d: bringing in bytes %d to %d: %w", ErrFetch, ino, max(off, x.barrier), want, err)
		}
		moved, src, from := x.moved, x.src, max(off, x.barrier)
		r.mu.Unlock()
		if !asked {
			asked = true
			if err := src.Fetch(ino, from, want); err != nil {
				return fmt.Errorf("%w: inode %d: asking for bytes %d to %d: %w", ErrFetch, ino, from, want, err)
			}
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Fill writes p at off of inode ino for its source: past the barrier,
// without waiting for residency and without touching the file's times or
// size (the data was there all along).
func (fs *FS) Fill(ino ondisk.Ino, p []byte, off int64) error {
	ip, err := fs.openForWriteNoWait(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	size := int64(ip.din.Size)
	if off < 0 || off+int64(len(p)) > size {
		ip.mu.Unlock()
		return fmt.Errorf("%w: inode %d: filling %d bytes at %d past its size %d", ErrInvalid, ino, len(p), off, size)
	}
	_, err = fs.writeLocked(ip, p, off, int64(len(p)), false)
	if uerr := fs.iupdate(ip, orderDelayed); err == nil {
		err = uerr
	}
	ip.mu.Unlock()
	fs.maybeFlush()
	return err
}
