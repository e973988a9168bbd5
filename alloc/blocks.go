package alloc

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// A request says what hashalloc looks for in each group it tries.
type reqKind uint8

const (
	reqBlock   reqKind = iota // ffs_alloccg: size bytes, keeping rsize of them
	reqCluster                // ffs_clusteralloc: size whole blocks in a row
	reqInode                  // ffs_nodealloccg: an inode of the given mode
)

type request struct {
	kind  reqKind
	size  int
	rsize int
	mode  uint16
}

// tryCg runs the per-group allocator of r on group c with preference pref.
// Preconditions: a.mu held.
func (a *Allocator) tryCg(c ondisk.Cg, pref int64, r *request) (int64, bool, error) {
	switch r.kind {
	case reqCluster:
		v, ok, err := a.clusteralloc(c, ondisk.Frag(pref), r.size)
		return int64(v), ok, err
	case reqInode:
		v, ok, err := a.nodealloccg(c, pref, r.mode)
		return int64(v), ok, err
	default:
		v, ok, err := a.alloccg(c, ondisk.Frag(pref), r.size, r.rsize)
		return int64(v), ok, err
	}
}

// hashalloc is ffs_hashalloc, the cylinder overflow policy: try group c
// with the preference, then groups c+1, c+3, c+7, ... (quadratic rehash),
// then every group from c+2 on. An error from a group (I/O, corruption)
// ends the search. Preconditions: a.mu held.
func (a *Allocator) hashalloc(c ondisk.Cg, pref int64, r *request) (int64, bool, error) {
	ncg := ondisk.Cg(a.sb.Ncg)
	if c >= ncg {
		c = 0
	}
	if v, ok, err := a.tryCg(c, pref, r); ok || err != nil {
		return v, ok, err
	}
	icg := c
	for i := uint64(1); i < uint64(ncg); i *= 2 {
		c = ondisk.Cg((uint64(c) + i) % uint64(ncg))
		if v, ok, err := a.tryCg(c, 0, r); ok || err != nil {
			return v, ok, err
		}
	}
	c = (icg + 2) % ncg
	for i := ondisk.Cg(2); i < ncg; i++ {
		if v, ok, err := a.tryCg(c, 0, r); ok || err != nil {
			return v, ok, err
		}
		c++
		if c == ncg {
			c = 0
		}
	}
	return 0, false, nil
}

// checkSize rejects sizes that are not a whole number of fragments from
// one fragment to one block.
func (a *Allocator) checkSize(op string, size int) error {
	if size <= 0 || size > int(a.sb.Bsize) || a.sb.Fragoff(int64(size)) != 0 {
		return fmt.Errorf("%w: %s: size %d is not a multiple of %d up to %d", ErrInvalid, op, size, a.sb.Fsize, a.sb.Bsize)
	}
	return nil
}

func (a *Allocator) checkIno(op string, ino ondisk.Ino) error {
	if uint64(ino) >= uint64(a.sb.Ncg)*uint64(a.sb.Ipg) {
		return fmt.Errorf("%w: %s: inode %d beyond the last (%d)", ErrInvalid, op, ino, uint64(a.sb.Ncg)*uint64(a.sb.Ipg)-1)
	}
	return nil
}

// AllocBlock is ffs_alloc: it allocates size bytes (a multiple of fs_fsize,
// at most fs_bsize) for logical block lbn of file ip, as near pref as it
// can (pref 0: in the inode's group; see BlkPref). Unless root, the minfree
// reserve is off limits. It returns the first fragment.
func (a *Allocator) AllocBlock(ip InodeHint, lbn ondisk.Lbn, pref ondisk.Frag, size int, root bool) (ondisk.Frag, error) {
	if err := a.checkSize("alloc block", size); err != nil {
		return 0, err
	}
	if err := a.checkIno("alloc block", ip.Ino); err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		a.mu.Lock()
		bno, err := a.allocBlockLocked(ip, pref, size, root)
		a.mu.Unlock()
		if errors.Is(err, ErrNoSpace) && attempt == 0 && a.opts.Pending != nil {
			a.opts.Pending.Help(Blocks)
			continue
		}
		if errors.Is(err, ErrNoSpace) {
			a.log.Info("filesystem full", "op", "alloc block", "ino", ip.Ino, "lbn", lbn, "size", size)
		}
		return bno, a.report(err)
	}
}

