package fsck

import (
	"fmt"
	"io"
	"sort"

	"github.com/ufs2/ufs2/ondisk"
)

// Inode states (fsck.h).
const (
	ustate = 0x1 // not allocated
	fstate = 0x2 // a file
	fzlink = 0x3 // a file with a link count of zero
	dstate = 0x4 // a directory
	dzlink = 0x5 // a directory with a link count of zero
	dfound = 0x6 // a directory found during the descent from the root
	dclear = 0x8 // a directory to be cleared
	fclear = 0x9 // a file to be cleared
)

// isDunfound is S_IS_DUNFOUND: dstate or dzlink.
func isDunfound(s uint8) bool { return s&^1 == dstate }

// isDvalid is S_IS_DVALID: dstate, dzlink or dfound.
func isDvalid(s uint8) bool { return s&^3 == dstate }

// Walk types (inodesc id_type).
const (
	typeData = 1 // a directory: blocks are scanned entry by entry
	typeSnap = 2 // a snapshot
	typeAddr = 3 // anything else
)

// inostat is struct inostat: 4 bytes per initialised inode.
type inostat struct {
	state uint8
	typ   uint8 // low nibble: d_type; high nibble: walk type (snap or addr)
	link  int16 // links not yet found
}

func (s *inostat) dtype() uint8            { return s.typ & 0xf }
func (s *inostat) setDtype(t uint8)        { s.typ = s.typ&0xf0 | t&0xf }
func (s *inostat) idtype() int             { return int(s.typ >> 4) }
func (s *inostat) setIdtype(t int)         { s.typ = s.typ&0x0f | uint8(t)<<4 }
func (c *checker) cgOf(ino ondisk.Ino) int { return int(uint32(ino) / c.sb.Ipg) }

// inoinfo returns the state of ino. Inodes beyond what pass 1 kept are
// unallocated; changes to what is returned for them are lost, as in
// fsck_ffs (use growStat first to make them stick).
func (c *checker) inoinfo(ino ondisk.Ino) *inostat {
	if ino < c.maxino {
		g := c.cgOf(ino)
		off := uint32(ino) % c.sb.Ipg
		if int(off) < len(c.ist[g]) {
			return &c.ist[g][off]
		}
	}
	c.scratch = inostat{state: ustate}
	return &c.scratch
}

// growStat makes room for the state of the first n inodes of group g.
func (c *checker) growStat(g int, n int) {
	if n <= len(c.ist[g]) {
		return
	}
	ns := make([]inostat, n)
	copy(ns, c.ist[g])
	for i := len(c.ist[g]); i < n; i++ {
		ns[i].state = ustate
	}
	c.ist[g] = ns
}

// Block map: one bit per fragment, set when in use.

func (c *checker) testbmap(b ondisk.Frag) bool {
	i := uint64(b)
	if i/64 >= uint64(len(c.bmap)) {
		return true
	}
	return c.bmap[i/64]&(1<<(i%64)) != 0
}

func (c *checker) setbmap(b ondisk.Frag) {
	i := uint64(b)
	if i/64 < uint64(len(c.bmap)) {
		c.bmap[i/64] |= 1 << (i % 64)
	}
}

func (c *checker) clrbmap(b ondisk.Frag) {
	i := uint64(b)
	if i/64 < uint64(len(c.bmap)) {
		c.bmap[i/64] &^= 1 << (i % 64)
	}
}

// dirInfo is struct inoinfo, kept for directories only: 32 bytes, plus 8
// per block pointer in the shared arena.
type dirInfo struct {
	number ondisk.Ino
	parent ondisk.Ino
	dotdot ondisk.Ino
	nblks  uint32 // block pointers kept in the arena
	isize  int64
	blkoff uint32 // index of the first in the arena
	// dotdotCounted: pass 2 counted the ".." entry as a link of the
	// directory it names.
	dotdotCounted bool
}

// noDotdot marks a ".." fsck cannot fix ((ino_t)-1 in fsck_ffs).
const noDotdot = ^ondisk.Ino(0)

// dirTable holds the directory records sorted by inode number (pass 1
// adds them in that order) and, for passes 2 and 3, a permutation sorted by
// first block.
type dirTable struct {
	list  []dirInfo
	blks  []ondisk.Frag
	order []int32
}

func (t *dirTable) lookup(ino ondisk.Ino) *dirInfo {
	i := sort.Search(len(t.list), func(i int) bool { return t.list[i].number >= ino })
	if i < len(t.list) && t.list[i].number == ino {
		return &t.list[i]
	}
	return nil
}

// blocks returns the pointers kept for d: the direct ones the size covers
// and, for larger directories, all 12 direct and 3 indirect.
func (t *dirTable) blocks(d *dirInfo) []ondisk.Frag {
	return t.blks[d.blkoff : d.blkoff+d.nblks]
}

