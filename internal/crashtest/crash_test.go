package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ufs"
)

var (
	flagStates = flag.Int("crash.states", 0, "crash states to check per workload (0: the default for -short or not)")
	flagSeed   = flag.Uint64("crash.seed", 0, "seed of the workloads and crash states (0: from the clock)")
	flagSteps  = flag.Int("crash.steps", 0, "operations per long workload (0: the default)")
	flagDump   = flag.String("crash.dump", "", "write the image of a failing crash state to this file")
)

// states is how many crash states a workload gets checked in, unless the
// log is short enough to check every prefix: def (the defaults add up to
// 2,500 crash states plus the killed processes), a quarter with -short,
// or -crash.states.
func states(def int) int {
	if *flagStates > 0 {
		return *flagStates
	}
	if testing.Short() {
		return max(def/4, 50)
	}
	return def
}

func seed(t testing.TB) uint64 {
	s := *flagSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed=%d)", s, s)
	return s
}

var (
	imagesMu sync.Mutex
	images   = map[bool][]byte{}
)

// baseImage is a new 16 MiB filesystem with 4 KiB blocks and 512-byte
// fragments (small files reach the indirect blocks), soft updates on or
// off.
func baseImage(t testing.TB, softdep bool) []byte {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if b, ok := images[softdep]; ok {
		return b
	}
	p := newfs.DefaultParams()
	p.Bsize, p.Fsize = 4096, 512
	p.SoftUpdates = softdep
	p.Regression = true
	m := blockdev.NewMem(16 << 20)
	if _, err := newfs.Format(context.Background(), m, p); err != nil {
		t.Fatalf("newfs: %v", err)
	}
	images[softdep] = m.Bytes()
	return images[softdep]
}

// record runs steps random operations on a new filesystem and returns
// the log. Keep files are made every few steps.
func record(t testing.TB, softdep bool, steps int, rng *rand.Rand, setup func(*Workload)) *Run {
	return recordWith(t, softdep, rng, setup, func(w *Workload) {
		for i := 0; i < steps; i++ {
			if err := w.Step(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
	})
}

// recordWith runs body on a new filesystem and returns the log.
func recordWith(t testing.TB, softdep bool, rng *rand.Rand, setup, body func(*Workload)) *Run {
	t.Helper()
	base := baseImage(t, softdep)
	rec := blockdev.NewRecorder(blockdev.NewMemBytes(base))
	// No background syncer, so that a seed replays exactly; rounds come
	// from fsync and from a small dirty limit instead.
	fsys, err := ufs.Open(rec, ufs.Options{SyncInterval: -1, MaxDirtyBytes: int64(64+rng.IntN(512)) << 10})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	w := NewWorkload(fsys, rng, func() int { return len(rec.Ops()) })
	if setup != nil {
		setup(w)
	}
	body(w)
	w.Finish()
	w.note("close")
	if err := fsys.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return &Run{Base: base, Ops: rec.Ops(), Expect: w.Expects(), Notes: w.Log}
}

func describeLines() int {
	if n, err := strconv.Atoi(os.Getenv("CRASH_LOG_LINES")); err == nil {
		return n
	}
	return 8
}

// describe says what the workload did just before op k.
func (r *Run) describe(k int) string {
	idx := slices.Sorted(maps.Keys(r.Notes))
	var last []string
	for _, i := range idx {
		if i > k {
			break
		}
		last = append(last, fmt.Sprintf("  op %d: %s", i, r.Notes[i]))
	}
	if n := describeLines(); len(last) > n {
		last = last[len(last)-n:]
	}
	return strings.Join(last, "\n")
}

// mountEvery: one crash state in this many (under SoftUpdates) is also
// used at once, without fsck (MountAtOnce), then checked.
const mountEvery = 8

// contentEvery: one crash state in this many (under SoftUpdates) also has
// the contents of all its files checked (CheckContents).
const contentEvery = 2

// result is what checkRun checked and found.
type result struct {
	states   int            // crash states checked
	mounted  int            // of which also used without fsck first
	contents int            // of which had every file's contents checked
	files    int            // files whose contents were checked
	kinds    map[string]int // problems of the first fsck -n -f, by kind
	runs     map[int]int    // repairing runs needed -> states
}

func (r result) String() string {
	s := fmt.Sprintf("%d crash states checked", r.states)
	if r.mounted > 0 {
		s += fmt.Sprintf(" (%d also mounted and used without fsck, then checked)", r.mounted)
	}
	if r.contents > 0 {
		s += fmt.Sprintf(" (%d with every file's contents checked: %d files)", r.contents, r.files)
	}
	return s + fmt.Sprintf("; fsck -n -f found %v", r.kinds)
}

// checkRun checks max crash states of r, on -crash.parallel goroutines
// (the states are built in order by one Replayer, which shares the
// durable part of the log between them; each state gets its own random
// generator drawn in order from rng, so a seed replays exactly).
func checkRun(t *testing.T, r *Run, mode Mode, allowed func(string) bool, max int, rng *rand.Rand, inOrder bool) result {
	t.Helper()
	res := result{kinds: map[string]int{}, runs: map[int]int{}}
	cuts := Cuts(len(r.Ops), max, rng)
	rp := NewReplayer(r)
	rp.InOrder = inOrder
	type job struct {
		i, k int
		img  *Image
		rng  *rand.Rand
	}
	type failure struct {
		k   int
		img *Image // the state as built, before any check wrote to it
		err error
	}
	var (
		mu     sync.Mutex
		failed *failure
	)
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range parallel() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				one, err := checkState(r, mode, allowed, j.i, j.k, j.img, j.rng)
				mu.Lock()
				res.add(one)
				if err != nil && (failed == nil || j.k < failed.k) {
					failed = &failure{k: j.k, img: j.img, err: err}
				}
				mu.Unlock()
			}
		}()
	}
	for i, k := range cuts {
		mu.Lock()
		stop := failed != nil
		mu.Unlock()
		if stop {
			break
		}
		img, err := rp.State(k, rng)
		if err != nil {
			close(jobs)
			wg.Wait()
			t.Fatal(err)
		}
		jobs <- job{i: i, k: k, img: img, rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(k)))}
	}
	close(jobs)
	wg.Wait()
	if failed != nil {
		if *flagDump != "" {
			// checkState works on clones: img is the state as built.
			if werr := os.WriteFile(*flagDump, failed.img.Bytes(), 0o644); werr != nil {
				t.Logf("dump: %v", werr)
			}
		}
		t.Fatalf("crash after %d of %d ops: %v\nlast actions before the cut:\n%s", failed.k, len(r.Ops), failed.err, r.describe(failed.k))
	}
	return res
}

