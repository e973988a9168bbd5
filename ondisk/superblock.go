package ondisk

import (
	"bytes"
	"fmt"
	"io"
)

// Superblock locations, sizes and magic numbers (fs.h).
const (
	SblockUFS2     = 65536  // SBLOCK_UFS2: where newfs puts a UFS2 superblock
	SblockUFS1     = 8192   // SBLOCK_UFS1: UFS1's place; makefs also puts UFS2 here
	SblockFloppy   = 0      // SBLOCK_FLOPPY
	SblockPiggy    = 262144 // SBLOCK_PIGGY
	SblockSize     = 8192   // SBLOCKSIZE: bytes read at each location
	SuperblockSize = 1376   // sizeof(struct fs)

	FSUFS1Magic   = 0x011954   // FS_UFS1_MAGIC
	FSUFS2Magic   = 0x19540119 // FS_UFS2_MAGIC
	FSUFS2EAMagic = 0x19012038 // NetBSD's FS_UFS2EA_MAGIC: UFS2 with extended attributes
	FSBadMagic    = 0x19960408 // FS_BAD_MAGIC: newfs did not finish

	MinBSize       = 4096  // MINBSIZE
	MaxBSize       = 65536 // MAXBSIZE
	MaxFrag        = 8     // MAXFRAG
	DevBSize       = 512   // DEV_BSIZE
	MaxMntLen      = 468   // MAXMNTLEN
	MaxVolLen      = 32    // MAXVOLLEN
	FSMaxContig    = 16    // FS_MAXCONTIG
	MinFree        = 8     // MINFREE
	AvgFileSize    = 16384 // AVFILESIZ
	AvgFilesPerDir = 64    // AFPDIR
	FSMaxSnap      = 20    // FSMAXSNAP
	MinCylGrps     = 4     // MINCYLGRPS

	FS44InodeFmt = 2 // FS_44INODEFMT

	// Block pointer values with a special meaning in snapshots.
	BlkNoCopy Frag = 1 // BLK_NOCOPY: unallocated when the snapshot was taken
	BlkSnap   Frag = 2 // BLK_SNAP: held by another snapshot
)

// SuperblockSearch is SBLOCKSEARCH: the byte offsets tried, in order.
var SuperblockSearch = [...]int64{SblockUFS2, SblockUFS1, SblockFloppy, SblockPiggy}

// fs_optim values.
const (
	FSOptTime  = 0 // FS_OPTTIME
	FSOptSpace = 1 // FS_OPTSPACE
)

// fs_flags bits.
const (
	FSUnclean      = 0x00000001 // FS_UNCLEAN
	FSDoSoftdep    = 0x00000002 // FS_DOSOFTDEP
	FSNeedsFsck    = 0x00000004 // FS_NEEDSFSCK
	FSSuj          = 0x00000008 // FS_SUJ
	FSAcls         = 0x00000010 // FS_ACLS
	FSMultilabel   = 0x00000020 // FS_MULTILABEL
	FSGjournal     = 0x00000040 // FS_GJOURNAL
	FSFlagsUpdated = 0x00000080 // FS_FLAGS_UPDATED
	FSNfs4Acls     = 0x00000100 // FS_NFS4ACLS
	FSMetackhash   = 0x00000200 // FS_METACKHASH
	FSTrim         = 0x00000400 // FS_TRIM
	FSSupported    = 0x00FFFFFF // FS_SUPPORTED
	FSIndexDirs    = 0x01000000 // FS_INDEXDIRS (never set by FreeBSD; cleared at mount)
	FSVarBlkSize   = 0x02000000 // FS_VARBLKSIZE (likewise)
)

// fs_metackhash bits.
const (
	CKSuperblock = 0x0001 // CK_SUPERBLOCK
	CKCylGrp     = 0x0002 // CK_CYLGRP
	CKInode      = 0x0004 // CK_INODE
	CKIndir      = 0x0008 // CK_INDIR
	CKDir        = 0x0010 // CK_DIR
	CKSupported  = 0x0007 // CK_SUPPORTED
)

