package newfs

import (
	"fmt"
	"io"
	"strings"

	"github.com/ufs2/ufs2/ondisk"
)

// Layout is the geometry of a filesystem newfs would build: everything
// Compute can decide without touching the device.
type Layout struct {
	// SB is the superblock as Format writes it, with the final summary
	// counts (root directory and /.snap included) and magic FS_UFS2_MAGIC;
	// only fs_time and fs_id are left for Format to fill in.
	SB *ondisk.Superblock
	// SectorSize is the device's sector size (FreeBSD's realsectorsize).
	SectorSize int
	// MediaSize is the size of the device in bytes.
	MediaSize int64
	// RootFrag and SnapFrag are the fragments holding the directory blocks
	// of / and /.snap (SnapFrag is 0 without /.snap).
	RootFrag, SnapFrag ondisk.Frag
	// Notes are FreeBSD's informational messages about values it adjusted
	// ("density reduced from ...") in the order mkfs prints them.
	Notes []string

	p Params
}

// Compute lays out a UFS2 filesystem for a device of mediaSize bytes
// exactly as FreeBSD 14's newfs and mkfs do. It is pure: nothing is read or
// written.
//
// The cylinder group size is chosen as mkfs chooses it. First the smallest
// group meeting the inode density is found (the density is lowered a
// fragment at a time until such a group's map fits in one block). Then the
// group grows a block at a time until its map fills the block exactly or
// overflows it (one block back), until fewer than MINCYLGRPS groups would
// remain, or until -c is reached. Finally the group shrinks a block at a
// time until the last group is large enough to hold its own metadata.
func Compute(p Params, mediaSize int64) (*Layout, error) {
	if err := p.checkOptions(); err != nil {
		return nil, err
	}
	l := &Layout{MediaSize: mediaSize, p: p}
	note := func(format string, args ...any) { l.Notes = append(l.Notes, fmt.Sprintf(format, args...)) }

	// newfs.c: sizes, defaults and the sector-size normalisation.
	sector := int64(p.SectorSize)
	if sector == 0 {
		sector = DefaultSectorSize
	}
	l.SectorSize = int(sector)
	diskSectors := mediaSize / sector
	avail := diskSectors - p.Reserved
	if avail <= 0 {
		return nil, errf(1, ErrTooSmall, "reserved not less than device size %d sectors", diskSectors)
	}
	fssize := avail // in sectors of `sector` bytes
	if p.Size > 0 {
		fssize = p.Size / sector
		if fssize > avail {
			return nil, errf(1, ErrTooLarge, "maximum file system size is %d sectors (%s); give a smaller size or a larger device", avail, humanBytes(avail*sector))
		}
	}
	fsize := p.Fsize
	if fsize == 0 {
		fsize = max(DefaultFsize, int(sector))
	}
	bsize := p.Bsize
	if bsize == 0 {
		bsize = min(DefaultBsize, 8*fsize)
	}
	optim := p.Optim
	if p.Minfree < ondisk.MinFree && optim != ondisk.FSOptSpace {
		note("Warning: changing optimization to space because minfree is less than %d%%", ondisk.MinFree)
		optim = ondisk.FSOptSpace
	}
	fssize *= sector / ondisk.DevBSize // now in DEV_BSIZE sectors

	// mkfs.c from here on.
	if fssize <= 0 {
		return nil, errf(13, ErrTooSmall, "preposterous size %d", fssize)
	}
	maxbsize := p.Maxbsize
	maxcontig := p.Maxcontig
	density := p.Density
	var sb *ondisk.Superblock
	var fragsperinode int64
	for restarts := 0; ; restarts++ {
		if restarts > 8 {
			return nil, errf(21, ErrBadParam, "cannot find a block size for a file system of %d sectors", fssize)
		}
		sb = &ondisk.Superblock{}
		var err error
		if err = l.sizes(sb, bsize, fsize, &maxbsize, &maxcontig, note); err != nil {
			return nil, err
		}
		sb.Size = fssize >> uint(sb.Fsbtodb)
		sb.Providersize = (mediaSize / ondisk.DevBSize) >> uint(sb.Fsbtodb)
		sb.Sblockloc = ondisk.SblockUFS2
		sb.Sblockactualloc = ondisk.SblockUFS2
		sb.Nindir = sb.Bsize / 8
		sb.Inopb = uint32(sb.Bsize / ondisk.DinodeSize)
		sb.Maxsymlinklen = ondisk.MaxSymlinkLen
		sb.Sblkno = int32(roundup(howmany(sb.Sblockloc+ondisk.SblockSize, int64(sb.Fsize)), int64(sb.Frag)))
		sb.Cblkno = sb.Sblkno + int32(roundup(howmany(ondisk.SblockSize, int64(sb.Fsize)), int64(sb.Frag)))
		sb.Iblkno = sb.Cblkno + sb.Frag
		sb.Maxfilesize = uint64(sb.Bsize)*ondisk.NDaddr - 1
		for i, sizepb := 0, uint64(sb.Bsize); i < ondisk.NIaddr; i++ {
			sizepb *= uint64(sb.Nindir)
			sb.Maxfilesize += sizepb
		}
		if sb.Maxfilesize < uint64(sb.Size)*uint64(sb.Fsize) {
			note("WARNING: You will be unable to create snapshots on this file system.  Correct by using a larger blocksize.")
		}

		// Inode density: at most 2^32 inodes in all.
		maxinum := int64(1)<<32 - int64(sb.Inopb)
		minfragsperinode := 1 + sb.Size/maxinum
		if density == 0 {
			density = int(max(NFPI, minfragsperinode) * int64(fsize))
		} else if int64(density) < minfragsperinode*int64(fsize) {
			orig := density
			density = int(minfragsperinode * int64(fsize))
			note("density increased from %d to %d", orig, density)
		}
		origdensity := density
		restart := false
		for {
			fragsperinode = max(sb.Numfrags(int64(density)), 1)
			if fragsperinode < minfragsperinode {
				bsize <<= 1
				fsize <<= 1
				note("Block size too small for a file system of this size. Increasing blocksize to %d", bsize)
				restart = true
				break
			}
			minfpg := fragsperinode * int64(sb.Inopb)
			if minfpg > sb.Size {
				minfpg = sb.Size
			}
			sb.Ipg = sb.Inopb
			for range 2 {
				sb.Fpg = int32(roundup(int64(sb.Iblkno)+int64(sb.Ipg)/sb.INOPF(), int64(sb.Frag)))
				if int64(sb.Fpg) < minfpg {
					sb.Fpg = int32(minfpg)
				}
				sb.Ipg = ipgFor(sb, fragsperinode)
			}
			if sb.CgSizeFor() < int64(sb.Bsize) {
				break
			}
			density -= int(sb.Fsize)
			if density <= 0 {
				return nil, errf(21, ErrBadParam, "a cylinder group of this file system cannot fit in a %d-byte block; use a larger block size (-b)", sb.Bsize)
			}
		}
		if restart {
			continue
		}
		if density != origdensity {
			note("density reduced from %d to %d", origdensity, density)
		}
		break
	}

	// Grow the group until its map fills a block, fewer than MINCYLGRPS
	// groups would remain, or -c is reached. (FreeBSD compares fs_fpg, in
	// fragments, with the -c limit, in blocks; so do we.)
	maxblkspercg := int64(p.MaxBlksPerCg)
	if maxblkspercg == 0 {
		maxblkspercg = MaxBlksPerCg
	}
	for ; int64(sb.Fpg) < maxblkspercg; sb.Fpg += sb.Frag {
		sb.Ipg = ipgFor(sb, fragsperinode)
		if sb.Size/int64(sb.Fpg) < ondisk.MinCylGrps {
			break
		}
		cgs := sb.CgSizeFor()
		if cgs < int64(sb.Bsize) {
			continue
		}
		if cgs == int64(sb.Bsize) {
			break
		}
		sb.Fpg -= sb.Frag
		sb.Ipg = ipgFor(sb, fragsperinode)
		break
	}

	// Shrink it until the last group can hold its own metadata.
	optimalfpg := sb.Fpg
	for {
		sb.Ncg = uint32(howmany(sb.Size, int64(sb.Fpg)))
		lastminfpg := roundup(int64(sb.Iblkno)+int64(sb.Ipg)/sb.INOPF(), int64(sb.Frag))
		if sb.Size < lastminfpg {
			return nil, errf(28, ErrTooSmall, "Filesystem size %d < minimum size of %d fragments (%s); give a larger size", sb.Size, lastminfpg, humanBytes(lastminfpg*int64(sb.Fsize)))
		}
		rem := sb.Size % int64(sb.Fpg)
		if rem >= lastminfpg || rem == 0 {
			break
		}
		sb.Fpg -= sb.Frag
		if int64(sb.Fpg) < lastminfpg {
			return nil, errf(28, ErrTooSmall, "cannot lay out cylinder groups for %d fragments; give a different size", sb.Size)
		}
		sb.Ipg = ipgFor(sb, fragsperinode)
	}
	if optimalfpg != sb.Fpg {
		note("Reduced frags per cylinder group from %d to %d to enlarge last cyl group", optimalfpg, sb.Fpg)
	}
	if int64(sb.Ncg)*int64(sb.Ipg) > 1<<32 {
		return nil, errf(1, ErrBadParam, "%d cylinder groups of %d inodes exceed 2^32 inodes; raise the bytes per inode (-i)", sb.Ncg, sb.Ipg)
	}
	sb.Cgsize = int32(sb.Fragroundup(sb.CgSizeFor()))
	sb.Dblkno = sb.Iblkno + int32(int64(sb.Ipg)/sb.INOPF())

	// The remaining fields.
	sb.Csaddr = sb.Cgdmin(0)
	sb.Cssize = int32(sb.Fragroundup(int64(sb.Ncg) * ondisk.CsumSize))
	sb.Sbsize = int32(sb.Fragroundup(ondisk.SuperblockSize))
	if sb.Sbsize > ondisk.SblockSize {
		sb.Sbsize = ondisk.SblockSize
	}
	if sb.Sbsize < int32(l.SectorSize) {
		sb.Sbsize = int32(l.SectorSize)
	}
	sb.Minfree = int32(p.Minfree)
	switch {
	case p.Metaspace > 0 && p.Metaspace < int(sb.Fpg/2):
		sb.Metaspace = int64(sb.Blknum(ondisk.Frag(p.Metaspace)))
	case p.Metaspace >= 0:
		sb.Metaspace = int64(sb.Blknum(ondisk.Frag(int64(sb.Fpg) * int64(p.Minfree) / 200)))
	}
	sb.Maxbpg = sb.Bsize / 8
	if p.Maxbpg != 0 {
		sb.Maxbpg = int32(p.Maxbpg)
	}
	sb.Optim = int32(optim)
	sb.Clean = 1
	flagsUpdated := uint8(ondisk.FSFlagsUpdated)
	sb.OldFlags = int8(flagsUpdated)
	copy(sb.Volname[:], p.VolumeLabel)
	if p.SoftUpdates {
		sb.Flags |= ondisk.FSDoSoftdep
	}
	if p.Gjournal {
		sb.Flags |= ondisk.FSGjournal
	}
	if p.Multilabel {
		sb.Flags |= ondisk.FSMultilabel
	}
	if p.Trim {
		sb.Flags |= ondisk.FSTrim
	}
	sb.Flags |= ondisk.FSMetackhash
	sb.Metackhash = ondisk.CKCylGrp | ondisk.CKSuperblock | ondisk.CKInode
	sb.Avgfilesize = uint32(p.AvgFileSize)
	sb.Avgfpdir = uint32(p.AvgFilesPerDir)
	sb.Magic = ondisk.FSUFS2Magic

	// Space accounting, as mkfs computes it before the root directory.
	csfrags := howmany(int64(sb.Cssize), int64(sb.Fsize))
	frag := int64(sb.Frag)
	sb.Dsize = sb.Size - int64(sb.Sblkno) - int64(sb.Ncg)*int64(sb.Dblkno-sb.Sblkno)
	sb.Cstotal.Nbfree = sb.Fragstoblks(sb.Dsize) - howmany(csfrags, frag)
	sb.Cstotal.Nffree = int64(sb.Fragnum(ondisk.Frag(sb.Size)))
	if r := csfrags % frag; r > 0 {
		sb.Cstotal.Nffree += frag - r
	}
	sb.Cstotal.Nifree = int64(sb.Ncg)*int64(sb.Ipg) - int64(ondisk.RootIno)
	sb.Dsize -= csfrags

	// The root directory and /.snap each take the first whole free block
	// of group 0 and use one fragment of it.
	dirs := 2
	if p.NoSnapDir {
		dirs = 1
	}
	first := roundup(int64(sb.Dblkno)+csfrags, frag)
	if first+int64(dirs)*frag > sb.CgFrags(0) {
		return nil, errf(39, ErrTooSmall, "first cylinder group ran out of space; give a larger size")
	}
	l.RootFrag = ondisk.Frag(first)
	if !p.NoSnapDir {
		l.SnapFrag = ondisk.Frag(first + frag)
	}
	for range dirs {
		sb.Cstotal.Nbfree--
		if frag > 1 {
			sb.Cstotal.Nffree += frag - 1
		}
		sb.Cstotal.Nifree--
		sb.Cstotal.Ndir++
	}
	l.SB = sb
	if err := sb.Validate(); err != nil {
		return nil, fmt.Errorf("%w: computed superblock: %v", ErrInternal, err)
	}
	return l, nil
}

