package ondisk

// Address units. Keeping them distinct stops a logical block number from
// being used where a disk address is meant.
type (
	// Frag is a disk address counted in fragments (fs_fsize units); block
	// pointers in inodes and indirect blocks hold Frags (ufs2_daddr_t).
	Frag int64
	// Lbn is a logical block number within a file (ufs_lbn_t).
	Lbn int64
	// Ino is an inode number.
	Ino uint32
	// Cg is a cylinder group number.
	Cg uint32
)

// Well-known inode numbers (dinode.h).
const (
	WhiteoutIno Ino = 1 // UFS_WINO
	RootIno     Ino = 2 // UFS_ROOTINO
)

// Cgbase is cgbase(fs, c): the first fragment of cylinder group c.
func (sb *Superblock) Cgbase(c Cg) Frag { return Frag(int64(sb.Fpg) * int64(c)) }

// Cgstart is cgstart(fs, c); for UFS2 it equals Cgbase.
func (sb *Superblock) Cgstart(c Cg) Frag { return sb.Cgbase(c) }

// Cgdmin is cgdmin(fs, c): the first data fragment of group c.
func (sb *Superblock) Cgdmin(c Cg) Frag { return sb.Cgstart(c) + Frag(sb.Dblkno) }

// Cgimin is cgimin(fs, c): the first inode block of group c.
func (sb *Superblock) Cgimin(c Cg) Frag { return sb.Cgstart(c) + Frag(sb.Iblkno) }

// Cgsblock is cgsblock(fs, c): the backup superblock of group c.
func (sb *Superblock) Cgsblock(c Cg) Frag { return sb.Cgstart(c) + Frag(sb.Sblkno) }

// Cgtod is cgtod(fs, c): the cylinder group block of group c.
func (sb *Superblock) Cgtod(c Cg) Frag { return sb.Cgstart(c) + Frag(sb.Cblkno) }

// Cgdata is cgdata(fs, c): the data zone after the metadata reserve.
func (sb *Superblock) Cgdata(c Cg) Frag { return sb.Cgdmin(c) + Frag(sb.Metaspace) }

// InoToCg is ino_to_cg(fs, x) = x / fs_ipg.
func (sb *Superblock) InoToCg(x Ino) Cg { return Cg(uint32(x) / sb.Ipg) }

// InoToFsba is ino_to_fsba(fs, x): the fragment address of the block
// holding inode x = cgimin(cg) + blkstofrags((x % ipg) / inopb).
func (sb *Superblock) InoToFsba(x Ino) Frag {
	return sb.Cgimin(sb.InoToCg(x)) + sb.Blkstofrags(int64((uint32(x)%sb.Ipg)/sb.Inopb))
}

// InoToFsbo is ino_to_fsbo(fs, x) = x % inopb: the inode's index in its block.
func (sb *Superblock) InoToFsbo(x Ino) int { return int(uint32(x) % sb.Inopb) }

// InoOffset is the byte offset of inode x on the device.
func (sb *Superblock) InoOffset(x Ino) int64 {
	return sb.FragOffset(sb.InoToFsba(x)) + int64(sb.InoToFsbo(x))*DinodeSize
}

// Dtog is dtog(fs, d) = d / fs_fpg: the group holding fragment d.
func (sb *Superblock) Dtog(d Frag) Cg { return Cg(int64(d) / int64(sb.Fpg)) }

// Dtogd is dtogd(fs, d) = d % fs_fpg: d's fragment index within its group.
func (sb *Superblock) Dtogd(d Frag) int64 { return int64(d) % int64(sb.Fpg) }

// FragOffset is the byte offset of fragment d on the device:
// dbtob(fsbtodb(fs, d)) = d * fs_fsize.
func (sb *Superblock) FragOffset(d Frag) int64 { return int64(d) << uint(sb.Fshift) }

// FsbToDb is fsbtodb(fs, b) = b << fs_fsbtodb: fragments to 512-byte sectors.
func (sb *Superblock) FsbToDb(b Frag) int64 { return int64(b) << uint(sb.Fsbtodb) }

// DbToFsb is dbtofsb(fs, b) = b >> fs_fsbtodb: 512-byte sectors to fragments.
func (sb *Superblock) DbToFsb(b int64) Frag { return Frag(b >> uint(sb.Fsbtodb)) }

// Blkoff is blkoff(fs, loc) = loc % fs_bsize.
func (sb *Superblock) Blkoff(loc int64) int64 { return loc & sb.Qbmask }

// Fragoff is fragoff(fs, loc) = loc % fs_fsize.
func (sb *Superblock) Fragoff(loc int64) int64 { return loc & sb.Qfmask }

// Lblktosize is lblktosize(fs, blk) = blk * fs_bsize.
func (sb *Superblock) Lblktosize(blk Lbn) int64 { return int64(blk) << uint(sb.Bshift) }

// Lfragtosize is lfragtosize(fs, frag) = frag * fs_fsize.
func (sb *Superblock) Lfragtosize(frags int64) int64 { return frags << uint(sb.Fshift) }

// Lblkno is lblkno(fs, loc) = loc / fs_bsize.
func (sb *Superblock) Lblkno(loc int64) Lbn { return Lbn(loc >> uint(sb.Bshift)) }

// Numfrags is numfrags(fs, loc) = loc / fs_fsize.
func (sb *Superblock) Numfrags(loc int64) int64 { return loc >> uint(sb.Fshift) }