// Csum is struct csum, the per-cylinder-group summary (16 bytes).
type Csum struct {
	Ndir   int32 // 0: cs_ndir
	Nbfree int32 // 4: cs_nbfree
	Nifree int32 // 8: cs_nifree
	Nffree int32 // 12: cs_nffree
}

// CsumSize is sizeof(struct csum).
const CsumSize = 16

func (c *Csum) decode(r *reader) {
	c.Ndir, c.Nbfree, c.Nifree, c.Nffree = r.i32(), r.i32(), r.i32(), r.i32()
}

func (c *Csum) encode(w *writer) {
	w.i32(c.Ndir)
	w.i32(c.Nbfree)
	w.i32(c.Nifree)
	w.i32(c.Nffree)
}

// DecodeCsum decodes one struct csum from b.
func DecodeCsum(b []byte) (Csum, error) {
	var c Csum
	if len(b) < CsumSize {
		return c, ErrShort
	}
	c.decode(&reader{b: b})
	return c, nil
}

// Encode writes c into b, which must hold CsumSize bytes.
func (c *Csum) Encode(b []byte) { c.encode(&writer{b: b}) }

// CsumTotal is struct csum_total, the filesystem-wide summary (64 bytes).
type CsumTotal struct {
	Ndir        int64    // 0: cs_ndir
	Nbfree      int64    // 8: cs_nbfree
	Nifree      int64    // 16: cs_nifree
	Nffree      int64    // 24: cs_nffree
	Numclusters int64    // 32: cs_numclusters
	Spare       [3]int64 // 40: cs_spare
}

func (c *CsumTotal) decode(r *reader) {
	c.Ndir, c.Nbfree, c.Nifree, c.Nffree, c.Numclusters = r.i64(), r.i64(), r.i64(), r.i64(), r.i64()
	for i := range c.Spare {
		c.Spare[i] = r.i64()
	}
}

func (c *CsumTotal) encode(w *writer) {
	for _, v := range [...]int64{c.Ndir, c.Nbfree, c.Nifree, c.Nffree, c.Numclusters} {
		w.i64(v)
	}
	for _, v := range c.Spare {
		w.i64(v)
	}
}