// Preconditions: a.mu held.
func (a *Allocator) allocBlockLocked(ip InodeHint, pref ondisk.Frag, size int, root bool) (ondisk.Frag, error) {
	sb := a.sb
	if size == int(sb.Bsize) && sb.Cstotal.Nbfree == 0 {
		return 0, fmt.Errorf("%w: no free block for inode %d", ErrNoSpace, ip.Ino)
	}
	if !root && sb.Freespace(int64(sb.Minfree))-sb.Numfrags(int64(size)) < 0 {
		return 0, fmt.Errorf("%w: only the reserve is left (inode %d)", ErrNoSpace, ip.Ino)
	}
	if pref < 0 || int64(pref) >= sb.Size {
		pref = 0
	}
	c := sb.InoToCg(ip.Ino)
	if pref != 0 {
		c = sb.Dtog(pref)
	}
	v, ok, err := a.hashalloc(c, int64(pref), &request{kind: reqBlock, size: size, rsize: size})
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: %d bytes for inode %d", ErrNoSpace, size, ip.Ino)
	}
	return ondisk.Frag(v), nil
}

// ReallocFrag is ffs_realloccg: the osize bytes at bprev, the last block
// lbprev of file ip, must grow to nsize bytes. When the fragments after
// them in the same block are free they are taken (moved false, the address
// stays bprev). Otherwise nsize bytes are allocated near pref — a whole
// block whose tail is freed again when fs_optim is FS_OPTTIME — and, unless
// Options.DeferFragFree, the old fragments are freed; moved is true and
// the caller copies the data.
func (a *Allocator) ReallocFrag(ip InodeHint, lbprev ondisk.Lbn, bprev, pref ondisk.Frag, osize, nsize int, root bool) (bno ondisk.Frag, moved bool, err error) {
	if err := a.checkSize("realloc fragment", osize); err != nil {
		return 0, false, err
	}
	if err := a.checkSize("realloc fragment", nsize); err != nil {
		return 0, false, err
	}
	if nsize <= osize {
		return 0, false, fmt.Errorf("%w: realloc fragment: new size %d not above old size %d", ErrInvalid, nsize, osize)
	}
	if bprev == 0 {
		return 0, false, fmt.Errorf("%w: realloc fragment: no old fragment (inode %d, lbn %d)", ErrInvalid, ip.Ino, lbprev)
	}
	if err := a.checkIno("realloc fragment", ip.Ino); err != nil {
		return 0, false, err
	}
	for attempt := 0; ; attempt++ {
		a.mu.Lock()
		bno, moved, err = a.reallocLocked(ip, bprev, pref, osize, nsize, root)
		a.mu.Unlock()
		if errors.Is(err, ErrNoSpace) && attempt == 0 && a.opts.Pending != nil {
			a.opts.Pending.Help(Blocks)
			continue
		}
		if errors.Is(err, ErrNoSpace) {
			a.log.Info("filesystem full", "op", "realloc fragment", "ino", ip.Ino, "lbn", lbprev, "size", nsize)
		}
		return bno, moved, a.report(err)
	}
}

