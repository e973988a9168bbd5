package dump

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/ufs2/ufs2/ondisk"
)

// Reader reads a dump as restore does: 1024-byte records, headers checked
// (magic, checksum, type) and normalised, files delivered with their holes
// and extended attributes. Every error about the content names the record
// (counted from 0, the volume header, as c_tapea counts) and its byte
// offset in the uncompressed stream, and wraps ErrFormat.
type Reader struct {
	r           *bufio.Reader
	closer      func()
	rec         int64 // records read
	buf         [TPBsize]byte
	Volume      Header // the TS_TAPE header
	Clri        []byte // the map of inodes in use (TS_CLRI)
	Bits        []byte // the map of inodes dumped (TS_BITS)
	Maxino      uint32 // one more than the largest inode the maps can hold
	Compression string // "zstd", "gzip" or ""

	next    *Header // the header that follows the last file read
	nextRec int64   // its record number
	done    bool    // TS_END reached
}

// maxMapRecords bounds a map's size (128 MiB, a billion inodes).
const maxMapRecords = 1 << 17

// NewReader starts reading a dump from r, recognising a zstd or gzip
// stream by its magic, and reads the volume header and both maps.
// skip > 0 first skips that many whole dumps (restore -s N gives N-1).
func NewReader(r io.Reader, skip int) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	rd := &Reader{closer: func() {}}
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd stream: %w", ErrFormat, err)
		}
		rd.closer = zr.Close
		br = bufio.NewReaderSize(zr, 1<<20)
		rd.Compression = "zstd"
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip stream: %w", ErrFormat, err)
		}
		br = bufio.NewReaderSize(gr, 1<<20)
		rd.Compression = "gzip"
	}
	rd.r = br
	for n := 0; n < skip; n++ {
		if err := rd.skipDump(n + 1); err != nil {
			rd.Close()
			return nil, err
		}
	}
	if err := rd.start(); err != nil {
		rd.Close()
		return nil, err
	}
	return rd, nil
}

// Close releases the decompressor.
func (rd *Reader) Close() { rd.closer() }

// Records is the number of records read so far.
func (rd *Reader) Records() int64 { return rd.rec }

func (rd *Reader) errf(rec int64, format string, args ...any) error {
	return fmt.Errorf("record %d (byte %d): %w", rec, rec*TPBsize, fmt.Errorf(format, args...))
}

// record reads the next record into rd.buf.
func (rd *Reader) record() ([]byte, error) {
	n, err := io.ReadFull(rd.r, rd.buf[:])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if n == 0 {
				return nil, rd.errf(rd.rec, "%w: the dump ends here", ErrShort)
			}
			return nil, rd.errf(rd.rec, "%w: only %d of %d bytes", ErrShort, n, TPBsize)
		}
		return nil, rd.errf(rd.rec, "%w: reading: %w", ErrFormat, err)
	}
	rd.rec++
	return rd.buf[:], nil
}

// header reads the next record as a header.
func (rd *Reader) header() (*Header, int64, error) {
	at := rd.rec
	b, err := rd.record()
	if err != nil {
		return nil, at, err
	}
	if err := CheckRecord(b); err != nil {
		return nil, at, rd.errf(at, "expected a header: %w", err)
	}
	h := new(Header)
	h.Decode(b)
	switch h.Type {
	case TSTape, TSInode, TSBits, TSAddr, TSEnd, TSClri:
	default:
		return nil, at, rd.errf(at, "%w: unknown header type %d", ErrFormat, h.Type)
	}
	if h.Count < 0 || (h.Type != TSClri && h.Type != TSBits && h.Type != TSEnd && h.Count > TPNindir) {
		return nil, at, rd.errf(at, "%w: %s header with c_count %d (0 to %d)", ErrFormat, typeName(h.Type), h.Count, TPNindir)
	}
	h.normalize()
	return h, at, nil
}

// skipDump skips the dump at the start of the stream: up to its TS_END
// and the TS_END records that pad its last tape write.
func (rd *Reader) skipDump(n int) error {
	for {
		b, err := rd.record()
		if err != nil {
			return fmt.Errorf("skipping dump %d: %w", n, err)
		}
		if CheckRecord(b) == nil && int32(le.Uint32(b)) == TSEnd {
			break
		}
	}
	for {
		b, err := rd.r.Peek(TPBsize)
		if err != nil {
			return fmt.Errorf("dump %d: %w: no further dump in the input", n+1, ErrShort)
		}
		if CheckRecord(b) != nil || int32(le.Uint32(b)) != TSEnd {
			return nil
		}
		if _, err := rd.record(); err != nil {
			return err
		}
	}
}

// start reads the volume header and the two maps.
func (rd *Reader) start() error {
	if _, err := rd.r.Peek(1); errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the input is empty, not a dump", ErrFormat)
	} else if err != nil {
		return fmt.Errorf("%w: reading the start of the dump: %w", ErrFormat, err)
	}
	h, at, err := rd.header()
	if err != nil {
		if errors.Is(err, ErrMagic) && at == 0 {
			return fmt.Errorf("%w: the input is not a dump (no dump header in its first record)", ErrFormat)
		}
		return err
	}
	if h.Type != TSTape {
		return rd.errf(at, "%w: the first record is a %s header, not TS_TAPE", ErrFormat, typeName(h.Type))
	}
	if h.Volume != 1 {
		return rd.errf(at, "%w: volume %d: this is not volume 1 of the dump (multi-volume dumps are not supported)", ErrFormat, h.Volume)
	}
	rd.Volume = *h
	if rd.Clri, err = rd.readMap(TSClri); err != nil {
		return err
	}
	rd.Maxino = uint32(len(rd.Clri))*8 + 1
	if rd.Bits, err = rd.readMap(TSBits); err != nil {
		return err
	}
	if len(rd.Bits) < len(rd.Clri) {
		rd.Bits = append(rd.Bits, make([]byte, len(rd.Clri)-len(rd.Bits))...)
	}
	rd.next, rd.nextRec, err = rd.header()
	return err
}

