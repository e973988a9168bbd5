package fsck

import (
	"fmt"
	"sort"

	"github.com/ufs2/ufs2/ondisk"
)

// minDirSize is sizeof(struct dirtemplate): "." and "..".
const minDirSize = 24

// pass2 checks every directory entry and learns each directory's parent.
func (c *checker) pass2() error {
	if err := c.checkRoot(); err != nil {
		return err
	}
	c.inoinfo(ondisk.RootIno).state = dfound
	// Inode 1 is the whiteout inode: entries may name it.
	c.growStat(0, int(ondisk.WhiteoutIno)+1)
	wst := c.inoinfo(ondisk.WhiteoutIno)
	wst.state = fstate
	wst.setDtype(ondisk.DTWht)

	t := &c.dirs
	t.order = make([]int32, len(t.list))
	for i := range t.order {
		t.order[i] = int32(i)
	}
	sort.SliceStable(t.order, func(a, b int) bool {
		return t.blks[t.list[t.order[a]].blkoff] < t.blks[t.list[t.order[b]].blkoff]
	})
	for k := 0; k < len(t.order); k++ {
		if k%256 == 0 {
			c.progress(float64(k) * 100 / float64(len(t.order)))
			if err := c.checkStop(); err != nil {
				return err
			}
		}
		inp := &t.list[t.order[k]]
		if inp.isize == 0 {
			continue
		}
		if inp.isize < minDirSize {
			c.direrror(inp.number, KindBadDir, "DIRECTORY TOO SHORT")
			inp.isize = roundup(minDirSize, ondisk.DirBlkSize)
			if c.reply("FIX") {
				size := inp.isize
				if err := c.updateInode(inp.number, func(dp *ondisk.Dinode) { dp.Size = uint64(size) }); err != nil {
					return err
				}
			}
		} else if inp.isize&(ondisk.DirBlkSize-1) != 0 {
			path := c.getpathname(inp.number, inp.number)
			msg := fmt.Sprintf("DIRECTORY %s: LENGTH %d NOT MULTIPLE OF %d", path, inp.isize, ondisk.DirBlkSize)
			if c.usedSoftdep {
				c.pfatal(KindBadDir, inp.number, path, "%s", msg)
			} else {
				c.warn(KindBadDir, inp.number, path, "%s", msg)
			}
			if c.preen {
				c.printf(" (ADJUSTED)\n")
				c.fixed()
			}
			inp = &t.list[t.order[k]]
			inp.isize = roundup(inp.isize, ondisk.DirBlkSize)
			if c.preen || c.reply("ADJUST") {
				size := inp.isize
				if err := c.updateInode(inp.number, func(dp *ondisk.Dinode) { dp.Size = uint64(size) }); err != nil {
					return err
				}
			}
		}
		inp = &t.list[t.order[k]]
		dp := &ondisk.Dinode{Mode: ondisk.IFDIR, Size: uint64(inp.isize)}
		blks := t.blocks(inp)
		for i := 0; i < min(len(blks), ondisk.NDaddr); i++ {
			dp.Db[i] = blks[i]
		}
		if len(blks) > ondisk.NDaddr {
			copy(dp.Ib[:], blks[ondisk.NDaddr:])
		}
		d := &desc{typ: typeData, number: inp.number, parent: inp.parent}
		d.fn = c.pass2check
		if _, err := c.ckinode(dp, d); err != nil {
			return err
		}
	}
	// With every parent known, check "..".
	for k := 0; k < len(t.order); k++ {
		inp := &t.list[t.order[k]]
		if inp.parent == 0 || inp.isize == 0 {
			continue
		}
		if c.inoinfo(inp.parent).state == dfound && isDunfound(c.inoinfo(inp.number).state) {
			c.inoinfo(inp.number).state = dfound
		}
		if inp.dotdot == inp.parent || inp.dotdot == noDotdot {
			continue
		}
		number, parent := inp.number, inp.parent
		if inp.dotdot == 0 {
			inp.dotdot = parent
			c.fileerror(parent, number, KindBadDotdot, "MISSING '..'")
			if !c.reply("FIX") {
				continue
			}
			if _, err := c.makeentry(number, parent, ".."); err != nil {
				return err
			}
			c.inoinfo(parent).link--
			if inp := c.dirs.lookup(number); inp != nil {
				inp.dotdotCounted = true
			}
			continue
		}
		dotdot := inp.dotdot
		path := c.getpathname(parent, number)
		c.printf("BAD INODE NUMBER FOR '..' in DIR I=%d (%s)\n", number, path)
		c.printf("CURRENTLY POINTS TO I=%d (%s), ", dotdot, c.getpathname(dotdot, dotdot))
		c.printf("SHOULD POINT TO I=%d (%s)", parent, c.getpathname(parent, parent))
		c.problem(KindBadDotdot, number, path, "BAD INODE NUMBER FOR '..': POINTS TO I=%d, SHOULD POINT TO I=%d", dotdot, parent)
		if c.preen {
			c.printf(" (FIXED)\n")
			c.fixed()
		} else if !c.reply("FIX") {
			continue
		}
		if inp.dotdotCounted {
			c.inoinfo(dotdot).link++
		}
		c.inoinfo(parent).link--
		inp = c.dirs.lookup(number)
		inp.dotdot = parent
		inp.dotdotCounted = true
		if _, err := c.changeino(number, "..", parent); err != nil {
			return err
		}
	}
	if err := c.replaceDisplaced(); err != nil {
		return err
	}
	c.propagate()
	return nil
}

