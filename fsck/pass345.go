package fsck

import (
	"bytes"

	"github.com/ufs2/ufs2/ondisk"
)

// pass3 reconnects the directories that cannot be reached from the root.
func (c *checker) pass3() error {
	t := &c.dirs
	for k := len(t.order) - 1; k >= 0; k-- {
		if k%256 == 0 {
			c.progress(float64(len(t.order)-k) * 100 / float64(len(t.order)))
			if err := c.checkStop(); err != nil {
				return err
			}
		}
		inp := &t.list[t.order[k]]
		state := c.inoinfo(inp.number).state
		// A directory already found (reconnected, or offered and refused,
		// while walking up from a child) is not offered twice.
		if inp.number == ondisk.RootIno || !isDunfound(state) && (inp.parent != 0 || state == dfound) {
			continue
		}
		if state == dclear {
			continue
		}
		if c.preen && c.resolved && c.usedSoftdep && isDunfound(state) {
			// Soft updates: an unreferenced directory is thrown away in
			// pass 4, which gives back the link its ".." took
			// (giveBackDotdot); giving it back here as well, as
			// fsck_ffs does (it gives nothing back in pass 4), would
			// count it twice.
			continue
		}
		loopcnt := int64(0)
		orphan := inp.number
		for ; ; loopcnt++ {
			orphan = inp.number
			if inp.parent == 0 || !isDunfound(c.inoinfo(inp.parent).state) || loopcnt > c.countDirs {
				break
			}
			p := c.dirs.lookup(inp.parent)
			if p == nil {
				break
			}
			inp = p
		}
		if loopcnt <= c.countDirs {
			number, dotdot := inp.number, inp.dotdot
			ok, err := c.linkup(orphan, dotdot, "")
			if err != nil {
				return err
			}
			if ok {
				inp = c.dirs.lookup(number)
				inp.parent, inp.dotdot = c.lfdir, c.lfdir
				c.inoinfo(c.lfdir).link--
			}
			c.inoinfo(orphan).state = dfound
			c.propagate()
			continue
		}
		c.pfatal(KindDirLoop, orphan, "", "ORPHANED DIRECTORY LOOP DETECTED I=%d", orphan)
		if !c.reply("RECONNECT") {
			continue
		}
		parent := inp.parent
		name, ok := c.findName(parent, orphan)
		if !ok {
			c.pfatal(KindDirLoop, orphan, "", "COULD NOT FIND NAME IN PARENT DIRECTORY")
		}
		linked, err := c.linkup(orphan, parent, name)
		if err != nil {
			return err
		}
		if linked {
			del := &desc{fixState: dontKnow}
			del.fn = func(x *desc) int {
				if x.dirp.ino() != orphan || x.entryno < 2 {
					x.entryno++
					return keepOn
				}
				x.dirp.setIno(0)
				return stop | found | altered
			}
			n, err := c.walkDir(parent, del)
			if err != nil {
				return err
			}
			if n&found != 0 {
				c.inoinfo(orphan).link++
			}
			if p := c.dirs.lookup(inp.number); p != nil {
				p.parent, p.dotdot = c.lfdir, c.lfdir
			}
			c.inoinfo(c.lfdir).link--
		}
		c.inoinfo(orphan).state = dfound
		c.propagate()
	}
	return nil
}

// pass4 checks link counts and clears or reconnects unreferenced inodes.
// Directories to be cleared go first: each one's ".." was counted as a
// link of its parent, which must be given back before the parent's count
// is checked (fsck_ffs leaves that to a second run).
func (c *checker) pass4() error {
	if err := c.pass4sweep(true); err != nil {
		return err
	}
	return c.pass4sweep(false)
}