// Preconditions: a.mu held.
func (a *Allocator) reallocLocked(ip InodeHint, bprev, bpref ondisk.Frag, osize, nsize int, root bool) (ondisk.Frag, bool, error) {
	sb := a.sb
	if !root && sb.Freespace(int64(sb.Minfree))-sb.Numfrags(int64(nsize-osize)) < 0 {
		return 0, false, fmt.Errorf("%w: only the reserve is left (inode %d)", ErrNoSpace, ip.Ino)
	}
	// The old fragments must be allocated, or freeing them after a move
	// would fail half-way.
	c, cgbno, err := a.checkExtent(bprev, osize, ip.Ino)
	if err != nil {
		return 0, false, err
	}
	cg, err := a.getCg(c)
	if err != nil {
		return 0, false, err
	}
	for i := int64(0); i < sb.Numfrags(int64(osize)); i++ {
		if cg.FragFree(cgbno + i) {
			return 0, false, corruptf(c, "inode %d: fragment %d to be extended is free", ip.Ino, int64(bprev)+i)
		}
	}
	ok, err := a.fragextend(c, bprev, osize, nsize)
	if err != nil {
		return 0, false, err
	}
	if ok {
		return bprev, false, nil
	}
	if bpref < 0 || int64(bpref) >= sb.Size {
		bpref = 0
	}
	var want int
	switch sb.Optim {
	case ondisk.FSOptSpace:
		// Exact-sized fragments save space but cost a copy each time the
		// file grows; leave SPACE once fragmentation falls under half
		// the reserve.
		want = nsize
		if sb.Minfree <= 5 || sb.Cstotal.Nffree > sb.Dsize*int64(sb.Minfree)/(2*100) {
			break
		}
		a.log.Info("optimization changed from SPACE to TIME", "op", "realloc fragment")
		sb.Optim = ondisk.FSOptTime
		a.fmod = true
	default:
		// FS_OPTTIME (and anything unknown, which FreeBSD would panic on):
		// take a whole block and free its tail, so later growth extends in
		// place; go to SPACE when fragmentation nears the reserve.
		want = int(sb.Bsize)
		if sb.Optim == ondisk.FSOptTime && sb.Cstotal.Nffree < sb.Dsize*int64(sb.Minfree-2)/100 {
			break
		}
		a.log.Info("optimization changed from TIME to SPACE", "op", "realloc fragment")
		sb.Optim = ondisk.FSOptSpace
		a.fmod = true
	}
	v, ok, err := a.hashalloc(c, int64(bpref), &request{kind: reqBlock, size: want, rsize: nsize})
	if err != nil {
		return 0, false, err
	}
	if !ok {
		return 0, false, fmt.Errorf("%w: %d bytes for inode %d", ErrNoSpace, nsize, ip.Ino)
	}
	if !a.opts.DeferFragFree {
		if err := a.blkfreeLocked(bprev, osize, ip.Ino); err != nil {
			return 0, false, err
		}
	}
	return ondisk.Frag(v), true, nil
}

// fragextend is ffs_fragextend: take the fragments after the osize bytes
// at bprev up to nsize bytes, if they are free and in the same block.
// Preconditions: a.mu held.
func (a *Allocator) fragextend(c ondisk.Cg, bprev ondisk.Frag, osize, nsize int) (bool, error) {
	sb := a.sb
	ofrags := sb.Numfrags(int64(osize))
	frags := sb.Numfrags(int64(nsize))
	if int64(a.csums[c].Nffree) < frags-ofrags {
		return false, nil
	}
	bbase := int64(sb.Fragnum(bprev))
	if bbase+frags > int64(sb.Frag) {
		return false, nil // would cross a block boundary
	}
	cg, err := a.getCg(c)
	if err != nil {
		return false, err
	}
	bno := sb.Dtogd(bprev)
	if bno+frags > int64(cg.Ndblk) {
		return false, nil
	}
	for i := ofrags; i < frags; i++ {
		if !cg.FragFree(bno + i) {
			return false, nil
		}
	}
	// The free run starting after the old fragments shrinks from its full
	// length to what is left beyond the new end.
	i := frags
	for ; i < int64(sb.Frag)-bbase; i++ {
		if !cg.FragFree(bno + i) {
			break
		}
	}
	if cg.Frsum[i-ofrags] == 0 {
		return false, corruptf(c, "cg_frsum[%d] is 0 but fragments %d-%d are a free run", i-ofrags, int64(bprev)+ofrags, int64(bprev)+i-1)
	}
	cg.Frsum[i-ofrags]--
	if i != frags {
		cg.Frsum[i-frags]++
	}
	for j := ofrags; j < frags; j++ {
		cg.SetFragFree(bno+j, false)
	}
	a.addNffree(c, cg, -int32(frags-ofrags))
	a.touch(c, cg)
	return true, nil
}

