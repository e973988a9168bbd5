package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// PunchHole makes bytes [off, off+length) of regular file ino read as
// zeros and frees the whole blocks inside the range (fallocate's
// FALLOC_FL_PUNCH_HOLE with KEEP_SIZE, as ext4 and xfs do): their pointers
// are cleared, written, and the blocks given back (release.go). The size
// does not change. The file's last block stays allocated, zeroed where the
// range covers it (fsck_ffs wants a file to end in a block), and so do the
// indirect blocks, whose pointers may all be holes now. Parts of blocks at
// the ends of the range are zeroed in place; holes stay holes.
func (fs *FS) PunchHole(ino ondisk.Ino, off, length int64) error {
	if off < 0 || length <= 0 {
		return fmt.Errorf("%w: inode %d: punching %d bytes at %d", ErrInvalid, ino, length, off)
	}
	ip, err := fs.openForWrite(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	err = fs.punchLocked(ip, off, length)
	ip.mu.Unlock()
	fs.maybeFlush()
	return err
}

func (fs *FS) punchLocked(ip *Inode, off, length int64) error {
	d := &ip.din
	if d.Flags&(flagImmutable|flagAppend) != 0 {
		return fmt.Errorf("%w: inode %d is immutable or append-only", ErrPerm, ip.ino)
	}
	size := int64(d.Size)
	end := min(off+length, size)
	if off >= end {
		return nil
	}
	sb := fs.sb
	bsize := int64(sb.Bsize)
	last := (size - 1) / bsize // the file's last block: kept
	first := (off + bsize - 1) / bsize
	stop := min(end/bsize, last) // whole blocks [first, stop) are freed

	// Zero what is not freed: the partial blocks at the ends and the kept
	// last block's part of the range, where they are allocated.
	zero := func(from, to int64) error {
		for from < to {
			lbn := from / bsize
			upto := min(to, (lbn+1)*bsize)
			p, err := fs.bmap(ip, ondisk.Lbn(lbn))
			if err != nil {
				return err
			}
			if p != 0 {
				if _, err := fs.writeLocked(ip, make([]byte, upto-from), from, upto-from, false); err != nil {
					return err
				}
			}
			from = upto
		}
		return nil
	}
	if first >= stop {
		if err := zero(off, end); err != nil {
			return err
		}
	} else {
		if err := zero(off, first*bsize); err != nil {
			return err
		}
		if err := zero(stop*bsize, end); err != nil {
			return err
		}
	}

	// Clear the pointers of the whole blocks. An indirect block's buffer
	// stays locked while its pointers are cleared, and its marker (the
	// write that must be durable before the blocks are freed) is taken
	// under the same lock, after the last change.
	var direct, inIndir []extent
	var marks []softdep.Dep
	var cur *bcache.Buf
	curChanged := false
	done := func() error {
		if cur == nil {
			return nil
		}
		b := cur
		cur = nil
		defer fs.cache.Release(b)
		if !curChanged {
			b.Unlock()
			return nil
		}
		err := fs.cache.MarkDirty(b)
		if err == nil && fs.sd != nil {
			marks = append(marks, fs.sd.Marker(b))
		}
		b.Unlock()
		if err != nil || fs.sd != nil {
			return err
		}
		return fs.order.PointerCleared(ip.ino, b)
	}
	for lbn := first; lbn < stop; lbn++ {
		if lbn < ondisk.NDaddr {
			if p := d.Db[lbn]; p != 0 {
				if err := fs.checkDataPtr(ip.ino, ondisk.Lbn(lbn), p, bsize); err != nil {
					return fs.corrupt(err)
				}
				d.Db[lbn] = 0
				direct = append(direct, extent{p, bsize})
			}
			continue
		}
		ib, i, err := fs.indirFor(ip, ondisk.Lbn(lbn))
		if err != nil {
			if derr := done(); derr != nil {
				return derr
			}
			return err
		}
		if ib == 0 {
			// A whole subtree is a hole: skip to its end.
			continue
		}
		if cur == nil || cur.Off() != sb.FragOffset(ib) {
			if err := done(); err != nil {
				return err
			}
			b, err := fs.cache.Get(sb.FragOffset(ib), int(bsize))
			if err != nil {
				return fmt.Errorf("inode %d: indirect block %d: %w", ip.ino, ib, err)
			}
			b.Lock()
			cur, curChanged = b, false
		}
		p := ondisk.IndirPtr(cur.Data(), i)
		if p != 0 {
			if err := fs.checkDataPtr(ip.ino, ondisk.Lbn(lbn), p, bsize); err != nil {
				done()
				return fs.corrupt(err)
			}
			ondisk.SetIndirPtr(cur.Data(), i, 0)
			curChanged = true
			inIndir = append(inIndir, extent{p, bsize})
		}
	}
	if err := done(); err != nil {
		return err
	}
	if len(direct)+len(inIndir) == 0 {
		fs.stamp().setMC(d)
		return fs.iupdate(ip, orderDelayed)
	}
	d.Blocks -= btodb(bsize) * uint64(len(direct)+len(inIndir))
	fs.dirBlocksChanged(ip, ondisk.Lbn(first))
	fs.stamp().setMC(d)
	if err := fs.iupdate(ip, orderPointerCleared); err != nil {
		return err
	}
	var clear []softdep.Dep
	if fs.sd != nil {
		clear = append(marks, fs.sd.InodeWritten(ip.ino))
	}
	err := fs.release(ip.ino, direct, clear...)
	if err2 := fs.release(ip.ino, inIndir, clear...); err == nil {
		err = err2
	}
	return err
}

// indirFor returns the level-0 indirect block holding the pointer of data
// block lbn (>= NDADDR) and the pointer's index in it; 0 when the path is a
// hole. Preconditions: ip.mu held.
func (fs *FS) indirFor(ip *Inode, lbn ondisk.Lbn) (ondisk.Frag, int, error) {
	sb := fs.sb
	level, idx, err := fs.indirPath(lbn)
	if err != nil {
		return 0, 0, err
	}
	p := ip.din.Ib[level]
	for depth := 0; depth < level; depth++ {
		if p == 0 {
			return 0, 0, nil
		}
		if !fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0 {
			return 0, 0, fs.corrupt(corruptf("inode %d: indirect block on the path to block %d: pointer %d is outside the data area", ip.ino, lbn, p))
		}
		ptrs, err := fs.readPointers(p, idx[depth], idx[depth]+1)
		if err != nil {
			return 0, 0, fmt.Errorf("inode %d: %w", ip.ino, err)
		}
		p = ptrs[0]
	}
	if p != 0 && (!fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0) {
		return 0, 0, fs.corrupt(corruptf("inode %d: indirect block on the path to block %d: pointer %d is outside the data area", ip.ino, lbn, p))
	}
	return p, idx[level], nil
}
