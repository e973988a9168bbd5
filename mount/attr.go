package mount

import (
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// freeBSDDev splits a FreeBSD dev_t, as di_rdev holds it, into major and
// minor (sys/types.h major() and minor()).
func freeBSDDev(dev uint64) (major, minor uint32) {
	major = uint32((dev>>32)&0xffffff00) | uint32((dev>>8)&0xff)
	minor = uint32((dev>>24)&0xff00) | uint32(dev&0xffff00ff)
	return major, minor
}

// linuxDev is Linux's 32-bit encoding of a device number (new_encode_dev),
// which FUSE attributes carry.
func linuxDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// nlink clamps di_nlink (a signed 16-bit count on disk) for the kernel.
func nlink(n int16) uint32 {
	if n < 0 {
		return 0
	}
	return uint32(n)
}

// fillAttr sets a from an engine Stat. Mode bits and file type constants
// are the same on FreeBSD and Linux.
func (m *mountFS) fillAttr(a *fuse.Attr, st *ufs.Stat) {
	a.Ino = uint64(st.Ino)
	a.Size = st.Size
	a.Blocks = st.Blocks
	a.SetTimes(&st.Atime, &st.Mtime, &st.Ctime)
	a.Mode = uint32(st.Mode)
	a.Nlink = nlink(st.Nlink)
	a.Uid = st.UID
	a.Gid = st.GID
	a.Rdev = 0
	if t := st.Type(); t == ondisk.IFCHR || t == ondisk.IFBLK {
		a.Rdev = linuxDev(freeBSDDev(st.Rdev))
	}
	a.Blksize = m.bsize
}

func sxTime(t time.Time) fuse.SxTime {
	return fuse.SxTime{Sec: uint64(t.Unix()), Nsec: uint32(t.Nanosecond())}
}

// fillStatx sets s from an engine Stat, birth time included. (The
// chflags flags would map to statx attributes, but Linux's FUSE does not
// pass attributes through.)
func (m *mountFS) fillStatx(s *fuse.Statx, st *ufs.Stat) {
	s.Mask = unix.STATX_BASIC_STATS | unix.STATX_BTIME
	s.Blksize = m.bsize
	s.Nlink = nlink(st.Nlink)
	s.Uid = st.UID
	s.Gid = st.GID
	s.Mode = st.Mode
	s.Ino = uint64(st.Ino)
	s.Size = st.Size
	s.Blocks = st.Blocks
	s.Atime = sxTime(st.Atime)
	s.Btime = sxTime(st.Birthtime)
	s.Ctime = sxTime(st.Ctime)
	s.Mtime = sxTime(st.Mtime)
	s.RdevMajor, s.RdevMinor = 0, 0
	if t := st.Type(); t == ondisk.IFCHR || t == ondisk.IFBLK {
		s.RdevMajor, s.RdevMinor = freeBSDDev(st.Rdev)
	}
}

// fileMode is the S_IFMT bits for a directory entry's d_type, 0 for
// DT_UNKNOWN (the caller stats the inode) and for whiteouts.
func fileMode(dtype uint8) uint32 {
	switch dtype {
	case ondisk.DTFifo:
		return unix.S_IFIFO
	case ondisk.DTChr:
		return unix.S_IFCHR
	case ondisk.DTDir:
		return unix.S_IFDIR
	case ondisk.DTBlk:
		return unix.S_IFBLK
	case ondisk.DTReg:
		return unix.S_IFREG
	case ondisk.DTLnk:
		return unix.S_IFLNK
	case ondisk.DTSock:
		return unix.S_IFSOCK
	}
	return 0
}