// add counts one state's result into r.
func (r *result) add(one result) {
	r.states += one.states
	r.mounted += one.mounted
	r.contents += one.contents
	r.files += one.files
	for k, n := range one.kinds {
		r.kinds[k] += n
	}
	for k, n := range one.runs {
		r.runs[k] += n
	}
}

// checkState runs every check on the i-th crash state of r, cut after k
// operations; it works on clones of img and leaves img as built.
func checkState(r *Run, mode Mode, allowed func(string) bool, i, k int, img *Image, rng *rand.Rand) (result, error) {
	res := result{states: 1, kinds: map[string]int{}, runs: map[int]int{}}
	work := img.Clone()
	var used *Image
	if mode == SoftUpdates && i%mountEvery == 0 {
		used = img.Clone()
	}
	out, err := Check(work, k, mode, allowed, r.Expect)
	for kk, n := range out.Kinds {
		res.kinds[kk] += n
	}
	res.runs[out.FixRuns]++
	if err != nil {
		return res, err
	}
	if mode == SoftUpdates && i%contentEvery == 0 {
		n, err := CheckContents(work)
		if err != nil {
			return res, err
		}
		res.contents++
		res.files += n
	}
	if used != nil {
		if err := MountAtOnce(used, k, r.Expect, rng); err != nil {
			return res, err
		}
		if _, err := Check(used, k, mode, allowed, r.Expect); err != nil {
			return res, fmt.Errorf("after mounting without fsck: %w", err)
		}
		res.mounted++
	}
	return res, nil
}

var flagParallel = flag.Int("crash.parallel", 0, "goroutines checking crash states at once (0: GOMAXPROCS)")

// parallel is how many goroutines check crash states at once.
func parallel() int {
	if *flagParallel > 0 {
		return *flagParallel
	}
	return runtime.GOMAXPROCS(0)
}

// TestCrashSyncOrdering runs the crash tester against the engine's
// ordering without soft updates (FreeBSD's synchronous writes, the maps
// written at sync), on the device that ordering assumes: one that
// completes writes in order (Replayer.InOrder). Every crash state must be
// repairable by fsck -y and keep what was fsync'd, under one of its names
// when it was renamed since. It logs what fsck finds, which soft updates
// reduce to leaks (on a device that also reorders writes).
func TestCrashSyncOrdering(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 1))
	steps := 120
	if testing.Short() {
		steps = 60
	}
	r := record(t, false, steps, rng, func(w *Workload) { w.MoveKept = true })
	res := checkRun(t, r, Repairable, func(string) bool { return true }, states(250), rng, true)
	t.Logf("sync ordering: %d ops, %v; fsck -y runs needed: %v", len(r.Ops), res, res.runs)
}

