package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Extended attribute changes: FreeBSD's ffs_setextattr and
// ffs_deleteextattr. The area is rewritten whole: a changed attribute
// keeps its place (the records after it shift), a new one is appended, a
// removed one's space closes up. The area's blocks are allocated through
// the allocator like a small file's (the last one a fragment), counted in
// di_blocks, and written before the inode that records the new
// di_extsize.

// XattrFlags are setxattr's XATTR_CREATE and XATTR_REPLACE.
type XattrFlags struct {
	Create  bool // fail with ErrExist if the attribute exists
	Replace bool // fail with ErrNoAttr if it does not
}

// checkXattrName checks a namespace and an attribute name.
func checkXattrName(ns uint8, name string) error {
	switch {
	case ns != ondisk.ExtattrNamespaceUser && ns != ondisk.ExtattrNamespaceSystem:
		return fmt.Errorf("%w: extended attribute namespace %d", ErrInvalid, ns)
	case name == "":
		return fmt.Errorf("%w: empty extended attribute name", ErrInvalid)
	case len(name) > ondisk.MaxNameLen:
		return fmt.Errorf("%w: extended attribute name of %d bytes", ErrNameTooLong, len(name))
	}
	return nil
}

// openForXattr gets inode ino locked exclusively for an attribute change.
func (fs *FS) openForXattr(ino ondisk.Ino) (*Inode, error) {
	if err := fs.writable(); err != nil {
		return nil, err
	}
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return nil, err
	}
	ip.mu.Lock()
	d := &ip.din
	switch t := d.Type(); {
	case ip.gone.Load() || d.Mode == 0:
		err = fmt.Errorf("%w: inode %d: %w", ErrNotFound, ino, errFree)
	case t == ondisk.IFCHR || t == ondisk.IFBLK:
		err = fmt.Errorf("%w: extended attributes of device node %d", ErrNotSupported, ino)
	case d.Flags&(flagImmutable|flagAppend) != 0:
		err = fmt.Errorf("%w: inode %d is immutable or append-only", ErrPerm, ino)
	}
	if err != nil {
		ip.mu.Unlock()
		ip.Release()
		return nil, err
	}
	return ip, nil
}

// findXattr returns the offset and length of the record (ns, name) in
// area, or -1.
func findXattr(area []byte, ns uint8, name string) (int, int, error) {
	at, n := -1, 0
	err := ondisk.WalkExtattrs(area, func(off int, e ondisk.Extattr) bool {
		if e.Namespace == ns && string(e.Name) == name {
			at = off
			n = ondisk.ExtattrBaseLength(len(e.Name)) + len(e.Value)
			n = (n + 7) &^ 7
			return false
		}
		return true
	})
	if err == nil && at >= 0 {
		// The record's own length, which may include more padding.
		n = int(uint32(area[at]) | uint32(area[at+1])<<8 | uint32(area[at+2])<<16 | uint32(area[at+3])<<24)
	}
	return at, n, err
}

