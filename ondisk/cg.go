package ondisk

import "fmt"

// Cylinder group constants (fs.h).
const (
	CgMagic = 0x090255 // CG_MAGIC
	// CgHeaderSize is where cg_space begins: the fixed header's bytes. UFS2's
	// maps start here.
	CgHeaderSize = 168
	// cgStructSize is sizeof(struct cg) as CGSIZE counts it (the header plus
	// the one-byte cg_space, padded to 8).
	cgStructSize = 176
	cgCkhashOff  = 132
)

// CgHeader is the fixed part of struct cg (168 bytes), in disk order. The
// maps follow it in the same block, at the offsets the header records; Cg
// methods reach them.
type CgHeader struct {
	Firstfield    int32           // 0: cg_firstfield
	Magic         int32           // 4: cg_magic
	OldTime       int32           // 8: cg_old_time
	Cgx           uint32          // 12: cg_cgx
	OldNcyl       int16           // 16: cg_old_ncyl
	OldNiblk      int16           // 18: cg_old_niblk
	Ndblk         uint32          // 20: cg_ndblk
	Cs            Csum            // 24: cg_cs
	Rotor         uint32          // 40: cg_rotor
	Frotor        uint32          // 44: cg_frotor
	Irotor        uint32          // 48: cg_irotor
	Frsum         [MaxFrag]uint32 // 52: cg_frsum
	OldBtotoff    int32           // 84: cg_old_btotoff
	OldBoff       int32           // 88: cg_old_boff
	Iusedoff      uint32          // 92: cg_iusedoff
	Freeoff       uint32          // 96: cg_freeoff
	Nextfreeoff   uint32          // 100: cg_nextfreeoff
	Clustersumoff uint32          // 104: cg_clustersumoff
	Clusteroff    uint32          // 108: cg_clusteroff
	Nclusterblks  uint32          // 112: cg_nclusterblks
	Niblk         uint32          // 116: cg_niblk
	Initediblk    uint32          // 120: cg_initediblk
	Unrefs        uint32          // 124: cg_unrefs
	Sparecon32    int32           // 128: cg_sparecon32[1]
	Ckhash        uint32          // 132: cg_ckhash
	Time          int64           // 136: cg_time
	Sparecon64    [3]int64        // 144: cg_sparecon64
}

// DecodeCgHeader decodes the fixed header of struct cg from b.
func DecodeCgHeader(b []byte) (*CgHeader, error) {
	if len(b) < CgHeaderSize {
		return nil, ErrShort
	}
	h := new(CgHeader)
	h.decode(&reader{b: b})
	return h, nil
}

func (h *CgHeader) decode(r *reader) {
	h.Firstfield, h.Magic, h.OldTime = r.i32(), r.i32(), r.i32()
	h.Cgx = r.u32()
	h.OldNcyl, h.OldNiblk = r.i16(), r.i16()
	h.Ndblk = r.u32()
	h.Cs.decode(r)
	h.Rotor, h.Frotor, h.Irotor = r.u32(), r.u32(), r.u32()
	for i := range h.Frsum {
		h.Frsum[i] = r.u32()
	}
	h.OldBtotoff, h.OldBoff = r.i32(), r.i32()
	for _, p := range [...]*uint32{&h.Iusedoff, &h.Freeoff, &h.Nextfreeoff,
		&h.Clustersumoff, &h.Clusteroff, &h.Nclusterblks, &h.Niblk, &h.Initediblk, &h.Unrefs} {
		*p = r.u32()
	}
	h.Sparecon32 = r.i32()
	h.Ckhash = r.u32()
	h.Time = r.i64()
	for i := range h.Sparecon64 {
		h.Sparecon64[i] = r.i64()
	}
}