func (rd *Reader) readMap(typ int32) ([]byte, error) {
	h, at, err := rd.header()
	if err != nil {
		return nil, err
	}
	if h.Type != typ {
		what := map[int32]string{TSClri: "file removal list", TSBits: "file dump list"}[typ]
		return nil, rd.errf(at, "%w: cannot find the %s (%s): found a %s header", ErrFormat, what, typeName(typ), typeName(h.Type))
	}
	if h.Count > maxMapRecords {
		return nil, rd.errf(at, "%w: %s map of %d records (at most %d)", ErrFormat, typeName(typ), h.Count, maxMapRecords)
	}
	var m []byte
	for range h.Count {
		b, err := rd.record()
		if err != nil {
			return nil, err
		}
		m = append(m, b...)
	}
	return m, nil
}

func inoT(x uint32) ondisk.Ino { return ondisk.Ino(x) }

// InoUsed and InoDumped test the maps.
func (rd *Reader) InoUsed(ino uint32) bool   { return testIno(rd.Clri, inoT(ino)) }
func (rd *Reader) InoDumped(ino uint32) bool { return testIno(rd.Bits, inoT(ino)) }

// Next returns the header of the next file, or nil at the end of the dump
// (TS_END). The file's contents must be read with ReadFile or SkipFile
// before the next call.
func (rd *Reader) Next() (*Header, error) {
	if rd.done {
		return nil, nil
	}
	h := rd.next
	switch h.Type {
	case TSEnd:
		rd.done = true
		return nil, nil
	case TSInode:
		if h.Extsize < 0 || h.Extsize > 2*65536 {
			return nil, rd.errf(rd.nextRec, "%w: inode %d: c_extsize %d", ErrFormat, h.Inumber, h.Extsize)
		}
		return h, nil
	case TSTape:
		return nil, rd.errf(rd.nextRec, "%w: a second volume header (multi-volume dumps are not supported)", ErrFormat)
	}
	return nil, rd.errf(rd.nextRec, "%w: expected a file header (TS_INODE), found %s", ErrFormat, typeName(h.Type))
}

// FileData receives a file's contents from ReadFile: Data the present
// records (the last one cut at the file size) at their byte offsets, in
// order; holes are the ranges it is not called for.
type FileData interface {
	Data(off int64, b []byte) error
}

// ReadFile reads the contents of the file whose header Next returned:
// data goes to fd (nil discards it), the extended attribute area is
// returned. It follows restore's getfile: data records for c_size bytes,
// then c_extsize bytes of attributes, across TS_ADDR headers.
func (rd *Reader) ReadFile(fd FileData) ([]byte, error) {
	h := rd.next
	size := int64(h.Size)
	attrsize := int64(h.Extsize)
	var ea []byte
	inAttr := false
	if size == 0 && attrsize > 0 {
		inAttr, size, attrsize = true, attrsize, 0
	}
	var off int64
	hdrRec := rd.nextRec
	for {
		count := int(h.Count)
		i := 0
		finished := false
		for ; i < count; i++ {
			if h.Addr[i] != 0 {
				b, err := rd.record()
				if err != nil {
					return ea, fmt.Errorf("inode %d: %w", h.Inumber, err)
				}
				n := min(int64(TPBsize), size)
				if inAttr {
					ea = append(ea, b[:max(n, 0)]...)
				} else if fd != nil && n > 0 {
					if err := fd.Data(off, b[:n]); err != nil {
						return ea, err
					}
				}
			}
			if !inAttr {
				off += TPBsize
			}
			if size -= TPBsize; size <= 0 {
				if attrsize > 0 {
					inAttr, size, attrsize = true, attrsize, 0
					continue
				}
				finished = true
				break
			}
		}
		if finished {
			// junk records the header still maps
			for i++; i < count; i++ {
				if h.Addr[i] != 0 {
					if _, err := rd.record(); err != nil {
						return ea, fmt.Errorf("inode %d: %w", h.Inumber, err)
					}
				}
			}
		}
		nh, at, err := rd.header()
		if err != nil {
			return ea, fmt.Errorf("inode %d (file header at record %d): %w", h.Inumber, hdrRec, err)
		}
		rd.next, rd.nextRec = nh, at
		if size > 0 {
			if nh.Type == TSAddr {
				if nh.Inumber != h.Inumber {
					return ea, rd.errf(at, "%w: continuation header of inode %d inside inode %d", ErrFormat, nh.Inumber, h.Inumber)
				}
				h = nh
				continue
			}
			return ea, rd.errf(at, "%w: inode %d: missing continuation header (TS_ADDR): %d bytes not on the dump", ErrFormat, h.Inumber, size+attrsize)
		}
		// Stray continuation headers of this file (there should be none).
		for rd.next.Type == TSAddr {
			h = rd.next
			for i := 0; i < int(h.Count); i++ {
				if h.Addr[i] != 0 {
					if _, err := rd.record(); err != nil {
						return ea, err
					}
				}
			}
			if rd.next, rd.nextRec, err = rd.header(); err != nil {
				return ea, err
			}
		}
		return ea, nil
	}
}

// SkipFile reads past the file whose header Next returned.
func (rd *Reader) SkipFile() error {
	_, err := rd.ReadFile(nil)
	return err
}
