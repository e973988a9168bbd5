package fsck

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// maxDirSize is MAXDIRSIZE: the largest directory fsck accepts.
const maxDirSize = 0x7fffffff

// setup reads the superblock and the summary information and allocates the
// maps (setup.c). It returns false when there is nothing to check.
func (c *checker) setup() (bool, error) {
	if c.opts.Mode != Preen {
		c.printf("** %s", c.name)
	}
	if c.noWrite {
		if c.preen {
			c.pfatal(KindPreen, 0, "", "NO WRITE ACCESS")
			return false, c.fatalErr
		}
		c.printf(" (NO WRITE)")
	}
	if c.opts.Mode != Preen {
		c.printf("\n")
	}
	if c.opts.AltSuperblock != 0 {
		c.printf("Alternate super block location: %d\n", c.opts.AltSuperblock)
	}
	// A preen that may skip a clean filesystem (no -f, no -b) first reads
	// the superblock quietly, and a failure there is fsck_ffs's exit
	// status 3: the superblock cannot be read.
	skipclean := c.preen && !c.opts.Force && c.opts.AltSuperblock == 0
	if skipclean {
		if err := c.probeSuperblock(); err != nil {
			c.exitCode = ExitNoSuperblock
			return false, err
		}
	}
	ok, err := c.readsb(true)
	if err != nil {
		return false, err
	}
	if !ok {
		if c.opts.AltSuperblock != 0 || c.preen {
			return false, ErrNoSuperblock
		}
		found, err := c.lookForAlternates()
		if err != nil || !found {
			return false, err
		}
	}
	sb := c.sb
	if skipclean && c.report.UsedAlternate == 0 && sb.Clean != 0 {
		c.pwarn("FILE SYSTEM CLEAN; SKIPPING CHECKS\n")
		c.pwarn("clean, %d free ", sb.Cstotal.Nffree+int64(sb.Frag)*sb.Cstotal.Nbfree)
		frag := 0.0
		if sb.Dsize > 0 {
			frag = float64(sb.Cstotal.Nffree) * 100 / float64(sb.Dsize)
		}
		c.printf("(%d frags, %d blocks, %.1f%% fragmentation)\n", sb.Cstotal.Nffree, sb.Cstotal.Nbfree, frag)
		c.report.Skipped = true
		return true, nil
	}
	c.maxfsblk = sb.Size
	c.maxino = ondisk.Ino(uint64(sb.Ncg) * uint64(sb.Ipg))
	if uint64(sb.Ncg)*uint64(sb.Ipg) > 1<<32-1 {
		c.pfatal(KindSuperblock, 0, "", "TOO MANY INODES (%d GROUPS OF %d)\n", sb.Ncg, sb.Ipg)
		return false, ErrNoSuperblock
	}
	if sb.Optim != ondisk.FSOptTime && sb.Optim != ondisk.FSOptSpace {
		c.pfatal(KindSuperblock, 0, "", "UNDEFINED OPTIMIZATION IN SUPERBLOCK")
		if c.reply("SET TO DEFAULT") {
			sb.Optim = ondisk.FSOptTime
			c.sbDirty = true
		}
	}
	// Validate has already refused an impossible fs_minfree.
	if sb.Flags&ondisk.FSMetackhash == 0 {
		sb.Metackhash = 0
	}
	c.usedSoftdep = sb.Flags&ondisk.FSDoSoftdep != 0

	// The cylinder group summary array.
	c.cs = make([]ondisk.Csum, sb.Ncg)
	raw := make([]byte, sb.Fragroundup(int64(sb.Cssize)))
	if err := c.readAt(raw, sb.FragOffset(sb.Csaddr)); err != nil {
		c.pfatal(KindSuperblock, 0, "", "BAD SUMMARY INFORMATION")
		if !c.reply("CONTINUE") {
			return false, err
		}
	}
	for i := range c.cs {
		c.cs[i], _ = ondisk.DecodeCsum(raw[i*ondisk.CsumSize:])
	}

	words := (sb.Blknum(ondisk.Frag(sb.Size+int64(sb.Frag)-1)) + 63) / 64
	c.bmap = make([]uint64, words)
	c.ist = make([][]inostat, sb.Ncg)
	c.cgs = make([]*cgbuf, sb.Ncg)
	return true, nil
}