func (c *checker) pass4sweep(dirsFirst bool) error {
	sb := c.sb
	for g := 0; g < int(sb.Ncg); g++ {
		if !dirsFirst {
			c.progress(float64(g) * 100 / float64(sb.Ncg))
		}
		if err := c.checkStop(); err != nil {
			return err
		}
		base := ondisk.Ino(uint32(g) * sb.Ipg)
		for i := 0; i < len(c.ist[g]); i++ {
			ino := base + ondisk.Ino(i)
			if ino < ondisk.RootIno {
				continue
			}
			if c.fatalErr != nil {
				return c.fatalErr
			}
			st := c.inoinfo(ino)
			if isDir := st.state == dstate || st.state == dclear; isDir != dirsFirst {
				continue
			}
			switch st.state {
			case fstate, dfound:
				if st.link == 0 {
					// The common case, consistent: nothing to do.
					continue
				}
			case fzlink, dzlink, dstate, dclear, fclear:
			default:
				continue
			}
			d := &desc{typ: st.idtype(), fn: c.freeblock, number: ino}
			var names []ondisk.Ino
			if dirsFirst {
				names = c.entryTargets(ino)
			}
			var err error
			switch st.state {
			case fzlink, dzlink:
				if st.link == 0 {
					err = c.clri(d, "UNREF", KindUnrefInode, true)
					break
				}
				fallthrough
			case fstate, dfound:
				if n := st.link; n != 0 {
					err = c.adjust(d, int(n))
				}
			case dstate:
				err = c.clri(d, "UNREF", KindUnrefInode, true)
			case dclear:
				dp, gerr := c.ginode(ino)
				if gerr != nil {
					return gerr
				}
				if dp.Size == 0 {
					err = c.clri(d, "ZERO LENGTH", KindUnrefInode, true)
					break
				}
				err = c.clri(d, "BAD/DUP", KindBadInode, true)
			case fclear:
				err = c.clri(d, "BAD/DUP", KindBadInode, true)
			}
			if err != nil {
				return err
			}
			if dirsFirst && c.inoinfo(ino).state == ustate {
				// The directory is gone, and with it the names it
				// gave: their links are no longer found.
				c.giveBackDotdot(ino)
				for _, t := range names {
					if s := c.inoinfo(t).state; s != ustate && s != 0 {
						c.inoinfo(t).link++
					}
				}
			}
		}
	}
	return nil
}

