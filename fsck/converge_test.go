package fsck

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ufs2/ufs2/fsck/fscktest"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ufs"
)

var (
	roundsSeeds = flag.Int("fsck.seeds", 0, "seeds per kind of damage in TestConvergeRounds (0: the CI default, "+fmt.Sprint(defaultRoundsSeeds)+")")
	roundsFirst = flag.Uint64("fsck.rounds.seed", 1, "first seed of TestConvergeRounds")
	roundsKinds = flag.String("fsck.rounds", "100,400,p400", "the rounds of TestConvergeRounds: places damaged per image, p for block pointers only")
	roundsDump  = flag.String("fsck.dump", "", "directory to write the damaged image of each failing TestConvergeRounds seed to (gzip'd)")
)

const defaultRoundsSeeds = 4

// cowDev is a Device that reads through to a base image, shared by many,
// and keeps what is written to it in sectors of its own (copy on write):
// damaging and repairing a copy of a rounds image (tens of MiB) costs what
// fsck reads and writes, not copies of the whole image. view gives a
// read-only Device of the same contents that fails every write and counts
// the attempts.
type cowDev struct {
	base     []byte
	over     map[int64][]byte // sector -> its cowSector bytes, as written
	ro       bool
	attempts int
}

const cowSector = 512

func newCow(base []byte) *cowDev { return &cowDev{base: base, over: map[int64][]byte{}} }

func (d *cowDev) view() *cowDev { return &cowDev{base: d.base, over: d.over, ro: true} }

func (d *cowDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(d.base)) {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), int64(len(d.base)))
	for i := off; i < end; {
		sec, o := i/cowSector, i%cowSector
		n := min(cowSector-o, end-i)
		src, ok := d.over[sec]
		if !ok {
			src = d.base[sec*cowSector:]
		}
		copy(p[i-off:i-off+n], src[o:o+n])
		i += n
	}
	if n := int(end - off); n < len(p) {
		return n, io.EOF
	}
	return len(p), nil
}

func (d *cowDev) WriteAt(p []byte, off int64) (int, error) {
	if d.ro {
		d.attempts++
		return 0, fmt.Errorf("%w: test device: write of %d bytes at %d", blockdev.ErrReadOnly, len(p), off)
	}
	end := off + int64(len(p))
	if off < 0 || end > int64(len(d.base)) {
		return 0, fmt.Errorf("test device: write of %d bytes at %d outside %d", len(p), off, len(d.base))
	}
	for i := off; i < end; {
		sec, o := i/cowSector, i%cowSector
		n := min(cowSector-o, end-i)
		dst, ok := d.over[sec]
		if !ok {
			dst = bytes.Clone(d.base[sec*cowSector : (sec+1)*cowSector])
			d.over[sec] = dst
		}
		copy(dst[o:o+n], p[i-off:i-off+n])
		i += n
	}
	return len(p), nil
}

func (d *cowDev) Size() int64    { return int64(len(d.base)) }
func (d *cowDev) Sync() error    { return nil }
func (d *cowDev) Close() error   { return nil }
func (d *cowDev) ReadOnly() bool { return d.ro }
func (d *cowDev) Name() string   { return "test device" }

// changed says whether anything written differs from the base.
func (d *cowDev) changed() bool {
	for sec, b := range d.over {
		if !bytes.Equal(b, d.base[sec*cowSector:(sec+1)*cowSector]) {
			return true
		}
	}
	return false
}

// snapshot returns the whole image as it is now.
func (d *cowDev) snapshot() []byte {
	b := bytes.Clone(d.base)
	for sec, s := range d.over {
		copy(b[sec*cowSector:], s)
	}
	return b
}

// checkInPlace runs Check over dev: -n through a read-only view, -y
// rewriting dev. For -n it also returns how many writes the check tried
// (dropped by fsck or refused by the device); it must never try one.
func checkInPlace(t testing.TB, dev *cowDev, mode Mode) (rep *Report, out string, tried int, err error) {
	t.Helper()
	d := dev
	if mode == No {
		d = dev.view()
	}
	var sb strings.Builder
	rep, err = Check(context.Background(), d, Options{Mode: mode, Force: true, Output: &sb})
	if rep == nil {
		t.Fatalf("Check returned no report: %v", err)
	}
	return rep, sb.String(), d.attempts + rep.refusedWrites, err
}

// checkNoWrite is checkInPlace of -n that fails the test if the check
// tried to write.
func checkNoWrite(t testing.TB, b *cowDev, what string) (*Report, string, error) {
	t.Helper()
	rep, out, tried, err := checkInPlace(t, b, No)
	if tried != 0 {
		t.Errorf("%s: fsck -n -f tried %d writes\n%s", what, tried, out)
	}
	return rep, out, err
}