// readsb reads the superblock: the standard one, or the alternate the
// options name. listerr asks for the comparison with the last backup.
func (c *checker) readsb(listerr bool) (bool, error) {
	var (
		sb  *ondisk.Superblock
		loc int64
		raw = make([]byte, ondisk.SblockSize)
	)
	if alt := c.opts.AltSuperblock; alt != 0 {
		loc = alt * ondisk.DevBSize
		cand, err := c.superblockAt(loc, raw)
		if err != nil {
			if errors.Is(err, ErrIO) {
				c.printf("I/O error reading %d\n", alt)
				return false, err
			}
			c.printf("%d is not a file system superblock\n", alt)
			c.debugf("%v\n", err)
			return false, nil
		}
		sb = cand
		c.report.UsedAlternate = alt
	} else {
		cand, where, err := ondisk.FindSuperblock(c.dev)
		if cand != nil {
			if gerr := strictGeometry(cand); gerr != nil {
				c.debugf("superblock at %d: %v\n", where, gerr)
				cand, err = nil, gerr
			}
		}
		switch {
		case err == nil:
			sb, loc = cand, where
		case errors.Is(err, ondisk.ErrCheckHash) && cand != nil:
			// STDSB_NOHASHFAIL: take it, and offer to fix the hash.
			sb, loc = cand, where
			c.warn(KindSuperblock, 0, "", "SUPERBLOCK CHECK-HASH FAILED: %v", err)
			if c.preen {
				c.printf(" (FIXED)\n")
				c.fixed()
				c.sbDirty = true
			} else if c.reply("FIX") {
				c.sbDirty = true
			}
		case errors.Is(err, ondisk.ErrUFS1):
			c.printf("%s is a UFS1 filesystem; only UFS2 is supported\n", c.name)
			return false, fmt.Errorf("%s: %w", c.name, err)
		default:
			c.printf("Cannot find file system superblock\n")
			c.problem(KindSuperblock, 0, "", "cannot find file system superblock: %v", err)
			return false, nil
		}
		if _, rerr := c.dev.ReadAt(raw, loc); rerr != nil && rerr != io.EOF {
			return false, fmt.Errorf("%w: superblock at %d: %v", ErrIO, loc, rerr)
		}
	}
	c.sb, c.sbLoc, c.sbRaw = sb, loc, raw
	if c.opts.AltSuperblock != 0 || !listerr {
		return true, nil
	}
	// Compare with the backup in the last group.
	last := ondisk.Cg(sb.Ncg - 1)
	altRaw := make([]byte, ondisk.SblockSize)
	altLoc := sb.FragOffset(sb.Cgsblock(last))
	n, err := c.dev.ReadAt(altRaw, altLoc)
	if n < ondisk.SuperblockSize {
		return false, fmt.Errorf("%w: backup superblock at %d: %v", ErrIO, altLoc, err)
	}
	alt, _ := ondisk.DecodeSuperblock(altRaw)
	if bad := sbMismatches(sb, alt); len(bad) > 0 {
		if c.opts.Debug {
			for _, m := range bad {
				c.printf("SUPER BLOCK VS ALTERNATE MISMATCH %s\n", m)
			}
		}
		if c.preen {
			c.printf("%s: ", c.name)
		}
		msg := fmt.Sprintf("VALUES IN SUPER BLOCK LSB=%d DISAGREE WITH THOSE IN\nLAST ALTERNATE LSB=%d\n",
			loc/ondisk.DevBSize, altLoc/ondisk.DevBSize)
		c.printf("%s", msg)
		c.problem(KindSuperblock, 0, "", "%s", msg)
		if !c.reply("IGNORE ALTERNATE SUPER BLOCK") {
			c.sb = nil
			return false, c.fatalErr
		}
		// The check goes on with the standard superblock; unless the
		// backup is made to agree, every later check stops here again
		// (and a check without write access, answering no, at once).
		c.lastAlt, c.lastAltLoc = alt, altLoc
	}
	return true, nil
}