// displacedEntry is an entry moved out of the "." or ".." slot.
type displacedEntry struct {
	dir, ino ondisk.Ino
	name     string
}

// replaceDisplaced enters the entries moved out of the "." and ".." slots
// back into their directories, unless they name nothing valid or a
// directory that has its place elsewhere.
func (c *checker) replaceDisplaced() error {
	for _, x := range c.displaced {
		st := c.inoinfo(x.ino)
		keep := x.ino >= ondisk.RootIno && x.ino < c.maxino && x.name != "." && x.name != ".."
		switch {
		case !keep:
		case st.state == ustate || st.state == 0 || st.state == fclear || st.state == dclear:
			keep = false
		case isDvalid(st.state):
			inp := c.dirs.lookup(x.ino)
			keep = inp != nil && (inp.parent == 0 || inp.parent == x.dir) && x.ino != x.dir
			if keep && inp.parent == 0 {
				inp.parent = x.dir
			}
		}
		if !keep {
			c.pwarn("ENTRY %q (I=%d) MOVED OUT OF DIR I=%d DROPPED\n", x.name, x.ino, x.dir)
			continue
		}
		ok, err := c.makeentry(x.dir, x.ino, x.name)
		if err != nil {
			return err
		}
		if ok {
			c.inoinfo(x.ino).link--
			c.pwarn("ENTRY %q (I=%d) MOVED WITHIN DIR I=%d\n", x.name, x.ino, x.dir)
		}
	}
	c.displaced = nil
	return nil
}

// checkRoot makes sure the root inode is a directory, allocating a new
// root when it is unallocated, not a directory or holds bad or duplicate
// blocks. The directories the old root held are then unreachable: pass 3
// reconnects them under a new lost+found, and pass 4 the files.
func (c *checker) checkRoot() error {
	root := ondisk.RootIno
	switch c.inoinfo(root).state {
	case ustate, 0:
		c.pfatal(KindRoot, root, "/", "ROOT INODE UNALLOCATED")
		if !c.reply("ALLOCATE") {
			return fmt.Errorf("%w: root inode unallocated", ErrAborted)
		}
		return c.allocRoot()
	case dclear:
		c.pfatal(KindRoot, root, "/", "DUPS/BAD IN ROOT INODE")
		if c.reply("REALLOCATE") {
			return c.reallocRoot()
		}
		if !c.reply("CONTINUE") {
			return fmt.Errorf("%w: bad root inode", ErrAborted)
		}
	case fstate, fclear, fzlink:
		c.pfatal(KindRoot, root, "/", "ROOT INODE NOT DIRECTORY")
		if c.reply("REALLOCATE") {
			return c.reallocRoot()
		}
		if !c.reply("FIX") {
			return fmt.Errorf("%w: root inode is not a directory", ErrAborted)
		}
		if err := c.updateInode(root, func(dp *ondisk.Dinode) { dp.Mode = dp.Mode&^ondisk.IFMT | ondisk.IFDIR }); err != nil {
			return err
		}
	}
	return nil
}

// reallocRoot frees the root inode and its blocks and allocates a new one.
func (c *checker) reallocRoot() error {
	if err := c.freeino(ondisk.RootIno); err != nil {
		return err
	}
	return c.allocRoot()
}

