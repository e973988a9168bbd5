package newfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
)

// countingDevice counts the bytes written through it.
type countingDevice struct {
	blockdev.Device
	n atomic.Int64
}

func (c *countingDevice) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.Device.WriteAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// BenchmarkNewfs formats sparse image files of 1 GiB, 100 GiB and 1 TiB and
// reports the bytes written per run and the wall time per run.
func BenchmarkNewfs(b *testing.B) {
	for _, size := range []int64{gib, 100 * gib, tib} {
		b.Run(fmt.Sprintf("%dGiB", size/gib), func(b *testing.B) {
			b.ReportAllocs()
			dir := b.TempDir()
			var written int64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				path := filepath.Join(dir, "img")
				_ = os.Remove(path)
				dev, err := blockdev.Open(path, blockdev.Options{Create: true, CreateSize: size})
				if err != nil {
					b.Fatal(err)
				}
				cw := &countingDevice{Device: dev}
				b.StartTimer()
				start := time.Now()
				if _, err := Format(context.Background(), cw, DefaultParams()); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				b.StopTimer()
				written += cw.n.Load()
				_ = dev.Close()
			}
			b.ReportMetric(float64(written)/float64(b.N), "bytes-written/op")
			b.ReportMetric(float64(written)/float64(b.N)/float64(size)*100, "%-of-size")
			b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/op")
		})
	}
}
