package fsck

import (
	"fmt"
	"strings"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// dirent is a copy of one directory entry's d_reclen bytes; the walk
// writes it back into the block when the entry function says it altered it.
type dirent struct{ b []byte }

func (e *dirent) ino() ondisk.Ino     { return ondisk.Ino(le.Uint32(e.b)) }
func (e *dirent) setIno(i ondisk.Ino) { le.PutUint32(e.b, uint32(i)) }
func (e *dirent) reclen() int         { return int(le.Uint16(e.b[4:])) }
func (e *dirent) setReclen(n int)     { le.PutUint16(e.b[4:], uint16(n)) }
func (e *dirent) dtype() uint8        { return e.b[6] }
func (e *dirent) setDtype(t uint8)    { e.b[6] = t }
func (e *dirent) namlen() int         { return int(e.b[7]) }

// name returns d_name (clamped to the record for unused entries).
func (e *dirent) name() string {
	n := min(8+e.namlen(), len(e.b))
	return string(e.b[8:n])
}

// size is DIRSIZ of the entry: what its name needs.
func (e *dirent) size() int { return ondisk.DirectSize(e.namlen()) }

// put writes a whole entry (header, name, NUL, padding) at the start of
// e.b, keeping reclen as given.
func (e *dirent) put(ino ondisk.Ino, reclen int, dtype uint8, name string) {
	n := ondisk.DirectSize(len(name))
	for i := 0; i < n && i < len(e.b); i++ {
		e.b[i] = 0
	}
	le.PutUint32(e.b, uint32(ino))
	le.PutUint16(e.b[4:], uint16(reclen))
	e.b[6] = dtype
	e.b[7] = uint8(len(name))
	copy(e.b[8:], name)
}

// dirscan scans the entries of the directory block d.blkno, calling d.fn
// for each and writing back what it altered.
func (c *checker) dirscan(d *desc) (int, error) {
	sb := c.sb
	if d.entryno == 0 && d.filesize&(ondisk.DirBlkSize-1) != 0 {
		d.filesize = roundup(d.filesize, ondisk.DirBlkSize)
	}
	blksiz := d.numfrags * int(sb.Fsize)
	if c.chkrange(d.blkno, d.numfrags) {
		d.filesize -= int64(blksiz)
		return skip, nil
	}
	blk := d.blkno
	// Each entry is copied to scratch, after the block in the same lent
	// buffer, for d.fn, and copied back only when d.fn says it altered it.
	whole := c.getBuf(blksiz + ondisk.DirBlkSize)
	defer c.putBuf(whole)
	buf, scratch := whole[:blksiz:blksiz], whole[blksiz:]
	if err := c.readAt(buf, sb.FragOffset(blk)); err != nil {
		return stop, err
	}
	e := &dirent{}
	d.loc = 0
	for {
		off, ok, err := c.readdir(d, blk, buf)
		if err != nil {
			return stop, err
		}
		if !ok {
			break
		}
		dsize := min(int(le.Uint16(buf[off+4:])), ondisk.DirBlkSize)
		e.b = scratch[:dsize]
		copy(e.b, buf[off:off+dsize])
		d.dirp = e
		n := d.fn(d)
		if n&altered != 0 {
			copy(buf[off:], e.b)
			if err := c.writeFrags(blk, buf); err != nil {
				return stop, err
			}
		}
		if n&stop != 0 {
			return n, nil
		}
	}
	if d.filesize > 0 {
		return keepOn, nil
	}
	return stop, nil
}

// readdir returns the offset of the next entry of the block in buf,
// checking it (and the one after it) first; a bad entry is zapped or
// absorbed into the one before, as fsck_readdir does.
func (c *checker) readdir(d *desc, blk ondisk.Frag, buf []byte) (int, bool, error) {
	blksiz := len(buf)
	if d.filesize <= 0 || d.loc >= blksiz {
		return 0, false, nil
	}
	dp := d.loc
	subsume := false
	ndp := 0
	if dp%ondisk.DirBlkSize != 0 || c.dircheck(d, buf, dp) {
		reclen := int(le.Uint16(buf[dp+4:]))
		d.loc += reclen
		d.filesize -= int64(reclen)
		if d.filesize <= 0 || d.loc >= blksiz || d.loc%ondisk.DirBlkSize == 0 {
			return dp, true, nil
		}
		ndp = d.loc
		if c.dircheck(d, buf, ndp) {
			return dp, true, nil
		}
		subsume = true
	}
	size := ondisk.DirBlkSize - d.loc%ondisk.DirBlkSize
	d.loc += size
	d.filesize -= int64(size)
	if d.fixState == ignore {
		return 0, false, nil
	}
	if subsume {
		clear(buf[ndp : ndp+size])
		le.PutUint16(buf[dp+4:], le.Uint16(buf[dp+4:])+uint16(size))
	} else {
		clear(buf[dp : dp+size])
		le.PutUint16(buf[dp+4:], uint16(size))
	}
	if c.dofix(d, KindBadDir, "DIRECTORY CORRUPTED") != 0 {
		if err := c.writeFrags(blk, buf); err != nil {
			return 0, false, err
		}
	}
	return dp, true, nil
}

// dircheck reports whether the entry at off is sound.
func (c *checker) dircheck(d *desc, buf []byte, off int) bool {
	spaceleft := ondisk.DirBlkSize - off%ondisk.DirBlkSize
	if off+8 > len(buf) {
		return false
	}
	ino := le.Uint32(buf[off:])
	reclen := int(le.Uint16(buf[off+4:]))
	typ := buf[off+6]
	namlen := int(buf[off+7])
	size := ondisk.DirectSize(namlen)
	if reclen == 0 || reclen > spaceleft || reclen < size || d.filesize < int64(size) || reclen&3 != 0 {
		c.debugf("Bad dir: ino %d reclen %d namlen %d type %d\n", ino, reclen, namlen, typ)
		return false
	}
	if ino == 0 {
		return true
	}
	if namlen == 0 || typ > 15 {
		return false
	}
	for _, ch := range buf[off+8 : off+8+namlen] {
		if ch == 0 || ch == '/' {
			return false
		}
	}
	return buf[off+8+namlen] == 0
}

// direrror reports a problem with directory ino.
func (c *checker) direrror(ino ondisk.Ino, kind, msg string) { c.fileerror(ino, ino, kind, msg) }

// fileerror reports a problem with inode ino seen from directory cwd.
func (c *checker) fileerror(cwd, ino ondisk.Ino, kind, msg string) {
	if ino < ondisk.RootIno || ino >= c.maxino {
		if c.preen {
			c.printf("%s: ", c.name)
		}
		c.pfatal(kind, ino, "", "%s out-of-range inode number %d", msg, ino)
		return
	}
	dp, err := c.ginode(ino)
	if err != nil {
		dp = nil
	}
	path := c.getpathname(cwd, ino)
	c.pwarn("%s %s\n", msg, c.prtinode(ino, dp))
	what := "NAME"
	if dp != nil && ftypeok(dp) {
		what = "FILE"
		if dp.Mode&ondisk.IFMT == ondisk.IFDIR {
			what = "DIR"
		}
	}
	c.problem(kind, ino, path, "%s", msg)
	if c.preen {
		c.printf("%s: %s=%s\n", c.name, what, path)
	} else {
		c.printf("%s=%s\n", what, path)
	}
}

// walkDir runs d over the entries of directory ino.
func (c *checker) walkDir(ino ondisk.Ino, d *desc) (int, error) {
	dp, err := c.ginode(ino)
	if err != nil {
		return 0, err
	}
	d.typ = typeData
	d.number = ino
	return c.ckinode(dp, d)
}

// lookup finds name in directory dir (findino).
func (c *checker) lookup(dir ondisk.Ino, name string) (ondisk.Ino, bool) {
	var res ondisk.Ino
	d := &desc{fixState: ignore}
	d.fn = func(d *desc) int {
		e := d.dirp
		if e.ino() == 0 {
			return keepOn
		}
		if e.name() == name && e.ino() >= ondisk.RootIno && e.ino() < c.maxino {
			res = e.ino()
			return stop | found
		}
		return keepOn
	}
	n, err := c.walkDir(dir, d)
	return res, err == nil && n&found != 0
}

// findName returns the name under which dir holds ino, "." and ".."
// aside (findname).
func (c *checker) findName(dir, ino ondisk.Ino) (string, bool) {
	var res string
	d := &desc{fixState: ignore}
	d.fn = func(d *desc) int {
		e := d.dirp
		if e.ino() != ino || d.entryno < 2 {
			d.entryno++
			return keepOn
		}
		res = e.name()
		return stop | found
	}
	n, err := c.walkDir(dir, d)
	return res, err == nil && n&found != 0
}

// getpathname returns the path of ino, looked up from curdir (its
// directory, or ino itself for a directory), "?" where it cannot tell.
func (c *checker) getpathname(curdir, ino ondisk.Ino) string {
	if curdir == ino && ino == ondisk.RootIno {
		return "/"
	}
	if c.pathBusy || curdir >= c.maxino || !isDvalid(c.inoinfo(curdir).state) {
		return "?"
	}
	c.pathBusy = true
	defer func() { c.pathBusy = false }()
	var parts []string
	total := 0
	dir := curdir
	first := curdir != ino
	for first || ino != ondisk.RootIno {
		if !first {
			p, ok := c.lookup(ino, "..")
			if !ok {
				break
			}
			dir = p
		}
		first = false
		name, ok := c.findName(dir, ino)
		if !ok {
			break
		}
		parts = append(parts, name)
		total += len(name) + 1
		ino = dir
		if total > 1024-ondisk.MaxNameLen {
			break
		}
	}
	var b strings.Builder
	if ino != ondisk.RootIno {
		b.WriteString("?")
	}
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString("/")
		b.WriteString(parts[i])
	}
	return b.String()
}