// alloccg is ffs_alloccg: a block, or fragments from the smallest free run
// that holds them, or fragments cut from a free block, in group c.
// Preconditions: a.mu held.
func (a *Allocator) alloccg(c ondisk.Cg, bpref ondisk.Frag, size, rsize int) (ondisk.Frag, bool, error) {
	sb := a.sb
	bsize := int(sb.Bsize)
	if a.csums[c].Nbfree == 0 && size == bsize {
		return 0, false, nil
	}
	cg, err := a.getCg(c)
	if err != nil {
		return 0, false, err
	}
	if cg.Cs.Nbfree == 0 && size == bsize {
		return 0, false, nil
	}
	if size == bsize {
		b, err := a.alloccgblk(c, cg, bpref, rsize)
		return b, err == nil, err
	}
	frag := int64(sb.Frag)
	frags := sb.Numfrags(int64(size))
	allocsiz := frags
	for ; allocsiz < frag; allocsiz++ {
		if cg.Frsum[allocsiz] != 0 {
			break
		}
	}
	if allocsiz == frag {
		// No run of free fragments is long enough: split a block.
		if cg.Cs.Nbfree == 0 {
			return 0, false, nil
		}
		b, err := a.alloccgblk(c, cg, bpref, rsize)
		return b, err == nil, err
	}
	bno, err := a.mapsearch(c, cg, bpref, int(allocsiz))
	if err != nil {
		return 0, false, err
	}
	for i := int64(0); i < frags; i++ {
		cg.SetFragFree(bno+i, false)
	}
	a.addNffree(c, cg, -int32(frags))
	cg.Frsum[allocsiz]--
	if frags != allocsiz {
		cg.Frsum[allocsiz-frags]++
	}
	a.touch(c, cg)
	return sb.Cgbase(c) + ondisk.Frag(bno), true, nil
}

// alloccgblk is ffs_alloccgblk: a whole block of group c — the preferred
// one if free, else the next free one after it — of which rsize bytes are
// kept and the rest freed as fragments. cg_rotor follows allocations from
// the data zone. Preconditions: a.mu held; the group has a free block.
func (a *Allocator) alloccgblk(c ondisk.Cg, cg *ondisk.CylGroup, bpref ondisk.Frag, rsize int) (ondisk.Frag, error) {
	sb := a.sb
	frag := int64(sb.Frag)
	if bpref == 0 {
		bpref = sb.Cgbase(c) + ondisk.Frag(cg.Rotor) + ondisk.Frag(frag)
	} else if pc := sb.Dtog(bpref); pc != c {
		// Keep the preference's zone (metadata or data) in this group.
		if bpref < sb.Cgdata(pc) {
			bpref = cgmeta(sb, c)
		} else {
			bpref = sb.Cgdata(c)
		}
	}
	bno := sb.Dtogd(sb.Blknum(bpref))
	if bno+frag > int64(cg.Ndblk) || !cg.IsBlock(bno/frag) {
		var err error
		if bno, err = a.mapsearch(c, cg, bpref, int(frag)); err != nil {
			return 0, err
		}
		if bno >= int64(sb.Cgdata(c)-sb.Cgbase(c)) {
			cg.Rotor = uint32(bno)
		}
	}
	h := bno / frag
	cg.SetBlock(h, false)
	a.clusterAcct(c, cg, h, -1)
	a.addNbfree(c, cg, -1)
	if n := sb.Numfrags(int64(rsize)); n != frag {
		for i := n; i < frag; i++ {
			cg.SetFragFree(bno+i, true)
		}
		a.addNffree(c, cg, int32(frag-n))
		cg.Frsum[frag-n]++
	}
	a.touch(c, cg)
	return sb.Cgbase(c) + ondisk.Frag(bno), nil
}

// runTable[s][b] has bit n-1 set when the free-map byte b, cut into blocks
// of 1<<s fragments, holds a maximal run of exactly n free fragments within
// one block (a wholly free block is a run of 1<<s). It plays the part of
// FreeBSD's fragtbl.
var runTable = buildRunTable()

