package ufs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
)

// geomBench holds 10,000 files with soft updates on.
var geomBench = testGeom{name: "8k-1k-su-bench", size: "64m", bsize: 8192, fsize: 1024, extra: "density=2048", softdep: true}

// createRemove creates and removes n files in a new directory of a copy
// of img on an image file, opened with opts, and returns how long that
// took, Close (which writes everything left) included.
func createRemove(b *testing.B, img []byte, n int, opts Options) time.Duration {
	b.Helper()
	path := filepath.Join(b.TempDir(), "img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		b.Fatal(err)
	}
	dev, err := blockdev.Open(path, blockdev.Options{})
	if err != nil {
		b.Fatal(err)
	}
	fsys, err := Open(dev, opts)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	dir, err := fsys.Mkdir(fsys.Root(), "d", 0o755, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := fsys.Create(dir, dirBenchName(i), 0o644, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		if err := fsys.Unlink(dir, dirBenchName(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := fsys.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkCreateRemove10k creates and removes 10,000 files on an image
// file, with soft updates and with the synchronous ordering (every
// ordering point written before the call returns, the maps at sync), and
// reports both times and their ratio (sync/softdep: how many times faster
// soft updates are).
func BenchmarkCreateRemove10k(b *testing.B) {
	const n = 10_000
	img := emptyImage(b, geomBench)
	var su, sy time.Duration
	runs := 0
	for b.Loop() {
		su += createRemove(b, img, n, Options{})
		sy += createRemove(b, img, n, Options{NoSoftUpdates: true})
		runs++
	}
	b.ReportMetric(su.Seconds()/float64(runs), "s-softdep/op")
	b.ReportMetric(sy.Seconds()/float64(runs), "s-sync/op")
	ratio := float64(sy) / float64(su)
	b.ReportMetric(ratio, "sync/softdep")
	b.Logf("create+remove %d files: soft updates %v, synchronous ordering %v: ratio %.1f",
		n, su/time.Duration(runs), sy/time.Duration(runs), ratio)
}
