//go:build ufs2bench

// Command bench compares the ufs2 FUSE mount with go-fuse's loopback
// example filesystem (and the host filesystem under both) on the same
// backing disk, in one invocation, and prints each result as a ratio:
//
//	go run -tags ufs2bench ./bench -ufs2 /path/to/ufs2 -loopback /path/to/loopback \
//	    [-loopback-nopt /path/to/bench-loopback]
//
// go-fuse's example/loopback, run as root, has the kernel serve file data
// straight from the backing files (FUSE passthrough): its reads and writes
// never reach the server. ufs2 cannot do that (its files are blocks of an
// image), so the optional second reference, bench/loopback, is the same
// loopback with passthrough off: every request through the server.
//
// bench/run.sh builds both programs and runs it. It must run as root (it
// mounts). The build tag keeps this program out of the module's package
// list: it imports nothing of the project, it drives the binaries.
//
// Workloads (each a fresh directory on each filesystem):
//
//	seqwrite   write one large file in 1 MiB writes, then fsync      MB/s
//	seqread    read it back in 1 MiB reads (its page cache dropped)  MB/s
//	randread   4 KiB preads at random offsets, 4 threads             ops/s
//	randwrite  4 KiB pwrites at random offsets, 4 threads, fsync     ops/s
//	create     create N empty files in one directory                 ops/s
//	stat       stat them after the kernel's caches expired           ops/s
//	remove     unlink them                                           ops/s
//	untar      extract a source tarball, then sync                   MB/s
//
// With -ro the ufs2 image is built by makefs from a staging tree instead
// (for an engine that cannot write yet) and only seqread, randread, stat
// and a tree read (tar c) run.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var (
	ufs2Bin     = flag.String("ufs2", "ufs2", "the ufs2 program")
	loopbackBin = flag.String("loopback", "loopback", "go-fuse's example/loopback program")
	noptBin     = flag.String("loopback-nopt", "", "bench/loopback: go-fuse's loopback without passthrough (optional)")
	workDir     = flag.String("dir", "", "backing directory (default: a new directory under $TMPDIR)")
	fileSize    = flag.Int64("size", 512<<20, "bytes of the large file")
	nfiles      = flag.Int("files", 10000, "files for create, stat and remove")
	randOps     = flag.Int("ops", 20000, "4 KiB operations for randread and randwrite")
	tarball     = flag.String("tar", "", "tarball for untar (default: made from $GOROOT/src)")
	readOnly    = flag.Bool("ro", false, "ufs2 read-only: makefs image, read workloads only")
	imageSize   = flag.String("image", "4g", "ufs2 image size (newfs -s)")
	keep        = flag.Bool("keep", false, "keep the backing directory")
	ufs2Opts    = flag.String("o", "", "extra ufs2 mount options (-o)")
	runs        = flag.Int("runs", 3, "times to run the whole sequence (results are medians)")
	only        = flag.String("only", "", "comma-separated workloads to run (default: all)")
)

// target is one filesystem under test.
type target struct {
	name string
	dir  string // where the workloads run
	stop func() error
	// remount empties the kernel's caches of the filesystem (page cache,
	// dentries, attributes) and leaves the backing store's warm; nil for
	// the host, which is measured from its page cache.
	remount func() error
}