// Superblock is struct fs (1376 bytes), in disk order. The in-core pointer
// area (fs_ocsp and fs_si) is kept as raw bytes in Ocsp so that decoding and
// encoding is lossless; FreeBSD writes it as zeros.
type Superblock struct {
	Firstfield      int32             // 0: fs_firstfield
	Unused1         int32             // 4: fs_unused_1
	Sblkno          int32             // 8: fs_sblkno
	Cblkno          int32             // 12: fs_cblkno
	Iblkno          int32             // 16: fs_iblkno
	Dblkno          int32             // 20: fs_dblkno
	OldCgoffset     int32             // 24: fs_old_cgoffset
	OldCgmask       int32             // 28: fs_old_cgmask
	OldTime         int32             // 32: fs_old_time
	OldSize         int32             // 36: fs_old_size
	OldDsize        int32             // 40: fs_old_dsize
	Ncg             uint32            // 44: fs_ncg
	Bsize           int32             // 48: fs_bsize
	Fsize           int32             // 52: fs_fsize
	Frag            int32             // 56: fs_frag
	Minfree         int32             // 60: fs_minfree
	OldRotdelay     int32             // 64: fs_old_rotdelay
	OldRps          int32             // 68: fs_old_rps
	Bmask           int32             // 72: fs_bmask
	Fmask           int32             // 76: fs_fmask
	Bshift          int32             // 80: fs_bshift
	Fshift          int32             // 84: fs_fshift
	Maxcontig       int32             // 88: fs_maxcontig
	Maxbpg          int32             // 92: fs_maxbpg
	Fragshift       int32             // 96: fs_fragshift
	Fsbtodb         int32             // 100: fs_fsbtodb
	Sbsize          int32             // 104: fs_sbsize
	Spare1          [2]int32          // 108: fs_spare1
	Nindir          int32             // 116: fs_nindir
	Inopb           uint32            // 120: fs_inopb
	OldNspf         int32             // 124: fs_old_nspf
	Optim           int32             // 128: fs_optim
	OldNpsect       int32             // 132: fs_old_npsect
	OldInterleave   int32             // 136: fs_old_interleave
	OldTrackskew    int32             // 140: fs_old_trackskew
	ID              [2]int32          // 144: fs_id
	OldCsaddr       int32             // 152: fs_old_csaddr
	Cssize          int32             // 156: fs_cssize
	Cgsize          int32             // 160: fs_cgsize
	Spare2          int32             // 164: fs_spare2
	OldNsect        int32             // 168: fs_old_nsect
	OldSpc          int32             // 172: fs_old_spc
	OldNcyl         int32             // 176: fs_old_ncyl
	OldCpg          int32             // 180: fs_old_cpg
	Ipg             uint32            // 184: fs_ipg
	Fpg             int32             // 188: fs_fpg
	OldCstotal      Csum              // 192: fs_old_cstotal
	Fmod            int8              // 208: fs_fmod
	Clean           int8              // 209: fs_clean
	Ronly           int8              // 210: fs_ronly
	OldFlags        int8              // 211: fs_old_flags
	Fsmnt           [MaxMntLen]byte   // 212: fs_fsmnt
	Volname         [MaxVolLen]byte   // 680: fs_volname
	Swuid           uint64            // 712: fs_swuid
	Pad             int32             // 720: fs_pad
	Cgrotor         int32             // 724: fs_cgrotor
	Ocsp            [128]byte         // 728: fs_ocsp[NOCSPTRS] and fs_si (in-core pointers)
	OldCpc          int32             // 856: fs_old_cpc
	Maxbsize        int32             // 860: fs_maxbsize
	Unrefs          int64             // 864: fs_unrefs
	Providersize    int64             // 872: fs_providersize
	Metaspace       int64             // 880: fs_metaspace
	Sparecon64      [13]int64         // 888: fs_sparecon64
	Sblockactualloc int64             // 992: fs_sblockactualloc
	Sblockloc       int64             // 1000: fs_sblockloc
	Cstotal         CsumTotal         // 1008: fs_cstotal
	Time            int64             // 1072: fs_time
	Size            int64             // 1080: fs_size
	Dsize           int64             // 1088: fs_dsize
	Csaddr          Frag              // 1096: fs_csaddr
	Pendingblocks   int64             // 1104: fs_pendingblocks
	Pendinginodes   uint32            // 1112: fs_pendinginodes
	Snapinum        [FSMaxSnap]uint32 // 1116: fs_snapinum
	Avgfilesize     uint32            // 1196: fs_avgfilesize
	Avgfpdir        uint32            // 1200: fs_avgfpdir
	SaveCgsize      int32             // 1204: fs_save_cgsize
	Mtime           int64             // 1208: fs_mtime
	Sujfree         int32             // 1216: fs_sujfree
	Sparecon32      [21]int32         // 1220: fs_sparecon32
	Ckhash          uint32            // 1304: fs_ckhash
	Metackhash      uint32            // 1308: fs_metackhash
	Flags           int32             // 1312: fs_flags
	Contigsumsize   int32             // 1316: fs_contigsumsize
	Maxsymlinklen   int32             // 1320: fs_maxsymlinklen
	OldInodefmt     int32             // 1324: fs_old_inodefmt
	Maxfilesize     uint64            // 1328: fs_maxfilesize
	Qbmask          int64             // 1336: fs_qbmask
	Qfmask          int64             // 1344: fs_qfmask
	State           int32             // 1352: fs_state
	OldPostblformat int32             // 1356: fs_old_postblformat
	OldNrpos        int32             // 1360: fs_old_nrpos
	Spare5          [2]int32          // 1364: fs_spare5
	Magic           int32             // 1372: fs_magic
}

