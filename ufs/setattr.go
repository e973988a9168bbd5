package ufs

import (
	"context"
	"fmt"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// SetAttr says which attributes Setattr changes: nil pointers and false
// flags leave an attribute alone.
type SetAttr struct {
	Mode     *uint16 // permission bits, setuid, setgid and sticky (07777); the file type stays
	UID, GID *uint32
	Size     *uint64 // truncate (regular files; ErrIsDir for a directory)
	Atime    *time.Time
	Mtime    *time.Time
	AtimeNow bool    // atime = now (takes precedence over Atime)
	MtimeNow bool    // mtime = now (takes precedence over Mtime)
	Flags    *uint32 // chflags flags (di_flags); di_kernflags is never changed
}

// settableFlags are the di_flags bits chflags may set (ufs_setattr).
const settableFlags = ondisk.SFAppend | ondisk.SFArchived | ondisk.SFImmutable |
	ondisk.SFNounlink | ondisk.SFSnapshot | ondisk.UFAppend | ondisk.UFArchive |
	ondisk.UFHidden | ondisk.UFImmutable | ondisk.UFNodump | ondisk.UFNounlink |
	ondisk.UFOffline | ondisk.UFOpaque | ondisk.UFReadonly | ondisk.UFReparse |
	ondisk.UFSparse | ondisk.UFSystem

// Setattr changes the attributes a asks for, as ufs_setattr does for a
// privileged caller, and returns the new attributes. ctime is set to now
// when anything changes. Flags are applied first; once the inode is
// immutable or append-only (SF_ or UF_), nothing else may change
// (ErrPerm), and a request that sets such a flag changes nothing after it.
// The snapshot flag cannot be toggled. Setting an mtime earlier than the
// birth time moves the birth time back to it (the UFS2 paper's utimes
// rule).
func (fs *FS) Setattr(ino ondisk.Ino, a SetAttr) (Stat, error) {
	if err := fs.writable(); err != nil {
		return Stat{}, err
	}
	if a.Size != nil {
		// A truncation needs the data (residency.go).
		if err := fs.WaitResident(context.Background(), ino, 0, -1); err != nil {
			return Stat{}, err
		}
	}
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return Stat{}, err
	}
	defer ip.Release()
	ip.mu.Lock()
	err = fs.setattrLocked(ip, a)
	st := statOf(ino, &ip.din)
	ip.mu.Unlock()
	fs.maybeFlush()
	if err != nil {
		return Stat{}, err
	}
	return st, nil
}

func (fs *FS) setattrLocked(ip *Inode, a SetAttr) error {
	d := &ip.din
	if ip.gone.Load() || d.Mode == 0 {
		return fmt.Errorf("%w: inode %d: %w", ErrNotFound, ip.ino, errFree)
	}
	now := fs.stamp()
	if a.Flags != nil {
		f := *a.Flags
		if f&^settableFlags != 0 {
			return fmt.Errorf("%w: inode %d: flags 0x%x", ErrNotSupported, ip.ino, f&^settableFlags)
		}
		if (f^d.Flags)&ondisk.SFSnapshot != 0 {
			return fmt.Errorf("%w: inode %d: the snapshot flag cannot be changed", ErrPerm, ip.ino)
		}
		d.Flags = f
		now.setC(d)
		if err := fs.iupdate(ip, orderDelayed); err != nil {
			return err
		}
		if d.Flags&(flagImmutable|flagAppend) != 0 {
			return nil
		}
	}
	others := a.Mode != nil || a.UID != nil || a.GID != nil || a.Size != nil ||
		a.Atime != nil || a.Mtime != nil || a.AtimeNow || a.MtimeNow
	if !others {
		return nil
	}
	if d.Flags&(flagImmutable|flagAppend) != 0 {
		return fmt.Errorf("%w: inode %d is immutable or append-only", ErrPerm, ip.ino)
	}
	snapshot := d.Flags&ondisk.SFSnapshot != 0
	if a.UID != nil {
		d.UID = *a.UID
	}
	if a.GID != nil {
		d.GID = *a.GID
	}
	if a.UID != nil || a.GID != nil {
		now.setC(d)
	}
	if a.Size != nil {
		switch d.Type() {
		case ondisk.IFDIR:
			return fmt.Errorf("%w: inode %d", ErrIsDir, ip.ino)
		case ondisk.IFREG:
			if snapshot {
				return fmt.Errorf("%w: inode %d is a snapshot", ErrPerm, ip.ino)
			}
			if err := fs.truncate(ip, *a.Size, now); err != nil {
				return err
			}
		case ondisk.IFLNK:
			return fmt.Errorf("%w: truncating symlink %d", ErrInvalid, ip.ino)
		}
		// Other types: ignored, as FreeBSD does.
	}
	if a.Atime != nil || a.Mtime != nil || a.AtimeNow || a.MtimeNow {
		if snapshot {
			return fmt.Errorf("%w: inode %d is a snapshot", ErrPerm, ip.ino)
		}
		switch {
		case a.AtimeNow:
			d.Atime, d.Atimensec = now.sec, now.nsec
		case a.Atime != nil:
			t := toNs(*a.Atime)
			d.Atime, d.Atimensec = t.sec, t.nsec
		}
		switch {
		case a.MtimeNow:
			d.Mtime, d.Mtimensec = now.sec, now.nsec
		case a.Mtime != nil:
			t := toNs(*a.Mtime)
			d.Mtime, d.Mtimensec = t.sec, t.nsec
			if t.before(d.Birthtime, d.Birthnsec) {
				d.Birthtime, d.Birthnsec = t.sec, t.nsec
			}
		}
		now.setC(d)
	}
	if a.Mode != nil {
		m := *a.Mode &^ ondisk.IFMT
		if snapshot && m&0o333 != 0 {
			return fmt.Errorf("%w: inode %d is a snapshot", ErrPerm, ip.ino)
		}
		d.Mode = d.Mode&ondisk.IFMT | m
		now.setC(d)
	}
	return fs.iupdate(ip, orderDelayed)
}