// Encode writes the header into the first CgHeaderSize bytes of b.
func (h *CgHeader) Encode(b []byte) error {
	if len(b) < CgHeaderSize {
		return ErrShort
	}
	w := &writer{b: b}
	w.i32(h.Firstfield)
	w.i32(h.Magic)
	w.i32(h.OldTime)
	w.u32(h.Cgx)
	w.i16(h.OldNcyl)
	w.i16(h.OldNiblk)
	w.u32(h.Ndblk)
	h.Cs.encode(w)
	w.u32(h.Rotor)
	w.u32(h.Frotor)
	w.u32(h.Irotor)
	for _, v := range h.Frsum {
		w.u32(v)
	}
	w.i32(h.OldBtotoff)
	w.i32(h.OldBoff)
	for _, v := range [...]uint32{h.Iusedoff, h.Freeoff, h.Nextfreeoff,
		h.Clustersumoff, h.Clusteroff, h.Nclusterblks, h.Niblk, h.Initediblk, h.Unrefs} {
		w.u32(v)
	}
	w.i32(h.Sparecon32)
	w.u32(h.Ckhash)
	w.i64(h.Time)
	for _, v := range h.Sparecon64 {
		w.i64(v)
	}
	return nil
}

// CylGroup is a cylinder group block held in memory: the decoded header plus the
// raw block (fs_cgsize bytes) whose maps the methods read and change in
// place. Call Sync to encode the header back into B before writing B.
type CylGroup struct {
	CgHeader
	B  []byte
	sb *Superblock
}

// DecodeCg decodes the cylinder group block b (at least fs_cgsize bytes) of
// group cgx and validates its header against sb, so the map accessors cannot
// index outside b. b is kept, not copied.
func DecodeCg(sb *Superblock, cgx Cg, b []byte) (*CylGroup, error) {
	if int64(len(b)) < int64(sb.Cgsize) {
		return nil, ErrShort
	}
	h, err := DecodeCgHeader(b)
	if err != nil {
		return nil, err
	}
	cg := &CylGroup{CgHeader: *h, B: b[:sb.Cgsize], sb: sb}
	if err := cg.Validate(cgx); err != nil {
		return nil, err
	}
	return cg, nil
}

// NewCg returns an empty cylinder group block for group cgx, laid out as
// newfs lays it out: header filled, every map zero (all inodes free, no
// fragment free). The caller frees the data area.
func NewCg(sb *Superblock, cgx Cg) *CylGroup {
	l := sb.CgLayout()
	cg := &CylGroup{B: make([]byte, sb.Cgsize), sb: sb}
	h := &cg.CgHeader
	h.Magic = CgMagic
	h.Cgx = uint32(cgx)
	h.Niblk = sb.Ipg
	h.Ndblk = uint32(sb.CgFrags(cgx))
	if sb.Contigsumsize > 0 {
		h.Nclusterblks = h.Ndblk / uint32(sb.Frag)
	}
	h.Iusedoff, h.Freeoff, h.Nextfreeoff = l.Iusedoff, l.Freeoff, l.Nextfreeoff
	h.Clustersumoff, h.Clusteroff = l.Clustersumoff, l.Clusteroff
	return cg
}

// CgFrags is the number of fragments in group c: fs_fpg, or what is left
// for the last group.
func (sb *Superblock) CgFrags(c Cg) int64 {
	n := sb.Size - int64(sb.Cgbase(c))
	if n > int64(sb.Fpg) {
		n = int64(sb.Fpg)
	}
	if n < 0 {
		n = 0
	}
	return n
}