func buildRunTable() (t [4][256]uint8) {
	for s := range 4 {
		frag := 1 << s
		for b := range 256 {
			var v uint8
			for blk := 0; blk < 8; blk += frag {
				bits := (b >> blk) & (1<<frag - 1)
				run := 0
				for i := 0; i <= frag; i++ {
					if i < frag && bits&(1<<i) != 0 {
						run++
						continue
					}
					if run > 0 {
						v |= 1 << (run - 1)
					}
					run = 0
				}
			}
			t[s][b] = v
		}
	}
	return t
}

// exactRun returns where the first maximal run of exactly n set bits
// starts in the low frag bits of blk, or -1.
func exactRun(blk, frag, n int) int {
	for pos := 0; pos+n <= frag; pos++ {
		if pos > 0 && blk&(1<<(pos-1)) != 0 {
			continue
		}
		if pos+n < frag && blk&(1<<(pos+n)) != 0 {
			continue
		}
		want := (1<<n - 1) << pos
		if blk&want == want {
			return pos
		}
	}
	return -1
}

// scanWindow is how many map bytes scanMap passes over at once.
const scanWindow = 64

// scanMap is scanc over a free map: the first i in [from, to) for which
// tbl[m[i]]&want is set, or -1. A window of scanWindow copies of one byte
// value that does not match (wholly allocated or wholly free blocks, which
// is most of a group) is passed over at once, counted by bytes.Count in
// assembly: a byte-by-byte scan of the map from the preference to the end
// of the group and round again (what a fragment allocation does when the
// runs it wants lie behind the preference) was a tenth of the time of
// copying a tree of small files in, and most of it under the race
// detector, which checks each load of a loop.
func scanMap(m []byte, from, to int64, tbl *[256]uint8, want uint8) int64 {
	for i := from; i < to; {
		v := m[i]
		end := min(i+scanWindow, to)
		if end-i == scanWindow && tbl[v]&want == 0 && bytes.Count(m[i:end], []byte{v}) == scanWindow {
			i = end
			continue
		}
		for ; i < end; i++ {
			if tbl[m[i]]&want != 0 {
				return i
			}
		}
	}
	return -1
}

// mapsearch is ffs_mapsearch: the first free run of exactly allocsiz
// fragments (a whole block when allocsiz is fs_frag) at or after bpref (or
// cg_frotor), wrapping round to the start of the group. It sets cg_frotor
// and returns the fragment's index in the group. Not finding one means
// the summaries lied: ErrCorrupt. Preconditions: a.mu held.
func (a *Allocator) mapsearch(c ondisk.Cg, cg *ondisk.CylGroup, bpref ondisk.Frag, allocsiz int) (int64, error) {
	sb := a.sb
	nbytes := howmany(int64(sb.Fpg), 8)
	var start int64
	if bpref != 0 {
		start = sb.Dtogd(bpref) / 8
	} else {
		start = int64(cg.Frotor) / 8
	}
	if start < 0 || start >= nbytes {
		start = 0
	}
	m := cg.B[int64(cg.Freeoff) : int64(cg.Freeoff)+nbytes]
	tbl := &runTable[sb.Fragshift]
	want := uint8(1) << (allocsiz - 1)
	loc := scanMap(m, start, nbytes, tbl, want)
	if loc < 0 {
		loc = scanMap(m, 0, start+1, tbl, want)
	}
	if loc < 0 {
		return 0, corruptf(c, "no free run of %d fragments in the map though the summary promises one", allocsiz)
	}
	frag := int64(sb.Frag)
	base := loc * 8
	cg.Frotor = uint32(base)
	for b := base; b < base+8; b += frag {
		pos := exactRun(cg.BlockMap(b/frag), int(frag), allocsiz)
		if pos < 0 {
			continue
		}
		bno := b + int64(pos)
		if bno+int64(allocsiz) > int64(cg.Ndblk) {
			return 0, corruptf(c, "fragment %d marked free beyond the group's end (%d)", bno, cg.Ndblk)
		}
		return bno, nil
	}
	return 0, corruptf(c, "free run of %d fragments vanished from map byte %d", allocsiz, loc)
}