// propagate marks as found every directory whose parent is found.
func (c *checker) propagate() {
	for {
		change := false
		for i := range c.dirs.list {
			d := &c.dirs.list[i]
			if d.parent == 0 {
				continue
			}
			if c.inoinfo(d.parent).state == dfound && isDunfound(c.inoinfo(d.number).state) {
				c.inoinfo(d.number).state = dfound
				change = true
			}
		}
		if !change {
			return
		}
	}
}

// adjust corrects the link count of d.number by lcnt, reconnecting or
// clearing an inode nothing references (adjust of dir.c).
func (c *checker) adjust(d *desc, lcnt int) error {
	dp, err := c.ginode(d.number)
	if err != nil {
		return err
	}
	if int(dp.Nlink) == lcnt {
		if c.resolved && c.preen && c.usedSoftdep {
			return c.clri(d, "UNREF", KindUnrefInode, true)
		}
		saved := c.resolved
		ok, err := c.linkup(d.number, 0, "")
		if err != nil {
			return err
		}
		if !ok {
			c.resolved = saved
			return c.clri(d, "UNREF", KindUnrefInode, false)
		}
		lcnt--
		if dp, err = c.ginode(d.number); err != nil {
			return err
		}
	}
	if lcnt == 0 {
		return nil
	}
	what := "FILE"
	switch {
	case c.lfdir == d.number:
		what = lfname
	case dp.Mode&ondisk.IFMT == ondisk.IFDIR:
		what = "DIR"
	}
	want := int(dp.Nlink) - lcnt
	kind := KindLinkCountHigh
	if lcnt < 0 {
		kind = KindLinkCountLow
	}
	c.warn(kind, d.number, "", "LINK COUNT %s%s COUNT %d SHOULD BE %d", what, c.prtinode(d.number, dp), dp.Nlink, want)
	if c.preen || c.usedSoftdep {
		if lcnt < 0 {
			c.printf("\n")
			c.pfatal(KindLinkCountLow, d.number, "", "LINK COUNT INCREASING")
			if c.preen {
				return nil
			}
		}
		if c.preen {
			c.printf(" (ADJUSTED)\n")
			c.fixed()
		}
	}
	if c.preen || c.reply("ADJUST") {
		dp.Nlink = int16(want)
		return c.putInode(d.number, dp)
	}
	return nil
}

