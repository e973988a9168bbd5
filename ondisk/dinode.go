package ondisk

import "fmt"

// Inode constants (dinode.h).
const (
	DinodeSize      = 256                   // sizeof(struct ufs2_dinode)
	NXaddr          = 2                     // UFS_NXADDR: extended attribute block pointers
	NDaddr          = 12                    // UFS_NDADDR: direct block pointers
	NIaddr          = 3                     // UFS_NIADDR: indirect block pointers
	LinkMax         = 32767                 // UFS_LINK_MAX
	MaxSymlinkLen   = (NDaddr + NIaddr) * 8 // bytes of a fast symlink: di_db and di_ib
	dinodeCkhashOff = 244
	dinodeDbOff     = 112
)

// File type and permission bits of di_mode.
const (
	IFMT   = 0o170000
	IFIFO  = 0o010000
	IFCHR  = 0o020000
	IFDIR  = 0o040000
	IFBLK  = 0o060000
	IFREG  = 0o100000
	IFLNK  = 0o120000
	IFSOCK = 0o140000
	IFWHT  = 0o160000
	ISUID  = 0o4000
	ISGID  = 0o2000
	ISVTX  = 0o1000
)

// di_flags (chflags) bits, sys/stat.h: user flags in the low half, system
// (super-user) flags in the high half.
const (
	UFNodump    = 0x00000001
	UFImmutable = 0x00000002
	UFAppend    = 0x00000004
	UFOpaque    = 0x00000008
	UFNounlink  = 0x00000010
	UFSystem    = 0x00000080
	UFSparse    = 0x00000100
	UFOffline   = 0x00000200
	UFReparse   = 0x00000400
	UFArchive   = 0x00000800
	UFReadonly  = 0x00001000
	UFHidden    = 0x00008000
	SFArchived  = 0x00010000
	SFImmutable = 0x00020000
	SFAppend    = 0x00040000
	SFNounlink  = 0x00100000
	SFSnapshot  = 0x00200000
)

// Dinode is struct ufs2_dinode (256 bytes), in disk order.
type Dinode struct {
	Mode      uint16       // 0: di_mode
	Nlink     int16        // 2: di_nlink
	UID       uint32       // 4: di_uid
	GID       uint32       // 8: di_gid
	Blksize   uint32       // 12: di_blksize
	Size      uint64       // 16: di_size
	Blocks    uint64       // 24: di_blocks (in 512-byte units)
	Atime     int64        // 32: di_atime
	Mtime     int64        // 40: di_mtime
	Ctime     int64        // 48: di_ctime
	Birthtime int64        // 56: di_birthtime
	Mtimensec int32        // 64: di_mtimensec
	Atimensec int32        // 68: di_atimensec
	Ctimensec int32        // 72: di_ctimensec
	Birthnsec int32        // 76: di_birthnsec
	Gen       uint32       // 80: di_gen
	Kernflags uint32       // 84: di_kernflags
	Flags     uint32       // 88: di_flags
	Extsize   uint32       // 92: di_extsize
	Extb      [NXaddr]Frag // 96: di_extb
	Db        [NDaddr]Frag // 112: di_db (di_rdev is di_db[0])
	Ib        [NIaddr]Frag // 208: di_ib
	Modrev    uint64       // 232: di_modrev
	Freelink  uint32       // 240: di_freelink
	Ckhash    uint32       // 244: di_ckhash
	Spare     [2]uint32    // 248: di_spare
}

// DecodeDinode decodes a UFS2 inode from the first DinodeSize bytes of b.
func DecodeDinode(b []byte) (*Dinode, error) {
	d := new(Dinode)
	if err := d.Decode(b); err != nil {
		return nil, err
	}
	return d, nil
}

// Decode fills d from the first DinodeSize bytes of b without allocating.
func (d *Dinode) Decode(b []byte) error {
	if len(b) < DinodeSize {
		return ErrShort
	}
	r := reader{b: b}
	d.Mode, d.Nlink = r.u16(), r.i16()
	d.UID, d.GID, d.Blksize = r.u32(), r.u32(), r.u32()
	d.Size, d.Blocks = r.u64(), r.u64()
	d.Atime, d.Mtime, d.Ctime, d.Birthtime = r.i64(), r.i64(), r.i64(), r.i64()
	d.Mtimensec, d.Atimensec, d.Ctimensec, d.Birthnsec = r.i32(), r.i32(), r.i32(), r.i32()
	d.Gen, d.Kernflags, d.Flags, d.Extsize = r.u32(), r.u32(), r.u32(), r.u32()
	for i := range d.Extb {
		d.Extb[i] = Frag(r.i64())
	}
	for i := range d.Db {
		d.Db[i] = Frag(r.i64())
	}
	for i := range d.Ib {
		d.Ib[i] = Frag(r.i64())
	}
	d.Modrev = r.u64()
	d.Freelink, d.Ckhash = r.u32(), r.u32()
	d.Spare[0], d.Spare[1] = r.u32(), r.u32()
	return nil
}

