package fsck

import (
	"encoding/binary"
	"fmt"
	"os/user"
	"strconv"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// Results of the per-block and per-entry functions (fsck.h).
const (
	stop    = 0x01
	skip    = 0x02
	keepOn  = 0x04
	altered = 0x08
	found   = 0x10
)

// Fix policies (enum fixstate).
const (
	dontKnow = iota
	noFix
	fix
	ignore
)

// Limits on bad and duplicate blocks reported per inode.
const (
	maxDup = 10
	maxBad = 10
)

// desc is struct inodesc: what a walk over an inode's blocks does.
type desc struct {
	typ      int
	fn       func(d *desc) int // per block (addr walks) or per entry (data walks)
	fixState int
	number   ondisk.Ino // the inode walked
	parent   ondisk.Ino // for entries: an inode number to find or enter
	lbn      int64
	blkno    ondisk.Frag
	level    int
	numfrags int
	lballoc  int64
	filesize int64
	entryno  int64
	loc      int
	name     string
	dirp     *dirent // current entry in data walks
	isPass1  bool    // the walk is pass 1's: check pointers past the size
}

var le = binary.LittleEndian

// ginode reads inode ino.
func (c *checker) ginode(ino ondisk.Ino) (*ondisk.Dinode, error) {
	if ino < ondisk.RootIno || ino >= c.maxino {
		return nil, fmt.Errorf("%w: bad inode number %d", ErrAborted, ino)
	}
	var b [ondisk.DinodeSize]byte
	if err := c.readAt(b[:], c.sb.InoOffset(ino)); err != nil {
		return nil, err
	}
	dp := new(ondisk.Dinode)
	if err := dp.Decode(b[:]); err != nil {
		return nil, err
	}
	return dp, nil
}

// putInode writes dp as inode ino, with its check-hash (inodirty).
func (c *checker) putInode(ino ondisk.Ino, dp *ondisk.Dinode) error {
	var b [ondisk.DinodeSize]byte
	if err := dp.EncodeWithHash(c.sb, b[:]); err != nil {
		return err
	}
	return c.writeAt(b[:], c.sb.InoOffset(ino))
}

// clearinode zeroes an inode in memory.
func clearinode(dp *ondisk.Dinode) { *dp = ondisk.Dinode{} }

// ftypeok reports whether the file type is one UFS stores.
func ftypeok(dp *ondisk.Dinode) bool {
	switch dp.Mode & ondisk.IFMT {
	case ondisk.IFDIR, ondisk.IFREG, ondisk.IFBLK, ondisk.IFCHR, ondisk.IFLNK, ondisk.IFSOCK, ondisk.IFIFO:
		return true
	}
	return false
}

// prtinode formats the " I=n  OWNER=u MODE=m\nSIZE=s MTIME=t " part of
// fsck_ffs's messages.
func (c *checker) prtinode(ino ondisk.Ino, dp *ondisk.Dinode) string {
	s := fmt.Sprintf(" I=%d ", ino)
	if ino < ondisk.RootIno || ino > c.maxino || dp == nil {
		return s
	}
	owner, ok := c.owners[dp.UID]
	if !ok {
		owner = strconv.FormatUint(uint64(dp.UID), 10)
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		if c.owners == nil {
			c.owners = map[uint32]string{}
		}
		c.owners[dp.UID] = owner
	}
	s += fmt.Sprintf(" OWNER=%s MODE=%o\n", owner, dp.Mode)
	if c.preen {
		s += c.name + ": "
	}
	t := time.Unix(dp.Mtime, 0).UTC()
	s += fmt.Sprintf("SIZE=%d MTIME=%s ", dp.Size, t.Format("Jan _2 15:04 2006"))
	return s
}

// ckinode walks the blocks of dp, calling d.fn for each data block and,
// for address walks, for each indirect block before its children.
func (c *checker) ckinode(dp *ondisk.Dinode, d *desc) (int, error) {
	sb := c.sb
	if d.fixState != ignore {
		d.fixState = dontKnow
	}
	d.lbn = -1
	d.lballoc = -1
	d.level = 0
	d.entryno = 0
	d.filesize = int64(dp.Size)
	mode := dp.Mode & ondisk.IFMT
	if mode == ondisk.IFBLK || mode == ondisk.IFCHR || (mode == ondisk.IFLNK && int64(dp.Size) < int64(sb.Maxsymlinklen)) {
		return keepOn, nil
	}
	size := int64(dp.Size)
	ndb := (size + int64(sb.Bsize) - 1) / int64(sb.Bsize)
	for i := 0; i < ondisk.NDaddr; i++ {
		d.lbn++
		ndb--
		if off := sb.Blkoff(size); ndb == 0 && off != 0 {
			d.numfrags = int(sb.Numfrags(sb.Fragroundup(off)))
		} else {
			d.numfrags = int(sb.Frag)
		}
		if dp.Db[i] == 0 {
			if d.typ == typeData && ndb >= 0 {
				if ret, err := c.emptyDirBlock(d, int64(i)*int64(sb.Bsize), true); err != nil || ret&stop != 0 {
					return ret, err
				}
			}
			continue
		}
		d.blkno = dp.Db[i]
		var ret int
		var err error
		if d.typ != typeData {
			ret = d.fn(d)
		} else {
			ret, err = c.dirscan(d)
		}
		if err != nil {
			return stop, err
		}
		if ret&stop != 0 {
			return ret, nil
		}
	}
	d.numfrags = int(sb.Frag)
	remsize := size - int64(sb.Bsize)*ondisk.NDaddr
	sizepb := int64(sb.Bsize)
	for i := 0; i < ondisk.NIaddr; i++ {
		sizepb *= sb.NINDIR()
		d.level = i + 1
		if dp.Ib[i] != 0 {
			d.blkno = dp.Ib[i]
			ret, err := c.iblock(d, remsize)
			if err != nil {
				return stop, err
			}
			if ret&stop != 0 {
				return ret, nil
			}
		} else if remsize > 0 {
			d.lbn += sizepb / int64(sb.Bsize)
			if d.typ == typeData {
				ret, err := c.emptyDirBlock(d, size-remsize, false)
				if err != nil || ret&stop != 0 {
					return ret, err
				}
				if ret&altered != 0 {
					break
				}
			}
		}
		remsize -= sizepb
	}
	return keepOn, nil
}

// emptyDirBlock handles a hole in a directory: fsck_ffs offers to cut the
// directory short at the hole and asks for a second run.
func (c *checker) emptyDirBlock(d *desc, newSize int64, direct bool) (int, error) {
	path := c.getpathname(d.number, d.number)
	c.pfatal(KindBadDir, d.number, path, "DIRECTORY %s: CONTAINS EMPTY BLOCKS", path)
	if !c.reply("ADJUST LENGTH") {
		return keepOn, nil
	}
	dp, err := c.ginode(d.number)
	if err != nil {
		return stop, err
	}
	dp.Size = uint64(newSize)
	c.printf("YOU MUST RERUN FSCK AFTERWARDS\n")
	c.rerun = true
	if err := c.putInode(d.number, dp); err != nil {
		return stop, err
	}
	if direct {
		return keepOn, nil
	}
	return altered, nil
}

// iblock walks an indirect block of level d.level covering isize bytes.
// d.level is as it was on return. An indirect block that is not walked
// (out of range, unreadable, or refused by d.fn) still advances d.lbn past
// the blocks it maps, so that the logical block numbers of what follows,
// and the size pass 1 derives from them, stay right. (fsck_ffs leaves
// both unchanged there: the size it then proposes is short by what the
// skipped block maps, and the level of the next sibling is off by one.)
func (c *checker) iblock(d *desc, isize int64) (int, error) {
	sb := c.sb
	level := d.level
	mapped := int64(1) // data blocks this indirect block maps
	for i := 0; i < level; i++ {
		mapped *= sb.NINDIR()
	}
	if d.typ != typeData {
		if n := d.fn(d); n&keepOn == 0 {
			d.lbn += mapped
			return n, nil
		}
	}
	if c.chkrange(d.blkno, int(sb.Frag)) {
		d.lbn += mapped
		return skip, nil
	}
	blkno := d.blkno
	buf, err := c.readFragsInto(blkno, int(sb.Frag))
	if err != nil {
		d.lbn += mapped
		return skip, nil
	}
	defer c.putBuf(buf)
	d.level = level - 1
	defer func() { d.level = level }()
	sizepb := int64(sb.Bsize)
	for i := 0; i < d.level; i++ {
		sizepb *= sb.NINDIR()
	}
	nif := sb.NINDIR()
	if h := howmany(isize, sizepb); h < nif {
		nif = max(h, 0)
	}
	if d.isPass1 && nif < sb.NINDIR() {
		dirty := false
		for i := nif; i < sb.NINDIR(); i++ {
			if le.Uint64(buf[i*8:]) == 0 {
				continue
			}
			msg := fmt.Sprintf("PARTIALLY TRUNCATED INODE I=%d", d.number)
			if c.preen {
				c.pfatal(KindBadInode, d.number, "", "%s", msg)
				break
			}
			if c.dofix(d, KindBadInode, msg) != 0 {
				le.PutUint64(buf[i*8:], 0)
				dirty = true
			}
		}
		if dirty {
			if err := c.writeFrags(blkno, buf); err != nil {
				return stop, err
			}
		}
	}
	for i := int64(0); i < nif; i++ {
		ptr := ondisk.Frag(le.Uint64(buf[i*8:]))
		if ptr != 0 {
			d.blkno = ptr
			var n int
			if d.level == 0 {
				d.lbn++
				if d.typ == typeData {
					n, err = c.dirscan(d)
				} else {
					n = d.fn(d)
				}
			} else {
				n, err = c.iblock(d, isize)
			}
			if err != nil {
				return stop, err
			}
			if n&stop != 0 {
				return n, nil
			}
		} else {
			d.lbn += sizepb / int64(sb.Bsize)
			if d.typ == typeData && isize > 0 {
				path := c.getpathname(d.number, d.number)
				c.pfatal(KindBadDir, d.number, path, "DIRECTORY %s: CONTAINS EMPTY BLOCKS", path)
				if c.reply("ADJUST LENGTH") {
					dp, err := c.ginode(d.number)
					if err != nil {
						return stop, err
					}
					dp.Size -= uint64(isize)
					c.printf("YOU MUST RERUN FSCK AFTERWARDS\n")
					c.rerun = true
					if err := c.putInode(d.number, dp); err != nil {
						return stop, err
					}
					return stop, nil
				}
			}
		}
		isize -= sizepb
	}
	return keepOn, nil
}

func howmany(x, y int64) int64 {
	if x <= 0 {
		return 0
	}
	return (x + y - 1) / y
}

// dofix decides whether to fix what d's walk found wrong: it asks once
// per walk and remembers the answer.
func (c *checker) dofix(d *desc, kind, msg string) int {
	switch d.fixState {
	case dontKnow:
		if d.typ == typeData {
			c.direrror(d.number, kind, msg)
		} else {
			c.warn(kind, d.number, "", "%s", msg)
		}
		if c.preen {
			c.printf(" (SALVAGED)\n")
			c.fixed()
			d.fixState = fix
			return altered
		}
		if !c.reply("SALVAGE") {
			d.fixState = noFix
			return 0
		}
		d.fixState = fix
		return altered
	case fix:
		return altered
	}
	return 0
}

// blkerror reports a bad or duplicate block and marks the inode to be
// cleared.
func (c *checker) blkerror(ino ondisk.Ino, kind string, blk ondisk.Frag) {
	pk := KindBadBlock
	if kind == "DUP" {
		pk = KindDupBlock
	}
	c.pfatal(pk, ino, "", "%d %s I=%d", blk, kind, ino)
	c.printf("\n")
	st := c.inoinfo(ino)
	switch st.state {
	case fstate, fzlink:
		st.state = fclear
	case dstate, dzlink:
		st.state = dclear
	}
}

// freeblock gives back the fragments of d.blkno, except those still
// claimed by another inode as duplicates.
func (c *checker) freeblock(d *desc) int {
	res := keepOn
	blk := d.blkno
	if d.typ == typeSnap && (blk == ondisk.BlkNoCopy || blk == ondisk.BlkSnap) {
		return keepOn
	}
	for n := d.numfrags; n > 0; n, blk = n-1, blk+1 {
		if c.chkrange(blk, 1) {
			res = skip
			continue
		}
		if !c.testbmap(blk) {
			continue
		}
		if k := c.dups[blk]; k > 0 {
			if k == 1 {
				delete(c.dups, blk)
			} else {
				c.dups[blk] = k - 1
			}
			continue
		}
		c.clrbmap(blk)
		c.nBlks--
	}
	return res
}

// clri clears inode d.number, giving back its blocks.
func (c *checker) clri(d *desc, what, kind string, print bool) error {
	dp, err := c.ginode(d.number)
	if err != nil {
		return err
	}
	if print {
		typ := "FILE"
		if dp.Mode&ondisk.IFMT == ondisk.IFDIR {
			typ = "DIR"
		}
		c.warn(kind, d.number, "", "%s %s%s", what, typ, c.prtinode(d.number, dp))
		c.printf("\n")
	}
	if !c.preen && !c.reply("CLEAR") {
		return nil
	}
	if c.preen {
		c.printf(" (CLEARED)\n")
		c.fixed()
	}
	c.nFiles--
	if err := c.giveBackBlocks(dp, d, true, true); err != nil {
		return err
	}
	c.inoinfo(d.number).state = ustate
	clearinode(dp)
	return c.putInode(d.number, dp)
}

// walkExtattrBlocks calls d.fn for the extended attribute blocks of dp.
func (c *checker) walkExtattrBlocks(dp *ondisk.Dinode, d *desc) {
	if dp.Extsize == 0 {
		return
	}
	sb := c.sb
	ndb := howmany(int64(dp.Extsize), int64(sb.Bsize))
	for j := 0; j < ondisk.NXaddr; j++ {
		ndb--
		if off := sb.Blkoff(int64(dp.Extsize)); ndb == 0 && off != 0 {
			d.numfrags = int(sb.Numfrags(sb.Fragroundup(off)))
		} else {
			d.numfrags = int(sb.Frag)
		}
		if dp.Extb[j] == 0 {
			continue
		}
		d.blkno = dp.Extb[j]
		d.lbn = int64(-1 - j)
		d.level = 0
		if d.fn(d)&stop != 0 {
			return
		}
	}
}

// freeino gives back inode ino and its blocks.
func (c *checker) freeino(ino ondisk.Ino) error {
	d := &desc{typ: c.inoinfo(ino).idtype(), number: ino}
	dp, err := c.ginode(ino)
	if err != nil {
		return err
	}
	if err := c.giveBackBlocks(dp, d, true, true); err != nil {
		return err
	}
	clearinode(dp)
	if err := c.putInode(ino, dp); err != nil {
		return err
	}
	c.inoinfo(ino).state = ustate
	c.nFiles--
	return nil
}