// syncLastAlternate makes the backup superblock in the last group, found
// disagreeing and ignored, agree with the standard superblock the check
// used: the fields compared are copied into it and it is written back.
func (c *checker) syncLastAlternate() error {
	alt, sb := c.lastAlt, c.sb
	if alt == nil || !alt.IsUFS2() {
		// Nothing of a superblock left there: a copy of the standard one.
		alt = new(ondisk.Superblock)
		*alt = *sb
	}
	alt.Sblkno, alt.Cblkno, alt.Iblkno, alt.Dblkno = sb.Sblkno, sb.Cblkno, sb.Iblkno, sb.Dblkno
	alt.Ncg, alt.Bsize, alt.Fsize, alt.Frag = sb.Ncg, sb.Bsize, sb.Fsize, sb.Frag
	alt.Bmask, alt.Fmask, alt.Bshift, alt.Fshift = sb.Bmask, sb.Fmask, sb.Bshift, sb.Fshift
	alt.Fragshift, alt.Fsbtodb, alt.Sbsize, alt.Nindir = sb.Fragshift, sb.Fsbtodb, sb.Sbsize, sb.Nindir
	alt.Inopb, alt.Cssize, alt.Ipg, alt.Fpg, alt.Magic = sb.Inopb, sb.Cssize, sb.Ipg, sb.Fpg, sb.Magic
	alt.Metackhash = sb.Metackhash
	if bad := sbMismatches(sb, alt); len(bad) > 0 {
		return fmt.Errorf("%w: backup superblock still disagrees: %v", ErrAborted, bad)
	}
	c.lastAlt = nil
	return c.writeAt(alt.EncodeWithHash(), c.lastAltLoc)
}

// probeSuperblock is the quiet read (readsb(0)) a preen that may skip a
// clean filesystem makes before anything else: the standard superblock
// must be found (a failed check-hash is tolerated) and agree with the
// backup in the last group. What fails is reported as readsb reports it,
// a disagreement with the backup silently.
func (c *checker) probeSuperblock() error {
	sb, _, err := ondisk.FindSuperblock(c.dev)
	if sb != nil && err == nil {
		err = strictGeometry(sb)
	} else if sb != nil && errors.Is(err, ondisk.ErrCheckHash) {
		err = strictGeometry(sb)
	}
	if err != nil {
		c.printf("Cannot find file system superblock\n")
		c.problem(KindSuperblock, 0, "", "cannot find file system superblock: %v", err)
		return fmt.Errorf("%w: %v", ErrNoSuperblock, err)
	}
	altRaw := make([]byte, ondisk.SblockSize)
	altLoc := sb.FragOffset(sb.Cgsblock(ondisk.Cg(sb.Ncg - 1)))
	if n, rerr := c.dev.ReadAt(altRaw, altLoc); n < ondisk.SuperblockSize {
		return fmt.Errorf("%w: backup superblock at %d: %v", ErrIO, altLoc, rerr)
	}
	alt, _ := ondisk.DecodeSuperblock(altRaw)
	if bad := sbMismatches(sb, alt); len(bad) > 0 {
		c.problem(KindSuperblock, 0, "", "superblock disagrees with the backup in the last group: %s", strings.Join(bad, ", "))
		return fmt.Errorf("%w: superblock disagrees with the backup in the last group", ErrNoSuperblock)
	}
	return nil
}