// Validate checks the header of group cgx against the superblock.
func (cg *CylGroup) Validate(cgx Cg) error {
	sb := cg.sb
	h := &cg.CgHeader
	size := uint32(sb.Cgsize)
	fail := func(field string, v int64, want string) error {
		return corruptf("cylinder group %d: %s = %d, want %s", cgx, field, v, want)
	}
	switch {
	case h.Magic != CgMagic:
		return fmt.Errorf("%w: cylinder group %d: cg_magic 0x%x", ErrBadMagic, cgx, uint32(h.Magic))
	case h.Cgx != uint32(cgx):
		return fail("cg_cgx", int64(h.Cgx), fmt.Sprint(cgx))
	case int64(h.Ndblk) != sb.CgFrags(cgx):
		return fail("cg_ndblk", int64(h.Ndblk), fmt.Sprint(sb.CgFrags(cgx)))
	case h.Niblk != sb.Ipg:
		return fail("cg_niblk", int64(h.Niblk), fmt.Sprint(sb.Ipg))
	case h.Initediblk > sb.Ipg:
		return fail("cg_initediblk", int64(h.Initediblk), fmt.Sprintf("at most fs_ipg (%d)", sb.Ipg))
	case h.Iusedoff < CgHeaderSize || uint64(h.Iusedoff)+uint64(howmany(int64(sb.Ipg), 8)) > uint64(size):
		return fail("cg_iusedoff", int64(h.Iusedoff), "a map inside the block")
	case h.Freeoff < CgHeaderSize || uint64(h.Freeoff)+uint64(howmany(int64(sb.Fpg), 8)) > uint64(size):
		return fail("cg_freeoff", int64(h.Freeoff), "a map inside the block")
	case h.Nextfreeoff > size:
		return fail("cg_nextfreeoff", int64(h.Nextfreeoff), "inside the block")
	}
	if sb.Contigsumsize > 0 {
		switch {
		case h.Clustersumoff < CgHeaderSize-4 || uint64(h.Clustersumoff)+uint64(sb.Contigsumsize+1)*4 > uint64(size) || h.Clustersumoff%4 != 0:
			return fail("cg_clustersumoff", int64(h.Clustersumoff), "an aligned array inside the block")
		case h.Nclusterblks != h.Ndblk/uint32(sb.Frag):
			return fail("cg_nclusterblks", int64(h.Nclusterblks), fmt.Sprint(h.Ndblk/uint32(sb.Frag)))
		case h.Clusteroff < CgHeaderSize || uint64(h.Clusteroff)+uint64(howmany(sb.Fragstoblks(int64(sb.Fpg)), 8)) > uint64(size):
			return fail("cg_clusteroff", int64(h.Clusteroff), "a map inside the block")
		}
	}
	for i, v := range h.Frsum {
		if v > uint32(sb.Fpg) {
			return fail(fmt.Sprintf("cg_frsum[%d]", i), int64(v), "at most fs_fpg")
		}
	}
	return nil
}

// Sync encodes the header into B and, when CK_CYLGRP is on, recomputes
// cg_ckhash over the whole block.
func (cg *CylGroup) Sync() {
	cg.Ckhash = 0
	cg.CgHeader.Encode(cg.B)
	if cg.sb.Metackhash&CKCylGrp != 0 {
		cg.Ckhash = crc32cSkip(cg.B, cgCkhashOff)
		le.PutUint32(cg.B[cgCkhashOff:], cg.Ckhash)
	}
}

// VerifyHash checks cg_ckhash against the block's bytes when CK_CYLGRP is on.
func (cg *CylGroup) VerifyHash() error {
	if cg.sb.Metackhash&CKCylGrp == 0 {
		return nil
	}
	if got := crc32cSkip(cg.B, cgCkhashOff); got != cg.Ckhash {
		return fmt.Errorf("%w: cylinder group %d: recorded 0x%08x, computed 0x%08x", ErrCheckHash, cg.Cgx, cg.Ckhash, got)
	}
	return nil
}

// InodeUsed reports whether inode i (relative to the group) is allocated.
func (cg *CylGroup) InodeUsed(i int64) bool { return isset(cg.B[cg.Iusedoff:], i) }

// SetInodeUsed marks inode i (relative to the group) allocated or free.
func (cg *CylGroup) SetInodeUsed(i int64, used bool) { setbit(cg.B[cg.Iusedoff:], i, used) }

// FragFree reports whether fragment f (relative to the group) is free.
func (cg *CylGroup) FragFree(f int64) bool { return isset(cg.B[cg.Freeoff:], f) }

// SetFragFree marks fragment f (relative to the group) free or in use.
func (cg *CylGroup) SetFragFree(f int64, free bool) { setbit(cg.B[cg.Freeoff:], f, free) }

// IsBlock is ffs_isblock: whether every fragment of block h (a block index
// within the group) is free.
func (cg *CylGroup) IsBlock(h int64) bool {
	frag := int64(cg.sb.Frag)
	m := cg.B[cg.Freeoff:]
	for i := h * frag; i < (h+1)*frag; i++ {
		if !isset(m, i) {
			return false
		}
	}
	return true
}

// IsFreeBlockClear is ffs_isfreeblock: whether no fragment of block h is free.
func (cg *CylGroup) IsFreeBlockClear(h int64) bool {
	frag := int64(cg.sb.Frag)
	m := cg.B[cg.Freeoff:]
	for i := h * frag; i < (h+1)*frag; i++ {
		if isset(m, i) {
			return false
		}
	}
	return true
}

