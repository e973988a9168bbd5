package ufs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
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

// stopwatch is the part of *testing.B that dirOps uses to keep its
// untimed work (making names to remove, removing names made) out of the
// measurement; watch implements it for the interleaved reference.
type stopwatch interface {
	StartTimer()
	StopTimer()
}

type watch struct {
	total   time.Duration
	started time.Time
	running bool
}

func (w *watch) StartTimer() {
	if !w.running {
		w.started, w.running = time.Now(), true
	}
}

func (w *watch) StopTimer() {
	if w.running {
		w.total += time.Since(w.started)
		w.running = false
	}
}

// dirOps does one kind of operation again and again in one directory of
// size entries: "lookup" (of a name drawn at random), "lookup-100" (of
// 100 names drawn at random once, in turn: all the names of the small
// directory), "create" or "remove".
type dirOps struct {
	fsys  *FS
	dir   ondisk.Ino
	size  int
	op    string
	rng   *rand.Rand
	batch []string // created, to be removed (create); made ahead (remove)
	next  int
	hot   []string // lookup-100: the names looked up, in turn
}

func newDirOps(fsys *FS, dir ondisk.Ino, size int, op string) *dirOps {
	d := &dirOps{fsys: fsys, dir: dir, size: size, op: op, rng: rand.New(rand.NewPCG(1, 2)), batch: make([]string, 0, 100)}
	if op == "lookup-100" {
		for i := range min(size, 100) {
			if size > 100 {
				i = d.rng.IntN(size)
			}
			d.hot = append(d.hot, dirBenchName(i))
		}
	}
	return d
}

func (d *dirOps) newName() string { d.next++; return fmt.Sprintf("new-%d-%s", d.next, d.op) }

// run does n operations with w running, stopping it for the work that is
// not the operation measured.
func (d *dirOps) run(b *testing.B, w stopwatch, n int) {
	fsys, dir := d.fsys, d.dir
	for range n {
		switch d.op {
		case "lookup":
			if _, err := fsys.Lookup(dir, dirBenchName(d.rng.IntN(d.size))); err != nil {
				b.Fatal(err)
			}
		case "lookup-100":
			d.next++
			if _, err := fsys.Lookup(dir, d.hot[d.next%len(d.hot)]); err != nil {
				b.Fatal(err)
			}
		case "create":
			name := d.newName()
			if _, err := fsys.Create(dir, name, 0o644, 0, 0); err != nil {
				b.Fatal(err)
			}
			if d.batch = append(d.batch, name); len(d.batch) == cap(d.batch) {
				w.StopTimer()
				d.flush(b)
				w.StartTimer()
			}
		case "remove":
			if len(d.batch) == 0 {
				w.StopTimer()
				for range cap(d.batch) {
					name := d.newName()
					if _, err := fsys.Create(dir, name, 0o644, 0, 0); err != nil {
						b.Fatal(err)
					}
					d.batch = append(d.batch, name)
				}
				w.StartTimer()
			}
			name := d.batch[len(d.batch)-1]
			d.batch = d.batch[:len(d.batch)-1]
			if err := fsys.Unlink(dir, name); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// flush removes the names the operations left behind, so that the
// directory keeps its size.
func (d *dirOps) flush(b *testing.B) {
	for _, name := range d.batch {
		if err := d.fsys.Unlink(d.dir, name); err != nil {
			b.Fatal(err)
		}
	}
	d.batch = d.batch[:0]
}

// dirOpsRound is how many operations the 100,000-entry run does before
// doing as many in the 100-entry directory for its reference.
const dirOpsRound = 1000

// BenchmarkDirOps times lookup, create and remove in a directory of 100
// entries and in one of 100,000, and reports for the large one the ratio
// of its cost to the small one's ("x-vs-100"): with dirhash it stays near
// 1 instead of growing with the directory. The small directory's cost for
// the ratio is measured in the same run as the large one's, in rounds of
// dirOpsRound operations in each in turn, and the ratio reported is the
// median of the rounds' ratios: on a machine shared with other work, a
// round that the scheduler or the garbage collector interrupts is an
// outlier rather than a shift of the whole result. The 100-entry
// sub-benchmark gives the small directory's cost on its own.
//
// Lookups at random among 100,000 names cost more than among 100 mostly
// because they miss the processor's caches: the large directory's index
// and blocks are megabytes, the small one's a few kilobytes.
// "lookup-100" looks up 100 of the large directory's names, as many as
// the small one has, which shows what is left: the cost of the
// directory's size itself.
func BenchmarkDirOps(b *testing.B) {
	fsys, small, big := dirBenchFS(b)
	for _, op := range []string{"lookup", "lookup-100", "create", "remove"} {
		for _, size := range []int{smallDirEntries, bigDirEntries} {
			b.Run(fmt.Sprintf("%s/%d", op, size), func(b *testing.B) {
				b.ReportAllocs()
				runtime.GC() // not the garbage of what ran before
				if size == smallDirEntries {
					d := newDirOps(fsys, small, size, op)
					b.ResetTimer()
					d.run(b, b, b.N)
					b.StopTimer()
					d.flush(b)
					return
				}
				d, ref := newDirOps(fsys, big, size, op), newDirOps(fsys, small, smallDirEntries, op)
				var ratios []float64
				b.ResetTimer()
				for done := 0; done < b.N; done += dirOpsRound {
					n := min(dirOpsRound, b.N-done)
					before := b.Elapsed()
					d.run(b, b, n)
					b.StopTimer()
					var w watch
					w.StartTimer()
					ref.run(b, &w, n)
					w.StopTimer()
					ratios = append(ratios, float64(b.Elapsed()-before)/float64(w.total))
					b.StartTimer()
				}
				b.StopTimer()
				d.flush(b)
				ref.flush(b)
				slices.Sort(ratios)
				b.ReportMetric(ratios[len(ratios)/2], "x-vs-100")
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