// allocRoot allocates the root directory in inode 2.
func (c *checker) allocRoot() error {
	// No entry has been counted yet (pass 2 has not begun): what link
	// count pass 1 took from the old root means nothing for the new one,
	// and must not keep allocino from reusing the inode.
	c.inoinfo(ondisk.RootIno).link = 0
	ino, err := c.allocdir(ondisk.RootIno, ondisk.RootIno, 0o755)
	if err != nil {
		return err
	}
	if ino != ondisk.RootIno {
		return fmt.Errorf("%w: cannot allocate root inode", ErrAborted)
	}
	return nil
}

// pass2check checks one directory entry.
func (c *checker) pass2check(d *desc) int {
	e := d.dirp
	ret := 0
	// fsck_ffs sends an out-of-range "." to the generic check, which
	// removes it and leaves "." to the next run; it is fixed here instead.
	// So is a first or second entry of another name with an inode number
	// out of range: removed, its place then takes the "." or ".." found
	// missing in this run (not the next).
	if e.ino() >= c.maxino && !(d.entryno == 0 && e.name() == ".") {
		if d.entryno > 1 || (d.entryno == 1 && e.name() == "..") {
			return c.chk2(d, ret)
		}
		c.fileerror(d.number, e.ino(), KindBadEntry, "I OUT OF RANGE")
		if !c.reply("REMOVE") {
			d.entryno++
			return ret | keepOn
		}
		e.setIno(0)
		ret |= altered
	}
	if d.entryno == 0 {
		if e.ino() != 0 && e.name() == "." {
			if e.ino() != d.number {
				c.direrror(d.number, KindBadDot, "BAD INODE NUMBER FOR '.'")
				e.setIno(d.number)
				if c.reply("FIX") {
					ret |= altered
				}
			}
			if e.dtype() != ondisk.DTDir {
				c.direrror(d.number, KindBadDot, "BAD TYPE VALUE FOR '.'")
				e.setDtype(ondisk.DTDir)
				if c.reply("FIX") {
					ret |= altered
				}
			}
		} else {
			c.direrror(d.number, KindBadDot, "MISSING '.'")
			entrysize := ondisk.DirectSize(1)
			switch {
			case e.ino() != 0 && e.name() != "..":
				// fsck_ffs gives up here ("CANNOT FIX"); the entry is
				// moved elsewhere in the directory instead.
				c.pwarn("FIRST ENTRY IN DIRECTORY CONTAINS %q", e.name())
				if c.reply("MOVE IT AND ADD '.'") {
					c.displaced = append(c.displaced, displacedEntry{dir: d.number, ino: e.ino(), name: e.name()})
					if n := e.reclen() - entrysize; n >= entrysize {
						e.put(d.number, entrysize, ondisk.DTDir, ".")
						d.entryno++
						c.inoinfo(d.number).link--
						rest := e.b[entrysize:]
						clear(rest[:n])
						le.PutUint16(rest[4:], uint16(n))
						e = &dirent{b: rest}
						d.dirp = e
					} else {
						e.put(d.number, e.reclen(), ondisk.DTDir, ".")
					}
					ret |= altered
				}
			case e.reclen() < entrysize:
				c.pfatal(KindBadDot, d.number, "", "CANNOT FIX, INSUFFICIENT SPACE TO ADD '.'\n")
			case e.reclen() < 2*entrysize:
				e.put(d.number, e.reclen(), ondisk.DTDir, ".")
				if c.reply("FIX") {
					ret |= altered
				}
			default:
				n := e.reclen() - entrysize
				e.put(d.number, entrysize, ondisk.DTDir, ".")
				d.entryno++
				c.inoinfo(d.number).link--
				rest := e.b[entrysize:]
				clear(rest[:n])
				le.PutUint16(rest[4:], uint16(n))
				e = &dirent{b: rest}
				d.dirp = e
				if c.reply("FIX") {
					ret |= altered
				}
			}
		}
	}
	// chk1: ".."
	if d.entryno > 1 {
		return c.chk2(d, ret)
	}
	inp := c.dirs.lookup(d.number)
	if inp == nil {
		return ret | keepOn
	}
	entrysize := ondisk.DirectSize(2)
	if d.entryno == 0 {
		n := e.size()
		if e.reclen() < n+entrysize {
			return c.chk2(d, ret)
		}
		rest := e.reclen() - n
		e.setReclen(n)
		d.entryno++
		c.inoinfo(e.ino()).link--
		nb := e.b[n:]
		clear(nb[:rest])
		le.PutUint16(nb[4:], uint16(rest))
		e = &dirent{b: nb}
		d.dirp = e
	}
	if e.ino() != 0 && e.name() == ".." {
		inp.dotdot = e.ino()
		if e.dtype() != ondisk.DTDir {
			c.direrror(d.number, KindBadDotdot, "BAD TYPE VALUE FOR '..'")
			e.setDtype(ondisk.DTDir)
			if c.reply("FIX") {
				ret |= altered
			}
		}
		return c.chk2(d, ret)
	}
	switch {
	case e.ino() != 0 && e.name() != ".":
		// fsck_ffs gives up here ("CANNOT FIX"); the entry is moved
		// elsewhere and ".." takes its place.
		c.fileerror(inp.parent, d.number, KindBadDotdot, "MISSING '..'")
		c.pwarn("SECOND ENTRY IN DIRECTORY CONTAINS %q", e.name())
		if !c.reply("MOVE IT AND ADD '..'") {
			inp.dotdot = noDotdot
			break
		}
		c.displaced = append(c.displaced, displacedEntry{dir: d.number, ino: e.ino(), name: e.name()})
		if inp.parent != 0 {
			inp.dotdot = inp.parent
			e.put(inp.parent, e.reclen(), ondisk.DTDir, "..")
		} else {
			// Left empty: the ".." pass below puts ".." here.
			e.put(0, e.reclen(), 0, "")
		}
		ret |= altered
	case e.reclen() < entrysize:
		c.fileerror(inp.parent, d.number, KindBadDotdot, "MISSING '..'")
		c.pfatal(KindBadDotdot, d.number, "", "CANNOT FIX, INSUFFICIENT SPACE TO ADD '..'\n")
		inp.dotdot = noDotdot
	case inp.parent != 0:
		inp.dotdot = inp.parent
		c.fileerror(inp.parent, d.number, KindBadDotdot, "MISSING '..'")
		e.put(inp.parent, e.reclen(), ondisk.DTDir, "..")
		if c.reply("FIX") {
			ret |= altered
		}
	}
	d.entryno++
	if e.ino() != 0 {
		c.inoinfo(e.ino()).link--
		inp.dotdotCounted = true
	}
	return ret | keepOn
}

