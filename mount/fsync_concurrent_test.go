package mount

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/testutil"
)

// TestConcurrentFsyncScript runs the reported reproduction,
// testdata/concurrent-fsync.py (a copy of shared/repro's): several
// processes writing up to 70,000 random bytes at random offsets into four
// shared files of up to 8 MiB, truncating now and then, fsyncing after
// every step. No fsync or truncate may fail. Before the fix one stuck
// dependency (a truncation dropping the buffer of a block already handed
// to another file) failed every fsync after it: 392 of 400 steps.
func TestConcurrentFsyncScript(t *testing.T) {
	testutil.RequireTool(t, "python3", "python3")
	_, mnt, _ := mountRW(t, 512<<20)
	for _, procs := range []int{4, 8, 16} {
		for _, seed := range []int{1, 2} {
			dir := filepath.Join(mnt, fmt.Sprintf("p%d-s%d", procs, seed))
			out, err := exec.Command("python3", "testdata/concurrent-fsync.py", dir,
				strconv.Itoa(procs), "100", strconv.Itoa(seed)).CombinedOutput()
			t.Logf("%d processes, seed %d: %s", procs, seed, bytes.TrimSpace(out))
			if err != nil {
				t.Fatalf("concurrent-fsync.py %d processes seed %d: %v\n%s", procs, seed, err, out)
			}
		}
	}
}

// TestConcurrentFsyncDirect is the same workload with O_DIRECT writes (they
// reach the engine unsplit by the page cache) from goroutines with their
// own descriptors, and the files' contents checked against a model at the
// end. Each file's write and truncation are serialised by the model's lock;
// the fsyncs, and everything on the other files, overlap.
func TestConcurrentFsyncDirect(t *testing.T) {
	_, mnt, _ := mountRW(t, 256<<20)
	const nfiles, maxSize, page = 4, 8 << 20, 4096
	for _, workers := range []int{4, 16} {
		seed := uint64(workers)
		t.Logf("%d workers, seed %d", workers, seed)
		dir := filepath.Join(mnt, fmt.Sprintf("direct%d", workers))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var models [nfiles]struct {
			sync.Mutex
			data []byte
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(w)))
				// O_DIRECT wants an aligned buffer: an anonymous mapping is.
				buf, err := unix.Mmap(-1, 0, 17*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
				if err != nil {
					errs <- err
					return
				}
				defer unix.Munmap(buf)
				for step := range 60 {
					k := rng.IntN(nfiles)
					p := filepath.Join(dir, fmt.Sprintf("f%d", k))
					fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT, 0o644)
					if err != nil {
						errs <- fmt.Errorf("worker %d step %d: open: %w", w, step, err)
						return
					}
					n := page * (1 + rng.IntN(17))
					off := int64(page * rng.IntN(maxSize/page))
					for i := range n {
						buf[i] = byte(rng.Uint32())
					}
					m := &models[k]
					m.Lock()
					_, err = unix.Pwrite(fd, buf[:n], off)
					if err == nil {
						if end := off + int64(n); end > int64(len(m.data)) {
							m.data = append(m.data, make([]byte, end-int64(len(m.data)))...)
						}
						copy(m.data[off:], buf[:n])
						if rng.IntN(5) == 0 {
							size := rng.IntN(maxSize)
							if err = unix.Ftruncate(fd, int64(size)); err == nil {
								if size < len(m.data) {
									m.data = m.data[:size]
								} else {
									m.data = append(m.data, make([]byte, size-len(m.data))...)
								}
							}
						}
					}
					m.Unlock()
					if err == nil {
						err = unix.Fsync(fd)
					}
					unix.Close(fd)
					if err != nil {
						errs <- fmt.Errorf("worker %d step %d (file %d, %d bytes at %d): %w", w, step, k, n, off, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for k := range models {
			p := filepath.Join(dir, fmt.Sprintf("f%d", k))
			got, err := os.ReadFile(p)
			if os.IsNotExist(err) && len(models[k].data) == 0 {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, models[k].data) {
				i := 0
				for i < min(len(got), len(models[k].data)) && got[i] == models[k].data[i] {
					i++
				}
				t.Errorf("%s: %d bytes, want %d; first difference at %d", p, len(got), len(models[k].data), i)
			}
		}
	}
}