// makeentry adds name -> ino to directory parent, growing it if needed.
func (c *checker) makeentry(parent, ino ondisk.Ino, name string) (bool, error) {
	if parent < ondisk.RootIno || parent >= c.maxino || ino < ondisk.RootIno || ino >= c.maxino {
		return false, nil
	}
	d := &desc{fixState: dontKnow}
	d.fn = func(d *desc) int { return c.mkentry(d, ino, name) }
	dp, err := c.ginode(parent)
	if err != nil {
		return false, err
	}
	if dp.Size%ondisk.DirBlkSize != 0 {
		dp.Size = uint64(roundup(int64(dp.Size), ondisk.DirBlkSize))
		if err := c.putInode(parent, dp); err != nil {
			return false, err
		}
	}
	n, err := c.walkDir(parent, d)
	if err != nil || n&altered != 0 {
		return err == nil, err
	}
	path := c.getpathname(parent, parent)
	ok, err := c.expanddir(parent, path)
	if err != nil || !ok {
		return false, err
	}
	n, err = c.walkDir(parent, d)
	return err == nil && n&altered != 0, err
}

// mkentry puts the entry into the free space of d.dirp if it fits.
func (c *checker) mkentry(d *desc, ino ondisk.Ino, name string) int {
	e := d.dirp
	newlen := ondisk.DirectSize(len(name))
	oldlen := 0
	if e.ino() != 0 {
		oldlen = e.size()
	}
	if e.reclen()-oldlen < newlen {
		return keepOn
	}
	rest := e.reclen() - oldlen
	e.setReclen(oldlen)
	ne := &dirent{b: e.b[oldlen:]}
	ne.put(ino, rest, c.inoinfo(ino).dtype(), name)
	return altered | stop
}

