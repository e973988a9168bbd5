package alloc

import "github.com/ufs2/ufs2/ondisk"

// BlkPref is ffs_blkpref_ufs2: where the next block of file ip should go.
//
// lbn is the logical block being allocated; bap is the array of block
// pointers that will hold it (the inode's di_db for direct blocks, the
// indirect block's pointers otherwise) and indx its index there. For an
// indirect block itself indx is negative: -1 for a single, -2 for a double
// and -3 for a triple indirect block, and bap is not used.
//
// The file is cut into sections: the direct blocks and the first fs_maxbpg
// after them, then every fs_maxbpg blocks. A section starts in the inode's
// group while the direct blocks and the first indirect block's data last,
// then in the next group (from fs_cgrotor's sweep) with at least the
// average number of free blocks; inside a section blocks follow each other.
// Directory blocks and indirect blocks (but the first, which follows the
// last direct block) prefer the group's metadata zone. It returns 0 when
// no group has an average number of free blocks: then any will do.
func (a *Allocator) BlkPref(ip InodeHint, lbn ondisk.Lbn, indx int, bap []ondisk.Frag) ondisk.Frag {
	a.mu.Lock()
	defer a.mu.Unlock()
	sb := a.sb
	ncg := ondisk.Cg(sb.Ncg)
	frag := ondisk.Frag(sb.Frag)
	nindir := sb.NINDIR()
	inocg := sb.InoToCg(ip.Ino)
	if inocg >= ncg {
		inocg = 0
	}
	if indx < 0 {
		if indx == -1 && int64(lbn) < ondisk.NDaddr+nindir && ip.LastDirect != 0 {
			return ip.LastDirect + frag
		}
		return cgmeta(sb, inocg)
	}
	// The first block under the first indirect block follows that block
	// when it sits in the inode's data zone.
	if lbn == ondisk.NDaddr {
		if p := ip.FirstIndirect; p != 0 && p >= sb.Cgdata(inocg) && p < sb.Cgbase(inocg+1) {
			return p + frag
		}
	}
	var prevbn ondisk.Frag
	if indx > 0 && indx <= len(bap) {
		prevbn = bap[indx-1]
		if prevbn <= 0 || int64(prevbn)+int64(frag) > sb.Size {
			prevbn = 0
		}
	}
	maxbpg := int(sb.Maxbpg)
	if maxbpg <= 0 {
		maxbpg = int(nindir) // newfs's default, should the superblock lack one
	}
	if indx%maxbpg != 0 && prevbn != 0 {
		return prevbn + frag
	}
	if ip.isDir() {
		return cgmeta(sb, inocg)
	}
	if int64(lbn) < ondisk.NDaddr+nindir {
		return sb.Cgdata(inocg)
	}
	var startcg uint64
	if indx == 0 || prevbn == 0 {
		startcg = uint64(inocg) + uint64(int64(lbn)/int64(maxbpg))
	} else {
		startcg = uint64(sb.Dtog(prevbn)) + 1
	}
	startcg %= uint64(ncg)
	avgbfree := sb.Cstotal.Nbfree / int64(ncg)
	for c := ondisk.Cg(startcg); c < ncg; c++ {
		if int64(a.csums[c].Nbfree) >= avgbfree {
			sb.Cgrotor = int32(c)
			return sb.Cgdata(c)
		}
	}
	for c := ondisk.Cg(0); c <= ondisk.Cg(startcg); c++ {
		if int64(a.csums[c].Nbfree) >= avgbfree {
			sb.Cgrotor = int32(c)
			return sb.Cgdata(c)
		}
	}
	return 0
}