// sbCkhashOff is the offset of fs_ckhash.
const sbCkhashOff = 1304

// DecodeSuperblock decodes struct fs from the first SuperblockSize bytes of b.
// It checks nothing but the length; see Validate.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	if len(b) < SuperblockSize {
		return nil, ErrShort
	}
	sb := new(Superblock)
	sb.decode(&reader{b: b})
	return sb, nil
}

func (sb *Superblock) decode(r *reader) {
	for _, p := range [...]*int32{&sb.Firstfield, &sb.Unused1, &sb.Sblkno, &sb.Cblkno,
		&sb.Iblkno, &sb.Dblkno, &sb.OldCgoffset, &sb.OldCgmask, &sb.OldTime,
		&sb.OldSize, &sb.OldDsize} {
		*p = r.i32()
	}
	sb.Ncg = r.u32()
	for _, p := range [...]*int32{&sb.Bsize, &sb.Fsize, &sb.Frag, &sb.Minfree,
		&sb.OldRotdelay, &sb.OldRps, &sb.Bmask, &sb.Fmask, &sb.Bshift, &sb.Fshift,
		&sb.Maxcontig, &sb.Maxbpg, &sb.Fragshift, &sb.Fsbtodb, &sb.Sbsize,
		&sb.Spare1[0], &sb.Spare1[1], &sb.Nindir} {
		*p = r.i32()
	}
	sb.Inopb = r.u32()
	for _, p := range [...]*int32{&sb.OldNspf, &sb.Optim, &sb.OldNpsect,
		&sb.OldInterleave, &sb.OldTrackskew, &sb.ID[0], &sb.ID[1], &sb.OldCsaddr,
		&sb.Cssize, &sb.Cgsize, &sb.Spare2, &sb.OldNsect, &sb.OldSpc, &sb.OldNcyl,
		&sb.OldCpg} {
		*p = r.i32()
	}
	sb.Ipg = r.u32()
	sb.Fpg = r.i32()
	sb.OldCstotal.decode(r)
	sb.Fmod, sb.Clean, sb.Ronly, sb.OldFlags = r.i8(), r.i8(), r.i8(), r.i8()
	r.bytes(sb.Fsmnt[:])
	r.bytes(sb.Volname[:])
	sb.Swuid = r.u64()
	sb.Pad = r.i32()
	sb.Cgrotor = r.i32()
	r.bytes(sb.Ocsp[:])
	sb.OldCpc = r.i32()
	sb.Maxbsize = r.i32()
	sb.Unrefs = r.i64()
	sb.Providersize = r.i64()
	sb.Metaspace = r.i64()
	for i := range sb.Sparecon64 {
		sb.Sparecon64[i] = r.i64()
	}
	sb.Sblockactualloc = r.i64()
	sb.Sblockloc = r.i64()
	sb.Cstotal.decode(r)
	sb.Time = r.i64()
	sb.Size = r.i64()
	sb.Dsize = r.i64()
	sb.Csaddr = Frag(r.i64())
	sb.Pendingblocks = r.i64()
	sb.Pendinginodes = r.u32()
	for i := range sb.Snapinum {
		sb.Snapinum[i] = r.u32()
	}
	sb.Avgfilesize = r.u32()
	sb.Avgfpdir = r.u32()
	sb.SaveCgsize = r.i32()
	sb.Mtime = r.i64()
	sb.Sujfree = r.i32()
	for i := range sb.Sparecon32 {
		sb.Sparecon32[i] = r.i32()
	}
	sb.Ckhash = r.u32()
	sb.Metackhash = r.u32()
	for _, p := range [...]*int32{&sb.Flags, &sb.Contigsumsize, &sb.Maxsymlinklen, &sb.OldInodefmt} {
		*p = r.i32()
	}
	sb.Maxfilesize = r.u64()
	sb.Qbmask = r.i64()
	sb.Qfmask = r.i64()
	for _, p := range [...]*int32{&sb.State, &sb.OldPostblformat, &sb.OldNrpos,
		&sb.Spare5[0], &sb.Spare5[1], &sb.Magic} {
		*p = r.i32()
	}
}

