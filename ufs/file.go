package ufs

import (
	"context"
	"fmt"
	"io"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
)

// File writes: ffs_write over balloc, truncation, preallocation.

// openForWrite gets inode ino referenced and locked exclusively, checked
// to be a live regular file, once it is wholly resident (residency.go).
// The caller unlocks and releases it.
func (fs *FS) openForWrite(ino ondisk.Ino) (*Inode, error) {
	if err := fs.writable(); err != nil {
		return nil, err
	}
	if err := fs.WaitResident(context.Background(), ino, 0, -1); err != nil {
		return nil, err
	}
	return fs.openForWriteNoWait(ino)
}

// openForWriteNoWait is openForWrite without waiting for residency: for the
// source that brings the data in (Fill).
func (fs *FS) openForWriteNoWait(ino ondisk.Ino) (*Inode, error) {
	if err := fs.writable(); err != nil {
		return nil, err
	}
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return nil, err
	}
	ip.mu.Lock()
	err = nil
	switch t := ip.din.Type(); {
	case ip.gone.Load() || ip.din.Mode == 0:
		err = fmt.Errorf("%w: inode %d: %w", ErrNotFound, ino, errFree)
	case t == ondisk.IFDIR:
		err = fmt.Errorf("%w: inode %d", ErrIsDir, ino)
	case t != ondisk.IFREG:
		err = fmt.Errorf("%w: inode %d is not a regular file (mode 0%o)", ErrInvalid, ino, ip.din.Mode)
	}
	if err != nil {
		ip.mu.Unlock()
		ip.Release()
		return nil, err
	}
	return ip, nil
}

// WriteAt writes p at byte off of regular file ino, allocating blocks as
// needed (the skipped ranges stay holes) and growing the file. It returns
// the bytes written; fewer than len(p) only with an error (ErrNoSpace,
// ErrTooBig). An immutable file gives ErrPerm, and so does an append-only
// one unless off is its size.
func (fs *FS) WriteAt(ino ondisk.Ino, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: inode %d: negative offset %d", ErrInvalid, ino, off)
	}
	ip, err := fs.openForWrite(ino)
	if err != nil {
		return 0, err
	}
	defer ip.Release()
	n, err := fs.writeAtLocked(ip, p, off)
	ip.mu.Unlock()
	fs.maybeFlush()
	return n, err
}

func (fs *FS) writeAtLocked(ip *Inode, p []byte, off int64) (int, error) {
	d := &ip.din
	switch {
	case d.Flags&flagImmutable != 0:
		return 0, fmt.Errorf("%w: inode %d is immutable", ErrPerm, ip.ino)
	case d.Flags&flagAppend != 0 && off != int64(d.Size):
		return 0, fmt.Errorf("%w: inode %d is append-only", ErrPerm, ip.ino)
	case len(p) == 0:
		return 0, nil
	}
	var tooBig error
	if max := fs.sb.Maxfilesize; max != 0 && uint64(off)+uint64(len(p)) > max {
		tooBig = fmt.Errorf("%w: inode %d: %d bytes at %d pass the maximum file size %d", ErrTooBig, ip.ino, len(p), off, max)
		if uint64(off) >= max {
			return 0, tooBig
		}
		p = p[:max-uint64(off)]
	}
	n, err := fs.writeLocked(ip, p, off, int64(len(p)), false)
	if err == nil {
		err = tooBig
	}
	if n > 0 {
		fs.stamp().setMC(d)
	}
	if uerr := fs.iupdate(ip, orderDelayed); err == nil {
		err = uerr
	}
	return int(n), err
}

