package ondisk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors of the format layer. Callers test them with errors.Is.
var (
	// ErrShort means a buffer is smaller than the structure decoded from it.
	ErrShort = errors.New("ondisk: buffer too short")
	// ErrCorrupt means a structure decoded but breaks a rule of the format.
	ErrCorrupt = errors.New("ondisk: corrupt metadata")
	// ErrBadMagic means the magic number is not the one expected.
	ErrBadMagic = errors.New("ondisk: bad magic number")
	// ErrUFS1 means the filesystem is UFS1, which this project does not support.
	ErrUFS1 = errors.New("ondisk: UFS1 filesystem")
	// ErrCheckHash means a stored check-hash does not match the contents.
	ErrCheckHash = errors.New("ondisk: check-hash mismatch")
	// ErrNotFound means no superblock was found at any standard location.
	ErrNotFound = errors.New("ondisk: no UFS2 superblock found")
	// ErrIncomplete means the superblock carries FS_BAD_MAGIC: newfs was
	// interrupted and the filesystem was never finished.
	ErrIncomplete = errors.New("ondisk: unfinished newfs (FS_BAD_MAGIC)")
)

// corruptf returns an error wrapping ErrCorrupt with a formatted description.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

var le = binary.LittleEndian

// reader is a little-endian cursor over a byte slice. Callers check the
// slice's length before decoding, so the accessors do not.
type reader struct {
	b   []byte
	off int
}

func (r *reader) u8() uint8   { v := r.b[r.off]; r.off++; return v }
func (r *reader) i8() int8    { return int8(r.u8()) }
func (r *reader) u16() uint16 { v := le.Uint16(r.b[r.off:]); r.off += 2; return v }
func (r *reader) i16() int16  { return int16(r.u16()) }
func (r *reader) u32() uint32 { v := le.Uint32(r.b[r.off:]); r.off += 4; return v }
func (r *reader) i32() int32  { return int32(r.u32()) }
func (r *reader) u64() uint64 { v := le.Uint64(r.b[r.off:]); r.off += 8; return v }
func (r *reader) i64() int64  { return int64(r.u64()) }
func (r *reader) bytes(dst []byte) {
	copy(dst, r.b[r.off:r.off+len(dst)])
	r.off += len(dst)
}

// writer is the encoding twin of reader.
type writer struct {
	b   []byte
	off int
}

func (w *writer) u8(v uint8)   { w.b[w.off] = v; w.off++ }
func (w *writer) i8(v int8)    { w.u8(uint8(v)) }
func (w *writer) u16(v uint16) { le.PutUint16(w.b[w.off:], v); w.off += 2 }
func (w *writer) i16(v int16)  { w.u16(uint16(v)) }
func (w *writer) u32(v uint32) { le.PutUint32(w.b[w.off:], v); w.off += 4 }
func (w *writer) i32(v int32)  { w.u32(uint32(v)) }
func (w *writer) u64(v uint64) { le.PutUint64(w.b[w.off:], v); w.off += 8 }
func (w *writer) i64(v int64)  { w.u64(uint64(v)) }
func (w *writer) bytes(src []byte) {
	copy(w.b[w.off:], src)
	w.off += len(src)
}