// SetBlock is ffs_setblock (free=true) and ffs_clrblock (free=false) on
// block h of the group.
func (cg *CylGroup) SetBlock(h int64, free bool) {
	frag := int64(cg.sb.Frag)
	m := cg.B[cg.Freeoff:]
	for i := h * frag; i < (h+1)*frag; i++ {
		setbit(m, i, free)
	}
}

// BlockMap returns the free bits of block h as a number with bit i set when
// fragment i of the block is free (blkmap in fs.h, for one block).
func (cg *CylGroup) BlockMap(h int64) int {
	frag := int64(cg.sb.Frag)
	m := cg.B[cg.Freeoff:]
	v := 0
	for i := int64(0); i < frag; i++ {
		if isset(m, h*frag+i) {
			v |= 1 << i
		}
	}
	return v
}

// FragAcct is ffs_fragacct: adjusts cg_frsum by cnt for every run of free
// fragments shorter than a block in fragmap (a BlockMap value).
func (cg *CylGroup) FragAcct(fragmap int, cnt int32) {
	FragRuns(int(cg.sb.Frag), fragmap, func(size int) {
		cg.Frsum[size] = uint32(int32(cg.Frsum[size]) + cnt)
	})
}

// FragRuns calls fn with the length of every maximal run of set bits in the
// low frag bits of fragmap that is shorter than frag (a whole free block is
// not a fragment run).
func FragRuns(frag, fragmap int, fn func(size int)) {
	run := 0
	for i := 0; i <= frag; i++ {
		if i < frag && fragmap&(1<<i) != 0 {
			run++
			continue
		}
		if run > 0 && run < frag {
			fn(run)
		}
		run = 0
	}
}

// ClusterFree reports whether block h is marked free in the cluster map.
func (cg *CylGroup) ClusterFree(h int64) bool { return isset(cg.B[cg.Clusteroff:], h) }

// SetClusterFree sets or clears block h's bit in the cluster map alone,
// leaving the summary to the caller (newfs builds the summary in one pass).
func (cg *CylGroup) SetClusterFree(h int64, free bool) { setbit(cg.B[cg.Clusteroff:], h, free) }

// ClusterSum returns entry i (1..fs_contigsumsize) of cg_clustersum.
func (cg *CylGroup) ClusterSum(i int) int32 {
	return int32(le.Uint32(cg.B[int(cg.Clustersumoff)+4*i:]))
}

// SetClusterSum sets entry i of cg_clustersum.
func (cg *CylGroup) SetClusterSum(i int, v int32) {
	le.PutUint32(cg.B[int(cg.Clustersumoff)+4*i:], uint32(v))
}

// ClusterAcct is ffs_clusteracct: marks block h free (cnt=1) or allocated
// (cnt=-1) in the cluster map and adjusts the cluster summary for the runs
// it joins or splits. It does nothing when clustering is off.
func (cg *CylGroup) ClusterAcct(h int64, cnt int32) {
	css := int64(cg.sb.Contigsumsize)
	if css <= 0 {
		return
	}
	m := cg.B[cg.Clusteroff:]
	setbit(m, h, cnt > 0)
	n := int64(cg.Nclusterblks)
	forw := int64(0)
	for i := h + 1; i < n && i < h+1+css && isset(m, i); i++ {
		forw++
	}
	back := int64(0)
	for i := h - 1; i >= 0 && i > h-1-css && isset(m, i); i-- {
		back++
	}
	total := back + forw + 1
	if total > css {
		total = css
	}
	cg.SetClusterSum(int(total), cg.ClusterSum(int(total))+cnt)
	if back > 0 {
		cg.SetClusterSum(int(back), cg.ClusterSum(int(back))-cnt)
	}
	if forw > 0 {
		cg.SetClusterSum(int(forw), cg.ClusterSum(int(forw))-cnt)
	}
}

// MaxCluster is the largest free cluster size the summary records (the
// in-core fs_maxcluster of the group).
func (cg *CylGroup) MaxCluster() int {
	for i := int(cg.sb.Contigsumsize); i > 0; i-- {
		if cg.ClusterSum(i) > 0 {
			return i
		}
	}
	return 0
}

func isset(m []byte, i int64) bool { return m[i>>3]&(1<<(i&7)) != 0 }

func setbit(m []byte, i int64, on bool) {
	if on {
		m[i>>3] |= 1 << (i & 7)
	} else {
		m[i>>3] &^= 1 << (i & 7)
	}
}