// writeLocked writes the n bytes of p at off (p nil with prealloc: only
// allocate, zero-filling new blocks and leaving existing ones as they
// are), growing di_size as it goes. It does not write the inode or touch
// times.
//
// File data bypasses the buffer cache where it can (FreeBSD's bawrite of
// a completed block, without keeping the buffer: the host's page cache
// under the device already holds the data): whole blocks are written
// straight from p, a run of blocks contiguous on disk in one device
// write, their cached buffers dropped first; part of a block already
// written that has no cached buffer is written in place (no read of the
// rest of the block). A new block written in part, and a block with a
// buffer in the cache (dirty, or just moved by a fragment reallocation),
// go through its buffer, dirty until the next flush. A direct write that
// fails leaves its data in dirty buffers instead, for the flushes to
// retry and report. Preconditions: ip.mu held exclusively.
func (fs *FS) writeLocked(ip *Inode, p []byte, off, n int64, prealloc bool) (int64, error) {
	sb := fs.sb
	bsize := int64(sb.Bsize)
	frag := ondisk.Frag(sb.Frag)
	d := &ip.din
	// The run of whole blocks not yet written: p[runFrom:runFrom+runLen]
	// goes to runAddr on, runFresh saying which blocks are new.
	var runAddr ondisk.Frag
	var runFrom, runLen int64
	flushRun := func() error {
		if runLen == 0 {
			return nil
		}
		data := p[runFrom : runFrom+runLen]
		addr := runAddr
		runLen = 0
		if err := fs.writeData(sb.FragOffset(addr), data); err != nil {
			fs.log.Warn("direct data write failed; keeping the data in the cache", "ino", ip.ino, "blk", addr, "err", err)
			for i := int64(0); i < int64(len(data)); i += bsize {
				if err := fs.bufWrite(addr+ondisk.Frag(i/bsize)*frag, bsize, 0, data[i:i+bsize], false, false); err != nil {
					return fmt.Errorf("inode %d: block at %d: %w", ip.ino, addr, err)
				}
			}
		}
		return nil
	}
	done := int64(0)
	for done < n {
		pos := off + done
		boff := sb.Blkoff(pos)
		xfer := min(bsize-boff, n-done)
		addr, size, fresh, err := fs.balloc(ip, pos, xfer)
		if err != nil {
			if ferr := flushRun(); ferr != nil {
				return done, ferr
			}
			return done, err
		}
		if prealloc && !fresh {
			if end := uint64(pos + xfer); end > d.Size {
				d.Size = end
			}
			done += xfer
			continue
		}
		switch {
		case p != nil && boff == 0 && xfer == bsize && size == bsize:
			// A whole block: joins the run, or starts a new one.
			if runLen > 0 && (addr != runAddr+ondisk.Frag(runLen/bsize)*frag || runLen >= maxDataRun) {
				if err := flushRun(); err != nil {
					return done, err
				}
			}
			fs.forget(addr, bsize)
			if runLen == 0 {
				runAddr, runFrom = addr, done
			}
			runLen += bsize
		case p != nil && !fresh && !fs.cached(addr, size):
			if err := flushRun(); err != nil {
				return done, err
			}
			if err := fs.writeData(sb.FragOffset(addr)+boff, p[done:done+xfer]); err != nil {
				fs.log.Warn("direct data write failed; keeping the data in the cache", "ino", ip.ino, "blk", addr, "err", err)
				if err := fs.bufWrite(addr, size, boff, p[done:done+xfer], false, false); err != nil {
					return done, fmt.Errorf("inode %d: block at %d: %w", ip.ino, addr, err)
				}
			}
		default:
			if err := flushRun(); err != nil {
				return done, err
			}
			var src []byte
			if p != nil {
				src = p[done : done+xfer]
			}
			if err := fs.bufWrite(addr, size, boff, src, fresh, true); err != nil {
				return done, fmt.Errorf("inode %d: block at %d: %w", ip.ino, addr, err)
			}
		}
		if end := uint64(pos + xfer); end > d.Size {
			d.Size = end
		}
		done += xfer
	}
	return done, flushRun()
}

// maxDataRun bounds one direct write of file data.
const maxDataRun = 4 << 20

// bufWrite copies src (nil: nothing, zeroes for a fresh block) into the
// cached buffer of the size-byte block at addr, at byte boff, and marks it
// dirty. A fresh block's buffer starts zeroed without a read; a buffer
// fully overwritten is not read either. With flushFull a complete block
// is written out at once; if that write fails the buffer stays dirty, for
// the rounds to retry and fsync to report, and the write(2) still succeeds
// (the data is in the cache, as with a direct write that failed).
func (fs *FS) bufWrite(addr ondisk.Frag, size, boff int64, src []byte, fresh, flushFull bool) error {
	var b *bcache.Buf
	var err error
	switch {
	case fresh:
		b, err = fs.newBuf(addr, size)
	case boff == 0 && int64(len(src)) == size:
		b, err = fs.cache.GetNoRead(fs.sb.FragOffset(addr), int(size))
	default:
		b, err = fs.cache.Get(fs.sb.FragOffset(addr), int(size))
	}
	if err != nil {
		return err
	}
	defer fs.cache.Release(b)
	b.Lock()
	copy(b.Data()[boff:], src)
	err = fs.cache.MarkDirty(b)
	b.Unlock()
	if err == nil && flushFull && size == int64(fs.sb.Bsize) && boff+int64(len(src)) == size {
		if ferr := fs.cache.FlushBuf(b); ferr != nil {
			fs.log.Warn("writing a completed block failed; it stays in the cache", "blk", addr, "err", ferr)
		}
	}
	return err
}