// Encode writes struct fs into the first SuperblockSize bytes of b. It does
// not touch fs_ckhash; use EncodeWithHash for what goes to disk.
func (sb *Superblock) Encode(b []byte) error {
	if len(b) < SuperblockSize {
		return ErrShort
	}
	w := &writer{b: b}
	for _, v := range [...]int32{sb.Firstfield, sb.Unused1, sb.Sblkno, sb.Cblkno,
		sb.Iblkno, sb.Dblkno, sb.OldCgoffset, sb.OldCgmask, sb.OldTime,
		sb.OldSize, sb.OldDsize} {
		w.i32(v)
	}
	w.u32(sb.Ncg)
	for _, v := range [...]int32{sb.Bsize, sb.Fsize, sb.Frag, sb.Minfree,
		sb.OldRotdelay, sb.OldRps, sb.Bmask, sb.Fmask, sb.Bshift, sb.Fshift,
		sb.Maxcontig, sb.Maxbpg, sb.Fragshift, sb.Fsbtodb, sb.Sbsize,
		sb.Spare1[0], sb.Spare1[1], sb.Nindir} {
		w.i32(v)
	}
	w.u32(sb.Inopb)
	for _, v := range [...]int32{sb.OldNspf, sb.Optim, sb.OldNpsect,
		sb.OldInterleave, sb.OldTrackskew, sb.ID[0], sb.ID[1], sb.OldCsaddr,
		sb.Cssize, sb.Cgsize, sb.Spare2, sb.OldNsect, sb.OldSpc, sb.OldNcyl,
		sb.OldCpg} {
		w.i32(v)
	}
	w.u32(sb.Ipg)
	w.i32(sb.Fpg)
	sb.OldCstotal.encode(w)
	w.i8(sb.Fmod)
	w.i8(sb.Clean)
	w.i8(sb.Ronly)
	w.i8(sb.OldFlags)
	w.bytes(sb.Fsmnt[:])
	w.bytes(sb.Volname[:])
	w.u64(sb.Swuid)
	w.i32(sb.Pad)
	w.i32(sb.Cgrotor)
	w.bytes(sb.Ocsp[:])
	w.i32(sb.OldCpc)
	w.i32(sb.Maxbsize)
	w.i64(sb.Unrefs)
	w.i64(sb.Providersize)
	w.i64(sb.Metaspace)
	for _, v := range sb.Sparecon64 {
		w.i64(v)
	}
	w.i64(sb.Sblockactualloc)
	w.i64(sb.Sblockloc)
	sb.Cstotal.encode(w)
	w.i64(sb.Time)
	w.i64(sb.Size)
	w.i64(sb.Dsize)
	w.i64(int64(sb.Csaddr))
	w.i64(sb.Pendingblocks)
	w.u32(sb.Pendinginodes)
	for _, v := range sb.Snapinum {
		w.u32(v)
	}
	w.u32(sb.Avgfilesize)
	w.u32(sb.Avgfpdir)
	w.i32(sb.SaveCgsize)
	w.i64(sb.Mtime)
	w.i32(sb.Sujfree)
	for _, v := range sb.Sparecon32 {
		w.i32(v)
	}
	w.u32(sb.Ckhash)
	w.u32(sb.Metackhash)
	for _, v := range [...]int32{sb.Flags, sb.Contigsumsize, sb.Maxsymlinklen, sb.OldInodefmt} {
		w.i32(v)
	}
	w.u64(sb.Maxfilesize)
	w.i64(sb.Qbmask)
	w.i64(sb.Qfmask)
	for _, v := range [...]int32{sb.State, sb.OldPostblformat, sb.OldNrpos,
		sb.Spare5[0], sb.Spare5[1], sb.Magic} {
		w.i32(v)
	}
	return nil
}

