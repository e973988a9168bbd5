package crashtest

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/mount"
	"github.com/ufs2/ufs2/ondisk"
)

var flagMountKills = flag.Int("crash.mountkills", 0, "FUSE mount processes to kill in TestCrashKillMount (0: the default)")

// Environment of TestCrashKillMount's child, the mount process.
const (
	envMountImage = "UFS2_CRASH_MOUNT_IMAGE"
	envMountDir   = "UFS2_CRASH_MOUNT_DIR"
)

// TestCrashKillMount mounts an image with soft updates through FUSE in a
// child process, runs a busy workload through the mount point from this
// one (creates, patterned writes, truncations, renames across
// directories, hard links, mkdir and rmdir, unlinks, extended attributes,
// and files fsync'd in new directories), kills the mount process with
// SIGKILL at a random moment, and checks the image as a boot would: only
// leaks, fsck -p repairs them, a second check is clean, every fsync'd file
// has its contents and attributes, and no file shows data it was not
// given. Repeated with different seeds and moments.
func TestCrashKillMount(t *testing.T) {
	testutil.RequireTool(t, "fusermount3", "fuse3")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runs := killRuns(12, 4, *flagMountKills)
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 7))
	base := baseImage(t, true)
	kinds := map[string]int{}
	kept, files, ops := 0, 0, 0
	for i := range runs {
		dir := t.TempDir()
		img, mnt := filepath.Join(dir, "img"), filepath.Join(dir, "mnt")
		if err := os.WriteFile(img, base, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe) // TestMain runs mountChild
		cmd.Env = append(os.Environ(), envMountImage+"="+img, envMountDir+"="+mnt)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := waitReady(stdout, 30*time.Second); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("run %d: the mount process did not mount: %v\n%s", i, err, stderr.String())
		}
		mw := &mountWorkload{root: mnt, rng: rand.New(rand.NewPCG(s+uint64(i), 8)), stop: make(chan struct{})}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); mw.churn() }()
		go func() { defer wg.Done(); mw.keep() }()
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		mw.killing.Store(true)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		werr := cmd.Wait()
		close(mw.stop)
		wg.Wait()
		// The dead mount answers everything with ENOTCONN until detached.
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("run %d: detaching the dead mount: %v", i, err)
		}
		if werr == nil || !strings.Contains(werr.Error(), "killed") {
			t.Fatalf("run %d: the mount process was not killed (%v):\n%s", i, werr, stderr.String())
		}
		if mw.failed != nil {
			t.Fatalf("run %d (seed %d): the workload failed before the kill: %v\nmount process output:\n%s", i, s+uint64(i), mw.failed, stderr.String())
		}
		data, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		kept += len(mw.kept)
		ops += mw.ops
		n, err := checkKilled(data, mw.kept, kinds)
		files += n
		if err != nil && *flagDump != "" {
			if werr := os.WriteFile(*flagDump, data, 0o644); werr != nil {
				t.Error(werr)
			}
		}
		if err != nil {
			t.Fatalf("run %d (seed %d): %v\nmount process output:\n%s", i, s+uint64(i), err, stderr.String())
		}
	}
	if ops == 0 || kept == 0 {
		t.Errorf("the workloads did %d operations and fsync'd %d files before the kills: nothing was tested", ops, kept)
	}
	t.Logf("%d mount processes killed during %d operations; %d fsync'd files checked, and the contents of %d files; fsck -n -f found %v", runs, ops, kept, files, kinds)
}

// waitReady waits for the child's "ready" line.
func waitReady(r interface{ Read([]byte) (int, error) }, timeout time.Duration) error {
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("child said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		return err
	case <-time.After(timeout):
		return errors.New("no ready line")
	}
}

// mountChild is TestCrashKillMount's child: it mounts the image, says
// "ready" and serves until it is killed.
func mountChild() error {
	opts := mount.Options{SyncDelay: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	fsys, err := mount.OpenTarget(os.Getenv(envMountImage), &opts)
	if err != nil {
		return err
	}
	srv, err := mount.Mount(os.Getenv(envMountDir), fsys, opts)
	if err != nil {
		fsys.Close()
		return err
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // the parent kills it long before
	if err := srv.Unmount(); err != nil {
		return err
	}
	return srv.Wait()
}

// mountWorkload drives a mount point with ordinary system calls from two
// goroutines: churn changes a few directories at random, keep makes files
// in new directories and fsyncs them. Once the mount dies every call
// fails; errors are then expected and end the workload.
type mountWorkload struct {
	root    string
	stop    chan struct{} // closed once the mount process is gone
	killing atomic.Bool   // set just before the kill: errors are expected

	mu     sync.Mutex
	rng    *rand.Rand
	kept   []Expect // fsync'd files: fsync returned before the kill
	ops    int
	failed error // an error while the mount was surely alive
}

// stopped reports whether the mount process has been killed.
func (w *mountWorkload) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// intn draws from the shared generator.
func (w *mountWorkload) intn(n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.IntN(n)
}

// done counts an operation, or records err and reports that the
// workload must end: after the kill every error is expected, and an error
// before it is a failure unless the mount died meanwhile (ENOTCONN,
// ECONNABORTED). A full filesystem is no error.
func (w *mountWorkload) done(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.ops++
		return false
	}
	if errors.Is(err, syscall.ENOSPC) {
		return false
	}
	if w.killing.Load() {
		return true
	}
	if errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	if w.failed == nil {
		w.failed = err
	}
	return true
}

// patterned returns n bytes for offset off of the file with inode number
// ino, as CheckContents expects them (off and n multiples of 8).
func patterned(ino uint64, off int64, n int, v byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = patternByte(ondisk.Ino(ino), off+int64(i), v)
	}
	return b
}

