package dump

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The dump format's constants (include/protocols/dumprestore.h).
const (
	TPBsize          = 1024        // TP_BSIZE: bytes of every record
	TPNindir         = TPBsize / 2 // TP_NINDIR: c_addr entries in one header
	NTREC            = 10          // NTREC: default records per tape write
	LblSize          = 16          // LBLSIZE
	NameLen          = 64          // NAMELEN
	OFSMagic         = 60011       // OFS_MAGIC: pre-4.4BSD dumps, not readable
	NFSMagic         = 60012       // NFS_MAGIC: 4.4BSD dumps with 32-bit times
	UFS2Magic        = 0x19540119  // FS_UFS2_MAGIC: what FreeBSD's dump writes
	Checksum         = 84446       // CHECKSUM: the 32-bit words of a header sum to this
	maxNtrec         = 1000        // dump -b's upper bound
	nfsDRNewInodeFmt = 0x2         // NFS_DR_NEWINODEFMT in c_flags
)

// Record types (c_type).
const (
	TSTape  = 1 // TS_TAPE: volume header
	TSInode = 2 // TS_INODE: first header of a file
	TSBits  = 3 // TS_BITS: map of the inodes on the tape
	TSAddr  = 4 // TS_ADDR: continuation header of a file
	TSEnd   = 5 // TS_END: end of volume
	TSClri  = 6 // TS_CLRI: map of the inodes in use
)

// Header is union u_spcl's struct s_spcl, the 1024-byte header record, in
// disk order. All integers are little-endian (FreeBSD/amd64's byte order,
// which restore also reads byte-swapped).
type Header struct {
	Type          int32          // 0: c_type
	OldDate       int32          // 4: c_old_date
	OldDdate      int32          // 8: c_old_ddate
	Volume        int32          // 12: c_volume
	OldTapea      int32          // 16: c_old_tapea
	Inumber       uint32         // 20: c_inumber
	Magic         int32          // 24: c_magic
	Checksum      int32          // 28: c_checksum
	Mode          uint16         // 32: c_mode
	Spare1        [3]int16       // 34: c_spare1 (old nlink, uid, gid)
	Size          uint64         // 40: c_size
	OldAtime      int32          // 48: c_old_atime
	Atimensec     int32          // 52: c_atimensec
	OldMtime      int32          // 56: c_old_mtime
	Mtimensec     int32          // 60: c_mtimensec
	Spare2        [2]int32       // 64: c_spare2
	Rdev          int32          // 72: c_rdev
	Birthtimensec int32          // 76: c_birthtimensec
	Birthtime     int64          // 80: c_birthtime
	Atime         int64          // 88: c_atime
	Mtime         int64          // 96: c_mtime
	Extsize       int32          // 104: c_extsize
	Spare4        [6]int32       // 108: c_spare4
	FileFlags     uint32         // 132: c_file_flags
	Spare5        [2]int32       // 136: c_spare5
	UID           uint32         // 144: c_uid
	GID           uint32         // 148: c_gid
	Spare6        [2]int32       // 152: c_spare6
	Count         int32          // 160: c_count
	Addr          [TPNindir]byte // 164: c_addr
	Label         [LblSize]byte  // 676: c_label
	Level         int32          // 692: c_level
	Filesys       [NameLen]byte  // 696: c_filesys
	Dev           [NameLen]byte  // 760: c_dev
	Host          [NameLen]byte  // 824: c_host
	Flags         int32          // 888: c_flags
	OldFirstrec   int32          // 892: c_old_firstrec
	Date          int64          // 896: c_date
	Ddate         int64          // 904: c_ddate
	Tapea         int64          // 912: c_tapea
	Firstrec      int64          // 920: c_firstrec
	Spare         [24]int32      // 928: c_spare
}

var le = binary.LittleEndian

// Errors of the format. Every error of the package about a dump's content
// wraps ErrFormat.
var (
	ErrFormat   = errors.New("dump: not a valid dump")
	ErrChecksum = fmt.Errorf("%w: header checksum mismatch", ErrFormat)
	ErrMagic    = fmt.Errorf("%w: bad header magic", ErrFormat)
	ErrOldDump  = fmt.Errorf("%w: format of dump is too old (OFS_MAGIC); it needs a restore from before 2002", ErrFormat)
	ErrShort    = fmt.Errorf("%w: truncated", ErrFormat)
)