// sbMismatches lists the geometry fields that differ between the primary
// and a backup superblock (readsb's CHK list).
func sbMismatches(a, b *ondisk.Superblock) []string {
	var out []string
	chk := func(name string, x, y int64) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %d vs %d", name, x, y))
		}
	}
	chk("fs_sblkno", int64(a.Sblkno), int64(b.Sblkno))
	chk("fs_cblkno", int64(a.Cblkno), int64(b.Cblkno))
	chk("fs_iblkno", int64(a.Iblkno), int64(b.Iblkno))
	chk("fs_dblkno", int64(a.Dblkno), int64(b.Dblkno))
	chk("fs_ncg", int64(a.Ncg), int64(b.Ncg))
	chk("fs_bsize", int64(a.Bsize), int64(b.Bsize))
	chk("fs_fsize", int64(a.Fsize), int64(b.Fsize))
	chk("fs_frag", int64(a.Frag), int64(b.Frag))
	chk("fs_bmask", int64(a.Bmask), int64(b.Bmask))
	chk("fs_fmask", int64(a.Fmask), int64(b.Fmask))
	chk("fs_bshift", int64(a.Bshift), int64(b.Bshift))
	chk("fs_fshift", int64(a.Fshift), int64(b.Fshift))
	chk("fs_fragshift", int64(a.Fragshift), int64(b.Fragshift))
	chk("fs_fsbtodb", int64(a.Fsbtodb), int64(b.Fsbtodb))
	chk("fs_sbsize", int64(a.Sbsize), int64(b.Sbsize))
	chk("fs_nindir", int64(a.Nindir), int64(b.Nindir))
	chk("fs_inopb", int64(a.Inopb), int64(b.Inopb))
	chk("fs_cssize", int64(a.Cssize), int64(b.Cssize))
	chk("fs_ipg", int64(a.Ipg), int64(b.Ipg))
	chk("fs_fpg", int64(a.Fpg), int64(b.Fpg))
	chk("fs_magic", int64(a.Magic), int64(b.Magic))
	return out
}

// superblockAt reads and validates a superblock at byte offset loc (a
// backup: its fs_sblockloc names the primary's place, not loc).
func (c *checker) superblockAt(loc int64, raw []byte) (*ondisk.Superblock, error) {
	if loc < 0 || loc+ondisk.SuperblockSize > c.dev.Size() {
		return nil, fmt.Errorf("%w: offset %d is outside the device", ondisk.ErrNotFound, loc)
	}
	n, err := c.dev.ReadAt(raw, loc)
	if n < ondisk.SuperblockSize {
		return nil, fmt.Errorf("%w: reading %d: %v", ErrIO, loc, err)
	}
	for i := n; i < len(raw); i++ {
		raw[i] = 0
	}
	sb, err := ondisk.DecodeSuperblock(raw)
	if err != nil {
		return nil, err
	}
	if err := sb.Validate(); err != nil {
		return nil, err
	}
	if err := strictGeometry(sb); err != nil {
		return nil, err
	}
	if err := sb.VerifyHash(raw); err != nil {
		return nil, err
	}
	return sb, nil
}