// inoOf returns the inode number of the open file f.
func inoOf(f *os.File) (uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Sys().(*syscall.Stat_t).Ino, nil
}

// churn changes the directories d0..d3 until the mount dies.
func (w *mountWorkload) churn() {
	dirs := []string{"d0", "d1", "d2", "d3"}
	for _, d := range dirs {
		if w.done(os.Mkdir(filepath.Join(w.root, d), 0o755)) {
			return
		}
	}
	n := 0
	for !w.stopped() {
		d := filepath.Join(w.root, dirs[w.intn(len(dirs))])
		name := filepath.Join(d, fmt.Sprintf("f%d", w.intn(24)))
		var err error
		switch r := w.intn(100); {
		case r < 30: // create or rewrite part of a file
			err = w.writeFile(name, int64(w.intn(4))*4096, (w.intn(6000)+1)*8)
		case r < 40: // truncate
			err = os.Truncate(name, int64(w.intn(3000))*8)
		case r < 55: // rename, often to another directory, maybe over a file
			to := filepath.Join(w.root, dirs[w.intn(len(dirs))], fmt.Sprintf("f%d", w.intn(24)))
			err = os.Rename(name, to)
		case r < 62:
			to := filepath.Join(w.root, dirs[w.intn(len(dirs))], fmt.Sprintf("l%d", w.intn(8)))
			err = os.Link(name, to)
		case r < 75:
			err = os.Remove(name)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				err = os.Remove(filepath.Join(d, fmt.Sprintf("l%d", w.intn(8))))
			}
		case r < 85: // a directory made and removed
			n++
			sub := filepath.Join(d, fmt.Sprintf("sub%d", n%5))
			if err = os.Mkdir(sub, 0o755); errors.Is(err, os.ErrExist) {
				err = os.Remove(sub)
			}
		default: // extended attribute
			v := make([]byte, w.intn(600)+1)
			for i := range v {
				v[i] = byte(w.intn(256))
			}
			err = unix.Setxattr(name, fmt.Sprintf("user.a%d", w.intn(3)), v, 0)
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			err = nil
		}
		if w.done(err) {
			return
		}
	}
}

// writeFile writes n patterned bytes at off of name, creating it.
func (w *mountWorkload) writeFile(name string, off int64, n int) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	ino, err := inoOf(f)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(patterned(ino, off, n, byte(w.intn(255)+1)), off)
	return err
}

// keep makes files in new directories (sometimes two levels deep) with
// patterned data and an attribute, fsyncs them, and records each one
// once its fsync has returned; kept files are never changed again.
func (w *mountWorkload) keep() {
	for k := 0; !w.stopped(); k++ {
		rel := fmt.Sprintf("/keep%d", k)
		if w.done(os.Mkdir(w.root+rel, 0o755)) {
			return
		}
		if w.intn(2) == 0 {
			rel += "/sub"
			if w.done(os.Mkdir(w.root+rel, 0o755)) {
				return
			}
		}
		rel += "/f"
		e, err := w.keepFile(rel)
		if w.done(err) {
			return
		}
		w.mu.Lock()
		w.kept = append(w.kept, e)
		w.mu.Unlock()
	}
}

// keepFile makes and fsyncs the kept file at rel.
func (w *mountWorkload) keepFile(rel string) (Expect, error) {
	f, err := os.OpenFile(w.root+rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Expect{}, err
	}
	defer f.Close()
	ino, err := inoOf(f)
	if err != nil {
		return Expect{}, err
	}
	data := patterned(ino, 0, (w.intn(5000)+1)*8, byte(w.intn(255)+1))
	if _, err := f.Write(data); err != nil {
		return Expect{}, err
	}
	v := []byte(fmt.Sprintf("kept %s", rel))
	if err := unix.Fsetxattr(int(f.Fd()), "user.k", v, 0); err != nil {
		return Expect{}, err
	}
	if err := f.Sync(); err != nil {
		return Expect{}, err
	}
	return Expect{Path: rel, Data: data, Xattrs: map[string][]byte{"k": v}}, nil
}
