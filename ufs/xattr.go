package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// Extended attributes live in the inode's extended attribute area: up to
// NXADDR blocks at di_extb, di_extsize bytes of records (ondisk.Extattr),
// the last block cut to the fragments it needs as a file's tail is.

// Xattr is one extended attribute.
type Xattr struct {
	Namespace uint8 // ondisk.ExtattrNamespaceUser or ondisk.ExtattrNamespaceSystem
	Name      string
	Value     []byte
}

// NamespaceName is FreeBSD's name for an attribute namespace ("user",
// "system"), or "ns<N>" for an unknown one.
func NamespaceName(ns uint8) string {
	switch ns {
	case ondisk.ExtattrNamespaceUser:
		return "user"
	case ondisk.ExtattrNamespaceSystem:
		return "system"
	}
	return fmt.Sprintf("ns%d", ns)
}

// readExtArea returns a copy of ip's di_extsize bytes of extended
// attribute records. The caller holds ip.mu.
func (fs *FS) readExtArea(ip *Inode) ([]byte, error) {
	d := &ip.din
	size := int64(d.Extsize)
	area := make([]byte, size)
	bsize := int64(fs.sb.Bsize)
	for i := int64(0); i*bsize < size; i++ {
		blen := fs.sb.Sblksize(size, ondisk.Lbn(i))
		p := d.Extb[i]
		if p == 0 {
			return nil, corruptf("inode %d: extended attribute block %d is missing", ip.ino, i)
		}
		nfrags := fs.sb.Numfrags(fs.sb.Fragroundup(blen))
		if !fs.validRange(p, nfrags) || int64(fs.sb.Fragnum(p))+nfrags > int64(fs.sb.Frag) {
			return nil, corruptf("inode %d: extended attribute block %d: pointer %d is outside the data area", ip.ino, i, p)
		}
		b, err := fs.cache.Get(fs.sb.FragOffset(p), int(blen))
		if err != nil {
			return nil, fmt.Errorf("inode %d: extended attribute block %d: %w", ip.ino, i, err)
		}
		b.RLock()
		copy(area[i*bsize:], b.Data())
		b.RUnlock()
		fs.cache.Release(b)
	}
	return area, nil
}

// Xattrs returns every extended attribute of inode ino, values included,
// in on-disk order.
func (fs *FS) Xattrs(ino ondisk.Ino) ([]Xattr, error) {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return nil, err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if ip.din.Extsize == 0 {
		return nil, nil
	}
	area, err := fs.readExtArea(ip)
	if err != nil {
		return nil, err
	}
	var out []Xattr
	err = ondisk.WalkExtattrs(area, func(_ int, e ondisk.Extattr) bool {
		if e.Namespace == ondisk.ExtattrNamespaceEmpty {
			return true // a deleted record's space
		}
		out = append(out, Xattr{Namespace: e.Namespace, Name: string(e.Name), Value: e.Value})
		return true
	})
	if err != nil {
		return nil, corruptf("inode %d: extended attributes: %v", ino, err)
	}
	return out, nil
}

// ListXattr returns the namespaces and names (no values) of inode ino's
// extended attributes.
func (fs *FS) ListXattr(ino ondisk.Ino) ([]Xattr, error) {
	all, err := fs.Xattrs(ino)
	for i := range all {
		all[i].Value = nil
	}
	return all, err
}

// GetXattr returns the value of extended attribute name in namespace ns,
// or ErrNoAttr.
func (fs *FS) GetXattr(ino ondisk.Ino, ns uint8, name string) ([]byte, error) {
	all, err := fs.Xattrs(ino)
	if err != nil {
		return nil, err
	}
	for _, x := range all {
		if x.Namespace == ns && x.Name == name {
			return x.Value, nil
		}
	}
	return nil, fmt.Errorf("%w: inode %d: %s.%s", ErrNoAttr, ino, NamespaceName(ns), name)
}
