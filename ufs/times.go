package ufs

import (
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// nsTime is a time stamp as the inode stores it: seconds and nanoseconds.
// Each operation takes one (FS.stamp) and gives it to every inode it
// changes, as FreeBSD's ufs_itimes gives one vfs_timestamp to the IN_ACCESS,
// IN_UPDATE and IN_CHANGE flags it finds.
type nsTime struct {
	sec  int64
	nsec int32
}

func toNs(t time.Time) nsTime { return nsTime{t.Unix(), int32(t.Nanosecond())} }

// stamp is the time of the operation in progress.
func (fs *FS) stamp() nsTime { return toNs(fs.now()) }

// setC sets ctime (IN_CHANGE) and counts the change in di_modrev.
func (t nsTime) setC(d *ondisk.Dinode) {
	d.Ctime, d.Ctimensec = t.sec, t.nsec
	d.Modrev++
}

// setMC sets mtime and ctime (IN_UPDATE | IN_CHANGE).
func (t nsTime) setMC(d *ondisk.Dinode) {
	d.Mtime, d.Mtimensec = t.sec, t.nsec
	t.setC(d)
}

// setAll sets every time, the birth time included: a new inode.
func (t nsTime) setAll(d *ondisk.Dinode) {
	d.Atime, d.Atimensec = t.sec, t.nsec
	d.Birthtime, d.Birthnsec = t.sec, t.nsec
	t.setMC(d)
}

// before reports whether t is earlier than the time sec.nsec.
func (t nsTime) before(sec int64, nsec int32) bool {
	return t.sec < sec || t.sec == sec && t.nsec < nsec
}