// changeino points entry name of directory dir at newnum.
func (c *checker) changeino(dir ondisk.Ino, name string, newnum ondisk.Ino) (int, error) {
	d := &desc{fixState: dontKnow}
	d.fn = func(d *desc) int {
		e := d.dirp
		if e.ino() == 0 && e.namlen() == 0 || e.name() != name {
			return keepOn
		}
		e.setIno(newnum)
		e.setDtype(c.inoinfo(newnum).dtype())
		return altered | stop
	}
	return c.walkDir(dir, d)
}

// lftempname is the name an orphan gets in lost+found: '#' and its number
// padded to the width of the largest inode number.
func (c *checker) lftempname(ino ondisk.Ino) string {
	width := len(fmt.Sprint(uint32(c.maxino)))
	s := fmt.Sprintf("%0*d", width, uint32(ino))
	return "#" + s[len(s)-width:]
}

// linkup reconnects orphan under lost+found; parentdir is the directory
// it was in (0 when unknown, noDotdot when ".." cannot be fixed).
func (c *checker) linkup(orphan, parentdir ondisk.Ino, name string) (bool, error) {
	dp, err := c.ginode(orphan)
	if err != nil {
		return false, err
	}
	lostdir := dp.Mode&ondisk.IFMT == ondisk.IFDIR
	what := "FILE"
	if lostdir {
		what = "DIR"
	}
	c.warn(KindUnrefInode, orphan, "", "UNREF %s%s", what, c.prtinode(orphan, dp))
	c.printf("\n")
	if c.preen && dp.Size == 0 {
		return false, nil
	}
	if c.preen {
		c.printf(" (RECONNECTED)\n")
		c.fixed()
	} else if !c.reply("RECONNECT") {
		return false, nil
	}
	if c.lfdir == 0 {
		if ino, ok := c.lookup(ondisk.RootIno, lfname); ok {
			c.lfdir = ino
		} else {
			c.warn(KindLostFound, 0, "/"+lfname, "NO lost+found DIRECTORY")
			if c.preen || c.reply("CREATE") {
				lf, err := c.allocdir(ondisk.RootIno, 0, lfmode)
				if err != nil {
					return false, err
				}
				if lf != 0 {
					ok, err := c.makeentry(ondisk.RootIno, lf, lfname)
					if err != nil {
						return false, err
					}
					if ok {
						c.lfdir = lf
						if c.preen {
							c.printf(" (CREATED)\n")
							c.fixed()
						}
					} else {
						if err := c.freedir(lf, ondisk.RootIno); err != nil {
							return false, err
						}
						if c.preen {
							c.printf("\n")
						}
					}
				}
			}
		}
		if c.lfdir == 0 {
			c.pfatal(KindLostFound, 0, "", "SORRY. CANNOT CREATE lost+found DIRECTORY")
			c.printf("\n\n")
			return false, nil
		}
	}
	lp, err := c.ginode(c.lfdir)
	if err != nil {
		return false, err
	}
	if lp.Mode&ondisk.IFMT != ondisk.IFDIR {
		c.pfatal(KindLostFound, c.lfdir, "/"+lfname, "lost+found IS NOT A DIRECTORY")
		if !c.reply("REALLOCATE") {
			return false, nil
		}
		old := c.lfdir
		nl, err := c.allocdir(ondisk.RootIno, 0, lfmode)
		if err != nil {
			return false, err
		}
		if nl == 0 {
			c.pfatal(KindLostFound, 0, "", "SORRY. CANNOT CREATE lost+found DIRECTORY\n\n")
			return false, nil
		}
		c.lfdir = nl
		n, err := c.changeino(ondisk.RootIno, lfname, nl)
		if err != nil {
			return false, err
		}
		if n&altered == 0 {
			c.pfatal(KindLostFound, 0, "", "SORRY. CANNOT CREATE lost+found DIRECTORY\n\n")
			return false, nil
		}
		od := &desc{typ: c.inoinfo(old).idtype(), fn: c.freeblock, number: old}
		if err := c.adjust(od, int(c.inoinfo(old).link)+1); err != nil {
			return false, err
		}
		c.inoinfo(old).link = 0
	}
	if c.inoinfo(c.lfdir).state != dfound {
		c.pfatal(KindLostFound, c.lfdir, "/"+lfname, "SORRY. NO lost+found DIRECTORY\n\n")
		return false, nil
	}
	if name == "" {
		name = c.lftempname(orphan)
	}
	ok, err := c.makeentry(c.lfdir, orphan, name)
	if err != nil {
		return false, err
	}
	if !ok {
		c.pfatal(KindLostFound, c.lfdir, "/"+lfname, "SORRY. NO SPACE IN lost+found DIRECTORY")
		c.printf("\n\n")
		return false, nil
	}
	c.inoinfo(orphan).link--
	if lostdir {
		n, err := c.changeino(orphan, "..", c.lfdir)
		if err != nil {
			return false, err
		}
		if n&altered == 0 && parentdir != noDotdot {
			if _, err := c.makeentry(orphan, c.lfdir, ".."); err != nil {
				return false, err
			}
		}
		if err := c.updateInode(c.lfdir, func(l *ondisk.Dinode) { l.Nlink++ }); err != nil {
			return false, err
		}
		c.inoinfo(c.lfdir).link++
		c.pwarn("DIR I=%d CONNECTED. ", orphan)
		if parentdir != noDotdot {
			c.printf("PARENT WAS I=%d\n", parentdir)
			// The old parent had the orphan's ".." counted as one of its
			// links; that reference is gone now.
			if od := c.dirs.lookup(orphan); parentdir != 0 && od != nil && od.dotdotCounted {
				od.dotdotCounted = false
				c.inoinfo(parentdir).link++
			}
		}
		if !c.preen {
			c.printf("\n")
		}
	}
	return true, nil
}