// chk2 checks an entry past "." and "..".
func (c *checker) chk2(d *desc, ret int) int {
	e := d.dirp
	if e.ino() == 0 {
		return ret | keepOn
	}
	if e.namlen() <= 2 && e.namlen() > 0 && e.b[8] == '.' && d.entryno >= 2 {
		if e.namlen() == 1 {
			c.direrror(d.number, KindBadDot, "EXTRA '.' ENTRY")
			e.setIno(0)
			if c.reply("FIX") {
				ret |= altered
			}
			return keepOn | ret
		}
		if e.b[9] == '.' {
			c.direrror(d.number, KindBadDotdot, "EXTRA '..' ENTRY")
			e.setIno(0)
			if c.reply("FIX") {
				ret |= altered
			}
			return keepOn | ret
		}
	}
	d.entryno++
	remove := false
	ino := e.ino()
	switch {
	case ino >= c.maxino:
		c.fileerror(d.number, ino, KindBadEntry, "I OUT OF RANGE")
		remove = c.reply("REMOVE")
	case (ino == ondisk.WhiteoutIno && e.dtype() != ondisk.DTWht) || (ino != ondisk.WhiteoutIno && e.dtype() == ondisk.DTWht):
		c.fileerror(d.number, ino, KindBadEntry, "BAD WHITEOUT ENTRY")
		e.setIno(ondisk.WhiteoutIno)
		e.setDtype(ondisk.DTWht)
		if c.reply("FIX") {
			ret |= altered
		}
	default:
		var alt int
		remove, alt = c.checkEntryTarget(d, e)
		ret |= alt
	}
	if !remove {
		return ret | keepOn
	}
	// Removed: the entry no longer counts. A removal asked about was
	// answered yes, so there is write access; the one made without asking
	// (checkEntryTarget's zero-length directory under soft updates) is
	// made in memory only when there is none, as fsck_ffs's -n makes it.
	e.setIno(0)
	if c.writable() {
		ret |= altered
	}
	return ret | keepOn
}