// Encode writes h into b (at least TPBsize bytes) as it is, checksum
// field included.
func (h *Header) Encode(b []byte) {
	_ = b[TPBsize-1]
	le.PutUint32(b[0:], uint32(h.Type))
	le.PutUint32(b[4:], uint32(h.OldDate))
	le.PutUint32(b[8:], uint32(h.OldDdate))
	le.PutUint32(b[12:], uint32(h.Volume))
	le.PutUint32(b[16:], uint32(h.OldTapea))
	le.PutUint32(b[20:], h.Inumber)
	le.PutUint32(b[24:], uint32(h.Magic))
	le.PutUint32(b[28:], uint32(h.Checksum))
	le.PutUint16(b[32:], h.Mode)
	for i, v := range h.Spare1 {
		le.PutUint16(b[34+2*i:], uint16(v))
	}
	le.PutUint64(b[40:], h.Size)
	le.PutUint32(b[48:], uint32(h.OldAtime))
	le.PutUint32(b[52:], uint32(h.Atimensec))
	le.PutUint32(b[56:], uint32(h.OldMtime))
	le.PutUint32(b[60:], uint32(h.Mtimensec))
	putInt32s(b[64:], h.Spare2[:])
	le.PutUint32(b[72:], uint32(h.Rdev))
	le.PutUint32(b[76:], uint32(h.Birthtimensec))
	le.PutUint64(b[80:], uint64(h.Birthtime))
	le.PutUint64(b[88:], uint64(h.Atime))
	le.PutUint64(b[96:], uint64(h.Mtime))
	le.PutUint32(b[104:], uint32(h.Extsize))
	putInt32s(b[108:], h.Spare4[:])
	le.PutUint32(b[132:], h.FileFlags)
	putInt32s(b[136:], h.Spare5[:])
	le.PutUint32(b[144:], h.UID)
	le.PutUint32(b[148:], h.GID)
	putInt32s(b[152:], h.Spare6[:])
	le.PutUint32(b[160:], uint32(h.Count))
	copy(b[164:676], h.Addr[:])
	copy(b[676:692], h.Label[:])
	le.PutUint32(b[692:], uint32(h.Level))
	copy(b[696:760], h.Filesys[:])
	copy(b[760:824], h.Dev[:])
	copy(b[824:888], h.Host[:])
	le.PutUint32(b[888:], uint32(h.Flags))
	le.PutUint32(b[892:], uint32(h.OldFirstrec))
	le.PutUint64(b[896:], uint64(h.Date))
	le.PutUint64(b[904:], uint64(h.Ddate))
	le.PutUint64(b[912:], uint64(h.Tapea))
	le.PutUint64(b[920:], uint64(h.Firstrec))
	putInt32s(b[928:], h.Spare[:])
}

// Decode reads h from b (at least TPBsize bytes) without checking it.
func (h *Header) Decode(b []byte) error {
	if len(b) < TPBsize {
		return ErrShort
	}
	h.Type = int32(le.Uint32(b[0:]))
	h.OldDate = int32(le.Uint32(b[4:]))
	h.OldDdate = int32(le.Uint32(b[8:]))
	h.Volume = int32(le.Uint32(b[12:]))
	h.OldTapea = int32(le.Uint32(b[16:]))
	h.Inumber = le.Uint32(b[20:])
	h.Magic = int32(le.Uint32(b[24:]))
	h.Checksum = int32(le.Uint32(b[28:]))
	h.Mode = le.Uint16(b[32:])
	for i := range h.Spare1 {
		h.Spare1[i] = int16(le.Uint16(b[34+2*i:]))
	}
	h.Size = le.Uint64(b[40:])
	h.OldAtime = int32(le.Uint32(b[48:]))
	h.Atimensec = int32(le.Uint32(b[52:]))
	h.OldMtime = int32(le.Uint32(b[56:]))
	h.Mtimensec = int32(le.Uint32(b[60:]))
	getInt32s(b[64:], h.Spare2[:])
	h.Rdev = int32(le.Uint32(b[72:]))
	h.Birthtimensec = int32(le.Uint32(b[76:]))
	h.Birthtime = int64(le.Uint64(b[80:]))
	h.Atime = int64(le.Uint64(b[88:]))
	h.Mtime = int64(le.Uint64(b[96:]))
	h.Extsize = int32(le.Uint32(b[104:]))
	getInt32s(b[108:], h.Spare4[:])
	h.FileFlags = le.Uint32(b[132:])
	getInt32s(b[136:], h.Spare5[:])
	h.UID = le.Uint32(b[144:])
	h.GID = le.Uint32(b[148:])
	getInt32s(b[152:], h.Spare6[:])
	h.Count = int32(le.Uint32(b[160:]))
	copy(h.Addr[:], b[164:676])
	copy(h.Label[:], b[676:692])
	h.Level = int32(le.Uint32(b[692:]))
	copy(h.Filesys[:], b[696:760])
	copy(h.Dev[:], b[760:824])
	copy(h.Host[:], b[824:888])
	h.Flags = int32(le.Uint32(b[888:]))
	h.OldFirstrec = int32(le.Uint32(b[892:]))
	h.Date = int64(le.Uint64(b[896:]))
	h.Ddate = int64(le.Uint64(b[904:]))
	h.Tapea = int64(le.Uint64(b[912:]))
	h.Firstrec = int64(le.Uint64(b[920:]))
	getInt32s(b[928:], h.Spare[:])
	return nil
}