// SetXattr sets extended attribute name in namespace ns (user or system)
// of inode ino to value. flags.Create fails with ErrExist on an existing
// attribute, flags.Replace with ErrNoAttr on a missing one. When the
// attributes would not fit in the two-block area: ErrXattrSpace.
func (fs *FS) SetXattr(ino ondisk.Ino, ns uint8, name string, value []byte, flags XattrFlags) error {
	if err := checkXattrName(ns, name); err != nil {
		return err
	}
	ip, err := fs.openForXattr(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	err = fs.setXattrLocked(ip, ns, name, value, flags)
	ip.mu.Unlock()
	fs.maybeFlush()
	return err
}

func (fs *FS) setXattrLocked(ip *Inode, ns uint8, name string, value []byte, flags XattrFlags) error {
	area, err := fs.readExtArea(ip)
	if err != nil {
		return err
	}
	at, olen, err := findXattr(area, ns, name)
	if err != nil {
		return fs.corrupt(corruptf("inode %d: extended attributes: %v", ip.ino, err))
	}
	switch {
	case at >= 0 && flags.Create:
		return fmt.Errorf("%w: inode %d: %s.%s", ErrExist, ip.ino, NamespaceName(ns), name)
	case at < 0 && flags.Replace:
		return fmt.Errorf("%w: inode %d: %s.%s", ErrNoAttr, ip.ino, NamespaceName(ns), name)
	}
	rec := ondisk.Extattr{Namespace: ns, Name: []byte(name), Value: value}
	enc := make([]byte, rec.Len())
	if err := rec.Encode(enc); err != nil {
		return fmt.Errorf("%w: extended attribute %s.%s", ErrInvalid, NamespaceName(ns), name)
	}
	var nw []byte
	if at < 0 {
		nw = append(append(nw, area...), enc...)
	} else {
		nw = append(append(append(nw, area[:at]...), enc...), area[at+olen:]...)
	}
	if max := ondisk.NXaddr * int64(fs.sb.Bsize); int64(len(nw)) > max {
		return fmt.Errorf("%w: inode %d: %d bytes of attributes, at most %d", ErrXattrSpace, ip.ino, len(nw), max)
	}
	return fs.writeExtArea(ip, nw, fs.stamp())
}

// RemoveXattr removes extended attribute name of namespace ns from inode
// ino, or fails with ErrNoAttr.
func (fs *FS) RemoveXattr(ino ondisk.Ino, ns uint8, name string) error {
	if err := checkXattrName(ns, name); err != nil {
		return err
	}
	ip, err := fs.openForXattr(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	err = fs.removeXattrLocked(ip, ns, name)
	ip.mu.Unlock()
	fs.maybeFlush()
	return err
}

func (fs *FS) removeXattrLocked(ip *Inode, ns uint8, name string) error {
	area, err := fs.readExtArea(ip)
	if err != nil {
		return err
	}
	at, olen, err := findXattr(area, ns, name)
	if err != nil {
		return fs.corrupt(corruptf("inode %d: extended attributes: %v", ip.ino, err))
	}
	if at < 0 {
		return fmt.Errorf("%w: inode %d: %s.%s", ErrNoAttr, ip.ino, NamespaceName(ns), name)
	}
	nw := append(append([]byte(nil), area[:at]...), area[at+olen:]...)
	return fs.writeExtArea(ip, nw, fs.stamp())
}

// writeExtArea makes area ip's extended attribute area. A block that
// keeps or lowers its size is rewritten in place (the fragments it gives
// back freed); one that grows, or a new one, gets a new extent from the
// allocator (the old one freed), all allocated before anything changes,
// so that running out of space leaves the area as it was. The contents
// are written first (BlockInitialised), then the inode (PointerCleared
// when something is freed), then the freed extents go back. It sets
// ctime. Preconditions: ip.mu held exclusively; len(area) <= NXADDR
// blocks.
func (fs *FS) writeExtArea(ip *Inode, area []byte, now nsTime) error {
	sb := fs.sb
	d := &ip.din
	oldsize, newsize := int64(d.Extsize), int64(len(area))
	var (
		newb   [ondisk.NXaddr]ondisk.Frag
		frees  []extent
		fresh  []extent
		blocks = d.Blocks
	)
	for i := range ondisk.NXaddr {
		osz, nsz := fs.sb.ExtBlkSize(oldsize, i), fs.sb.ExtBlkSize(newsize, i)
		p := d.Extb[i]
		if p == 0 {
			osz = 0
		}
		switch {
		case nsz == 0:
			if osz > 0 {
				frees = append(frees, extent{p, osz})
				blocks -= btodb(osz)
			}
		case osz >= nsz && fs.sd == nil:
			newb[i] = p
			if osz > nsz {
				frees = append(frees, extent{p + ondisk.Frag(sb.Numfrags(nsz)), osz - nsz})
				blocks -= btodb(osz - nsz)
			}
		default:
			h := hint(ip)
			pref := fs.alloc.BlkPref(h, ondisk.Lbn(i), i, d.Extb[:])
			nb, err := fs.alloc.AllocBlock(h, ondisk.Lbn(i), pref, int(nsz), fs.opts.UseReserve)
			if err != nil {
				if ferr := fs.freeAllNow(ip.ino, fresh); ferr != nil {
					fs.log.Error("returning extended attribute blocks", "ino", ip.ino, "err", ferr)
				}
				return fs.corrupt(fmt.Errorf("inode %d: extended attribute block %d: %w", ip.ino, i, allocErr(err)))
			}
			fresh = append(fresh, extent{nb, nsz})
			newb[i] = nb
			blocks += btodb(nsz)
			if osz > 0 {
				frees = append(frees, extent{p, osz})
				blocks -= btodb(osz)
			}
		}
	}
	// Soft updates switch the inode from the old area to the new one in
	// one write once the new blocks are durable (recorded before their
	// buffers exist, so that their first writes count), and free the old
	// blocks after. The old area's buffers are dropped first (release.go).
	for i := range ondisk.NXaddr {
		if p := d.Extb[i]; p != 0 {
			fs.forget(p, fs.sb.ExtBlkSize(oldsize, i))
		}
	}
	var sdFrees softdep.Frees
	if fs.sd != nil {
		var fr []softdep.Fresh
		for _, e := range fresh {
			fr = append(fr, softdep.Fresh{P: e.p, Size: int(e.size), CgVer: fs.blkVer(e.p)})
		}
		sdFrees = fs.sd.ExtArea(ip.ino, d.Extb, d.Extsize, newb, uint32(newsize), fr)
		frees = nil
	}
	for i := range ondisk.NXaddr {
		nsz := fs.sb.ExtBlkSize(newsize, i)
		if nsz == 0 {
			continue
		}
		b, err := fs.newBuf(newb[i], nsz)
		if err != nil {
			return err
		}
		b.Lock()
		copy(b.Data(), area[int64(i)*int64(sb.Bsize):])
		err = fs.cache.MarkDirty(b)
		b.Unlock()
		if err == nil {
			err = fs.order.BlockInitialised(ip.ino, b)
		}
		fs.cache.Release(b)
		if err != nil {
			return err
		}
	}
	d.Extb = newb
	d.Extsize = uint32(newsize)
	d.Blocks = blocks
	now.setC(d)
	point := orderDelayed
	if len(frees) > 0 {
		point = orderPointerCleared
	}
	if err := fs.iupdate(ip, point); err != nil {
		return err
	}
	if fs.sd != nil {
		return fs.freeExtents(ip.ino, sdFrees)
	}
	return fs.freeAllNow(ip.ino, frees)
}

// freeExtArea frees ip's extended attribute area (ffs_truncate with
// IO_EXT): the inode is written without it first.
// Preconditions: ip.mu held exclusively.
func (fs *FS) freeExtArea(ip *Inode) error {
	d := &ip.din
	if d.Extsize == 0 && d.Extb == [ondisk.NXaddr]ondisk.Frag{} {
		return nil
	}
	return fs.writeExtArea(ip, nil, fs.stamp())
}