// cached reports whether the block at addr has a buffer in the cache.
func (fs *FS) cached(addr ondisk.Frag, size int64) bool {
	b := fs.cache.Lookup(fs.sb.FragOffset(addr), int(size))
	if b == nil {
		return false
	}
	fs.cache.Release(b)
	return true
}

// writeData writes file data straight to the device at byte off, outside
// the buffer cache; soft updates count it as the write of the new blocks
// it covers (softdep.Deps.DataWrite). The blocks' cached buffers must be
// gone (forget) or absent, and the inode's lock held. (A snapshot's
// copy-on-write of data blocks will have to hook here as well as in the
// cache's CopyOnWrite.)
func (fs *FS) writeData(off int64, data []byte) error {
	if err := fs.cowRange(off, len(data)); err != nil {
		return err
	}
	var done func(error)
	if fs.sd != nil {
		done = fs.sd.DataWrite(off, len(data))
	}
	n, err := fs.dev.WriteAt(data, off)
	if err == nil && n != len(data) {
		err = io.ErrShortWrite
	}
	if done != nil {
		done(err)
	}
	if err != nil {
		return fmt.Errorf("writing %d bytes at %d: %w", len(data), off, err)
	}
	return nil
}

// Truncate sets the size of regular file ino (ffs_truncate): growing
// leaves a hole up to a newly allocated last block; shrinking frees
// exactly the blocks and fragments the new size no longer needs and zeroes
// the tail of the last block. It sets mtime and ctime. An immutable or
// append-only file gives ErrPerm.
func (fs *FS) Truncate(ino ondisk.Ino, size uint64) error {
	ip, err := fs.openForWrite(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	err = fs.truncateChecked(ip, size, fs.stamp())
	ip.mu.Unlock()
	fs.maybeFlush()
	return err
}

func (fs *FS) truncateChecked(ip *Inode, size uint64, now nsTime) error {
	switch f := ip.din.Flags; {
	case f&(flagImmutable|flagAppend) != 0:
		return fmt.Errorf("%w: inode %d is immutable or append-only", ErrPerm, ip.ino)
	case f&ondisk.SFSnapshot != 0:
		return fmt.Errorf("%w: inode %d is a snapshot", ErrPerm, ip.ino)
	}
	return fs.truncate(ip, size, now)
}

// Fallocate allocates the blocks of [off, off+length) of regular file
// ino that are holes, zero-filled; existing data is left alone. Unless
// keepSize, the file grows to off+length if that is past its end. With
// keepSize the range is cut at the end of the file: UFS has no blocks
// past the end of a file (fsck_ffs clears such an inode).
func (fs *FS) Fallocate(ino ondisk.Ino, off, length int64, keepSize bool) error {
	if off < 0 || length <= 0 {
		return fmt.Errorf("%w: inode %d: fallocate of %d bytes at %d", ErrInvalid, ino, length, off)
	}
	ip, err := fs.openForWrite(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	err = fs.fallocateLocked(ip, off, length, keepSize)
	ip.mu.Unlock()
	fs.maybeFlush()
	return err
}

func (fs *FS) fallocateLocked(ip *Inode, off, length int64, keepSize bool) error {
	d := &ip.din
	if d.Flags&(flagImmutable|flagAppend) != 0 {
		return fmt.Errorf("%w: inode %d is immutable or append-only", ErrPerm, ip.ino)
	}
	end := off + length
	if max := fs.sb.Maxfilesize; max != 0 && uint64(end) > max {
		return fmt.Errorf("%w: inode %d: %d bytes past the maximum file size %d", ErrTooBig, ip.ino, end, max)
	}
	if keepSize {
		end = min(end, int64(d.Size))
	}
	if off >= end {
		return nil
	}
	osize := d.Size
	_, err := fs.writeLocked(ip, nil, off, end-off, true)
	now := fs.stamp()
	if d.Size != osize {
		now.setMC(d)
	} else {
		now.setC(d)
	}
	if uerr := fs.iupdate(ip, orderDelayed); err == nil {
		err = uerr
	}
	return err
}
