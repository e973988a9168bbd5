package ufs

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// failRangeDev fails every write that touches [from, to) while fail is set.
type failRangeDev struct {
	*blockdev.Mem
	fail     atomic.Bool
	from, to int64
	failed   atomic.Int64
}

var errInjected = errors.New("injected write error")

func (d *failRangeDev) WriteAt(p []byte, off int64) (int, error) {
	if d.fail.Load() && off < d.to && off+int64(len(p)) > d.from {
		d.failed.Add(1)
		return 0, errInjected
	}
	return d.Mem.WriteAt(p, off)
}

// TestWriteDirect checks the cache-bypassing data writes: whole blocks
// and parts of written blocks reach the device without leaving buffers in
// the cache (and without reading the rest of the block); when such a
// write fails, the data stays readable in dirty buffers, Sync reports the
// failure, and once the device works again Sync writes it.
func TestWriteDirect(t *testing.T) {
	for _, g := range []testGeom{geomBig, geomBigSU} {
		t.Run(g.name, func(t *testing.T) {
			dev := &failRangeDev{Mem: blockdev.NewMemBytes(emptyImage(t, g))}
			fsys, err := Open(dev, Options{SyncInterval: -1})
			must(t, err)
			bsize := int64(fsys.sb.Bsize)
			ino := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
			const nblk = 20 // past the direct blocks
			data := make([]byte, nblk*bsize)
			for i := range data {
				data[i] = byte(i*7 + 1)
			}
			before := fsys.cache.Stats()
			if n, err := fsys.WriteAt(ino, data, 0); n != len(data) || err != nil {
				t.Fatalf("WriteAt = %d, %v", n, err)
			}
			after := fsys.cache.Stats()
			if grew := after.Bytes - before.Bytes; grew >= bsize*nblk/2 {
				t.Errorf("whole-block writes left %d bytes in the cache", grew)
			}
			// Part of a written block: no read of the block.
			reads := after.Misses
			part := bytes.Repeat([]byte{0xee}, 4096)
			if n, err := fsys.WriteAt(ino, part, 3*bsize+8192); n != len(part) || err != nil {
				t.Fatalf("WriteAt = %d, %v", n, err)
			}
			copy(data[3*bsize+8192:], part)
			if m := fsys.cache.Stats().Misses; m != reads {
				t.Errorf("a partial write of a written block read %d buffers", m-reads)
			}
			must(t, fsys.Sync())

			// Fail writes to the file's blocks 2..5 and overwrite them,
			// whole and in part.
			p2, err := fsys.Bmap(ino, 2)
			must(t, err)
			p5, err := fsys.Bmap(ino, 5)
			must(t, err)
			if p5 != p2+3*ondisk.Frag(fsys.sb.Frag) {
				t.Fatalf("blocks 2..5 not contiguous: %d, %d", p2, p5)
			}
			dev.from, dev.to = fsys.sb.FragOffset(p2), fsys.sb.FragOffset(p5)+bsize
			dev.fail.Store(true)
			whole := bytes.Repeat([]byte{0x5a}, int(3*bsize))
			if n, err := fsys.WriteAt(ino, whole, 2*bsize); n != len(whole) || err != nil {
				t.Fatalf("WriteAt over a failing device = %d, %v (the data should stay in the cache)", n, err)
			}
			copy(data[2*bsize:], whole)
			if n, err := fsys.WriteAt(ino, part, 5*bsize+100); n != len(part) || err != nil {
				t.Fatalf("WriteAt over a failing device = %d, %v", n, err)
			}
			copy(data[5*bsize+100:], part)
			if dev.failed.Load() == 0 {
				t.Fatal("no write failed")
			}
			got := make([]byte, len(data))
			if n, err := fsys.ReadAt(ino, got, 0); n != len(got) || err != nil {
				t.Fatalf("ReadAt = %d, %v", n, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("contents differ after failed direct writes")
			}
			if err := fsys.Sync(); !errors.Is(err, errInjected) {
				t.Errorf("Sync with the data unwritable = %v, want the write error", err)
			}
			dev.fail.Store(false)
			must(t, fsys.Sync())
			must(t, fsys.Close())

			fsys, err = Open(dev.Mem, Options{})
			must(t, err)
			defer fsys.Close()
			clear(got)
			if n, err := fsys.ReadAt(ino, got, 0); n != len(got) || err != nil {
				t.Fatalf("ReadAt after remount = %d, %v", n, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("contents differ after remount")
			}
			checkFS(t, fsys)
		})
	}
}