// backupLocations returns the byte offsets of the backup superblocks: from
// the recovery record newfs leaves before the standard superblock, or, when
// there is none, by probing where the first group's backup would lie for
// each possible fragment size and block size and reading the geometry from
// the first one found.
func (c *checker) backupLocations() []int64 {
	var rec [ondisk.FsRecoverySize]byte
	if _, err := c.dev.ReadAt(rec[:], ondisk.SblockUFS2-ondisk.FsRecoverySize); err == nil {
		if fsr, err := ondisk.DecodeFsRecovery(rec[:]); err == nil && uint32(fsr.Magic) == ondisk.FSUFS2Magic &&
			fsr.Ncg > 0 && fsr.Fpg > 0 && fsr.Sblkno > 0 && fsr.Fsbtodb >= 0 && fsr.Fsbtodb < 8 {
			c.debugf("recovery record: %+v\n", fsr)
			return fsr.BackupSuperblocks()
		}
	}
	raw := make([]byte, ondisk.SblockSize)
	seen := map[int64]bool{}
	for _, sbloc := range []int64{ondisk.SblockUFS2, ondisk.SblockUFS1} {
		for fsize := int64(ondisk.DevBSize); fsize <= ondisk.MaxBSize; fsize *= 2 {
			for frag := int64(1); frag <= ondisk.MaxFrag; frag *= 2 {
				sblkno := (sbloc + ondisk.SblockSize + fsize - 1) / fsize
				sblkno = (sblkno + frag - 1) / frag * frag
				loc := sblkno * fsize
				if seen[loc] {
					continue
				}
				seen[loc] = true
				sb, err := c.superblockAt(loc, raw)
				if err != nil || int64(sb.Sblkno)*int64(sb.Fsize) != loc {
					continue
				}
				fsr := ondisk.FsRecovery{Magic: sb.Magic, Fsbtodb: sb.Fsbtodb, Sblkno: sb.Sblkno, Fpg: sb.Fpg, Ncg: sb.Ncg}
				return fsr.BackupSuperblocks()
			}
		}
	}
	return nil
}

// lookForAlternates lists the backups and, if told to, uses the first good
// one.
func (c *checker) lookForAlternates() (bool, error) {
	locs := c.backupLocations()
	if len(locs) == 0 {
		c.printf("SEARCH FOR ALTERNATE SUPER-BLOCK FAILED. YOU MUST USE THE\n" +
			"-b OPTION TO FSCK TO SPECIFY THE LOCATION OF AN ALTERNATE\n" +
			"SUPER-BLOCK TO SUPPLY NEEDED INFORMATION; SEE fsck_ffs(8).\n")
		return false, ErrNoSuperblock
	}
	c.report.Backups = make([]int64, len(locs))
	c.printf("BACKUP SUPERBLOCKS (for -b) AT:")
	for i, l := range locs {
		c.report.Backups[i] = l / ondisk.DevBSize
		if i < 32 {
			c.printf(" %d", l/ondisk.DevBSize)
		}
	}
	if len(locs) > 32 {
		c.printf(" ...")
	}
	c.printf("\n")
	if !c.reply("LOOK FOR ALTERNATE SUPERBLOCKS") {
		return false, ErrNoSuperblock
	}
	raw := make([]byte, ondisk.SblockSize)
	for _, l := range locs {
		sb, err := c.superblockAt(l, raw)
		if err != nil {
			continue
		}
		c.sb, c.sbLoc, c.sbRaw = sb, l, raw
		c.report.UsedAlternate = l / ondisk.DevBSize
		c.pwarn("USING ALTERNATE SUPERBLOCK AT %d\n", l/ondisk.DevBSize)
		return true, nil
	}
	c.printf("SEARCH FOR ALTERNATE SUPER-BLOCK FAILED. YOU MUST USE THE\n" +
		"-b OPTION TO FSCK TO SPECIFY THE LOCATION OF AN ALTERNATE\n" +
		"SUPER-BLOCK TO SUPPLY NEEDED INFORMATION; SEE fsck_ffs(8).\n")
	return false, ErrNoSuperblock
}