// SbsizeBytes is the number of bytes of the superblock written to disk and
// covered by its check-hash: fs_sbsize, clamped to [SuperblockSize, SblockSize].
func (sb *Superblock) SbsizeBytes() int {
	n := int(sb.Sbsize)
	if n < SuperblockSize {
		n = SuperblockSize
	}
	if n > SblockSize {
		n = SblockSize
	}
	return n
}

// EncodeWithHash returns the SbsizeBytes() bytes that go to disk: struct fs
// zero-padded, with fs_ckhash computed when CK_SUPERBLOCK is on. It sets
// sb.Ckhash to the value written.
func (sb *Superblock) EncodeWithHash() []byte {
	b := make([]byte, sb.SbsizeBytes())
	sb.Encode(b)
	if sb.Metackhash&CKSuperblock != 0 {
		sb.Ckhash = crc32cSkip(b, sbCkhashOff)
		le.PutUint32(b[sbCkhashOff:], sb.Ckhash)
	}
	return b
}

// VerifyHash checks fs_ckhash against raw, the bytes the superblock was
// decoded from (at least SbsizeBytes long). It succeeds when CK_SUPERBLOCK
// is off, and when FS_METACKHASH is clear: a kernel without check-hashes
// clears that flag and leaves a stale fs_ckhash behind, which FreeBSD then
// ignores.
func (sb *Superblock) VerifyHash(raw []byte) error {
	if sb.Metackhash&CKSuperblock == 0 || sb.Flags&FSMetackhash == 0 {
		return nil
	}
	n := sb.SbsizeBytes()
	if len(raw) < n {
		return ErrShort
	}
	if got := crc32cSkip(raw[:n], sbCkhashOff); got != sb.Ckhash {
		return fmt.Errorf("%w: superblock: recorded 0x%08x, computed 0x%08x", ErrCheckHash, sb.Ckhash, got)
	}
	return nil
}

// VolumeName returns fs_volname up to its first NUL.
func (sb *Superblock) VolumeName() string { return cstring(sb.Volname[:]) }

// MountPoint returns fs_fsmnt up to its first NUL.
func (sb *Superblock) MountPoint() string { return cstring(sb.Fsmnt[:]) }

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// IsUFS2 reports whether the magic number is UFS2's, FreeBSD's or NetBSD's
// with-extended-attributes variant.
func (sb *Superblock) IsUFS2() bool {
	return sb.Magic == FSUFS2Magic || sb.Magic == FSUFS2EAMagic
}