// Blkroundup is blkroundup(fs, size): size rounded up to a block.
func (sb *Superblock) Blkroundup(size int64) int64 { return (size + sb.Qbmask) &^ sb.Qbmask }

// Fragroundup is fragroundup(fs, size): size rounded up to a fragment.
func (sb *Superblock) Fragroundup(size int64) int64 { return (size + sb.Qfmask) &^ sb.Qfmask }

// Fragstoblks is fragstoblks(fs, frags) = frags / fs_frag.
func (sb *Superblock) Fragstoblks(frags int64) int64 { return frags >> uint(sb.Fragshift) }

// Blkstofrags is blkstofrags(fs, blks) = blks * fs_frag.
func (sb *Superblock) Blkstofrags(blks int64) Frag { return Frag(blks << uint(sb.Fragshift)) }

// Fragnum is fragnum(fs, fsb) = fsb % fs_frag.
func (sb *Superblock) Fragnum(fsb Frag) int { return int(int64(fsb) & int64(sb.Frag-1)) }

// Blknum is blknum(fs, fsb): fsb rounded down to a block boundary.
func (sb *Superblock) Blknum(fsb Frag) Frag { return fsb &^ Frag(sb.Frag-1) }

// Sblksize is sblksize(fs, size, lbn): the size of logical block lbn of a
// file of the given size — a full block, or the fragments holding the tail
// when lbn is the last block and a direct one.
func (sb *Superblock) Sblksize(size int64, lbn Lbn) int64 {
	if lbn >= NDaddr || size >= int64(lbn+1)<<uint(sb.Bshift) {
		return int64(sb.Bsize)
	}
	return sb.Fragroundup(sb.Blkoff(size))
}

// NINDIR is NINDIR(fs): block pointers in an indirect block.
func (sb *Superblock) NINDIR() int64 { return int64(sb.Nindir) }

// INOPB is INOPB(fs): inodes per block.
func (sb *Superblock) INOPB() int64 { return int64(sb.Inopb) }

// INOPF is INOPF(fs): inodes per fragment.
func (sb *Superblock) INOPF() int64 { return int64(sb.Inopb) >> uint(sb.Fragshift) }

// Freespace is freespace(fs, percentreserved): free fragments beyond the
// given reserve, from fs_cstotal.
func (sb *Superblock) Freespace(percentReserved int64) int64 {
	return int64(sb.Blkstofrags(sb.Cstotal.Nbfree)) + sb.Cstotal.Nffree - sb.Dsize*percentReserved/100
}

// CgSizeFor is CGSIZE(fs): the bytes a cylinder group block needs for its
// header and maps.
func (sb *Superblock) CgSizeFor() int64 {
	n := int64(cgStructSize) + 4 + int64(sb.OldCpg)*4 + int64(sb.OldCpg)*2 +
		howmany(int64(sb.Ipg), 8) + howmany(int64(sb.Fpg), 8)
	if sb.Contigsumsize > 0 {
		n += int64(sb.Contigsumsize)*4 + howmany(sb.Fragstoblks(int64(sb.Fpg)), 8)
	}
	return n
}

// CgMapsEnd is where the maps of a cylinder group laid out as newfs lays
// them out would end (cg_nextfreeoff); Validate uses it to reject a fs_cgsize
// too small for fs_ipg and fs_fpg.
func (sb *Superblock) CgMapsEnd() int64 {
	l := sb.CgLayout()
	return int64(l.Nextfreeoff)
}

// CgLayoutInfo gives the map offsets of a UFS2 cylinder group as FreeBSD's
// newfs computes them.
type CgLayoutInfo struct {
	Iusedoff, Freeoff, Nextfreeoff, Clustersumoff, Clusteroff uint32
}

// CgLayout computes the standard UFS2 map offsets from fs_ipg, fs_fpg and
// fs_contigsumsize: the inode map right after the header, then the
// free-fragment map, then (when clustering is on) the cluster summary,
// 4-byte aligned and starting one word early since entry 0 is unused, and
// the cluster map.
func (sb *Superblock) CgLayout() CgLayoutInfo {
	var l CgLayoutInfo
	l.Iusedoff = CgHeaderSize
	l.Freeoff = l.Iusedoff + uint32(howmany(int64(sb.Ipg), 8))
	l.Nextfreeoff = l.Freeoff + uint32(howmany(int64(sb.Fpg), 8))
	if sb.Contigsumsize > 0 {
		l.Clustersumoff = uint32(roundup(int64(l.Nextfreeoff), 4)) - 4
		l.Clusteroff = l.Clustersumoff + uint32(sb.Contigsumsize+1)*4
		l.Nextfreeoff = l.Clusteroff + uint32(howmany(sb.Fragstoblks(int64(sb.Fpg)), 8))
	}
	return l
}

// LbnLevel is lbn_level: for the negative logical block numbers that name
// indirect blocks, the level of indirection (0 single, 1 double, 2 triple);
// -1 for an lbn that names no indirect block; 0 for data blocks.
func LbnLevel(lbn Lbn) int {
	if lbn >= 0 {
		return 0
	}
	switch lbn & 3 {
	case 0:
		return 0
	case 2:
		return 2
	case 3:
		return 1
	}
	return -1
}

func howmany(x, y int64) int64 { return (x + y - 1) / y }

func roundup(x, y int64) int64 { return howmany(x, y) * y }