// converged repairs b as a user would and asserts fsck_ffs's
// promise: fsck -y ends with 0, or with 16 (rerun) and then a second -y
// ends with 0; the fsck -n -f after each run works (tries no write, runs
// to its end) and the one after the last finds nothing. It returns the -y
// exit statuses and whether all of that held (the failures are reported).
func converged(t testing.TB, b *cowDev, what string) (codes []int, ok bool) {
	t.Helper()
	var log strings.Builder
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s (fsck -y exits %v)\n%s", what, fmt.Sprintf(format, args...), codes, log.String())
	}
	for run := 1; run <= 2; run++ {
		rep, out, _, err := checkInPlace(t, b, Yes)
		codes = append(codes, rep.ExitCode)
		fmt.Fprintf(&log, "-- fsck -y (run %d, exit %d, err %v):\n%s", run, rep.ExitCode, err, out)
		if err != nil {
			fail("fsck -y stopped: %v", err)
			return codes, false
		}
		nrep, nout, tried, nerr := checkInPlace(t, b, No)
		fmt.Fprintf(&log, "-- fsck -n -f (exit %d, err %v, %d problems):\n%s", nrep.ExitCode, nerr, len(nrep.Problems), nout)
		switch {
		case tried != 0:
			fail("fsck -n -f after fsck -y tried %d writes", tried)
			return codes, false
		case nerr != nil || nrep.ExitCode != ExitOK:
			fail("fsck -n -f after fsck -y could not check: exit %d, %v", nrep.ExitCode, nerr)
			return codes, false
		}
		switch rep.ExitCode {
		case ExitOK:
			if len(nrep.Problems) != 0 || !nrep.Clean {
				fail("fsck -y said done, and fsck -n -f still finds %d problems", len(nrep.Problems))
				return codes, false
			}
			return codes, true
		case ExitRerun:
			if run == 2 {
				fail("the rerun asks for another rerun")
				return codes, false
			}
		default:
			fail("fsck -y exit %d", rep.ExitCode)
			return codes, false
		}
	}
	return codes, false
}

// The base images of the rounds, made once per test binary.
var (
	roundsMu   sync.Mutex
	roundsBase = map[string][]byte{}
)

// roundsGeometry is a base image of the rounds: fsck-rounds.py's tree
// (20 directories of 40 files of 100, 5000, 40000 or MaxFile bytes) in a
// new filesystem of Size bytes with Bsize-byte blocks.
type roundsGeometry struct {
	name         string
	size         int64
	bsize, fsize int
	density      int // bytes per inode; 0 for newfs's default
	maxFile      int
}

var roundsGeometries = []roundsGeometry{
	// newfs's default blocks (32 KiB) as the script has them, in half its
	// size (128 MiB) with smaller big files: the same damage for less time
	// in CI.
	{name: "32k", size: 64 << 20, maxFile: 150000},
	// 4 KiB blocks, as in the image of the not-converging report: the
	// biggest files reach into the single indirect block. A quarter of
	// newfs's inodes for these blocks (10240): a damaged cylinder group
	// makes fsck read all of its inodes.
	{name: "4k", size: 40 << 20, bsize: 4096, fsize: 512, density: 4096, maxFile: 80000},
}