type result struct {
	value float64
	unit  string
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fatalf("bench mounts filesystems: run it as root")
	}
	if err := run(); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func run() error {
	base := *workDir
	if base == "" {
		d, err := os.MkdirTemp("", "ufs2-bench-")
		if err != nil {
			return err
		}
		base = d
		if !*keep {
			defer os.RemoveAll(base)
		}
	}
	tarPath := *tarball
	if tarPath == "" {
		tarPath = filepath.Join(base, "src.tar")
		if err := makeTarball(tarPath); err != nil {
			return err
		}
	}
	var staging string
	if *readOnly {
		staging = filepath.Join(base, "staging")
		if err := populate(staging, tarPath); err != nil {
			return err
		}
	}

	host, err := hostTarget(base, staging)
	if err != nil {
		return err
	}
	lo, err := loopbackTarget("loopback", *loopbackBin, []string{"-q", "-directmount"}, base, staging)
	if err != nil {
		return err
	}
	defer func() { lo.stop() }()
	targets := []*target{lo}
	if *noptBin != "" {
		np, err := loopbackTarget("nopt", *noptBin, nil, base, staging)
		if err != nil {
			return err
		}
		defer func() { np.stop() }()
		targets = append(targets, np)
	}
	u, err := ufs2Target(base, staging)
	if err != nil {
		return err
	}
	defer func() { u.stop() }()
	targets = append([]*target{u}, append(targets, host)...)

	type workload struct {
		name string
		fn   func(t *target) (result, error)
	}
	var wls []workload
	if *readOnly {
		wls = []workload{
			{"seqread", seqRead}, {"randread", randRead}, {"stat", statFiles}, {"tarc", tarCreate},
		}
	} else {
		wls = []workload{
			{"seqwrite", seqWrite}, {"seqread", seqRead}, {"randread", randRead}, {"randwrite", randWrite},
			{"create", createFiles}, {"stat", statFiles}, {"remove", removeFiles},
			{"untar", func(t *target) (result, error) { return untar(t, tarPath) }},
		}
	}

	// Every workload runs on every target, the whole sequence -runs
	// times (later workloads use what earlier ones made); each result is
	// the median of its runs.
	results := map[string]map[string][]result{}
	for run := range *runs {
		for _, wl := range wls {
			if *only != "" && !slices.Contains(strings.Split(*only, ","), wl.name) && wl.name != "seqwrite" && wl.name != "create" && wl.name != "remove" {
				continue // seqwrite, create and remove make and clear what the others use
			}
			if results[wl.name] == nil {
				results[wl.name] = map[string][]result{}
			}
			for _, t := range targets {
				r, err := wl.fn(t)
				if err != nil {
					return fmt.Errorf("%s on %s (run %d): %w", wl.name, t.name, run+1, err)
				}
				results[wl.name][t.name] = append(results[wl.name][t.name], r)
			}
		}
	}

	// Columns: each target's result, then ufs2's ratio to each loopback.
	header := fmt.Sprintf("%-10s", "workload")
	for _, t := range targets {
		header += fmt.Sprintf(" %11s", t.name)
	}
	header += fmt.Sprintf(" %-6s", "unit")
	for _, t := range targets[1 : len(targets)-1] {
		header += fmt.Sprintf(" %12s", "ufs2/"+t.name)
	}
	fmt.Printf("median of %d runs; ratios above 1 mean ufs2 is faster\n%s\n", *runs, header)
	for _, wl := range wls {
		res := results[wl.name]
		if res == nil {
			continue
		}
		line := fmt.Sprintf("%-10s", wl.name)
		med := map[string]float64{}
		for _, t := range targets {
			med[t.name] = median(res[t.name])
			line += fmt.Sprintf(" %11.1f", med[t.name])
		}
		line += fmt.Sprintf(" %-6s", res["ufs2"][0].unit)
		for _, t := range targets[1 : len(targets)-1] {
			line += fmt.Sprintf(" %12.2f", med["ufs2"]/med[t.name])
		}
		fmt.Println(line)
	}
	return nil
}

func median(rs []result) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.value
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// makeTarball packs a slice of the Go source tree: a few thousand real
// source files.
func makeTarball(path string) error {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "src")
	cmd := exec.Command("tar", "-C", src, "-cf", path, "net", "os", "go", "crypto")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tar: %v\n%s", err, out)
	}
	return nil
}

