package ufs

import (
	"context"
	"fmt"
	"io"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// ReadAt reads len(p) bytes of regular file ino at byte off, as
// io.ReaderAt: fewer bytes only at the end of the file, with io.EOF. Holes
// read as zeros. A directory gives ErrIsDir; other non-regular files
// ErrInvalid.
func (fs *FS) ReadAt(ino ondisk.Ino, p []byte, off int64) (int, error) {
	if err := fs.WaitResident(context.Background(), ino, off, off+int64(len(p))); err != nil {
		return 0, err
	}
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return 0, err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	switch ip.din.Type() {
	case ondisk.IFREG:
	case ondisk.IFDIR:
		return 0, fmt.Errorf("%w: inode %d", ErrIsDir, ino)
	default:
		return 0, fmt.Errorf("%w: inode %d is not a regular file (mode 0%o)", ErrInvalid, ino, ip.din.Mode)
	}
	return fs.readInode(ip, p, off)
}

// readInode is ReadAt through ip's block map; the caller holds ip.mu.
func (fs *FS) readInode(ip *Inode, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: inode %d: negative offset %d", ErrInvalid, ip.ino, off)
	}
	size := int64(ip.din.Size)
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > size-off {
		n = int(size - off)
		eof = io.EOF
	}
	end := off + int64(n)
	if ip.din.Flags&ondisk.SFSnapshot != 0 {
		if err := fs.readSnapshot(ip, p[:n], off); err != nil {
			return 0, err
		}
		return n, eof
	}
	pos := off // bytes of p before pos-off are filled
	var rerr error
	err := fs.extents(ip, off, end, func(e Extent) bool {
		if e.Off >= end {
			return false
		}
		start := max(e.Off, off)
		stop := min(e.Off+e.Len, end)
		clear(p[pos-off : start-off])
		if rerr = fs.readData(ip, e, start, p[start-off:stop-off]); rerr != nil {
			return false
		}
		pos = stop
		return stop < end
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	clear(p[pos-off : n])
	return n, eof
}

// readData fills dst with the file bytes at file offset start, which lie
// inside extent e. Blocks with a buffer in the cache are copied from it
// (the write half keeps dirty file data there); runs of the others are
// read from the device in one request each.
func (fs *FS) readData(ip *Inode, e Extent, start int64, dst []byte) error {
	sb := fs.sb
	bsize := int64(sb.Bsize)
	size := ip.din.Size
	diskBase := sb.FragOffset(e.Addr) - e.Off // disk offset of file offset 0 within e
	pendOff, pendLen := int64(0), 0           // a device read not yet issued: file offset, length
	flush := func() error {
		if pendLen == 0 {
			return nil
		}
		d := dst[pendOff-start : pendOff-start+int64(pendLen)]
		if err := blockdev.ReadFull(fs.dev, d, diskBase+pendOff); err != nil {
			return fmt.Errorf("inode %d: data at file offset %d: %w", ip.ino, pendOff, err)
		}
		pendLen = 0
		return nil
	}
	end := start + int64(len(dst))
	for pos := start; pos < end; {
		lbn := sb.Lblkno(pos)
		blkStart := int64(lbn) * bsize
		blkEnd := min(blkStart+bsize, end)
		alloc := int(fs.blkSize(size, lbn))
		if b := fs.cache.Lookup(diskBase+blkStart, alloc); b != nil {
			if err := flush(); err != nil {
				fs.cache.Release(b)
				return err
			}
			b.RLock()
			copy(dst[pos-start:blkEnd-start], b.Data()[pos-blkStart:])
			b.RUnlock()
			fs.cache.Release(b)
		} else {
			if pendLen == 0 {
				pendOff = pos
			}
			pendLen += int(blkEnd - pos)
		}
		pos = blkEnd
	}
	return flush()
}

// readSnapshot fills dst with the bytes at off of snapshot file ip as
// FreeBSD reads one (ufs_bmaparray): the frozen image of the filesystem.
// A block pointer of 0 means the block was not copied because it has not
// changed since the snapshot was taken: its contents are the live block
// at the same place (logical block k is filesystem block k). BLK_NOCOPY
// and BLK_SNAP (pointers below fs_frag) were free or another snapshot's
// at creation and read as zeros. Other pointers lead to the copy.
func (fs *FS) readSnapshot(ip *Inode, dst []byte, off int64) error {
	sb := fs.sb
	bsize := int64(sb.Bsize)
	frag := ondisk.Frag(sb.Frag)
	for pos, end := off, off+int64(len(dst)); pos < end; {
		lbn := sb.Lblkno(pos)
		blkStart := int64(lbn) * bsize
		stop := min(blkStart+bsize, end)
		part := dst[pos-off : stop-off]
		p, err := fs.bmapUncached(ip, lbn)
		switch {
		case p > 0 && p < frag:
			// BLK_NOCOPY or BLK_SNAP: checkDataPtr's objection is expected.
			clear(part)
		case err != nil:
			return err
		default:
			if p == 0 {
				p = ondisk.Frag(lbn) * frag
				if int64(p)+int64(frag) > sb.Size {
					return corruptf("snapshot inode %d: block %d past the filesystem's %d fragments", ip.ino, lbn, sb.Size)
				}
			}
			if err := fs.readData(ip, Extent{Off: blkStart, Len: bsize, Addr: p}, pos, part); err != nil {
				return err
			}
		}
		pos = stop
	}
	return nil
}