// Validate checks that the superblock is self-consistent enough for the
// geometry methods to be safe: every error names the field, the value and
// the rule. It does not verify the check-hash (see VerifyHash).
func (sb *Superblock) Validate() error {
	switch uint32(sb.Magic) {
	case FSUFS2Magic, FSUFS2EAMagic:
	case FSUFS1Magic:
		return ErrUFS1
	default:
		return fmt.Errorf("%w: fs_magic 0x%x", ErrBadMagic, uint32(sb.Magic))
	}
	type rule struct {
		ok   bool
		name string
		val  int64
		want string
	}
	pow2 := func(v int64) bool { return v > 0 && v&(v-1) == 0 }
	rules := []rule{
		{sb.Bsize >= MinBSize && sb.Bsize <= MaxBSize && pow2(int64(sb.Bsize)), "fs_bsize", int64(sb.Bsize), "a power of two from 4096 to 65536"},
		{sb.Frag == 1 || sb.Frag == 2 || sb.Frag == 4 || sb.Frag == 8, "fs_frag", int64(sb.Frag), "1, 2, 4 or 8"},
		{int64(sb.Fsize)*int64(sb.Frag) == int64(sb.Bsize) && sb.Fsize >= DevBSize, "fs_fsize", int64(sb.Fsize), "fs_bsize/fs_frag and at least 512"},
		{sb.Bshift >= 0 && sb.Bshift < 31 && 1<<uint(sb.Bshift) == sb.Bsize, "fs_bshift", int64(sb.Bshift), "log2(fs_bsize)"},
		{sb.Fshift >= 0 && sb.Fshift < 31 && 1<<uint(sb.Fshift) == sb.Fsize, "fs_fshift", int64(sb.Fshift), "log2(fs_fsize)"},
		{sb.Fragshift >= 0 && sb.Fragshift <= 3 && 1<<uint(sb.Fragshift) == sb.Frag, "fs_fragshift", int64(sb.Fragshift), "log2(fs_frag)"},
		{sb.Bmask == ^(sb.Bsize - 1), "fs_bmask", int64(sb.Bmask), "~(fs_bsize-1)"},
		{sb.Fmask == ^(sb.Fsize - 1), "fs_fmask", int64(sb.Fmask), "~(fs_fsize-1)"},
		{sb.Qbmask == int64(sb.Bsize-1), "fs_qbmask", sb.Qbmask, "fs_bsize-1"},
		{sb.Qfmask == int64(sb.Fsize-1), "fs_qfmask", sb.Qfmask, "fs_fsize-1"},
		{sb.Fsbtodb >= 0 && sb.Fsbtodb < 8 && int64(DevBSize)<<uint(sb.Fsbtodb) == int64(sb.Fsize), "fs_fsbtodb", int64(sb.Fsbtodb), "log2(fs_fsize/512)"},
		{sb.Sbsize >= SuperblockSize && sb.Sbsize <= SblockSize, "fs_sbsize", int64(sb.Sbsize), "from 1376 to 8192"},
		{sb.Ncg >= 1, "fs_ncg", int64(sb.Ncg), "at least 1"},
		{sb.Ipg >= 1 && sb.Inopb >= 1 && sb.Ipg%sb.Inopb == 0, "fs_ipg", int64(sb.Ipg), "a positive multiple of fs_inopb"},
		{int64(sb.Inopb) == int64(sb.Bsize)/DinodeSize, "fs_inopb", int64(sb.Inopb), "fs_bsize/256"},
		{int64(sb.Nindir) == int64(sb.Bsize)/8, "fs_nindir", int64(sb.Nindir), "fs_bsize/8"},
		{sb.Fpg > 0 && sb.Frag > 0 && sb.Fpg%sb.Frag == 0, "fs_fpg", int64(sb.Fpg), "a positive multiple of fs_frag"},
		{sb.Size > 0 && sb.Size <= int64(sb.Ncg)*int64(sb.Fpg), "fs_size", sb.Size, "positive and at most fs_ncg*fs_fpg"},
		{sb.Size > (int64(sb.Ncg)-1)*int64(sb.Fpg), "fs_ncg", int64(sb.Ncg), "howmany(fs_size, fs_fpg)"},
		{sb.Dsize > 0 && sb.Dsize <= sb.Size, "fs_dsize", sb.Dsize, "positive and at most fs_size"},
		{sb.Sblkno > 0 && sb.Sblkno < sb.Cblkno && sb.Cblkno < sb.Iblkno && sb.Iblkno < sb.Dblkno, "fs_sblkno/cblkno/iblkno", int64(sb.Sblkno), "increasing: sblkno < cblkno < iblkno < dblkno"},
		{sb.Fpg > 0 && int64(sb.Dblkno) < int64(sb.Fpg), "fs_dblkno", int64(sb.Dblkno), "inside a cylinder group"},
		{int64(sb.Iblkno)+int64(sb.Ipg)/int64(max(sb.Inopb, 1))*int64(sb.Frag) <= int64(sb.Dblkno), "fs_ipg", int64(sb.Ipg), "inode blocks must fit between fs_iblkno and fs_dblkno"},
		{sb.Cgsize >= CgHeaderSize && sb.Cgsize <= sb.Bsize, "fs_cgsize", int64(sb.Cgsize), "from 168 to fs_bsize"},
		{int64(sb.Cgsize) >= sb.CgMapsEnd(), "fs_cgsize", int64(sb.Cgsize), fmt.Sprintf("at least %d to hold the maps", sb.CgMapsEnd())},
		{sb.Cssize > 0 && int64(sb.Cssize) >= int64(sb.Ncg)*CsumSize, "fs_cssize", int64(sb.Cssize), "at least fs_ncg*16"},
		{sb.Csaddr > 0 && int64(sb.Csaddr)+int64(sb.Numfrags(int64(sb.Fragroundup(int64(sb.Cssize))))) <= sb.Size, "fs_csaddr", int64(sb.Csaddr), "inside the filesystem"},
		{sb.Contigsumsize >= 0 && sb.Contigsumsize <= FSMaxContig, "fs_contigsumsize", int64(sb.Contigsumsize), "from 0 to 16"},
		{sb.Maxsymlinklen >= 0 && sb.Maxsymlinklen <= MaxSymlinkLen, "fs_maxsymlinklen", int64(sb.Maxsymlinklen), "from 0 to 120"},
		{sb.Sblockloc >= 0 && sb.Sblockloc%DevBSize == 0, "fs_sblockloc", sb.Sblockloc, "a non-negative multiple of 512"},
	}
	for _, r := range rules {
		if !r.ok {
			return corruptf("superblock: %s = %d, want %s", r.name, r.val, r.want)
		}
	}
	return nil
}