// AllocCluster is ffs_clusteralloc over ffs_hashalloc: n whole blocks in a
// row (1 <= n <= fs_contigsumsize) at or after pref in pref's group (or the
// inode's when pref is 0), or in another group found by rehashing. A group
// is searched only forward of the preference. It returns the first
// fragment of the run. FreeBSD uses this only in ffs_reallocblks; there is
// no retry through PendingFree, as there is none there.
func (a *Allocator) AllocCluster(ip InodeHint, pref ondisk.Frag, n int, root bool) (ondisk.Frag, error) {
	if n < 1 || n > int(a.sb.Contigsumsize) {
		return 0, fmt.Errorf("%w: alloc cluster: %d blocks (clusters go up to fs_contigsumsize, %d)", ErrInvalid, n, a.sb.Contigsumsize)
	}
	if err := a.checkIno("alloc cluster", ip.Ino); err != nil {
		return 0, err
	}
	a.mu.Lock()
	bno, err := a.allocClusterLocked(ip, pref, n, root)
	a.mu.Unlock()
	return bno, a.report(err)
}

// Preconditions: a.mu held.
func (a *Allocator) allocClusterLocked(ip InodeHint, pref ondisk.Frag, n int, root bool) (ondisk.Frag, error) {
	sb := a.sb
	if int64(n) > sb.Cstotal.Nbfree {
		return 0, fmt.Errorf("%w: %d free blocks, %d wanted in a row", ErrNoSpace, sb.Cstotal.Nbfree, n)
	}
	if !root && sb.Freespace(int64(sb.Minfree))-int64(sb.Blkstofrags(int64(n))) < 0 {
		return 0, fmt.Errorf("%w: only the reserve is left (inode %d)", ErrNoSpace, ip.Ino)
	}
	if pref < 0 || int64(pref) >= sb.Size {
		pref = 0
	}
	c := sb.InoToCg(ip.Ino)
	if pref != 0 {
		c = sb.Dtog(pref)
	}
	v, ok, err := a.hashalloc(c, int64(pref), &request{kind: reqCluster, size: n})
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: no run of %d free blocks", ErrNoSpace, n)
	}
	return ondisk.Frag(v), nil
}

// clusteralloc is ffs_clusteralloc for group c. Preconditions: a.mu held.
func (a *Allocator) clusteralloc(c ondisk.Cg, bpref ondisk.Frag, n int) (ondisk.Frag, bool, error) {
	sb := a.sb
	if a.maxcluster[c] < int32(n) {
		return 0, false, nil
	}
	cg, err := a.getCg(c)
	if err != nil {
		return 0, false, err
	}
	css := int(sb.Contigsumsize)
	i := n
	for ; i <= css; i++ {
		if cg.ClusterSum(i) > 0 {
			break
		}
	}
	if i > css {
		// Remember the largest cluster there is, so the next request
		// for this size skips the group without reading it.
		j := n - 1
		for ; j > 0; j-- {
			if cg.ClusterSum(j) > 0 {
				break
			}
		}
		a.maxcluster[c] = int32(j)
		return 0, false, nil
	}
	// Take the first run long enough at or after the preference; never
	// look behind it.
	if sb.Dtog(bpref) != c {
		bpref = sb.Cgdata(c)
	} else {
		bpref = sb.Blknum(bpref)
	}
	nblks := int64(cg.Nclusterblks)
	start := sb.Fragstoblks(int64(bpref - sb.Cgbase(c)))
	run, got := int64(0), start
	for ; got < nblks; got++ {
		if !cg.ClusterFree(got) {
			run = 0
			continue
		}
		if run++; run == int64(n) {
			break
		}
	}
	if got >= nblks {
		return 0, false, nil
	}
	first := got - run + 1
	for b := first; b <= got; b++ {
		if !cg.IsBlock(b) {
			return 0, false, corruptf(c, "block %d free in the cluster map but not in the free map", b)
		}
	}
	bno := sb.Cgbase(c) + sb.Blkstofrags(first)
	for k := range int64(n) {
		want := bno + sb.Blkstofrags(k)
		b, err := a.alloccgblk(c, cg, want, int(sb.Bsize))
		if err != nil {
			return 0, false, err
		}
		if b != want {
			return 0, false, corruptf(c, "cluster block %d went to %d", want, b)
		}
	}
	return bno, true, nil
}