// expanddir adds a block to directory ino (only up to what a single
// indirect block maps), or turns its fragment tail into a full block.
func (c *checker) expanddir(ino ondisk.Ino, path string) (bool, error) {
	sb := c.sb
	c.warn(KindLostFound, ino, path, "NO SPACE LEFT IN %s", path)
	if !c.preen && !c.reply("EXPAND") {
		return false, nil
	}
	dp, err := c.ginode(ino)
	if err != nil {
		return false, err
	}
	filesize := int64(dp.Size)
	lastlbn := int64(sb.Lblkno(filesize))
	if dp.Mode&ondisk.IFMT != ondisk.IFDIR || filesize == 0 || lastlbn >= ondisk.NDaddr+sb.NINDIR() {
		c.pfatal(KindLostFound, ino, path, " (EXPANSION FAILED)\n")
		return false, nil
	}
	emptyChunks := func(b []byte) {
		for off := 0; off+ondisk.DirBlkSize <= len(b); off += ondisk.DirBlkSize {
			le.PutUint16(b[off+4:], ondisk.DirBlkSize)
		}
	}
	if lastlbn < ondisk.NDaddr {
		if ls := sb.Sblksize(filesize, ondisk.Lbn(lastlbn)); ls > 0 && ls < int64(sb.Bsize) && dp.Db[lastlbn] != 0 {
			// The last block is a fragment: move it to a full block.
			old := dp.Db[lastlbn]
			ob, err := c.readFrags(old, int(sb.Numfrags(ls)))
			if err != nil {
				return false, err
			}
			nb := c.allocblk(int(sb.Frag))
			if nb == 0 {
				c.pfatal(KindLostFound, ino, path, " (EXPANSION FAILED)\n")
				return false, nil
			}
			buf := make([]byte, sb.Bsize)
			copy(buf, ob)
			emptyChunks(buf[ls:])
			if err := c.writeFrags(nb, buf); err != nil {
				return false, err
			}
			dp.Db[lastlbn] = nb
			dp.Size = uint64(filesize + int64(sb.Bsize) - ls)
			dp.Blocks += uint64((int64(sb.Bsize) - ls) / ondisk.DevBSize)
			if err := c.putInode(ino, dp); err != nil {
				return false, err
			}
			c.releaseFrags(old, int(sb.Numfrags(ls)))
			c.updateDirRecord(ino, dp)
			if c.preen {
				c.printf(" (EXPANDED)\n")
				c.fixed()
			}
			return true, nil
		}
	}
	nb := c.allocblk(int(sb.Frag))
	if nb == 0 {
		c.pfatal(KindLostFound, ino, path, " (EXPANSION FAILED)\n")
		return false, nil
	}
	buf := make([]byte, sb.Bsize)
	emptyChunks(buf)
	if err := c.writeFrags(nb, buf); err != nil {
		return false, err
	}
	if lastlbn < ondisk.NDaddr {
		dp.Db[lastlbn] = nb
	} else {
		ib := dp.Ib[0]
		var ibuf []byte
		if ib == 0 {
			if ib = c.allocblk(int(sb.Frag)); ib == 0 {
				c.releaseFrags(nb, int(sb.Frag))
				c.pfatal(KindLostFound, ino, path, " (EXPANSION FAILED)\n")
				return false, nil
			}
			ibuf = make([]byte, sb.Bsize)
			dp.Ib[0] = ib
			dp.Blocks += uint64(sb.Bsize / ondisk.DevBSize)
		} else if ibuf, err = c.readFrags(ib, int(sb.Frag)); err != nil {
			return false, err
		}
		le.PutUint64(ibuf[(lastlbn-ondisk.NDaddr)*8:], uint64(nb))
		if err := c.writeFrags(ib, ibuf); err != nil {
			return false, err
		}
	}
	dp.Size = uint64(filesize + int64(sb.Bsize))
	dp.Blocks += uint64(sb.Bsize / ondisk.DevBSize)
	if err := c.putInode(ino, dp); err != nil {
		return false, err
	}
	c.updateDirRecord(ino, dp)
	if c.preen {
		c.printf(" (EXPANDED)\n")
		c.fixed()
	}
	return true, nil
}

