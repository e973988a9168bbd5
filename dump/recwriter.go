package dump

import (
	"fmt"
	"io"
)

// recWriter collects records into tape writes of ntrec records, as dump's
// slaves do, and writes only whole tape writes: what is left over after the
// last TS_END header is dropped, as FreeBSD's dump drops it.
//
// Data records are read from the device straight into the output buffer.
// Reads are deferred and merged while they stay contiguous both on the
// device and in the buffer, so that a file laid out contiguously is read
// in large requests.
type recWriter struct {
	w       io.Writer
	dev     io.ReaderAt
	onErr   func(off int64, size, got int, err error)
	recsz   int    // bytes per tape write
	buf     []byte // a whole number of tape writes
	n       int    // bytes used in buf
	written int64

	// the pending read: dev[runDev:runDev+runLen] into buf[runBuf:]
	runDev int64
	runBuf int
	runLen int
}

const writeBufBytes = 1 << 20

func newRecWriter(w io.Writer, ntrec int, dev io.ReaderAt, onErr func(int64, int, int, error)) *recWriter {
	recsz := ntrec * TPBsize
	size := max(1, writeBufBytes/recsz) * recsz
	return &recWriter{w: w, dev: dev, onErr: onErr, recsz: recsz, buf: make([]byte, size)}
}

// room makes sure n more bytes fit in buf.
func (r *recWriter) room(n int) error {
	if r.n+n <= len(r.buf) {
		return nil
	}
	return r.flush(r.n)
}

// flush writes the first upto bytes of buf (a multiple of recsz) and
// keeps the rest.
func (r *recWriter) flush(upto int) error {
	r.doRead()
	if upto > 0 {
		m, err := r.w.Write(r.buf[:upto])
		r.written += int64(m)
		if err != nil {
			return fmt.Errorf("dump: writing the output: %w", err)
		}
	}
	r.n = copy(r.buf, r.buf[upto:r.n])
	return nil
}

// record appends one 1024-byte record.
func (r *recWriter) record(b []byte) error {
	if err := r.room(TPBsize); err != nil {
		return err
	}
	copy(r.buf[r.n:r.n+TPBsize], b)
	r.n += TPBsize
	return nil
}

// data appends size bytes (a multiple of TPBsize) read from the device at
// byte off.
func (r *recWriter) data(off int64, size int) error {
	for size > 0 {
		if err := r.room(TPBsize); err != nil {
			return err
		}
		n := min(size, len(r.buf)-r.n)
		n -= n % TPBsize
		if r.runLen > 0 && r.runBuf+r.runLen == r.n && r.runDev+int64(r.runLen) == off {
			r.runLen += n
		} else {
			r.doRead()
			r.runDev, r.runBuf, r.runLen = off, r.n, n
		}
		r.n += n
		off += int64(n)
		size -= n
	}
	return nil
}

// doRead performs the pending read; a failed or short read leaves zeros
// and is reported.
func (r *recWriter) doRead() {
	if r.runLen == 0 {
		return
	}
	b := r.buf[r.runBuf : r.runBuf+r.runLen]
	got, err := r.dev.ReadAt(b, r.runDev)
	if got < len(b) {
		clear(b[got:])
		r.onErr(r.runDev, len(b), got, err)
	}
	r.runLen = 0
}

// close writes the whole tape writes still buffered and drops the rest.
func (r *recWriter) close() error {
	return r.flush(r.n - r.n%r.recsz)
}