// checkExtent checks that size bytes at bno are fragments of one block,
// inside the filesystem and outside its metadata, and returns the group
// and the fragment's index in it.
func (a *Allocator) checkExtent(bno ondisk.Frag, size int, ino ondisk.Ino) (ondisk.Cg, int64, error) {
	sb := a.sb
	n := sb.Numfrags(int64(size))
	c := sb.Dtog(bno)
	if bno <= 0 || int64(bno)+n > sb.Size {
		return c, 0, corruptf(c, "inode %d: block %d (%d fragments) outside the filesystem (%d fragments)", ino, bno, n, sb.Size)
	}
	if int64(sb.Fragnum(bno))+n > int64(sb.Frag) {
		return c, 0, corruptf(c, "inode %d: %d fragments at %d cross a block boundary", ino, n, bno)
	}
	cgbno := sb.Dtogd(bno)
	lo := int64(sb.Sblkno)
	if c == 0 {
		lo = 0
	}
	if cgbno < int64(sb.Dblkno) && cgbno+n > lo {
		return c, 0, corruptf(c, "inode %d: block %d is cylinder-group metadata", ino, bno)
	}
	csEnd := sb.Csaddr + ondisk.Frag(sb.Numfrags(sb.Fragroundup(int64(sb.Cssize))))
	if bno < csEnd && bno+ondisk.Frag(n) > sb.Csaddr {
		return c, 0, corruptf(c, "inode %d: block %d is in the summary area", ino, bno)
	}
	return c, cgbno, nil
}

// FreeBlock is ffs_blkfree: it returns size bytes at bno, held by inode
// ino, to the free map, reassembling a whole block when the last fragment
// of one comes back. Freeing what is free, or what is not data, is
// ErrCorrupt and changes nothing.
func (a *Allocator) FreeBlock(bno ondisk.Frag, size int, ino ondisk.Ino) error {
	if err := a.checkSize("free block", size); err != nil {
		return err
	}
	a.mu.Lock()
	err := a.blkfreeLocked(bno, size, ino)
	a.mu.Unlock()
	return a.report(err)
}

// blkfreeLocked is ffs_blkfree_cg. Preconditions: a.mu held.
func (a *Allocator) blkfreeLocked(bno ondisk.Frag, size int, ino ondisk.Ino) error {
	sb := a.sb
	c, cgbno, err := a.checkExtent(bno, size, ino)
	if err != nil {
		return err
	}
	cg, err := a.getCg(c)
	if err != nil {
		return err
	}
	frag := int64(sb.Frag)
	if size == int(sb.Bsize) {
		h := cgbno / frag
		if !cg.IsFreeBlockClear(h) {
			return corruptf(c, "inode %d: freeing free block %d", ino, bno)
		}
		cg.SetBlock(h, true)
		a.clusterAcct(c, cg, h, 1)
		a.addNbfree(c, cg, 1)
		a.touch(c, cg)
		return nil
	}
	frags := sb.Numfrags(int64(size))
	for i := range frags {
		if cg.FragFree(cgbno + i) {
			return corruptf(c, "inode %d: freeing free fragment %d", ino, int64(bno)+i)
		}
	}
	bbase := cgbno - int64(sb.Fragnum(bno))
	h := bbase / frag
	cg.FragAcct(cg.BlockMap(h), -1)
	for i := range frags {
		cg.SetFragFree(cgbno+i, true)
	}
	a.addNffree(c, cg, int32(frags))
	cg.FragAcct(cg.BlockMap(h), 1)
	if cg.IsBlock(h) {
		a.addNffree(c, cg, -int32(frag))
		a.clusterAcct(c, cg, h, 1)
		a.addNbfree(c, cg, 1)
	}
	a.touch(c, cg)
	return nil
}