// updateDirRecord refreshes the kept record of a directory that changed.
func (c *checker) updateDirRecord(ino ondisk.Ino, dp *ondisk.Dinode) {
	d := c.dirs.lookup(ino)
	if d == nil {
		return
	}
	parent, dotdot := d.parent, d.dotdot
	c.cacheino(dp, ino)
	d = c.dirs.lookup(ino)
	d.parent, d.dotdot = parent, dotdot
}

// allocdir makes a new directory under parent (allocdir of dir.c).
func (c *checker) allocdir(parent, request ondisk.Ino, mode uint16) (ondisk.Ino, error) {
	sb := c.sb
	ino, err := c.allocino(request, ondisk.IFDIR|mode)
	if err != nil || ino == 0 {
		return 0, err
	}
	dp, err := c.ginode(ino)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, sb.Fsize)
	e := &dirent{b: buf}
	e.put(ino, 12, ondisk.DTDir, ".")
	e2 := &dirent{b: buf[12:]}
	e2.put(parent, ondisk.DirBlkSize-12, ondisk.DTDir, "..")
	for off := ondisk.DirBlkSize; off < len(buf); off += ondisk.DirBlkSize {
		le.PutUint16(buf[off+4:], ondisk.DirBlkSize)
	}
	if err := c.writeFrags(dp.Db[0], buf); err != nil {
		return 0, err
	}
	dp.Nlink = 2
	if err := c.putInode(ino, dp); err != nil {
		return 0, err
	}
	if ino == ondisk.RootIno {
		c.inoinfo(ino).link = dp.Nlink
		c.cacheino(dp, ino)
		return ino, nil
	}
	if !isDvalid(c.inoinfo(parent).state) {
		return 0, c.freeino(ino)
	}
	c.cacheino(dp, ino)
	di := c.dirs.lookup(ino)
	di.parent, di.dotdot = parent, parent
	st := c.inoinfo(ino)
	st.state = c.inoinfo(parent).state
	if st.state == dstate {
		st.link = dp.Nlink
		c.inoinfo(parent).link++
	}
	if err := c.updateInode(parent, func(p *ondisk.Dinode) { p.Nlink++ }); err != nil {
		return 0, err
	}
	return ino, nil
}