// FindSuperblock looks for a UFS2 superblock at the offsets of SBLOCKSEARCH
// and returns the first that decodes, has a UFS2 magic, records its own
// location in fs_sblockloc (as FreeBSD requires of a primary superblock) and
// validates. A UFS1 superblock found on the way gives ErrUFS1; a check-hash
// failure is returned (wrapping ErrCheckHash) together with the superblock so
// that fsck can decide what to do.
func FindSuperblock(r io.ReaderAt) (sb *Superblock, loc int64, err error) {
	buf := make([]byte, SblockSize)
	var firstErr error
	for _, off := range SuperblockSearch {
		n, rerr := r.ReadAt(buf, off)
		if n < SuperblockSize {
			if rerr != nil && rerr != io.EOF && firstErr == nil {
				firstErr = rerr
			}
			continue
		}
		cand, _ := DecodeSuperblock(buf[:n])
		switch uint32(cand.Magic) {
		case FSUFS1Magic:
			if firstErr == nil || firstErr == ErrNotFound {
				firstErr = ErrUFS1
			}
			continue
		case FSBadMagic:
			// newfs writes this magic first and the real one last: the
			// filesystem here was never finished. FreeBSD stops rather
			// than trust an older superblock further on.
			return nil, -1, fmt.Errorf("superblock at byte %d: %w", off, ErrIncomplete)
		case FSUFS2Magic, FSUFS2EAMagic:
		default:
			continue
		}
		if cand.Sblockloc != off {
			continue
		}
		if verr := cand.Validate(); verr != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("superblock at byte %d: %w", off, verr)
			}
			continue
		}
		if herr := cand.VerifyHash(buf[:n]); herr != nil {
			return cand, off, fmt.Errorf("superblock at byte %d: %w", off, herr)
		}
		return cand, off, nil
	}
	if firstErr == nil {
		firstErr = ErrNotFound
	}
	return nil, -1, firstErr
}