// populate fills a staging tree for -ro: the large file, nfiles empty
// files and the extracted tarball.
func populate(dir, tarPath string) error {
	if err := os.MkdirAll(filepath.Join(dir, "many"), 0o755); err != nil {
		return err
	}
	if err := writeBig(filepath.Join(dir, "big"), *fileSize, false); err != nil {
		return err
	}
	for i := range *nfiles {
		if err := os.WriteFile(filepath.Join(dir, "many", fmt.Sprintf("f%06d", i)), nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tree"), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("tar", "-C", filepath.Join(dir, "tree"), "-xf", tarPath).CombinedOutput(); err != nil {
		return fmt.Errorf("tar x: %v\n%s", err, out)
	}
	return nil
}

func hostTarget(base, staging string) (*target, error) {
	dir := filepath.Join(base, "host")
	if err := prepare(dir, staging); err != nil {
		return nil, err
	}
	return &target{name: "host", dir: dir, stop: func() error { return nil }}, nil
}

// prepare makes dir, a copy of staging if there is one.
func prepare(dir, staging string) error {
	if staging == "" {
		return os.MkdirAll(dir, 0o755)
	}
	if out, err := exec.Command("cp", "-a", staging, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v\n%s", err, out)
	}
	return nil
}

// loopbackTarget runs a go-fuse loopback program (bin args... MNT ORIG)
// over a directory of the backing disk.
func loopbackTarget(name, bin string, args []string, base, staging string) (*target, error) {
	orig, mnt := filepath.Join(base, name+"-orig"), filepath.Join(base, name+"-mnt")
	if err := prepare(orig, staging); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	t := &target{name: name, dir: mnt}
	var cmd *exec.Cmd
	t.stop = func() error {
		if cmd == nil {
			return nil
		}
		exec.Command("umount", mnt).Run()
		err := cmd.Wait()
		cmd = nil
		return err
	}
	start := func() error {
		cmd = exec.Command(bin, append(append([]string(nil), args...), mnt, orig)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		if err := waitMounted(mnt, true); err != nil {
			cmd.Process.Kill()
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	t.remount = func() error {
		if err := t.stop(); err != nil {
			return err
		}
		return start()
	}
	return t, start()
}

func ufs2Target(base, staging string) (*target, error) {
	img, mnt := filepath.Join(base, "ufs2.img"), filepath.Join(base, "ufs2-mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	var mkfs *exec.Cmd
	opts := "rw"
	if staging != "" {
		mkfs = exec.Command("makefs", "-t", "ffs", "-o", "version=2,bsize=32768,fsize=4096", "-s", *imageSize, img, staging)
		opts = "ro"
	} else {
		mkfs = exec.Command(*ufs2Bin, "newfs", "-F", "-s", *imageSize, img) // -F: a -work dir may hold the last run's image
	}
	if out, err := mkfs.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", mkfs.Args[0], err, out)
	}
	mounted := false
	start := func() error {
		o := opts
		if *ufs2Opts != "" {
			o += "," + *ufs2Opts
		}
		if out, err := exec.Command(*ufs2Bin, "mount", "-o", o, img, mnt).CombinedOutput(); err != nil {
			return fmt.Errorf("ufs2 mount: %v\n%s", err, out)
		}
		mounted = true
		return nil
	}
	stop := func() error {
		if !mounted {
			return nil
		}
		if err := exec.Command("umount", mnt).Run(); err != nil {
			return err
		}
		mounted = false
		return waitUnlocked(img)
	}
	if err := start(); err != nil {
		return nil, err
	}
	if staging == "" {
		probe := filepath.Join(mnt, ".bench-probe")
		if err := os.WriteFile(probe, nil, 0o644); err != nil {
			exec.Command("umount", mnt).Run()
			return nil, fmt.Errorf("the ufs2 mount is not writable (%v): use -ro", err)
		}
		os.Remove(probe)
	}
	remount := func() error {
		if err := stop(); err != nil {
			return err
		}
		return start()
	}
	return &target{name: "ufs2", dir: mnt, stop: stop, remount: remount}, nil
}

// waitMounted polls /proc/mounts until dir is (or is not) a mount point.
func waitMounted(dir string, want bool) error {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		data, err := os.ReadFile("/proc/mounts")
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(" "+dir+" ")) == want {
			return nil
		}
	}
	return fmt.Errorf("%s: not mounted after 20 s", dir)
}

// waitUnlocked waits until the ufs2 server has closed its image (it holds
// a flock on it while it runs).
func waitUnlocked(img string) error {
	f, err := os.Open(img)
	if err != nil {
		return err
	}
	defer f.Close()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return nil
		}
	}
	return errors.New("the ufs2 server did not release its image")
}

// cold empties the kernel's caches of the filesystem under test by
// remounting it (FADV_DONTNEED does not reliably drop a FUSE file's
// pages); the backing store stays warm for every target alike.
func cold(t *target) error {
	if t.remount == nil {
		return nil
	}
	return t.remount()
}

func mbps(n int64, d time.Duration) result {
	return result{float64(n) / d.Seconds() / 1e6, "MB/s"}
}

func opsps(n int, d time.Duration) result { return result{float64(n) / d.Seconds(), "ops/s"} }