// freedir frees directory ino made under parent.
func (c *checker) freedir(ino, parent ondisk.Ino) error {
	if ino != parent {
		if err := c.updateInode(parent, func(p *ondisk.Dinode) { p.Nlink-- }); err != nil {
			return err
		}
	}
	return c.freeino(ino)
}

// allocino allocates an inode of the given mode with one fragment of data
// (allocino of inode.c). It returns 0 when there is none to be had.
func (c *checker) allocino(request ondisk.Ino, mode uint16) (ondisk.Ino, error) {
	sb := c.sb
	if request == 0 {
		request = ondisk.RootIno
	} else if c.inoinfo(request).state != ustate {
		return 0, nil
	}
	var ino ondisk.Ino
	var cb *cgbuf
	for try := request; try < c.maxino; try++ {
		g := c.cgOf(try)
		off := uint32(try) % sb.Ipg
		b, err := c.cglookup(g, false)
		if err != nil {
			return 0, err
		}
		if b.bad && !b.dirty {
			try = ondisk.Ino(uint32(g+1)*sb.Ipg) - 1
			continue
		}
		if off >= b.cg.Initediblk {
			if off != b.cg.Initediblk || off >= sb.Ipg {
				try = ondisk.Ino(uint32(g+1)*sb.Ipg) - 1
				continue
			}
			// Initialise one more block of inodes.
			zero := make([]byte, sb.Bsize)
			if err := c.writeAt(zero, sb.FragOffset(sb.InoToFsba(try))); err != nil {
				return 0, err
			}
			b.cg.Initediblk = min(sb.Ipg, b.cg.Initediblk+sb.Inopb)
			c.cgdirty(b)
		}
		// An inode cleared during this run may still carry counts of
		// references to its old self: it is not reused.
		if st := c.inoinfo(try); (st.state == ustate || (st.state == 0 && try >= ondisk.RootIno)) && st.link == 0 {
			ino, cb = try, b
			break
		}
	}
	if ino == 0 {
		return 0, nil
	}
	g := c.cgOf(ino)
	off := uint32(ino) % sb.Ipg
	c.growStat(g, int(off)+1)
	st := c.inoinfo(ino)
	switch mode & ondisk.IFMT {
	case ondisk.IFDIR:
		st.state = dstate
	case ondisk.IFREG, ondisk.IFLNK:
		st.state = fstate
	default:
		return 0, nil
	}
	blk := c.allocblk(1)
	if blk == 0 {
		st.state = ustate
		return 0, nil
	}
	cg := cb.cg
	cg.SetInodeUsed(int64(off), true)
	cg.Cs.Nifree--
	c.cs[g].Nifree--
	sb.Cstotal.Nifree--
	if mode&ondisk.IFMT == ondisk.IFDIR {
		cg.Cs.Ndir++
		c.cs[g].Ndir++
		sb.Cstotal.Ndir++
	}
	c.cgdirty(cb)
	c.sbDirty = true
	now := time.Now()
	dp := &ondisk.Dinode{
		Mode: mode, Size: uint64(sb.Fsize), Blocks: uint64(sb.Fsize / ondisk.DevBSize),
		Atime: now.Unix(), Mtime: now.Unix(), Ctime: now.Unix(), Birthtime: now.Unix(),
		Gen: uint32(now.UnixNano()) | 1,
	}
	dp.Db[0] = blk
	if err := c.putInode(ino, dp); err != nil {
		return 0, err
	}
	c.nFiles++
	st.setDtype(ondisk.DTypeFromMode(mode))
	st.setIdtype(typeAddr)
	return ino, nil
}