// leaks accepts the leak kinds.
func leaks(kind string) bool { return fsck.IsLeakKind(kind) }

// TestCrashSoftUpdates: with soft updates every crash state of a random
// workload is consistent but for leaks, fsck -p repairs it, and what was
// fsync'd is there.
func TestCrashSoftUpdates(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 2))
	steps := 800
	if *flagSteps > 0 {
		steps = *flagSteps
	} else if testing.Short() {
		steps = 80
	}
	r := record(t, true, steps, rng, func(w *Workload) { w.MoveKept = true })
	res := checkRun(t, r, SoftUpdates, leaks, states(4000), rng, false)
	t.Logf("soft updates: %d ops, %d fsyncs kept, %v", len(r.Ops), len(r.Expect), res)
}

// TestCrashEveryPrefix: a short workload checked at every prefix of its
// log (each with its own random subset and order of the writes since the
// last flush), so that no single write is skipped as a cut point.
func TestCrashEveryPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 9))
	r := record(t, true, 60, rng, func(w *Workload) { w.MoveKept = true })
	res := checkRun(t, r, SoftUpdates, leaks, len(r.Ops)+1, rng, false)
	if res.states != len(r.Ops)+1 {
		t.Errorf("checked %d crash states of a %d-op log, want every prefix", res.states, len(r.Ops))
	}
	t.Logf("every prefix: %d ops, %d fsyncs kept, %v", len(r.Ops), len(r.Expect), res)
}

// TestCrashBigDirectory: a directory growing past its direct blocks (its
// indirect tree replaced with the size in one inode write), with removals
// and kept files in between.
func TestCrashBigDirectory(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 3))
	n := 2500
	if testing.Short() {
		n = 1500
	}
	r := recordWith(t, true, rng, nil, func(w *Workload) {
		fsys := w.FS
		dir, err := fsys.Mkdir(fsys.Root(), "big", 0o755, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			name := fmt.Sprintf("a-rather-long-file-name-%06d", i)
			w.note("create big/%s", name)
			if _, err := fsys.Create(dir, name, 0o644, 0, 0); err != nil {
				t.Fatal(err)
			}
			switch {
			case i%97 == 0:
				w.note("unlink big/%s", name)
				if err := fsys.Unlink(dir, name); err != nil {
					t.Fatal(err)
				}
			case i%500 == 250:
				if err := w.Keep(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
	res := checkRun(t, r, SoftUpdates, leaks, states(250), rng, false)
	t.Logf("big directory: %d ops, %v", len(r.Ops), res)
}

// TestCrashDirectoryRenames: directories renamed and exchanged between
// parents. Besides the leaks, a crash may leave such a directory with its
// old and its new name (two entries, ".." naming one of the parents):
// the name is never lost, and fsck -p removes the extra entry and fixes
// "..", as fsck_ffs does after soft updates on FreeBSD (a directory cannot
// change parent in one block write).
func TestCrashDirectoryRenames(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 4))
	steps := 160
	if testing.Short() {
		steps = 60
	}
	r := record(t, true, steps, rng, func(w *Workload) { w.DirRenames, w.MoveKept = true, true })
	allowed := func(kind string) bool {
		return leaks(kind) || kind == fsck.KindExtraDirLink || kind == fsck.KindBadDotdot
	}
	res := checkRun(t, r, SoftUpdates, allowed, states(500), rng, false)
	t.Logf("directory renames: %d ops, %v", len(r.Ops), res)
}

// TestCrashRenames: kept (fsync'd) files renamed often between
// directories under long names, so that the target directories grow by
// chunks, fragments and blocks: in every crash state each has its old
// name, its new one or both, never none, and once fsync'd again after the
// rename, the new one.
func TestCrashRenames(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 6))
	steps := 200
	if testing.Short() {
		steps = 80
	}
	r := record(t, true, steps, rng, func(w *Workload) { w.MoveKept, w.MoveRate = true, 30 })
	res := checkRun(t, r, SoftUpdates, leaks, states(500), rng, false)
	t.Logf("renames: %d ops, %d fsyncs kept, %v", len(r.Ops), len(r.Expect), res)
}

var flagKills = flag.Int("crash.kills", 0, "engine processes to kill in TestCrashKill (0: the default)")

// Environment of the child process of TestCrashKill.
const (
	envChildImage = "UFS2_CRASHTEST_IMAGE"
	envChildLog   = "UFS2_CRASHTEST_LOG"
	envChildSeed  = "UFS2_CRASHTEST_SEED"
)