// sizes fills the block and fragment sizes of sb the way mkfs does at its
// "restart" label, adjusting impossible combinations with a note.
// maxbsize and maxcontig carry over between restarts as mkfs's globals do.
func (l *Layout) sizes(sb *ondisk.Superblock, bsize, fsize int, maxbsize, maxcontig *int, note func(string, ...any)) error {
	isPow2 := func(v int) bool { return v > 0 && v&(v-1) == 0 }
	sbB, sbF := bsize, fsize
	if !isPow2(sbB) {
		return errf(16, ErrBadParam, "block size must be a power of 2, not %d", sbB)
	}
	if !isPow2(sbF) {
		return errf(17, ErrBadParam, "fragment size must be a power of 2, not %d", sbF)
	}
	if sbF < ondisk.DevBSize {
		note("increasing fragment size from %d to sector size (%d)", sbF, ondisk.DevBSize)
		sbF = ondisk.DevBSize
	}
	if sbB > ondisk.MaxBSize {
		note("decreasing block size from %d to maximum (%d)", sbB, ondisk.MaxBSize)
		sbB = ondisk.MaxBSize
	}
	if sbB < ondisk.MinBSize {
		note("increasing block size from %d to minimum (%d)", sbB, ondisk.MinBSize)
		sbB = ondisk.MinBSize
	}
	if sbF > ondisk.MaxBSize {
		note("decreasing fragment size from %d to maximum (%d)", sbF, ondisk.MaxBSize)
		sbF = ondisk.MaxBSize
	}
	if sbB < sbF {
		note("increasing block size from %d to fragment size (%d)", sbB, sbF)
		sbB = sbF
	}
	if sbF*ondisk.MaxFrag < sbB {
		note("increasing fragment size from %d to block size / %d (%d)", sbF, ondisk.MaxFrag, sbB/ondisk.MaxFrag)
		sbF = sbB / ondisk.MaxFrag
	}
	sb.Bsize, sb.Fsize = int32(sbB), int32(sbF)

	if *maxbsize == 0 {
		*maxbsize = bsize
	}
	switch {
	case *maxbsize < bsize || !isPow2(*maxbsize):
		sb.Maxbsize = sb.Bsize
		note("Extent size set to %d", sb.Maxbsize)
	case *maxbsize > ondisk.FSMaxContig*sbB:
		sb.Maxbsize = int32(ondisk.FSMaxContig * sbB)
		note("Extent size reduced to %d", sb.Maxbsize)
	default:
		sb.Maxbsize = int32(*maxbsize)
	}
	if *maxcontig == 0 {
		*maxcontig = max(1, MaxPhys/bsize)
	}
	sb.Maxcontig = int32(*maxcontig)
	if sb.Maxcontig < sb.Maxbsize/sb.Bsize {
		sb.Maxcontig = sb.Maxbsize / sb.Bsize
		note("Maxcontig raised to %d", sb.Maxbsize)
	}
	if sb.Maxcontig > 1 {
		sb.Contigsumsize = min(sb.Maxcontig, ondisk.FSMaxContig)
	}
	sb.Bmask = ^(sb.Bsize - 1)
	sb.Fmask = ^(sb.Fsize - 1)
	sb.Qbmask = int64(^sb.Bmask)
	sb.Qfmask = int64(^sb.Fmask)
	sb.Bshift = ilog2(sb.Bsize)
	sb.Fshift = ilog2(sb.Fsize)
	sb.Frag = sb.Bsize / sb.Fsize
	sb.Fragshift = ilog2(sb.Frag)
	if sb.Frag > ondisk.MaxFrag {
		return errf(21, ErrBadParam, "fragment size %d is still too small (can't happen)", sb.Bsize/ondisk.MaxFrag)
	}
	sb.Fsbtodb = ilog2(sb.Fsize / ondisk.DevBSize)
	return nil
}