func putInt32s(b []byte, v []int32) {
	for i, x := range v {
		le.PutUint32(b[4*i:], uint32(x))
	}
}

func getInt32s(b []byte, v []int32) {
	for i := range v {
		v[i] = int32(le.Uint32(b[4*i:]))
	}
}

// wordSum is the sum of the 256 little-endian 32-bit words of a record,
// wrapping as C's int32 does.
func wordSum(b []byte) int32 {
	var s int32
	for i := 0; i < TPBsize; i += 4 {
		s += int32(le.Uint32(b[i:]))
	}
	return s
}

// Seal sets the checksum field of the encoded header in b so that its
// words sum to CHECKSUM (writeheader's rule).
func Seal(b []byte) {
	le.PutUint32(b[28:], 0)
	le.PutUint32(b[28:], uint32(int32(Checksum)-wordSum(b)))
}

// CheckRecord reports whether the record b is a valid header: a known
// magic and a correct checksum. OFS_MAGIC gives ErrOldDump.
func CheckRecord(b []byte) error {
	if len(b) < TPBsize {
		return ErrShort
	}
	switch m := int32(le.Uint32(b[24:])); m {
	case UFS2Magic, NFSMagic:
	case OFSMagic:
		return ErrOldDump
	default:
		return fmt.Errorf("%w 0x%x", ErrMagic, uint32(m))
	}
	if s := wordSum(b); s != Checksum {
		return fmt.Errorf("%w (words sum to %d, want %d)", ErrChecksum, s, Checksum)
	}
	return nil
}

// normalize applies restore's gethead fix-ups to a decoded, checked
// header: NFS_MAGIC dumps keep 32-bit times in the old fields; map
// headers get their size. It leaves Magic as UFS2Magic.
func (h *Header) normalize() {
	if h.Magic == NFSMagic {
		h.Tapea = int64(h.OldTapea)
		h.Firstrec = int64(h.OldFirstrec)
		h.Date = int64(h.OldDate)
		h.Ddate = int64(h.OldDdate)
		h.Atime = int64(h.OldAtime)
		h.Mtime = int64(h.OldMtime)
		h.Birthtime, h.Birthtimensec, h.Extsize = 0, 0, 0
		if h.Flags&nfsDRNewInodeFmt == 0 {
			h.UID, h.GID = uint32(uint16(h.Spare1[1])), uint32(uint16(h.Spare1[2]))
		}
		h.Magic = UFS2Magic
	}
	if h.Type == TSClri || h.Type == TSBits {
		h.Size = uint64(max(h.Count, 0)) * TPBsize
	}
}

// cstr returns the NUL-terminated string at the start of b.
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// setCstr copies s into b as strncpy does, always leaving the last byte NUL.
func setCstr(b []byte, s string) {
	clear(b)
	copy(b[:len(b)-1], s)
}

// LabelString, FilesysString, DevString and HostString return the
// header's text fields.
func (h *Header) LabelString() string   { return cstr(h.Label[:]) }
func (h *Header) FilesysString() string { return cstr(h.Filesys[:]) }
func (h *Header) DevString() string     { return cstr(h.Dev[:]) }
func (h *Header) HostString() string    { return cstr(h.Host[:]) }

// typeName names a record type for messages.
func typeName(t int32) string {
	switch t {
	case TSTape:
		return "TS_TAPE"
	case TSInode:
		return "TS_INODE"
	case TSBits:
		return "TS_BITS"
	case TSAddr:
		return "TS_ADDR"
	case TSEnd:
		return "TS_END"
	case TSClri:
		return "TS_CLRI"
	}
	return fmt.Sprintf("type %d", t)
}
