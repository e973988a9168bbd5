package ondisk

import "fmt"

// Directory constants (dir.h).
const (
	DirBlkSize    = 512 // DIRBLKSIZ: a directory chunk; entries never cross one
	MaxNameLen    = 255 // UFS_MAXNAMLEN
	directHdrSize = 8   // d_ino, d_reclen, d_type, d_namlen
)

// Directory entry types (d_type), sys/dirent.h.
const (
	DTUnknown = 0
	DTFifo    = 1
	DTChr     = 2
	DTDir     = 4
	DTBlk     = 6
	DTReg     = 8
	DTLnk     = 10
	DTSock    = 12
	DTWht     = 14
)

// Direct is struct direct: one directory entry. On disk the name is followed
// by a NUL and padding to a 4-byte boundary; Reclen covers that and any free
// space the entry absorbed.
type Direct struct {
	Ino    Ino    // 0: d_ino (0 marks an unused entry)
	Reclen uint16 // 4: d_reclen
	Type   uint8  // 6: d_type
	Namlen uint8  // 7: d_namlen
	Name   []byte // 8: d_name (Namlen bytes, no NUL)
}

// DirectSize is DIRECTSIZ(namlen): the bytes an entry with a name of that
// length needs: header, name, NUL, rounded up to 4.
func DirectSize(namlen int) int { return (directHdrSize + namlen + 1 + 3) &^ 3 }

// DecodeDirect decodes the entry at the start of b, which must be the rest of
// its DIRBLKSIZ chunk: it validates d_reclen and d_namlen against the chunk
// as ufs_dirbadentry does. Name aliases b.
func DecodeDirect(b []byte) (Direct, error) {
	var d Direct
	if len(b) < directHdrSize {
		return d, ErrShort
	}
	r := reader{b: b}
	d.Ino = Ino(r.u32())
	d.Reclen = r.u16()
	d.Type = r.u8()
	d.Namlen = r.u8()
	switch {
	case d.Reclen == 0 || d.Reclen%4 != 0:
		return d, corruptf("directory entry: d_reclen %d, want a positive multiple of 4", d.Reclen)
	case int(d.Reclen) > len(b):
		return d, corruptf("directory entry: d_reclen %d runs past its %d-byte chunk", d.Reclen, len(b))
	case d.Ino != 0 && int(d.Reclen) < DirectSize(int(d.Namlen)):
		return d, corruptf("directory entry: d_reclen %d too small for a %d-byte name", d.Reclen, d.Namlen)
	}
	if d.Ino != 0 {
		d.Name = b[directHdrSize : directHdrSize+int(d.Namlen)]
		for _, c := range d.Name {
			if c == 0 || c == '/' {
				return d, corruptf("directory entry: name %q contains %q", d.Name, c)
			}
		}
	}
	return d, nil
}

// Encode writes the entry at the start of b: header, name, NUL and zero
// padding up to DirectSize; the rest of Reclen is left as it is.
func (d *Direct) Encode(b []byte) error {
	n := DirectSize(len(d.Name))
	if len(b) < n || len(d.Name) > MaxNameLen {
		return ErrShort
	}
	w := writer{b: b}
	w.u32(uint32(d.Ino))
	w.u16(d.Reclen)
	w.u8(d.Type)
	w.u8(uint8(len(d.Name)))
	w.bytes(d.Name)
	for i := w.off; i < n; i++ {
		b[i] = 0
	}
	return nil
}

// DirChunkEntries walks one DIRBLKSIZ chunk and calls fn for each entry
// (including unused ones, Ino 0) with its offset in the chunk. It stops at
// the first malformed entry and returns its error, or when fn returns false.
func DirChunkEntries(chunk []byte, fn func(off int, d Direct) bool) error {
	for off := 0; off < len(chunk); {
		d, err := DecodeDirect(chunk[off:])
		if err != nil {
			return fmt.Errorf("at offset %d: %w", off, err)
		}
		if !fn(off, d) {
			return nil
		}
		off += int(d.Reclen)
	}
	return nil
}

// DTypeFromMode is IFTODT: the d_type for a di_mode.
func DTypeFromMode(mode uint16) uint8 { return uint8((mode & IFMT) >> 12) }

// ModeFromDType is DTTOIF: the file-type bits for a d_type.
func ModeFromDType(t uint8) uint16 { return uint16(t) << 12 }