// checkEntryTarget checks the inode an entry names; it returns whether the
// entry is to be removed and altered when it fixed the entry's type.
func (c *checker) checkEntryTarget(d *desc, e *dirent) (bool, int) {
	for {
		ino := e.ino()
		st := c.inoinfo(ino)
		switch st.state {
		case ustate, 0:
			if d.entryno <= 2 {
				return false, 0
			}
			c.fileerror(d.number, ino, KindBadEntry, "UNALLOCATED")
			return c.reply("REMOVE"), 0
		case dclear, fclear:
			if d.entryno <= 2 {
				return false, 0
			}
			var msg string
			switch {
			case st.state == fclear:
				msg = "DUP/BAD"
			case !c.preen && !c.usedSoftdep:
				msg = "ZERO LENGTH DIRECTORY"
			default:
				// fsck_ffs removes the entry without a word (soft
				// updates never write one before the directory's
				// first block); recorded, not printed, so that a
				// program can see it.
				c.problem(KindBadEntry, ino, c.getpathname(d.number, ino), "ENTRY NAMING ZERO LENGTH DIRECTORY REMOVED")
				if c.preen || !c.noWrite {
					c.fixed()
				}
				return true, 0
			}
			c.fileerror(d.number, ino, KindBadEntry, msg)
			if c.reply("REMOVE") {
				return true, 0
			}
			dp, err := c.ginode(ino)
			if err != nil {
				return false, 0
			}
			st = c.inoinfo(ino)
			if dp.Mode&ondisk.IFMT == ondisk.IFDIR {
				st.state = dstate
			} else {
				st.state = fstate
			}
			st.link = dp.Nlink
			st.setDtype(ondisk.DTypeFromMode(dp.Mode))
			continue
		case dstate, dzlink, dfound:
			if st.state != dfound && c.inoinfo(d.number).state == dfound {
				st.state = dfound
			}
			inp := c.dirs.lookup(ino)
			if inp != nil && d.entryno > 2 {
				if inp.parent == 0 {
					inp.parent = d.number
				} else if c.fixExtraneous(inp, d) {
					return true, 0
				}
			}
		}
		// A file, or a directory whose parent is settled.
		ret := 0
		if e.dtype() != c.inoinfo(ino).dtype() {
			c.fileerror(d.number, ino, KindBadEntry, "BAD TYPE VALUE")
			e.setDtype(c.inoinfo(ino).dtype())
			if c.reply("FIX") {
				ret = altered
			}
		}
		c.inoinfo(ino).link--
		if d.entryno == 2 && e.name() == ".." {
			if inp := c.dirs.lookup(d.number); inp != nil {
				inp.dotdotCounted = true
			}
		}
		return false, ret
	}
}

// fixExtraneous handles a second name for a directory; it returns whether
// the new name (the entry being checked) is to be removed.
func (c *checker) fixExtraneous(inp *dirInfo, d *desc) bool {
	e := d.dirp
	number := inp.number
	if inp.dotdot == 0 {
		if p, ok := c.lookup(e.ino(), ".."); ok {
			inp = c.dirs.lookup(number)
			inp.dotdot = p
		}
		inp = c.dirs.lookup(number)
	}
	if inp.dotdot == 0 || d.number == inp.parent || inp.dotdot != d.number || inp.dotdot == inp.parent {
		newname := c.getpathname(d.number, d.number)
		if newname != "/" {
			newname += "/"
		}
		newname += e.name()
		oldname := c.getpathname(number, number)
		c.warn(KindExtraDirLink, number, newname, "%s IS AN EXTRANEOUS HARD LINK TO DIRECTORY %s", newname, oldname)
		if c.preen {
			c.printf(" (REMOVED)\n")
			c.fixed()
			return true
		}
		return c.reply("REMOVE")
	}
	oldname := c.getpathname(inp.parent, number)
	newname := c.getpathname(number, number)
	c.warn(KindExtraDirLink, number, oldname, "%s IS AN EXTRANEOUS HARD LINK TO DIRECTORY %s", oldname, newname)
	if !c.preen && !c.reply("REMOVE") {
		return false
	}
	oldParent := inp.parent
	del := &desc{fixState: dontKnow}
	del.fn = func(x *desc) int {
		x.entryno++
		if x.entryno <= 2 || x.dirp.ino() != number {
			return keepOn
		}
		x.dirp.setIno(0)
		return altered | stop | found
	}
	if n, err := c.walkDir(oldParent, del); err == nil && n&found != 0 && c.preen {
		c.printf(" (REMOVED)\n")
		c.fixed()
	}
	inp = c.dirs.lookup(number)
	inp.parent = d.number
	c.inoinfo(number).link++
	return false
}