// Encode writes d into the first DinodeSize bytes of b as it is, di_ckhash
// included; EncodeWithHash computes the check-hash.
func (d *Dinode) Encode(b []byte) error {
	if len(b) < DinodeSize {
		return ErrShort
	}
	w := writer{b: b}
	w.u16(d.Mode)
	w.i16(d.Nlink)
	w.u32(d.UID)
	w.u32(d.GID)
	w.u32(d.Blksize)
	w.u64(d.Size)
	w.u64(d.Blocks)
	w.i64(d.Atime)
	w.i64(d.Mtime)
	w.i64(d.Ctime)
	w.i64(d.Birthtime)
	w.i32(d.Mtimensec)
	w.i32(d.Atimensec)
	w.i32(d.Ctimensec)
	w.i32(d.Birthnsec)
	w.u32(d.Gen)
	w.u32(d.Kernflags)
	w.u32(d.Flags)
	w.u32(d.Extsize)
	for _, v := range d.Extb {
		w.i64(int64(v))
	}
	for _, v := range d.Db {
		w.i64(int64(v))
	}
	for _, v := range d.Ib {
		w.i64(int64(v))
	}
	w.u64(d.Modrev)
	w.u32(d.Freelink)
	w.u32(d.Ckhash)
	w.u32(d.Spare[0])
	w.u32(d.Spare[1])
	return nil
}

// EncodeWithHash encodes d into b and, when the superblock enables CK_INODE
// and the inode is allocated (di_mode != 0), sets di_ckhash (in d and b).
func (d *Dinode) EncodeWithHash(sb *Superblock, b []byte) error {
	if err := d.Encode(b); err != nil {
		return err
	}
	if d.Mode != 0 && sb.Metackhash&CKInode != 0 {
		d.Ckhash = crc32cSkip(b[:DinodeSize], dinodeCkhashOff)
		le.PutUint32(b[dinodeCkhashOff:], d.Ckhash)
	}
	return nil
}

// VerifyDinodeHash checks the check-hash of the encoded inode in b, as
// ffs_verify_dinode_ckhash does: free inodes and filesystems without
// CK_INODE always pass.
func VerifyDinodeHash(sb *Superblock, b []byte) error {
	if len(b) < DinodeSize {
		return ErrShort
	}
	if le.Uint16(b) == 0 || sb.Metackhash&CKInode == 0 {
		return nil
	}
	want := le.Uint32(b[dinodeCkhashOff:])
	if got := crc32cSkip(b[:DinodeSize], dinodeCkhashOff); got != want {
		return fmt.Errorf("%w: inode: recorded 0x%08x, computed 0x%08x", ErrCheckHash, want, got)
	}
	return nil
}

// Type returns the file type bits of di_mode.
func (d *Dinode) Type() uint16 { return d.Mode & IFMT }

// IsDir reports whether the inode is a directory.
func (d *Dinode) IsDir() bool { return d.Type() == IFDIR }

// Rdev returns the device number of a block or character device (di_rdev,
// the low 32 bits of di_db[0] as FreeBSD stores a dev_t there).
func (d *Dinode) Rdev() uint64 { return uint64(d.Db[0]) }

// ShortLink returns the target of a fast symlink, stored in place of the
// block pointers, when the inode's size says the target is there.
func (d *Dinode) ShortLink(sb *Superblock) ([]byte, bool) {
	if d.Type() != IFLNK || d.Size >= uint64(sb.Maxsymlinklen) {
		return nil, false
	}
	var raw [MaxSymlinkLen]byte
	w := writer{b: raw[:]}
	for _, v := range d.Db {
		w.i64(int64(v))
	}
	for _, v := range d.Ib {
		w.i64(int64(v))
	}
	out := make([]byte, d.Size)
	copy(out, raw[:d.Size])
	return out, true
}

// SetShortLink stores target in place of the block pointers (a fast symlink).
// target must be shorter than fs_maxsymlinklen.
func (d *Dinode) SetShortLink(target []byte) {
	var raw [MaxSymlinkLen]byte
	copy(raw[:], target)
	r := reader{b: raw[:]}
	for i := range d.Db {
		d.Db[i] = Frag(r.i64())
	}
	for i := range d.Ib {
		d.Ib[i] = Frag(r.i64())
	}
	d.Size = uint64(len(target))
}