// TestCrashKill runs the engine, with its background syncer, in a child
// process (this test binary again, killChild) doing a busy
// workload on an image file, kills it with SIGKILL at a random moment,
// and checks the image as a boot would: only leaks, fsck -p repairs them,
// and the files the child had fsync'd (it logs each one after its fsync
// returns) are there. Nothing is lost or reordered by a killed process
// (the kernel keeps what it was given), so this checks what concurrency
// and an interruption at any point in an operation leave.
func TestCrashKill(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runs := killRuns(20, 6, *flagKills)
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 5))
	base := baseImage(t, true)
	kinds := map[string]int{}
	kept, files := 0, 0
	for i := range runs {
		dir := t.TempDir()
		img, logf := filepath.Join(dir, "img"), filepath.Join(dir, "kept.jsonl")
		if err := os.WriteFile(img, base, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe) // TestMain runs killChild
		cmd.Env = append(os.Environ(), envChildImage+"="+img, envChildLog+"="+logf,
			fmt.Sprintf("%s=%d", envChildSeed, s+uint64(i)))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		cmd.Stdout = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rng.IntN(700)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("run %d: the child was not killed (%v):\n%s", i, err, stderr.String())
		}
		data, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		expects := readKept(t, logf)
		kept += len(expects)
		n, err := checkKilled(data, expects, kinds)
		files += n
		if err != nil {
			t.Fatalf("run %d (child seed %d): %v\nchild output:\n%s", i, s+uint64(i), err, stderr.String())
		}
	}
	t.Logf("%d engine processes killed; %d fsync'd files checked, and the contents of %d files; fsck -n -f found %v", runs, kept, files, kinds)
}

// keptRecord is one line of the child's log: a kept file fsync'd at Path,
// or (MovedTo set) the start of a rename of the kept file at Path.
type keptRecord struct {
	Path    string
	MovedTo string `json:",omitempty"`
	Data    []byte
	Xattrs  map[string][]byte
}

// readKept reads the child's log of kept files; a line cut short by the
// kill is ignored.
func readKept(t *testing.T, path string) []Expect {
	t.Helper()
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Expect
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var k keptRecord
		if len(line) == 0 || json.Unmarshal(line, &k) != nil {
			continue
		}
		if k.MovedTo != "" {
			for i := range out {
				if slices.Contains(out[i].names(), k.Path) {
					out[i].Moves = append(out[i].Moves, k.MovedTo)
				}
			}
			continue
		}
		out = append(out, Expect{Path: k.Path, Data: k.Data, Xattrs: k.Xattrs})
	}
	return out
}

// checkKilled checks the image a killed process left as a boot would:
// only leaks, fsck -p repairs them, the fsync'd files in expects are
// whole (Check), no file shows data it was not given (CheckContents). It
// adds what the first fsck found to kinds and returns how many files'
// contents it checked.
func checkKilled(data []byte, expects []Expect, kinds map[string]int) (int, error) {
	state := NewImage(data)
	out, err := Check(state, 0, SoftUpdates, leaks, expects)
	for k, n := range out.Kinds {
		kinds[k] += n
	}
	if err != nil {
		return 0, err
	}
	return CheckContents(state)
}

// killRuns is how many processes a kill test kills: def, short with
// -short, or the flag's value when set.
func killRuns(def, short, flagged int) int {
	switch {
	case flagged > 0:
		return flagged
	case testing.Short():
		return short
	}
	return def
}

// killChild is TestCrashKill's child: a busy workload on the image it is
// given, until it is killed.
func killChild() error {
	seed, _ := strconv.ParseUint(os.Getenv(envChildSeed), 10, 64)
	logf, err := os.OpenFile(os.Getenv(envChildLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	dev, err := blockdev.Open(os.Getenv(envChildImage), blockdev.Options{})
	if err != nil {
		return err
	}
	fsys, err := ufs.Open(dev, ufs.Options{SyncInterval: 20 * time.Millisecond, MaxDirtyBytes: 1 << 20})
	if err != nil {
		return err
	}
	w := NewWorkload(fsys, rand.New(rand.NewPCG(seed, 6)), func() int { return 0 })
	var logErr error
	logRecord := func(k keptRecord) {
		line, err := json.Marshal(k)
		if err == nil {
			_, err = logf.Write(append(line, '\n'))
		}
		if err != nil && logErr == nil {
			logErr = err
		}
	}
	w.MoveKept = true
	w.OnKeep = func(e Expect) { logRecord(keptRecord{Path: e.Path, Data: e.Data, Xattrs: e.Xattrs}) }
	w.OnMove = func(from, to string) { logRecord(keptRecord{Path: from, MovedTo: to}) }
	deadline := time.Now().Add(time.Minute) // the parent kills it long before
	for time.Now().Before(deadline) && logErr == nil {
		if err := w.Step(); err != nil && !errors.Is(err, ufs.ErrNoSpace) {
			return err
		}
	}
	return logErr
}
