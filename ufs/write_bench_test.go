package ufs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// geomHuge has room for a directory of 100,000 files.
var geomHuge = testGeom{name: "8k-1k-120k-inodes", size: "112m", bsize: 8192, fsize: 1024, extra: "density=640"}

var (
	dirBenchOnce sync.Once
	dirBench     struct {
		m          *memFS
		small, big ondisk.Ino
		err        error
	}
	// dirBenchSmall holds each operation's ns/op in the 100-entry
	// directory, for the ratio the 100,000-entry run reports.
	dirBenchSmall = map[string]float64{}
)

const (
	smallDirEntries = 100
	bigDirEntries   = 100_000
)

func dirBenchName(i int) string { return fmt.Sprintf("file-%06d", i) }

// dirBenchFS builds, once per test binary, a filesystem with a directory
// of 100 entries and one of 100,000.
func dirBenchFS(b *testing.B) (*FS, ondisk.Ino, ondisk.Ino) {
	dirBenchOnce.Do(func() {
		m := &memFS{t: b, opts: Options{Async: true}}
		m.dev = memDev(emptyImage(b, geomHuge))
		m.open()
		fsys := m.fs
		mk := func(name string, n int) ondisk.Ino {
			d, err := fsys.Mkdir(fsys.Root(), name, 0o755, 0, 0)
			if err != nil {
				dirBench.err = err
				return 0
			}
			for i := range n {
				if _, err := fsys.Create(d, dirBenchName(i), 0o644, 0, 0); err != nil {
					dirBench.err = fmt.Errorf("create %d: %w", i, err)
					return 0
				}
			}
			return d
		}
		start := time.Now()
		dirBench.m = m
		dirBench.small = mk("small", smallDirEntries)
		dirBench.big = mk("big", bigDirEntries)
		b.Logf("made directories of %d and %d entries in %v", smallDirEntries, bigDirEntries, time.Since(start))
	})
	if dirBench.err != nil {
		b.Fatal(dirBench.err)
	}
	return dirBench.m.fs, dirBench.small, dirBench.big
}

// BenchmarkDirOps times lookup, create and remove in a directory of 100
// entries and in one of 100,000, and reports for the large one the ratio
// of its cost to the small one's ("x-vs-100"): with dirhash it stays near
// 1 instead of growing with the directory.
func BenchmarkDirOps(b *testing.B) {
	fsys, small, big := dirBenchFS(b)
	for _, op := range []string{"lookup", "create", "remove"} {
		for _, size := range []int{smallDirEntries, bigDirEntries} {
			dir := small
			if size == bigDirEntries {
				dir = big
			}
			b.Run(fmt.Sprintf("%s/%d", op, size), func(b *testing.B) {
				b.ReportAllocs()
				rng := rand.New(rand.NewPCG(1, 2))
				batch := make([]string, 0, 100)
				flush := func(remove bool) {
					b.StopTimer()
					for _, n := range batch {
						var err error
						if remove {
							err = fsys.Unlink(dir, n)
						} else {
							_, err = fsys.Create(dir, n, 0o644, 0, 0)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					batch = batch[:0]
					b.StartTimer()
				}
				// remove: names to remove made ahead, outside the timer.
				next := 0
				newName := func() string { next++; return fmt.Sprintf("new-%d-%s", next, op) }
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					switch op {
					case "lookup":
						if _, err := fsys.Lookup(dir, dirBenchName(rng.IntN(size))); err != nil {
							b.Fatal(err)
						}
					case "create":
						n := newName()
						if _, err := fsys.Create(dir, n, 0o644, 0, 0); err != nil {
							b.Fatal(err)
						}
						if batch = append(batch, n); len(batch) == cap(batch) {
							flush(true)
						}
					case "remove":
						if len(batch) == 0 {
							b.StopTimer()
							for range cap(batch) {
								n := newName()
								if _, err := fsys.Create(dir, n, 0o644, 0, 0); err != nil {
									b.Fatal(err)
								}
								batch = append(batch, n)
							}
							b.StartTimer()
						}
						n := batch[len(batch)-1]
						batch = batch[:len(batch)-1]
						if err := fsys.Unlink(dir, n); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				switch op {
				case "create":
					flush(true)
				case "remove":
					for _, n := range batch {
						if err := fsys.Unlink(dir, n); err != nil {
							b.Fatal(err)
						}
					}
					batch = batch[:0]
				}
				per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				if size == smallDirEntries {
					dirBenchSmall[op] = per
				} else if s := dirBenchSmall[op]; s > 0 {
					b.ReportMetric(per/s, "x-vs-100")
				}
			})
		}
	}
}

// BenchmarkWriteRead measures the engine's sequential write and read
// throughput (no FUSE) on an in-memory device, 1 MiB per call, with the
// synchronous ordering and (32k-4k-su) with soft updates.
func BenchmarkWriteRead(b *testing.B) {
	for _, g := range []testGeom{geomBig, geomMid, geomBigSU} {
		m := newMemFS(b, g, Options{})
		fsys := m.fs
		ino, err := fsys.Create(fsys.Root(), "big", 0o644, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		const chunkSize = 1 << 20
		const fileSize = 24 << 20
		buf := make([]byte, chunkSize)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run("write/"+g.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(chunkSize)
			off := int64(0)
			for i := 0; i < b.N; i++ {
				if off+chunkSize > fileSize {
					b.StopTimer()
					if err := fsys.Truncate(ino, 0); err != nil {
						b.Fatal(err)
					}
					off = 0
					b.StartTimer()
				}
				if _, err := fsys.WriteAt(ino, buf, off); err != nil {
					b.Fatal(err)
				}
				off += chunkSize
			}
		})
		b.Run("read/"+g.name, func(b *testing.B) {
			if err := fsys.Truncate(ino, 0); err != nil {
				b.Fatal(err)
			}
			for off := int64(0); off < fileSize; off += chunkSize {
				if _, err := fsys.WriteAt(ino, buf, off); err != nil {
					b.Fatal(err)
				}
			}
			if err := fsys.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(chunkSize)
			b.ResetTimer()
			off := int64(0)
			for i := 0; i < b.N; i++ {
				if off >= fileSize {
					off = 0
				}
				if n, err := fsys.ReadAt(ino, buf, off); n != chunkSize || err != nil && err != io.EOF {
					b.Fatal(n, err)
				}
				off += chunkSize
			}
		})
	}
}
