package fsck

import (
	"errors"
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// inoBufSize is INOBUFSIZE: pass 1 reads inodes 64 KiB at a time.
const inoBufSize = 64 << 10

// cglookup returns group g's block, reading it on first use and checking
// it (check_cgmagic). When rebuild is set a group failing the check is
// offered for rebuilding.
func (c *checker) cglookup(g int, rebuild bool) (*cgbuf, error) {
	if cb := c.cgs[g]; cb != nil {
		return cb, nil
	}
	sb := c.sb
	cgx := ondisk.Cg(g)
	b := make([]byte, sb.Cgsize)
	rerr := c.readAt(b, sb.FragOffset(sb.Cgtod(cgx)))
	var cg *ondisk.CylGroup
	var why error
	if rerr != nil {
		why = rerr
	} else if cg, why = ondisk.DecodeCg(sb, cgx, b); why == nil {
		why = cg.VerifyHash()
	}
	if why == nil {
		cb := &cgbuf{cg: cg}
		c.cgs[g] = cb
		return cb, nil
	}
	c.debugf("cylinder group %d: %v\n", g, why)
	c.pfatal(KindBadCg, 0, "", "CYLINDER GROUP %d: INTEGRITY CHECK FAILED", g)
	fresh := ondisk.NewCg(sb, cgx)
	fresh.Initediblk = min(sb.Ipg, 2*sb.Inopb)
	cb := &cgbuf{cg: fresh, bad: true}
	c.cgs[g] = cb
	if !rebuild {
		return cb, nil
	}
	if !c.reply("REBUILD CYLINDER GROUP") {
		c.printf("YOU WILL NEED TO RERUN FSCK.\n")
		c.rerun = true
		return cb, nil
	}
	cb.dirty = true
	return cb, nil
}

// cgRelease forgets group g's block unless it holds changes to write or
// is a rebuilt group (whose contents exist only here).
func (c *checker) cgRelease(g int) {
	if cb := c.cgs[g]; cb != nil && !cb.dirty && !cb.bad {
		c.cgs[g] = nil
	}
}

// cgdirty marks group g to be written.
func (c *checker) cgdirty(cb *cgbuf) { cb.dirty = true }

// markMetadata marks in use what no inode owns: each group's boot area,
// superblock copy, group block and inode blocks, and the summary array.
func (c *checker) markMetadata() {
	sb := c.sb
	for g := ondisk.Cg(0); g < ondisk.Cg(sb.Ncg); g++ {
		i := sb.Cgsblock(g)
		if g == 0 {
			i = sb.Cgbase(g)
		}
		for cgd := sb.Cgdmin(g); i < cgd; i++ {
			c.setbmap(i)
		}
	}
	end := sb.Csaddr + ondisk.Frag(howmany(int64(sb.Cssize), int64(sb.Fsize)))
	for i := sb.Csaddr; i < end; i++ {
		c.setbmap(i)
	}
}

// pass1 reads every initialised inode, checks it and marks its blocks.
func (c *checker) pass1() error {
	sb := c.sb
	c.markMetadata()
	c.nFiles, c.nBlks = 0, 0
	var lastino ondisk.Ino
	buf := make([]byte, max(inoBufSize, int(sb.Bsize)))
	for g := 0; g < int(sb.Ncg); g++ {
		c.progress(float64(g) * 100 / float64(sb.Ncg))
		if err := c.checkStop(); err != nil {
			return err
		}
		cb, err := c.cglookup(g, true)
		if err != nil {
			return err
		}
		cg := cb.cg
		rebuild := cb.bad
		inosused := sb.Ipg
		if !rebuild {
			inosused = min(cg.Initediblk, sb.Ipg)
			if c.preen && c.usedSoftdep {
				// Soft updates keep the inode map right: read only up
				// to the last inode it marks used.
				for inosused > 0 && !cg.InodeUsed(int64(inosused-1)) {
					inosused--
				}
			}
		}
		c.ist[g] = make([]inostat, inosused)
		base := ondisk.Ino(uint32(g) * sb.Ipg)
		scanned := uint32(0)
		for scanned < inosused {
			if err := c.checkStop(); err != nil {
				return err
			}
			n := min(uint32(len(buf)/ondisk.DinodeSize), inosused-scanned)
			chunk := buf[:int(n)*ondisk.DinodeSize]
			if err := c.readAt(chunk, sb.InoOffset(base+ondisk.Ino(scanned))); err != nil {
				return err
			}
			stopped := false
			for k := uint32(0); k < n; k++ {
				i := scanned + k
				ino := base + ondisk.Ino(i)
				raw := chunk[int(k)*ondisk.DinodeSize : int(k+1)*ondisk.DinodeSize]
				if rebuild && i%sb.Inopb == 0 && i >= cg.Initediblk && !plausibleInode(sb, raw) {
					// Past the inodes newfs initialised and the block
					// does not look like inodes: the group ends here.
					stopped = true
					break
				}
				if ino < ondisk.RootIno {
					continue
				}
				ok, err := c.checkinode(ino, raw)
				if err != nil {
					return err
				}
				if ok {
					lastino = ino
				}
			}
			if stopped {
				break
			}
			scanned += n
		}
		if !rebuild {
			// A sound group is not needed again until pass 5 (or an
			// allocation) reads it afresh: keeping every group's block
			// would cost about as much again as the block map.
			c.cgRelease(g)
		}
		if inosused < sb.Ipg && !rebuild {
			continue
		}
		used := uint32(0)
		if uint32(lastino)+1 >= uint32(base) && lastino >= base {
			used = uint32(lastino) + 1 - uint32(base)
		}
		if rebuild && used > cg.Initediblk {
			cg.Initediblk = uint32(roundup(int64(used), int64(sb.Inopb)))
			c.pwarn("CYLINDER GROUP %d: FOUND %d VALID INODES\n", g, cg.Initediblk)
		}
		if int(used) < len(c.ist[g]) {
			// Later passes look only at the inodes up to the last one
			// in use. (fsck_ffs reallocates; keeping the array avoids
			// holding both copies at once.)
			c.ist[g] = c.ist[g][:used]
		}
	}
	return nil
}

func roundup(x, y int64) int64 { return howmany(x, y) * y }

// plausibleInode is the test getnextinode makes, when a cylinder group is
// being rebuilt, of whether an inode block holds inodes at all.
func plausibleInode(sb *ondisk.Superblock, raw []byte) bool {
	var dp ondisk.Dinode
	if dp.Decode(raw) != nil {
		return false
	}
	if dp.Mode&ondisk.IFMT == 0 {
		return dp.Mode == 0 && dp.Size == 0 && dp.Db == [ondisk.NDaddr]ondisk.Frag{} && dp.Ib == [ondisk.NIaddr]ondisk.Frag{}
	}
	if !ftypeok(&dp) {
		return false
	}
	return pointersBeyondSize(sb, &dp) == ""
}

// pointersBeyondSize checks that no block pointer lies past what the size
// allows (a symlink stored in the inode counts its text as pointers) and
// names the first one that does.
func pointersBeyondSize(sb *ondisk.Superblock, dp *ondisk.Dinode) string {
	mode := dp.Mode & ondisk.IFMT
	ndb := howmany(int64(dp.Size), int64(sb.Bsize))
	if mode == ondisk.IFBLK || mode == ondisk.IFCHR {
		ndb++
	}
	if mode == ondisk.IFLNK && int64(dp.Size) < int64(sb.Maxsymlinklen) {
		ndb = howmany(int64(dp.Size), 8)
		if ndb > ondisk.NDaddr {
			j := ndb - ondisk.NDaddr
			for ndb = 1; j > 1; j-- {
				ndb *= sb.NINDIR()
			}
			ndb += ondisk.NDaddr
		}
	}
	for j := ndb; ndb < ondisk.NDaddr && j < ondisk.NDaddr; j++ {
		if dp.Db[j] != 0 {
			return fmt.Sprintf("bad direct addr[%d]: %d", j, dp.Db[j])
		}
	}
	j := 0
	for ndb -= ondisk.NDaddr; ndb > 0; j++ {
		ndb /= sb.NINDIR()
	}
	for ; j < ondisk.NIaddr; j++ {
		if dp.Ib[j] != 0 {
			return fmt.Sprintf("bad indirect addr: %d", dp.Ib[j])
		}
	}
	return ""
}

// checkinode checks one inode of pass 1. It returns whether the inode is
// in use.
func (c *checker) checkinode(ino ondisk.Ino, raw []byte) (bool, error) {
	sb := c.sb
	dp := &c.p1dino
	if err := dp.Decode(raw); err != nil {
		return false, err
	}
	if err := ondisk.VerifyDinodeHash(sb, raw); err != nil {
		c.warn(KindInodeCheckHash, ino, "", "INODE CHECK-HASH FAILED%s", c.prtinode(ino, dp))
		if c.preen {
			c.printf(" (FIXED)\n")
			c.fixed()
			if err := c.putInode(ino, dp); err != nil {
				return false, err
			}
		} else if c.reply("FIX") {
			if err := c.putInode(ino, dp); err != nil {
				return false, err
			}
		}
	}
	st := c.inoinfo(ino)
	mode := dp.Mode & ondisk.IFMT
	if mode == 0 {
		if dp.Mode != 0 || dp.Size != 0 || dp.Db != [ondisk.NDaddr]ondisk.Frag{} || dp.Ib != [ondisk.NIaddr]ondisk.Frag{} {
			c.pfatal(KindBadInode, ino, "", "PARTIALLY ALLOCATED INODE I=%d", ino)
			if c.reply("CLEAR") {
				clearinode(dp)
				if err := c.putInode(ino, dp); err != nil {
					return false, err
				}
			}
		}
		st.state = ustate
		return false, nil
	}
	why := ""
	switch {
	case dp.Size > sb.Maxfilesize || (mode == ondisk.IFDIR && dp.Size > maxDirSize):
		why = fmt.Sprintf("bad size %d:", dp.Size)
	case (mode == ondisk.IFBLK || mode == ondisk.IFCHR || mode == ondisk.IFIFO || mode == ondisk.IFSOCK) && dp.Size != 0:
		why = fmt.Sprintf("bad special-file size %d:", dp.Size)
	case (mode == ondisk.IFBLK || mode == ondisk.IFCHR) && dp.Db[0] == -1:
		why = "bad special-file rdev NODEV:"
	case !ftypeok(dp):
		why = fmt.Sprintf("bad file type 0%o", dp.Mode)
	default:
		why = pointersBeyondSize(sb, dp)
	}
	if why != "" {
		c.debugf("%s\n", why)
		return c.unknown(ino, dp)
	}
	c.nFiles++
	st.link = dp.Nlink
	if mode == ondisk.IFDIR {
		switch {
		case dp.Size == 0:
			st.state = dclear
		case dp.Nlink <= 0:
			st.state = dzlink
		default:
			st.state = dstate
		}
		c.cacheino(dp, ino)
		c.countDirs++
	} else if dp.Nlink <= 0 {
		st.state = fzlink
	} else {
		st.state = fstate
	}
	st.setDtype(ondisk.DTypeFromMode(dp.Mode))
	idtype := typeAddr
	if dp.Flags&ondisk.SFSnapshot != 0 {
		idtype = typeSnap
	}
	st.setIdtype(idtype)
	// One walk descriptor serves every inode of pass 1: allocating one
	// per inode made pass 1 the largest source of garbage.
	c.p1 = pass1State{}
	d := &c.p1desc
	*d = desc{typ: idtype, number: ino, isPass1: true, fn: c.pass1fn}
	if _, err := c.ckinode(dp, d); err != nil {
		return true, err
	}
	if err := c.checkStop(); err != nil {
		return true, err
	}
	dataFrags := d.entryno
	c.walkExtattrBlocks(dp, d)
	extFrags := d.entryno - dataFrags
	d.entryno = dataFrags
	if cleared, err := c.eascan(ino, dp, d); err != nil {
		return true, err
	} else if !cleared {
		d.entryno += extFrags
	}
	blocks := uint64(d.entryno) * uint64(sb.Fsize/ondisk.DevBSize)
	if dp.Blocks != blocks {
		kind := KindBlockCountHigh
		if dp.Blocks < blocks {
			kind = KindBlockCountLow
		}
		c.warn(kind, ino, "", "INCORRECT BLOCK COUNT I=%d (%d should be %d)", ino, dp.Blocks, blocks)
		if c.preen {
			c.printf(" (CORRECTED)\n")
			c.fixed()
		} else if !c.reply("CORRECT") {
			return true, nil
		}
		if err := c.updateInode(ino, func(dp *ondisk.Dinode) { dp.Blocks = blocks }); err != nil {
			return true, err
		}
	}
	if int64(dp.Size) > int64(ondisk.NDaddr)*int64(sb.Bsize) && d.lballoc < int64(sb.Lblkno(int64(dp.Size)-1)) {
		fixsize := sb.Lblktosize(ondisk.Lbn(d.lballoc + 1))
		c.warn(KindSizeBeyondEnd, ino, "", "INODE %d: FILE SIZE %d BEYOND END OF ALLOCATED FILE, SIZE SHOULD BE %d", ino, dp.Size, fixsize)
		if c.preen {
			c.printf(" (ADJUSTED)\n")
			c.fixed()
		} else if !c.reply("ADJUST") {
			return true, nil
		}
		ib, freed, err := c.cutPastSize(ino, dp, fixsize)
		if err != nil {
			return true, err
		}
		if err := c.updateInode(ino, func(dp *ondisk.Dinode) {
			dp.Size = uint64(fixsize)
			dp.Ib = ib
			dp.Blocks -= min(dp.Blocks, uint64(freed)*uint64(sb.Fsize/ondisk.DevBSize))
		}); err != nil {
			return true, err
		}
	}
	return true, nil
}

// cutPastSize finishes the cut of FILE SIZE BEYOND END OF ALLOCATED FILE
// to newSize. fsck_ffs only shortens the size; the indirect blocks pass 1
// walked past the new end (they map no block in use, or the size would
// reach them) stay, and the next run finds pointers past the size: it
// clears the whole file as UNKNOWN FILE TYPE, or zeroes them as PARTIALLY
// TRUNCATED INODE and leaves their blocks marked in use. One run would not
// be enough. So their pointers are zeroed here, and the block map rebuilt
// before pass 5 (remapBlocks) rather than the blocks given back one by one:
// an indirect block may be shared, and what it leads to is not this
// inode's alone. It returns dp's indirect pointers as they must become
// and the fragments cut off (pass 1 counted them in the block count). An
// inode pass 1 stopped walking (too many bad or duplicate blocks) is left
// as fsck_ffs leaves it: it is cleared later in this run, and a rerun is
// asked for anyway.
func (c *checker) cutPastSize(ino ondisk.Ino, dp *ondisk.Dinode, newSize int64) (ib [ondisk.NIaddr]ondisk.Frag, freed int64, err error) {
	ib = dp.Ib
	if c.partial[ino] {
		return ib, 0, nil
	}
	sb := c.sb
	bsize := int64(sb.Bsize)
	// count counts a block as pass 1's walk did, and goes on into an
	// indirect block where pass 1 went on.
	count := func(d *desc) int {
		freed += int64(d.numfrags)
		for i := 0; i < d.numfrags; i++ {
			if c.chkrange(d.blkno+ondisk.Frag(i), 1) {
				return skip
			}
		}
		return keepOn
	}
	// drop counts the tree of the indirect block blk of the given level,
	// walked over isize bytes as pass 1 walked it.
	drop := func(blk ondisk.Frag, level int, isize int64) error {
		d := &desc{typ: typeAddr, number: ino, fn: count, level: level, blkno: blk, numfrags: int(sb.Frag)}
		_, err := c.iblock(d, isize)
		c.remap = true
		return err
	}
	// cut zeroes the pointers of the indirect block blk (of the given
	// level, walked over oldSize bytes) past newSize, dropping what they
	// lead to, and cuts the last one kept the same way.
	var cut func(blk ondisk.Frag, level int, oldSize, newSize int64) error
	cut = func(blk ondisk.Frag, level int, oldSize, newSize int64) error {
		if c.chkrange(blk, int(sb.Frag)) {
			return nil // pass 1 did not walk it either
		}
		buf, err := c.readFragsInto(blk, int(sb.Frag))
		if err != nil {
			return nil
		}
		defer c.putBuf(buf)
		sizepb := bsize // what each pointer of blk maps
		for i := 1; i < level; i++ {
			sizepb *= sb.NINDIR()
		}
		keep := min(howmany(newSize, sizepb), sb.NINDIR())
		walked := min(howmany(oldSize, sizepb), sb.NINDIR())
		dirty := false
		for i := keep; i < walked; i++ {
			ptr := ondisk.Frag(le.Uint64(buf[i*8:]))
			if ptr == 0 {
				continue
			}
			if level == 1 {
				count(&desc{blkno: ptr, numfrags: int(sb.Frag)})
				c.remap = true
			} else if err := drop(ptr, level-1, oldSize-i*sizepb); err != nil {
				return err
			}
			le.PutUint64(buf[i*8:], 0)
			dirty = true
		}
		if level > 1 && keep > 0 {
			i := keep - 1
			if ptr := ondisk.Frag(le.Uint64(buf[i*8:])); ptr != 0 {
				if err := cut(ptr, level-1, oldSize-i*sizepb, newSize-i*sizepb); err != nil {
					return err
				}
			}
		}
		if dirty {
			return c.writeFrags(blk, buf)
		}
		return nil
	}
	oldRem := int64(dp.Size) - ondisk.NDaddr*bsize
	newRem := newSize - ondisk.NDaddr*bsize
	sizepb := bsize
	for k := 0; k < ondisk.NIaddr; k++ {
		sizepb *= sb.NINDIR()
		if ib[k] != 0 && oldRem > 0 {
			if newRem <= 0 {
				if err := drop(ib[k], k+1, oldRem); err != nil {
					return ib, freed, err
				}
				ib[k] = 0
			} else if err := cut(ib[k], k+1, oldRem, newRem); err != nil {
				return ib, freed, err
			}
		}
		oldRem -= sizepb
		newRem -= sizepb
	}
	return ib, freed, nil
}

// updateInode reads inode ino, applies change and writes it back.
func (c *checker) updateInode(ino ondisk.Ino, change func(*ondisk.Dinode)) error {
	dp, err := c.ginode(ino)
	if err != nil {
		return err
	}
	change(dp)
	return c.putInode(ino, dp)
}

// unknown is checkinode's way out for an inode it cannot make sense of.
func (c *checker) unknown(ino ondisk.Ino, dp *ondisk.Dinode) (bool, error) {
	c.pfatal(KindBadInode, ino, "", "UNKNOWN FILE TYPE I=%d", ino)
	st := c.inoinfo(ino)
	st.state = fclear
	if c.reply("CLEAR") {
		st.state = ustate
		clearinode(dp)
		if err := c.putInode(ino, dp); err != nil {
			return false, err
		}
		return false, nil
	}
	return true, nil
}

// pass1State counts the bad and duplicate blocks of one inode.
type pass1State struct{ badblk, dupblk int }

// pass1check marks the fragments of one block in use, reporting those out
// of range and those already claimed.
func (c *checker) pass1check(d *desc) int {
	p := &c.p1
	res := keepOn
	blk := d.blkno
	if d.typ == typeSnap && (blk == ondisk.BlkNoCopy || blk == ondisk.BlkSnap) {
		return keepOn
	}
	anyout := c.chkrange(blk, d.numfrags)
	if anyout {
		c.blkerror(d.number, "BAD", blk)
		p.badblk++
		if p.badblk > maxBad {
			if !c.excessive(KindBadBlock, "EXCESSIVE BAD BLKS I=%d", d.number) {
				return stop
			}
			c.partlyMarked(d.number)
			return stop
		}
	}
	for n := d.numfrags; n > 0; n, blk = n-1, blk+1 {
		switch {
		case anyout && c.chkrange(blk, 1):
			res = skip
		case !c.testbmap(blk):
			c.nBlks++
			c.setbmap(blk)
		default:
			c.blkerror(d.number, "DUP", blk)
			p.dupblk++
			if p.dupblk > maxDup {
				if !c.excessive(KindDupBlock, "EXCESSIVE DUP BLKS I=%d", d.number) {
					return stop
				}
				c.partlyMarked(d.number)
				return stop
			}
			if _, seen := c.dups[blk]; !seen {
				c.dupOrder = append(c.dupOrder, blk)
			}
			c.dups[blk]++
		}
		d.entryno++
	}
	if d.level == 0 && d.lballoc < d.lbn {
		d.lballoc = d.lbn
	}
	return res
}

// excessive reports too many bad or duplicate blocks in one inode and asks
// whether to go on; it returns false when the check must stop.
func (c *checker) excessive(kind, format string, ino ondisk.Ino) bool {
	c.warn(kind, ino, "", format, ino)
	if c.preen {
		c.printf(" (SKIPPING)\n")
		return true
	}
	if !c.reply("CONTINUE") {
		c.fatalErr = fmt.Errorf("%w: too many bad blocks in inode %d", ErrAborted, ino)
		return false
	}
	return true
}

// eascan checks the extended attribute area of dp and offers to clear it
// when its records do not parse. It returns whether it was cleared.
func (c *checker) eascan(ino ondisk.Ino, dp *ondisk.Dinode, d *desc) (bool, error) {
	sb := c.sb
	if dp.Extsize == 0 {
		return false, nil
	}
	size := int64(dp.Extsize)
	bad := ""
	if size > int64(ondisk.NXaddr)*int64(sb.Bsize) {
		bad = fmt.Sprintf("di_extsize %d exceeds %d blocks", size, ondisk.NXaddr)
	}
	area := make([]byte, 0, size)
	for j := 0; bad == "" && int64(len(area)) < size; j++ {
		n := min(size-int64(len(area)), int64(sb.Bsize))
		frags := int(sb.Numfrags(sb.Fragroundup(n)))
		if dp.Extb[j] == 0 || c.chkrange(dp.Extb[j], frags) {
			bad = fmt.Sprintf("di_extb[%d] = %d", j, dp.Extb[j])
			break
		}
		b, err := c.readFrags(dp.Extb[j], frags)
		if err != nil {
			if errors.Is(err, ErrIO) {
				bad = err.Error()
				break
			}
			return false, err
		}
		area = append(area, b[:n]...)
	}
	if bad == "" {
		if err := ondisk.WalkExtattrs(area, func(int, ondisk.Extattr) bool { return true }); err != nil {
			bad = err.Error()
		}
	}
	if bad == "" {
		return false, nil
	}
	c.debugf("%s\n", bad)
	c.pfatal(KindBadExtattr, ino, "", "CORRUPT EXTENDED ATTRIBUTES I=%d", ino)
	if !c.reply("CLEAR") {
		return false, nil
	}
	fd := &desc{typ: typeAddr, number: ino}
	if err := c.giveBackBlocks(dp, fd, false, true); err != nil {
		return true, err
	}
	dp.Extsize = 0
	dp.Extb = [ondisk.NXaddr]ondisk.Frag{}
	if err := c.updateInode(ino, func(x *ondisk.Dinode) {
		x.Extsize = 0
		x.Extb = [ondisk.NXaddr]ondisk.Frag{}
	}); err != nil {
		return true, err
	}
	return true, nil
}

// pass1b finds the first claimant of every duplicate block.
func (c *checker) pass1b() error {
	pending := make(map[ondisk.Frag]bool, len(c.dups))
	for b := range c.dups {
		pending[b] = true
	}
	sb := c.sb
	for g := 0; g < int(sb.Ncg) && len(pending) > 0; g++ {
		c.progress(float64(g) * 100 / float64(sb.Ncg))
		base := ondisk.Ino(uint32(g) * sb.Ipg)
		for i := range c.ist[g] {
			ino := base + ondisk.Ino(i)
			if ino < ondisk.RootIno || c.ist[g][i].state == ustate || c.ist[g][i].state == 0 {
				continue
			}
			if err := c.checkStop(); err != nil {
				return err
			}
			dp, err := c.ginode(ino)
			if err != nil {
				return err
			}
			d := &desc{typ: c.ist[g][i].idtype(), number: ino}
			d.fn = func(d *desc) int {
				res := keepOn
				blk := d.blkno
				for n := d.numfrags; n > 0; n, blk = n-1, blk+1 {
					if c.chkrange(blk, 1) {
						res = skip
					}
					if pending[blk] {
						c.blkerror(d.number, "DUP", blk)
						delete(pending, blk)
					}
					if len(pending) == 0 {
						return stop
					}
				}
				return res
			}
			if _, err := c.ckinode(dp, d); err != nil {
				return err
			}
			c.walkExtattrBlocks(dp, d)
			if len(pending) == 0 {
				break
			}
		}
	}
	return nil
}