// writeBig writes size bytes of pseudo-random data in 1 MiB writes.
func writeBig(path string, size int64, sync bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		buf[0]++ // no two blocks alike
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func seqWrite(t *target) (result, error) {
	start := time.Now()
	if err := writeBig(filepath.Join(t.dir, "big"), *fileSize, true); err != nil {
		return result{}, err
	}
	return mbps(*fileSize, time.Since(start)), nil
}

func seqRead(t *target) (result, error) {
	if err := cold(t); err != nil {
		return result{}, err
	}
	f, err := os.Open(filepath.Join(t.dir, "big"))
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	start := time.Now()
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err != nil || k == 0 {
			break
		}
	}
	if n != *fileSize {
		return result{}, fmt.Errorf("read %d bytes of %d", n, *fileSize)
	}
	return mbps(n, time.Since(start)), nil
}

// randIO runs ops 4 KiB preads or pwrites at random aligned offsets of
// the big file from 4 goroutines.
func randIO(t *target, write bool) (result, error) {
	if err := cold(t); err != nil {
		return result{}, err
	}
	p := filepath.Join(t.dir, "big")
	flags := os.O_RDONLY
	if write {
		flags = os.O_RDWR
	}
	f, err := os.OpenFile(p, flags, 0)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	const threads = 4
	blocks := *fileSize / 4096
	var wg sync.WaitGroup
	errs := make(chan error, threads)
	start := time.Now()
	for w := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			buf := make([]byte, 4096)
			for range *randOps / threads {
				off := rng.Int64N(blocks) * 4096
				var err error
				if write {
					buf[0]++
					_, err = f.WriteAt(buf, off)
				} else {
					_, err = f.ReadAt(buf, off)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	if write {
		if err := f.Sync(); err != nil {
			return result{}, err
		}
	}
	d := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	return opsps(*randOps/threads*threads, d), nil
}

func randRead(t *target) (result, error)  { return randIO(t, false) }
func randWrite(t *target) (result, error) { return randIO(t, true) }

func createFiles(t *target) (result, error) {
	dir := filepath.Join(t.dir, "many")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return result{}, err
	}
	start := time.Now()
	for i := range *nfiles {
		fd, err := unix.Open(filepath.Join(dir, fmt.Sprintf("f%06d", i)), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
		if err != nil {
			return result{}, err
		}
		unix.Close(fd)
	}
	return opsps(*nfiles, time.Since(start)), nil
}

// statFiles stats every file of "many" with the kernel's caches empty,
// so each stat asks the filesystem.
func statFiles(t *target) (result, error) {
	dir := filepath.Join(t.dir, "many")
	if err := cold(t); err != nil {
		return result{}, err
	}
	var st unix.Stat_t
	start := time.Now()
	for i := range *nfiles {
		if err := unix.Lstat(filepath.Join(dir, fmt.Sprintf("f%06d", i)), &st); err != nil {
			return result{}, err
		}
	}
	return opsps(*nfiles, time.Since(start)), nil
}

func removeFiles(t *target) (result, error) {
	dir := filepath.Join(t.dir, "many")
	start := time.Now()
	for i := range *nfiles {
		if err := unix.Unlink(filepath.Join(dir, fmt.Sprintf("f%06d", i))); err != nil {
			return result{}, err
		}
	}
	if err := unix.Rmdir(dir); err != nil {
		return result{}, err
	}
	return opsps(*nfiles, time.Since(start)), nil
}

func untar(t *target, tarPath string) (result, error) {
	fi, err := os.Stat(tarPath)
	if err != nil {
		return result{}, err
	}
	dir := filepath.Join(t.dir, "tree")
	if err := os.RemoveAll(dir); err != nil {
		return result{}, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return result{}, err
	}
	start := time.Now()
	if out, err := exec.Command("tar", "-C", dir, "-xf", tarPath).CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("tar x: %v\n%s", err, out)
	}
	if err := syncfs(dir); err != nil {
		return result{}, err
	}
	return mbps(fi.Size(), time.Since(start)), nil
}

// tarCreate reads the extracted tree with tar (the read side of untar).
func tarCreate(t *target) (result, error) {
	if err := cold(t); err != nil {
		return result{}, err
	}
	start := time.Now()
	cmd := exec.Command("tar", "-C", filepath.Join(t.dir, "tree"), "-cf", "-", ".")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	n, err := bufio.NewReader(out).WriteTo(discard{})
	if err != nil {
		return result{}, err
	}
	if err := cmd.Wait(); err != nil {
		return result{}, err
	}
	return mbps(n, time.Since(start)), nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