// cacheino records a directory (cacheino of inode.c).
func (c *checker) cacheino(dp *ondisk.Dinode, ino ondisk.Ino) {
	nb := (int64(dp.Size) + int64(c.sb.Bsize) - 1) / int64(c.sb.Bsize)
	var blks int
	switch {
	case nb > ondisk.NDaddr:
		blks = ondisk.NDaddr + ondisk.NIaddr
	case nb > 0:
		blks = int(nb)
	default:
		blks = 1
	}
	d := dirInfo{number: ino, isize: int64(dp.Size), nblks: uint32(blks), blkoff: uint32(len(c.dirs.blks))}
	if ino == ondisk.RootIno {
		d.parent = ondisk.RootIno
	}
	for i := 0; i < min(blks, ondisk.NDaddr); i++ {
		c.dirs.blks = append(c.dirs.blks, dp.Db[i])
	}
	if blks > ondisk.NDaddr {
		c.dirs.blks = append(c.dirs.blks, dp.Ib[:]...)
	}
	t := &c.dirs
	i := sort.Search(len(t.list), func(i int) bool { return t.list[i].number >= ino })
	if i < len(t.list) && t.list[i].number == ino {
		t.list[i] = d
		return
	}
	t.list = append(t.list, dirInfo{})
	copy(t.list[i+1:], t.list[i:])
	t.list[i] = d
	if t.order != nil {
		for k := range t.order {
			if int(t.order[k]) >= i {
				t.order[k]++
			}
		}
		t.order = append(t.order, int32(i))
	}
}

// getinoinfo returns the directory record of ino; a missing one is a bug
// in the caller's state keeping, reported as an error.
func (c *checker) getinoinfo(ino ondisk.Ino) (*dirInfo, error) {
	if d := c.dirs.lookup(ino); d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("%w: no directory record for inode %d", ErrAborted, ino)
}

// Device access.

func (c *checker) readAt(p []byte, off int64) error {
	n, err := c.dev.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: reading %d bytes at %d: %v", ErrIO, len(p), off, err)
}

// writeAt writes p at off. Without write access (-n, or a device opened
// read-only) nothing reaches the device, ever: the write is dropped, as
// fsck_ffs's blwrite drops it when it has no descriptor to write with, so
// that a check always runs to its end and reports what it found. Every
// path that repairs asks first (reply answers no), so a dropped write is
// a path that should not have tried; it is counted (tests require none)
// and shown with -d.
func (c *checker) writeAt(p []byte, off int64) error {
	if !c.writable() {
		c.refusedWrites++
		c.debugf("write of %d bytes at %d not made: no write access\n", len(p), off)
		return nil
	}
	if _, err := c.dev.WriteAt(p, off); err != nil {
		return fmt.Errorf("%w: writing %d bytes at %d: %v", ErrIO, len(p), off, err)
	}
	c.modified = true
	return nil
}

// readFrags reads n fragments at blk; blocks outside the filesystem fail.
func (c *checker) readFrags(blk ondisk.Frag, n int) ([]byte, error) {
	if c.chkrange(blk, n) {
		return nil, fmt.Errorf("%w: block %d (%d frags) outside the filesystem", ErrIO, blk, n)
	}
	b := make([]byte, n*int(c.sb.Fsize))
	return b, c.readAt(b, c.sb.FragOffset(blk))
}

// getBuf lends a buffer of n bytes (at most a block and a directory
// chunk) from the checker's free list; putBuf takes it back. Walks of
// directory and indirect blocks nest at most a few deep, so the list stays
// a handful of blocks long, instead of a new block of garbage per read.
func (c *checker) getBuf(n int) []byte {
	if k := len(c.bufs); k > 0 {
		b := c.bufs[k-1]
		c.bufs = c.bufs[:k-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n, max(n, int(c.sb.Bsize)+ondisk.DirBlkSize))
}

func (c *checker) putBuf(b []byte) { c.bufs = append(c.bufs, b[:0]) }

// readFragsInto reads n fragments at blk into a buffer from getBuf.
func (c *checker) readFragsInto(blk ondisk.Frag, n int) ([]byte, error) {
	if c.chkrange(blk, n) {
		return nil, fmt.Errorf("%w: block %d (%d frags) outside the filesystem", ErrIO, blk, n)
	}
	b := c.getBuf(n * int(c.sb.Fsize))
	if err := c.readAt(b, c.sb.FragOffset(blk)); err != nil {
		c.putBuf(b)
		return nil, err
	}
	return b, nil
}

func (c *checker) writeFrags(blk ondisk.Frag, b []byte) error {
	if c.chkrange(blk, len(b)/int(c.sb.Fsize)) {
		return fmt.Errorf("%w: block %d outside the filesystem", ErrIO, blk)
	}
	return c.writeAt(b, c.sb.FragOffset(blk))
}

// chkrange reports whether cnt fragments at blk are NOT a legal piece of a
// block in the data area of one group.
func (c *checker) chkrange(blk ondisk.Frag, cnt int) bool {
	sb := c.sb
	if cnt <= 0 || blk <= 0 || int64(blk) > c.maxfsblk || int64(cnt-1) > c.maxfsblk-int64(blk) {
		return true
	}
	if cnt > int(sb.Frag) || sb.Fragnum(blk)+cnt > int(sb.Frag) {
		c.debugf("bad size: blk %d, offset %d, size %d\n", blk, sb.Fragnum(blk), cnt)
		return true
	}
	g := sb.Dtog(blk)
	if blk < sb.Cgdmin(g) {
		if int64(blk)+int64(cnt) > int64(sb.Cgsblock(g)) {
			return true
		}
	} else if int64(blk)+int64(cnt) > int64(sb.Cgbase(g+1)) {
		return true
	}
	return false
}