// The engine spreads directories made in the root over the groups at
// random, as FreeBSD's ffs_dirpref does, so the layout differs from run to
// run and a seed does not damage the same files twice: -fsck.dump keeps
// the damaged image of a failure.
func roundsImage(t testing.TB, g roundsGeometry) []byte {
	t.Helper()
	roundsMu.Lock()
	defer roundsMu.Unlock()
	if b, ok := roundsBase[g.name]; ok {
		return bytes.Clone(b)
	}
	m := blockdev.NewMem(g.size)
	p := newfs.DefaultParams()
	p.Bsize, p.Fsize, p.Density = g.bsize, g.fsize, g.density
	if _, err := newfs.Format(context.Background(), m, p); err != nil {
		t.Fatal(err)
	}
	fs, err := ufs.Open(m, ufs.Options{UseReserve: true, Async: true})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	sizes := []int{100, 5000, 40000, g.maxFile}
	pattern := make([]byte, g.maxFile+1000)
	for i := range pattern {
		pattern[i] = byte(i * 7 / 3)
	}
	for d := 0; d < 20; d++ {
		dir, err := fs.Mkdir(fs.Root(), fmt.Sprintf("d%d", d), 0o755, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < 40; n++ {
			ino, err := fs.Create(dir, fmt.Sprintf("f%d", n), 0o644, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			k := d*40 + n
			data := pattern[k : k+sizes[rng.IntN(len(sizes))]]
			if _, err := fs.WriteAt(ino, data, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	b := m.Bytes()
	if rep, out, err := checkNoWrite(t, newCow(b), "rounds base image "+g.name); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("rounds base image %s: fsck -n -f: %v, %d problems\n%s", g.name, err, len(rep.Problems), out)
	}
	roundsBase[g.name] = b
	return bytes.Clone(b)
}

// TestConvergeRounds is fsck-rounds.py in CI: a fresh image damaged in
// seeded random ways (a few and many places, all kinds or block pointers
// only) must be repaired by fsck -y in one run, or in two when the first
// asks for a rerun, and no fsck -n on the way may write. -fsck.seeds runs
// more seeds; a failure names its seed, kind and geometry.
func TestConvergeRounds(t *testing.T) {
	seeds := *roundsSeeds
	if seeds == 0 {
		seeds = defaultRoundsSeeds
	}
	type round struct {
		count    int
		pointers bool
	}
	var rounds []round
	for _, f := range strings.Split(*roundsKinds, ",") {
		var r round
		if r.pointers = strings.HasPrefix(f, "p"); r.pointers {
			f = f[1:]
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			t.Fatalf("-fsck.rounds: %q is not a count of places (with p for pointers only)", f)
		}
		r.count = n
		rounds = append(rounds, r)
	}
	start := time.Now()
	total, failed, reruns := 0, 0, 0
	for _, g := range roundsGeometries {
		base := roundsImage(t, g)
		for _, r := range rounds {
			for i := range seeds {
				seed := *roundsFirst + uint64(i)
				name := fmt.Sprintf("geometry %s, seed %d, count %d", g.name, seed, r.count)
				if r.pointers {
					name += " (block pointers only)"
				}
				b := newCow(base)
				if err := fscktest.Damage(b, rand.New(rand.NewPCG(seed, uint64(r.count))), r.count, r.pointers); err != nil {
					t.Fatal(err)
				}
				if !b.changed() {
					t.Errorf("%s: the damage changed nothing", name)
					continue
				}
				var damaged []byte
				if *roundsDump != "" {
					damaged = b.snapshot()
				}
				total++
				// A check of the damaged image runs to its end and tries no write.
				rep, out, tried, err := checkInPlace(t, b, No)
				good := tried == 0 && err == nil && rep.ExitCode != ExitError
				if !good {
					t.Errorf("%s: fsck -n -f of the damaged image: exit %d, %v, %d writes tried\n%s", name, rep.ExitCode, err, tried, out)
				}
				codes, ok := converged(t, b, name)
				if len(codes) > 1 {
					reruns++
				}
				if !good || !ok {
					failed++
					if damaged != nil {
						file := fmt.Sprintf("%s/rounds-%s-seed%d-count%d", *roundsDump, g.name, seed, r.count)
						if r.pointers {
							file += "-pointers"
						}
						writeGzip(t, file+".img.gz", damaged)
					}
				}
			}
		}
	}
	t.Logf("%d damaged images (%d seeds from %d, %d kinds of rounds, %d geometries): %d failed, %d needed the rerun; %v",
		total, seeds, *roundsFirst, len(rounds), len(roundsGeometries), failed, reruns, time.Since(start).Round(time.Millisecond))
}

// notConverging is the image of the report that fsck -y did not converge
// on (../shared/repro/fsck-y-not-converging.img): a 32 MiB filesystem with
// 4 KiB blocks, damaged inodes, cylinder groups and directories, whose
// repair clears five files with BAD and DUP blocks. Everything but its
// metadata (superblocks, cylinder groups, inodes, summary, directory and
// indirect blocks) is zeroed to keep it small; fsck's transcripts of it
// are the same as of the original.
const notConvergingImage = "testdata/fsck-y-not-converging.img.gz"

func writeGzip(t testing.TB, path string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("damaged image written to %s (gunzip it; ufs2 fsck -y -f reproduces)", path)
}

func readGzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// TestNotConvergingImage: fsck -y of the reported image says the
// filesystem is clean, and a check after it agrees: the blocks of the
// files cleared for BAD and DUP blocks are free in the maps and the
// counts (they stayed counted as in use).
func TestNotConvergingImage(t *testing.T) {
	b := newCow(readGzip(t, notConvergingImage))
	rep, out, err := checkNoWrite(t, b, "fsck-y-not-converging.img")
	if err != nil || rep.Clean || len(rep.Problems) == 0 {
		t.Fatalf("fsck -n -f of the damaged image: err %v, clean %v, %d problems\n%s", err, rep.Clean, len(rep.Problems), out)
	}
	for _, want := range []string{"5136152271503443783 BAD I=8305", "24855 DUP I=8495", "DUP/BAD  I=24635"} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck -n transcript lacks %q: not the reported damage\n%s", want, out)
		}
	}
	if codes, ok := converged(t, b, "fsck-y-not-converging.img"); ok && len(codes) != 1 {
		t.Errorf("fsck -y exits %v; fsck_ffs repairs this image in one run", codes)
	}
	rep, out, _ = checkNoWrite(t, b, "the repaired image")
	if s := rep.Summary; s.Files != 794 || s.Used != 9488 || s.Free != 39391 {
		t.Errorf("after repair: %+v, want 794 files, 9488 used, 39391 free\n%s", s, out)
	}
}
