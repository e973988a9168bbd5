package mount

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Benchmarks of the mount served in-process (go test -bench . -cpuprofile
// shows the server's costs). bench/run.sh compares against go-fuse's
// loopback.

func benchMount(b *testing.B, size int64) string {
	b.Helper()
	img := newImage(b, size)
	mnt, _ := mountImage(b, img, Options{})
	return mnt
}

func BenchmarkSeqWrite(b *testing.B) {
	mnt := benchMount(b, 1<<30)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	f, err := os.Create(filepath.Join(mnt, "seq"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(buf, int64(i%512)*int64(len(buf))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRandWrite4K writes 4 KiB at random offsets of a 256 MiB file
// from 4 goroutines.
func BenchmarkRandWrite4K(b *testing.B) {
	mnt := benchMount(b, 512<<20)
	p := filepath.Join(mnt, "rand")
	const size = 256 << 20
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(4096)
	b.ReportAllocs()
	b.SetParallelism(2)
	var seed uint64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		seed++
		rng := rand.New(rand.NewPCG(seed, 1))
		mu.Unlock()
		w := make([]byte, 4096)
		for pb.Next() {
			if _, err := f.WriteAt(w, rng.Int64N(size/4096)*4096); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateRemove creates and removes empty files in one directory.
func BenchmarkCreateRemove(b *testing.B) {
	mnt := benchMount(b, 256<<20)
	dir := filepath.Join(mnt, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := filepath.Join(dir, fmt.Sprintf("f%07d", i))
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
		if i%2 == 1 {
			if err := unix.Unlink(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStatUncached stats files with the kernel's caches off, so every
// stat is a LOOKUP (and GETATTR) answered by the server.
func BenchmarkStatUncached(b *testing.B) {
	img := newImage(b, 256<<20)
	mnt, _ := mountImage(b, img, Options{Timeout: -1})
	dir := filepath.Join(mnt, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var st unix.Stat_t
	for i := 0; b.Loop(); i++ {
		if err := unix.Lstat(filepath.Join(dir, fmt.Sprintf("f%04d", i%n)), &st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRemove removes files created beforehand (outside the timer).
func BenchmarkRemove(b *testing.B) {
	mnt := benchMount(b, 256<<20)
	dir := filepath.Join(mnt, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		p := filepath.Join(dir, fmt.Sprintf("f%07d", i))
		i++
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := unix.Unlink(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRandReadDirect4K reads 4 KiB at random offsets with O_DIRECT,
// so that every read is a request to the server.
func BenchmarkRandReadDirect4K(b *testing.B) {
	mnt := benchMount(b, 256<<20)
	p := filepath.Join(mnt, "r")
	const size = 64 << 20
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Munmap(buf)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Pread(fd, buf, rng.Int64N(size/4096)*4096); err != nil {
			b.Fatal(err)
		}
	}
}
