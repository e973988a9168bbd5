package ufs

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// BenchmarkOverwriteWithSnapshot overwrites a 64 MiB file in 1 MiB writes
// on an image file, fsync at the end, three ways in one run: with no
// snapshot (the reference), with a snapshot taken just before (first pass:
// every block copied), and again (second pass: nothing left to copy). It
// reports each as a ratio of the reference's throughput (the aims:
// >= 0.5 and >= 0.95).
func BenchmarkOverwriteWithSnapshot(b *testing.B) {
	const size, chunk = 64 << 20, 1 << 20
	buf := make([]byte, chunk)
	pass := func(fsys *FS, ino uint32) time.Duration {
		start := time.Now()
		for off := int64(0); off < size; off += chunk {
			buf[0]++
			if _, err := fsys.WriteAt(ondisk.Ino(ino), buf, off); err != nil {
				b.Fatal(err)
			}
		}
		if err := fsys.Fsync(ondisk.Ino(ino), false); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var ref, first, second time.Duration
	for b.Loop() {
		img := filepath.Join(b.TempDir(), "bench.img")
		raw := emptyImage(b, testGeom{name: "32k-4k-su-256m", size: "256m", bsize: 32768, fsize: 4096, extra: "density=65536", softdep: true})
		dev, err := blockdev.Open(img, blockdev.Options{Create: true, CreateSize: int64(len(raw))})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dev.WriteAt(raw, 0); err != nil {
			b.Fatal(err)
		}
		fsys, err := Open(dev, Options{})
		if err != nil {
			b.Fatal(err)
		}
		ino := mustIno(b)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
		pass(fsys, uint32(ino)) // allocate
		ref += pass(fsys, uint32(ino))
		if _, err := fsys.CreateSnapshot("s"); err != nil {
			b.Fatal(err)
		}
		first += pass(fsys, uint32(ino))
		second += pass(fsys, uint32(ino))
		if err := fsys.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ref)/float64(first), "first-pass-ratio")
	b.ReportMetric(float64(ref)/float64(second), "second-pass-ratio")
}