// pass5 rebuilds each cylinder group's maps and counts from the block map
// and inode states and compares them with the disk.
func (c *checker) pass5() error {
	sb := c.sb
	if c.remap {
		if err := c.remapBlocks(); err != nil {
			return err
		}
	}
	if c.inoinfo(ondisk.WhiteoutIno).state != 0 {
		c.inoinfo(ondisk.WhiteoutIno).state = ustate
	}
	var cstotal ondisk.CsumTotal
	dmax := int64(sb.Blknum(ondisk.Frag(sb.Size + int64(sb.Frag) - 1)))
	for d := sb.Size; d < dmax; d++ {
		c.setbmap(ondisk.Frag(d))
	}
	fixCs := &desc{typ: typeAddr}
	fixMaps := &desc{typ: typeAddr}
	fixSum := &desc{typ: typeAddr}
	mapsProblem := -1
	fr := int64(sb.Frag)
	for g := 0; g < int(sb.Ncg); g++ {
		c.progress(float64(g) * 100 / float64(sb.Ncg))
		if err := c.checkStop(); err != nil {
			return err
		}
		cgx := ondisk.Cg(g)
		cb, err := c.cglookup(g, false)
		if err != nil {
			return err
		}
		cg := cb.cg
		if cb.bad && !cb.dirty {
			c.pfatal(KindBadCg, 0, "", "CG %d: BAD MAGIC NUMBER\n", g)
		}
		nc := ondisk.NewCg(sb, cgx)
		nc.Time, nc.OldTime, nc.Unrefs = cg.Time, cg.OldTime, cg.Unrefs
		nc.Ckhash = cg.Ckhash
		nc.Cs = ondisk.Csum{Nifree: int32(sb.Ipg)}
		if cg.Rotor < nc.Ndblk {
			nc.Rotor = cg.Rotor
		}
		if cg.Frotor < nc.Ndblk {
			nc.Frotor = cg.Frotor
		}
		if cg.Irotor < sb.Ipg {
			nc.Irotor = cg.Irotor
		}
		nc.Initediblk = min(cg.Initediblk, sb.Ipg)
		for i, st := range c.ist[g] {
			switch st.state {
			case dstate, dclear, dfound, dzlink:
				nc.Cs.Ndir++
				fallthrough
			case fstate, fclear, fzlink:
				nc.Cs.Nifree--
				nc.SetInodeUsed(int64(i), true)
			}
		}
		if g == 0 {
			for i := int64(0); i < int64(ondisk.RootIno); i++ {
				if !nc.InodeUsed(i) {
					nc.SetInodeUsed(i, true)
					nc.Cs.Nifree--
				}
			}
		}
		dbase := int64(sb.Cgbase(cgx))
		dend := min(dbase+int64(sb.Fpg), sb.Size)
		for i, d := int64(0), dbase; d < dend; i, d = i+fr, d+fr {
			frags := int64(0)
			for j := int64(0); j < fr; j++ {
				if c.testbmap(ondisk.Frag(d + j)) {
					continue
				}
				nc.SetFragFree(i+j, true)
				frags++
			}
			switch {
			case frags == fr:
				nc.Cs.Nbfree++
				if sb.Contigsumsize > 0 {
					setbit(nc.B[nc.Clusteroff:], i/fr)
				}
			case frags > 0:
				nc.Cs.Nffree += int32(frags)
				nc.FragAcct(nc.BlockMap(i/fr), 1)
			}
		}
		if sb.Contigsumsize > 0 {
			run := int32(0)
			css := sb.Contigsumsize
			flush := func() {
				if run > 0 {
					r := min(run, css)
					nc.SetClusterSum(int(r), nc.ClusterSum(int(r))+1)
					run = 0
				}
			}
			for i := int64(0); i < int64(nc.Nclusterblks); i++ {
				if nc.ClusterFree(i) {
					run++
				} else {
					flush()
				}
			}
			flush()
		}
		cstotal.Nffree += int64(nc.Cs.Nffree)
		cstotal.Nbfree += int64(nc.Cs.Nbfree)
		cstotal.Nifree += int64(nc.Cs.Nifree)
		cstotal.Ndir += int64(nc.Cs.Ndir)
		if nc.Cs != c.cs[g] && c.dofix(fixCs, KindSummary, "FREE BLK COUNT(S) WRONG IN SUPERBLK") != 0 {
			c.cs[g] = nc.Cs
			c.sbDirty = true
		}
		if cb.bad && cb.dirty {
			// Rebuilt: take the new group whole.
			copy(cg.B, nc.B)
			cg.CgHeader = nc.CgHeader
			c.cgdirty(cb)
			continue
		}
		var oldHdr, newHdr [ondisk.CgHeaderSize]byte
		cg.CgHeader.Encode(oldHdr[:])
		nc.CgHeader.Encode(newHdr[:])
		if oldHdr != newHdr && c.dofix(fixSum, KindSummary, "SUMMARY INFORMATION BAD") != 0 {
			cg.CgHeader = nc.CgHeader
			c.cgdirty(cb)
		}
		if c.usedSoftdep || c.opts.Debug {
			c.updateMaps(cg, nc)
		}
		lo, hi := int(nc.Iusedoff), int(nc.Nextfreeoff)
		if !bytes.Equal(cg.B[lo:hi], nc.B[lo:hi]) {
			// One problem stands for every group's maps (fsck_ffs asks
			// once); its kind is the worst found: something in use
			// but marked free, or only leaks.
			kind := KindBitmapLeak
			if mapsMissing(sb, cg, nc) {
				kind = KindBitmapMissing
			}
			n := len(c.problems)
			if c.dofix(fixMaps, kind, "BLK(S) MISSING IN BIT MAPS") != 0 {
				copy(cg.B[lo:hi], nc.B[lo:hi])
				c.cgdirty(cb)
			}
			switch {
			case len(c.problems) > n && c.problems[n].Message == "BLK(S) MISSING IN BIT MAPS":
				mapsProblem = n
			case kind == KindBitmapMissing && mapsProblem >= 0:
				c.problems[mapsProblem].Kind = kind
			}
		}
		c.cgRelease(g)
	}
	cstotal.Numclusters = c.sb.Cstotal.Numclusters
	cstotal.Spare = c.sb.Cstotal.Spare
	if cstotal != sb.Cstotal && c.dofix(fixCs, KindSummary, "SUMMARY BLK COUNT(S) WRONG IN SUPERBLK") != 0 {
		sb.Cstotal = cstotal
		sb.Ronly = 0
		sb.Fmod = 0
		c.sbDirty = true
	}
	return nil
}

func setbit(m []byte, i int64) { m[i>>3] |= 1 << (i & 7) }

// mapsMissing reports whether group maps claimed (on disk) mark free an
// inode or a fragment that found (rebuilt from what is in use) marks in
// use.
func mapsMissing(sb *ondisk.Superblock, claimed, found *ondisk.CylGroup) bool {
	for i := int64(0); i < int64(sb.Ipg); i++ {
		if found.InodeUsed(i) && !claimed.InodeUsed(i) {
			return true
		}
	}
	for f := int64(0); f < int64(found.Ndblk); f++ {
		if claimed.FragFree(f) && !found.FragFree(f) {
			return true
		}
	}
	return false
}

