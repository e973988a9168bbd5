package ondisk

import "fmt"

// Extended attribute namespaces (sys/extattr.h).
const (
	ExtattrNamespaceEmpty  = 0
	ExtattrNamespaceUser   = 1
	ExtattrNamespaceSystem = 2
	extattrHdrSize         = 7 // ea_length, ea_namespace, ea_contentpadlen, ea_namelength
)

// Extattr is one record of an inode's extended attribute area: Figure 1 of
// the UFS2 paper, struct extattr in extattr.h. On disk: a 4-byte total length,
// a namespace byte, the content padding length, the name length, the name
// (no NUL), zero padding to an 8-byte boundary, the content, and zero padding
// to the next 8-byte boundary (ea_contentpadlen bytes).
type Extattr struct {
	Namespace uint8  // ea_namespace
	Name      []byte // ea_name
	Value     []byte // the content
}

// ExtattrBaseLength is EXTATTR_BASE_LENGTH: header plus name, rounded up to 8.
func ExtattrBaseLength(namelen int) int { return (extattrHdrSize + namelen + 7) &^ 7 }

// Len is the record's total length (ea_length) as Encode writes it.
func (e *Extattr) Len() int { return ExtattrBaseLength(len(e.Name)) + (len(e.Value)+7)&^7 }

// Encode writes the record at the start of b, which must hold e.Len() bytes.
func (e *Extattr) Encode(b []byte) error {
	n := e.Len()
	if len(b) < n || len(e.Name) > 255 {
		return ErrShort
	}
	for i := range b[:n] {
		b[i] = 0
	}
	w := writer{b: b}
	w.u32(uint32(n))
	w.u8(e.Namespace)
	w.u8(uint8((8 - len(e.Value)%8) % 8))
	w.u8(uint8(len(e.Name)))
	w.bytes(e.Name)
	copy(b[ExtattrBaseLength(len(e.Name)):], e.Value)
	return nil
}

// DecodeExtattr decodes the record at the start of b (the rest of the used
// area, di_extsize bytes in all) and returns it with its length. Name and
// Value alias b. A record of length zero, or one that runs past b, is
// corrupt.
func DecodeExtattr(b []byte) (Extattr, int, error) {
	var e Extattr
	if len(b) < extattrHdrSize {
		return e, 0, ErrShort
	}
	r := reader{b: b}
	length := int(r.u32())
	e.Namespace = r.u8()
	pad := int(r.u8())
	namelen := int(r.u8())
	base := ExtattrBaseLength(namelen)
	switch {
	case length < base || length%8 != 0:
		return e, 0, corruptf("extended attribute: ea_length %d, want a multiple of 8 of at least %d", length, base)
	case length > len(b):
		return e, 0, corruptf("extended attribute: ea_length %d runs past the %d bytes left", length, len(b))
	case pad > 7 || pad > length-base:
		return e, 0, corruptf("extended attribute: ea_contentpadlen %d", pad)
	}
	e.Name = b[extattrHdrSize : extattrHdrSize+namelen]
	e.Value = b[base : length-pad]
	return e, length, nil
}

// WalkExtattrs calls fn for each record of an extended attribute area (the
// first di_extsize bytes of the inode's extattr blocks). It returns the first
// decoding error, naming the offset.
func WalkExtattrs(area []byte, fn func(off int, e Extattr) bool) error {
	for off := 0; off < len(area); {
		e, n, err := DecodeExtattr(area[off:])
		if err != nil {
			return fmt.Errorf("at offset %d: %w", off, err)
		}
		if !fn(off, e) {
			return nil
		}
		off += n
	}
	return nil
}