// ipgFor is roundup(howmany(fs_fpg, fragsperinode), INOPB).
func ipgFor(sb *ondisk.Superblock, fragsperinode int64) uint32 {
	return uint32(roundup(howmany(int64(sb.Fpg), fragsperinode), int64(sb.Inopb)))
}

// Backups returns the sector numbers (DEV_BSIZE units) of the backup
// superblocks, one per cylinder group: what fsck_ffs -b takes.
func (l *Layout) Backups() []int64 {
	out := make([]int64, l.SB.Ncg)
	for c := range out {
		out[c] = l.SB.FsbToDb(l.SB.Cgsblock(ondisk.Cg(c)))
	}
	return out
}

// WriteSummary prints what FreeBSD's newfs prints: the size line, the
// cylinder group line, "with soft updates" when on, and the backup
// superblock list wrapped at width columns (80 if width <= 0). name is the
// device name to show.
func (l *Layout) WriteSummary(w io.Writer, name string, width int) error {
	sb := l.SB
	if width <= 0 {
		width = 80
	}
	const mb = 1 / (1024.0 * 1024.0)
	// mkfs computes these in single precision before widening.
	size := float64(float32(sb.Size)*float32(sb.Fsize)) * mb
	cgsz := float64(float32(sb.Fpg)*float32(sb.Fsize)) * mb
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %.1fMB (%d sectors) block size %d, fragment size %d\n",
		name, size, sb.FsbToDb(ondisk.Frag(sb.Size)), sb.Bsize, sb.Fsize)
	fmt.Fprintf(&b, "\tusing %d cylinder groups of %.2fMB, %d blks, %d inodes.\n",
		sb.Ncg, cgsz, sb.Fpg/sb.Frag, sb.Ipg)
	if sb.Flags&ondisk.FSDoSoftdep != 0 {
		b.WriteString("\twith soft updates\n")
	}
	b.WriteString("super-block backups (for fsck_ffs -b #) at:\n")
	col := 0
	backups := l.Backups()
	for c, s := range backups {
		sep := ","
		if c == len(backups)-1 {
			sep = ""
		}
		item := fmt.Sprintf(" %d%s", s, sep)
		if col+len(item) >= width {
			b.WriteString("\n")
			col = 0
		}
		col += len(item)
		b.WriteString(item)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func ilog2(v int32) int32 {
	for n := int32(0); n < 31; n++ {
		if 1<<n == v {
			return n
		}
	}
	return -1
}

func howmany(x, y int64) int64 { return (x + y - 1) / y }

func roundup(x, y int64) int64 { return howmany(x, y) * y }

// humanBytes renders n bytes with a binary suffix for messages.
func humanBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