// entryTargets lists the inodes the entries of directory ino name, "."
// and ".." aside.
func (c *checker) entryTargets(ino ondisk.Ino) []ondisk.Ino {
	var out []ondisk.Ino
	d := &desc{fixState: ignore}
	d.fn = func(d *desc) int {
		e := d.dirp
		d.entryno++
		if e.ino() == 0 || e.ino() >= c.maxino || e.ino() == ino {
			return keepOn
		}
		if n := e.name(); (n == "." || n == "..") && d.entryno <= 2 {
			return keepOn
		}
		out = append(out, e.ino())
		return keepOn
	}
	if _, err := c.walkDir(ino, d); err != nil {
		return nil
	}
	return out
}

// giveBackDotdot returns the link a cleared directory's ".." took from
// its parent.
func (c *checker) giveBackDotdot(ino ondisk.Ino) {
	d := c.dirs.lookup(ino)
	if d == nil || c.inoinfo(ino).state != ustate || !d.dotdotCounted {
		return
	}
	d.dotdotCounted = false
	if d.dotdot >= ondisk.RootIno && d.dotdot < c.maxino && d.dotdot != ino {
		c.inoinfo(d.dotdot).link++
	}
}

// updateMaps reports, with -d or on a soft-updates filesystem, what the
// maps claim against what was found (update_maps of pass5.c).
func (c *checker) updateMaps(old, nc *ondisk.CylGroup) {
	sb := c.sb
	excess := old.Cs.Ndir - nc.Cs.Ndir
	if excess < 0 {
		c.pfatal(KindBadCg, 0, "", "LOST %d DIRECTORIES\n", -excess)
	}
	base := int64(old.Cgx) * int64(sb.Ipg)
	c.compareMaps(nc.B[nc.Iusedoff:], old.B[old.Iusedoff:], int64(sb.Ipg), base, "FILE")
	fbase := int64(old.Cgx) * int64(sb.Fpg)
	c.compareMaps(old.B[old.Freeoff:], nc.B[nc.Freeoff:], int64(sb.Fpg), fbase, "FRAG")
}

// compareMaps compares the first n bits of two bitmaps (bit i is
// m[i/8]>>(i%8)&1, the cylinder group's layout) and prints runs set in
// claimed but not in determined as "ALLOCATED ... MARKED FREE" and, with
// -d, the reverse as "UNALLOCATED ... MARKED USED". Equal bytes are
// skipped whole: maps mostly agree, and pass 5 runs this on every group.
func (c *checker) compareMaps(claimedMap, determinedMap []byte, n, start int64, name string) {
	claimed := func(i int64) bool { return claimedMap[i>>3]&(1<<(i&7)) != 0 }
	determined := func(i int64) bool { return determinedMap[i>>3]&(1<<(i&7)) != 0 }
	report := func(a, b int64, allocated bool) {
		if !allocated && !c.opts.Debug {
			return
		}
		what := "ALLOCATED"
		tail := "MARKED FREE"
		if !allocated {
			what, tail = "UNALLOCATED", "MARKED USED"
		}
		if a == b {
			c.pwarn("%s %s %d %s\n", what, name, a, tail)
		} else {
			c.pwarn("%s %sS %d-%d %s\n", what, name, a, b, tail)
		}
	}
	as, ae, us, ue := int64(-1), int64(-1), int64(-1), int64(-1)
	for i := int64(0); i < n; i++ {
		if i&7 == 0 && i+8 <= n && claimedMap[i>>3] == determinedMap[i>>3] {
			i += 7
			continue
		}
		x, y := claimed(i), determined(i)
		if x == y {
			continue
		}
		v := start + i
		if x {
			if as >= 0 && ae+1 == v {
				ae = v
				continue
			}
			if as >= 0 {
				report(as, ae, true)
			}
			as, ae = v, v
		} else {
			if us >= 0 && ue+1 == v {
				ue = v
				continue
			}
			if us >= 0 {
				report(us, ue, false)
			}
			us, ue = v, v
		}
	}
	if as >= 0 {
		report(as, ae, true)
	}
	if us >= 0 {
		report(us, ue, false)
	}
}