// allocblk allocates frags fragments within one block, marking them in the
// block map and in their cylinder group (allocblk of fsutil.c).
func (c *checker) allocblk(frags int) ondisk.Frag {
	sb := c.sb
	fr := int64(sb.Frag)
	if frags <= 0 || int64(frags) > fr {
		return 0
	}
	for i := int64(0); i < c.maxfsblk-fr; i += fr {
		for j := int64(0); j <= fr-int64(frags); j++ {
			if c.testbmap(ondisk.Frag(i + j)) {
				continue
			}
			k := int64(1)
			for ; k < int64(frags); k++ {
				if c.testbmap(ondisk.Frag(i + j + k)) {
					break
				}
			}
			if k < int64(frags) {
				j += k
				continue
			}
			start := ondisk.Frag(i + j)
			g := int(sb.Dtog(start))
			cb, err := c.cglookup(g, false)
			if err != nil || (cb.bad && !cb.dirty) {
				return 0
			}
			for k := 0; k < frags; k++ {
				c.setbmap(start + ondisk.Frag(k))
			}
			c.cgAccount(g, cb, start, frags, false)
			c.nBlks += int64(frags)
			return start
		}
	}
	return 0
}

// releaseFrags gives back fragments allocated during this run.
func (c *checker) releaseFrags(start ondisk.Frag, frags int) {
	for k := 0; k < frags; k++ {
		c.clrbmap(start + ondisk.Frag(k))
	}
	c.nBlks -= int64(frags)
	g := int(c.sb.Dtog(start))
	if cb, err := c.cglookup(g, false); err == nil && (!cb.bad || cb.dirty) {
		c.cgAccount(g, cb, start, frags, true)
	}
}

// cgAccount marks frags fragments at start free or in use in their group's
// map and keeps the group's, the summary array's and the superblock's
// counts, fragment summary and cluster map in step.
func (c *checker) cgAccount(g int, cb *cgbuf, start ondisk.Frag, frags int, free bool) {
	sb := c.sb
	cg := cb.cg
	fr := int(sb.Frag)
	rel := sb.Dtogd(start)
	h := rel / int64(fr)
	full := 1<<fr - 1
	before := cg.BlockMap(h)
	adj := func(m int, sign int32) {
		if m == full {
			cg.Cs.Nbfree += sign
			c.cs[g].Nbfree += sign
			sb.Cstotal.Nbfree += int64(sign)
			cg.ClusterAcct(h, sign)
			return
		}
		cg.FragAcct(m, sign)
		n := int32(0)
		for i := 0; i < fr; i++ {
			if m&(1<<i) != 0 {
				n++
			}
		}
		cg.Cs.Nffree += sign * n
		c.cs[g].Nffree += sign * n
		sb.Cstotal.Nffree += int64(sign * n)
	}
	adj(before, -1)
	for k := int64(0); k < int64(frags); k++ {
		cg.SetFragFree(rel+k, free)
	}
	adj(cg.BlockMap(h), 1)
	c.cgdirty(cb)
	c.sbDirty = true
}