// finish writes what is dirty (cylinder groups, then the superblock and its
// summary array) and marks the filesystem clean or dirty (ckfini).
func (c *checker) finish(markClean bool) error {
	if c.sb == nil {
		return nil
	}
	if !c.writable() {
		// Without write access ckfini stops here: no question about
		// the standard superblock, and no rerun for what is left.
		return nil
	}
	for i, cb := range c.cgs {
		if cb == nil || !cb.dirty {
			continue
		}
		cb.cg.Sync()
		if err := c.writeAt(cb.cg.B, c.sb.FragOffset(c.sb.Cgtod(ondisk.Cg(i)))); err != nil {
			return err
		}
		cb.dirty = false
	}
	sb := c.sb
	usedAlt := c.sbLoc != sb.Sblockloc
	if usedAlt && !c.preen {
		c.problem(KindSuperblock, 0, "", "superblock read from a backup at %d", c.sbLoc/ondisk.DevBSize)
		if c.reply("UPDATE STANDARD SUPERBLOCK") {
			c.sbLoc = sb.Sblockloc
			sb.Sblockactualloc = sb.Sblockloc
			c.sbDirty = true
		}
	}
	if c.modified {
		sb.Time = time.Now().Unix()
		c.sbDirty = true
	}
	want := int8(0)
	if markClean {
		want = 1
	}
	if sb.Clean != want {
		sb.Clean = want
		if markClean {
			sb.Flags &^= ondisk.FSUnclean | ondisk.FSNeedsFsck
			sb.Pendingblocks = 0
			sb.Pendinginodes = 0
		}
		c.sbDirty = true
		if !c.preen {
			state := "DIRTY"
			if markClean {
				state = "CLEAN"
			}
			c.printf("\n***** FILE SYSTEM MARKED %s *****\n", state)
			if !markClean {
				c.rerun = true
			}
		}
	} else if !c.preen {
		if markClean {
			c.printf("\n***** FILE SYSTEM IS CLEAN *****\n")
		} else {
			c.printf("\n***** FILE SYSTEM STILL DIRTY *****\n")
			c.rerun = true
		}
	}
	if c.sbDirty && (c.sbLoc == sb.Sblockloc || !usedAlt) {
		if err := c.writeSuperblock(); err != nil {
			return err
		}
		c.sbDirty = false
	}
	if c.lastAlt != nil {
		if err := c.syncLastAlternate(); err != nil {
			return err
		}
	}
	return c.dev.Sync()
}

// writeSuperblock writes the superblock at its standard place and the
// summary array at fs_csaddr (sbput).
func (c *checker) writeSuperblock() error {
	sb := c.sb
	raw := make([]byte, sb.Fragroundup(int64(sb.Cssize)))
	if c.sbLoc == sb.Sblockloc {
		// Keep the bytes after the summary array as they are.
		if err := c.readAt(raw, sb.FragOffset(sb.Csaddr)); err != nil {
			return err
		}
	}
	for i := range c.cs {
		c.cs[i].Encode(raw[i*ondisk.CsumSize:])
	}
	if err := c.writeAt(raw[:sb.Cssize], sb.FragOffset(sb.Csaddr)); err != nil {
		return err
	}
	return c.writeAt(sb.EncodeWithHash(), sb.Sblockloc)
}

// strictGeometry checks what Validate leaves loose: that every shift and
// derived count is exactly what the sizes imply, so that no geometry
// arithmetic runs on a damaged field.
func strictGeometry(sb *ondisk.Superblock) error {
	log2 := func(v int32) int32 {
		n := int32(0)
		for v > 1 {
			v >>= 1
			n++
		}
		return n
	}
	type rule struct {
		name      string
		got, want int64
	}
	for _, r := range []rule{
		{"fs_bshift", int64(sb.Bshift), int64(log2(sb.Bsize))},
		{"fs_fshift", int64(sb.Fshift), int64(log2(sb.Fsize))},
		{"fs_fragshift", int64(sb.Fragshift), int64(log2(sb.Frag))},
		{"fs_fsbtodb", int64(sb.Fsbtodb), int64(log2(sb.Fsize / ondisk.DevBSize))},
		{"fs_cssize", int64(sb.Cssize), sb.Fragroundup(int64(sb.Ncg) * ondisk.CsumSize)},
	} {
		if r.got != r.want {
			return fmt.Errorf("%w: superblock: %s = %d, want %d", ondisk.ErrCorrupt, r.name, r.got, r.want)
		}
	}
	if sb.Ipg > uint32(sb.Fpg)*uint32(sb.Inopb) || sb.Cgsize > sb.Bsize {
		return fmt.Errorf("%w: superblock: fs_ipg %d or fs_cgsize %d impossible", ondisk.ErrCorrupt, sb.Ipg, sb.Cgsize)
	}
	return nil
}
