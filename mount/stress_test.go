package mount

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	flagStressTime    = flag.Duration("stress.time", 6*time.Second, "how long TestStressMixed runs its workers")
	flagStressWorkers = flag.Int("stress.workers", 8, "workers of TestStressMixed")
	flagStressSeed    = flag.Uint64("stress.seed", 0, "seed of TestStressMixed (0: from the clock)")
)

// stressOp is one kind of operation of TestStressMixed, with the errors
// the workload itself can cause (another worker renamed or removed the
// name first, or made it).
type stressOp struct {
	name    string
	allowed []syscall.Errno
	run     func(w *stressWorker) error
}

type stressWorker struct {
	id   int
	rng  *rand.Rand
	dirs []string
	buf  []byte
}

func (w *stressWorker) file() string {
	return filepath.Join(w.dirs[w.rng.IntN(len(w.dirs))], fmt.Sprintf("f%d", w.rng.IntN(12)))
}

func (w *stressWorker) data() []byte {
	n := w.rng.IntN(len(w.buf))
	for i := range n {
		w.buf[i] = byte(w.rng.Uint32())
	}
	return w.buf[:n]
}

var stressOps = []stressOp{
	{"write", nil, func(w *stressWorker) error {
		f, err := os.OpenFile(w.file(), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteAt(w.data(), w.rng.Int64N(3<<20)); err != nil {
			return err
		}
		if w.rng.IntN(3) == 0 {
			return f.Sync()
		}
		return nil
	}},
	{"truncate", []syscall.Errno{unix.ENOENT}, func(w *stressWorker) error {
		return os.Truncate(w.file(), w.rng.Int64N(3<<20))
	}},
	{"rename", []syscall.Errno{unix.ENOENT}, func(w *stressWorker) error {
		return os.Rename(w.file(), w.file())
	}},
	{"link", []syscall.Errno{unix.ENOENT, unix.EEXIST}, func(w *stressWorker) error {
		return os.Link(w.file(), w.file())
	}},
	{"unlink open", nil, func(w *stressWorker) error {
		// A name of the worker's own: no other worker reaches the file.
		p := filepath.Join(w.dirs[w.rng.IntN(len(w.dirs))], fmt.Sprintf("tmp%d", w.id))
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Write(w.data()); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		data := w.data()
		if _, err := f.WriteAt(data, 4096); err != nil {
			return fmt.Errorf("write to an unlinked open file: %w", err)
		}
		got := make([]byte, len(data))
		if _, err := f.ReadAt(got, 4096); err != nil && len(data) > 0 {
			return fmt.Errorf("read of an unlinked open file: %w", err)
		}
		if string(got) != string(data) {
			return fmt.Errorf("an unlinked open file read back other bytes than written")
		}
		return f.Sync()
	}},
	{"setxattr", []syscall.Errno{unix.ENOENT}, func(w *stressWorker) error {
		return unix.Setxattr(w.file(), fmt.Sprintf("user.k%d", w.rng.IntN(4)), w.data()[:min(len(w.buf), w.rng.IntN(300))], 0)
	}},
	{"fsync dir", nil, func(w *stressWorker) error {
		d, err := os.Open(w.dirs[w.rng.IntN(len(w.dirs))])
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}},
	{"readdir", nil, func(w *stressWorker) error {
		d, err := os.Open(w.dirs[w.rng.IntN(len(w.dirs))])
		if err != nil {
			return err
		}
		defer d.Close()
		_, err = d.Readdirnames(-1)
		return err
	}},
	{"mkdir rmdir", []syscall.Errno{unix.EEXIST, unix.ENOENT, unix.ENOTEMPTY}, func(w *stressWorker) error {
		p := filepath.Join(w.dirs[w.rng.IntN(len(w.dirs))], fmt.Sprintf("sub%d", w.rng.IntN(3)))
		if w.rng.IntN(2) == 0 {
			return os.Mkdir(p, 0o755)
		}
		return unix.Rmdir(p)
	}},
}

// TestStressMixed runs workers at once on shared directories of one mount,
// each doing random operations of every kind: writes with and without
// fsync, truncations, renames and links across the directories, writes to
// unlinked open files, setxattr, directory fsyncs, readdirs, mkdir and
// rmdir. No operation may fail but with the errors the workload causes
// (a name gone or taken by another worker); the image is clean after
// (mountRW's cleanup). -stress.time runs it for minutes.
func TestStressMixed(t *testing.T) {
	_, mnt, _ := mountRW(t, 256<<20)
	runStress(t, mnt, *flagStressTime, 0)
}

// TestStressSnapshot: the mixed workload, then a snapshot of the live
// mount through its control channel, then the workload again: every
// path that overwrites or frees blocks runs with the snapshot present,
// concurrently. The snapshot holds the tree as it was; both images are
// clean.
func TestStressSnapshot(t *testing.T) {
	img := newImage(t, 256<<20)
	mnt, srv := mountImage(t, img, Options{})
	d := *flagStressTime / 2
	runStress(t, mnt, d, 0)
	before := hostTree(t, mnt)
	rec, ok := FindMount(mnt)
	if !ok {
		t.Fatal("no record of the mount")
	}
	if err := Call(rec, "snapshot.create", SnapshotArgs{Name: "s"}, nil); err != nil {
		t.Fatal(err)
	}
	runStress(t, mnt, d, 1)
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	checkSnapshotImage(t, img, before, "s")
}

// runStress runs the mixed workload on mnt for d; round tells the seeds of
// one run from another's.
func runStress(t *testing.T, mnt string, d time.Duration, round uint64) {
	t.Helper()
	s := *flagStressSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	s += round
	t.Logf("seed %d (rerun with -stress.seed=%d), %d workers for %v", s, s-round, *flagStressWorkers, d)
	var dirs []string
	for i := range 4 {
		d := filepath.Join(mnt, fmt.Sprintf("d%d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	deadline := time.Now().Add(d)
	counts := make([][]int, *flagStressWorkers)
	var wg sync.WaitGroup
	errs := make(chan error, *flagStressWorkers)
	for k := range *flagStressWorkers {
		wg.Add(1)
		counts[k] = make([]int, len(stressOps))
		go func() {
			defer wg.Done()
			w := &stressWorker{id: k, rng: rand.New(rand.NewPCG(s, uint64(k))), dirs: dirs, buf: make([]byte, 100<<10)}
			for step := 0; time.Now().Before(deadline); step++ {
				i := w.rng.IntN(len(stressOps))
				op := stressOps[i]
				err := op.run(w)
				var errno syscall.Errno
				if err != nil && (!errors.As(err, &errno) || !slices.Contains(op.allowed, errno)) {
					errs <- fmt.Errorf("worker %d step %d: %s: %w", k, step, op.name, err)
					return
				}
				counts[k][i]++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := make([]int, len(stressOps))
	for _, c := range counts {
		for i, n := range c {
			total[i] += n
		}
	}
	for i, op := range stressOps {
		t.Logf("%s: %d", op.name, total[i])
		if total[i] == 0 {
			t.Errorf("no %s ran", op.name)
		}
	}
}
