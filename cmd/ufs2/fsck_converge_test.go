package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/fsck/fscktest"
)

// fileSum is the SHA-256 of the file at path.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// checkNoWrite runs ufs2 fsck -n -f --json on img, which must change no
// byte of it and run to its end: exit 0, or with damaged the 16 of a
// check that found a cylinder group to rebuild. It returns the report.
func checkNoWrite(t *testing.T, bin, img, what string, damaged bool) fsckReport {
	t.Helper()
	before := fileSum(t, img)
	out, errOut, code := fsckRun(t, bin, "fsck", "-n", "-f", "--json", img)
	if fileSum(t, img) != before {
		t.Fatalf("%s: ufs2 fsck -n -f changed the image", what)
	}
	if code != 0 && !(damaged && code == 16) {
		t.Fatalf("%s: ufs2 fsck -n -f: exit %d, want 0 (a check runs to its end)\n%s", what, code, errOut)
	}
	var rep fsckReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%s: ufs2 fsck -n -f --json: %v\n%s", what, err, out)
	}
	return rep
}

// repairConverges runs ufs2 fsck -y -f on img and asserts that it is
// repaired in one run, or in two when the first exits 16 (rerun), with a
// check after each run that writes nothing, and none left after the last.
// It returns the exit statuses of the repairs.
func repairConverges(t *testing.T, bin, img, what string) []int {
	t.Helper()
	var codes []int
	var log strings.Builder
	for run := 1; run <= 2; run++ {
		out, errOut, code := fsckRun(t, bin, "fsck", "-y", "-f", img)
		codes = append(codes, code)
		fmt.Fprintf(&log, "-- ufs2 fsck -y -f (run %d): exit %d\n%s%s", run, code, out, errOut)
		rep := checkNoWrite(t, bin, img, what, false)
		switch {
		case code == 0 && (!rep.Clean || len(rep.Problems) != 0):
			t.Fatalf("%s: fsck -y exits %v, and fsck -n -f still finds %d problems: %+v\n%s", what, codes, len(rep.Problems), rep.Problems, log.String())
		case code == 0:
			return codes
		case code != 16:
			t.Fatalf("%s: fsck -y exits %v, want 0, or 16 then 0\n%s", what, codes, log.String())
		}
	}
	t.Fatalf("%s: fsck -y exits %v: the rerun asks for another\n%s", what, codes, log.String())
	return codes
}

// TestFsckReportImage: the image that fsck -y called clean while the
// blocks of the files it cleared stayed counted, through the command: the
// check before writes nothing, one fsck -y repairs it, the check after
// finds nothing.
func TestFsckReportImage(t *testing.T) {
	bin := ufs2Binary(t)
	f, err := os.Open("../../fsck/testdata/fsck-y-not-converging.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "report.img")
	out, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := checkNoWrite(t, bin, img, "the damaged image", true); rep.Clean || len(rep.Problems) == 0 {
		t.Fatalf("fsck -n -f finds the damaged image clean")
	}
	if codes := repairConverges(t, bin, img, "the report image"); len(codes) != 1 {
		t.Errorf("fsck -y exits %v; one run repairs this image", codes)
	}
}

// TestFsckRoundsCommand is fsck-rounds.py through the command: a new
// image made by ufs2 newfs --from, damaged as the script damages (Go's
// random numbers, not Python's: the counts and kinds of the report, with
// a few seeds), repaired by ufs2 fsck -y and checked by ufs2 fsck -n -f,
// which never changes a byte. TestConvergeRounds in package fsck runs
// many more seeds.
func TestFsckRoundsCommand(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	rng := rand.New(rand.NewPCG(7, 7))
	sizes := []int{100, 5000, 40000, 150000}
	pattern := make([]byte, 151000)
	for i := range pattern {
		pattern[i] = byte(i * 7 / 3)
	}
	for d := range 20 {
		sub := filepath.Join(src, fmt.Sprintf("d%d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for n := range 40 {
			k := d*40 + n
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", n)), pattern[k:k+sizes[rng.IntN(len(sizes))]], 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := filepath.Join(dir, "base.img")
	if _, errOut, code := fsckRun(t, bin, "newfs", "-s", "64m", "--from", src, base); code != 0 {
		t.Fatalf("ufs2 newfs --from: exit %d\n%s", code, errOut)
	}
	baseBytes, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "t.img")
	for _, r := range []struct {
		seed     uint64
		count    int
		pointers bool
	}{{2, 100, false}, {9, 400, false}, {9, 400, true}, {1, 100, false}, {3, 400, false}, {5, 400, true}} {
		what := fmt.Sprintf("seed %d, count %d, pointers %v", r.seed, r.count, r.pointers)
		if err := os.WriteFile(img, baseBytes, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = fscktest.Damage(f, rand.New(rand.NewPCG(r.seed, uint64(r.count))), r.count, r.pointers)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		if rep := checkNoWrite(t, bin, img, what+": the damaged image", true); len(rep.Problems) == 0 {
			t.Fatalf("%s: the damage left nothing to find", what)
		}
		codes := repairConverges(t, bin, img, what)
		t.Logf("%s: fsck -y exits %v", what, codes)
	}
}

// TestFsckLongSymlink: a symlink of 4095 bytes made by ufs2 ln -s (a slow
// symlink longer than FreeBSD's 1023) is no problem to ufs2 fsck.
func TestFsckLongSymlink(t *testing.T) {
	bin := ufs2Binary(t)
	img := filepath.Join(t.TempDir(), "l.img")
	if _, errOut, code := fsckRun(t, bin, "newfs", "-s", "8m", img); code != 0 {
		t.Fatalf("ufs2 newfs: exit %d\n%s", code, errOut)
	}
	target := "/" + strings.Repeat("d/", 2047) // 4095 bytes
	if _, errOut, code := fsckRun(t, bin, "ln", "-s", img, target, "/long"); code != 0 {
		t.Fatalf("ufs2 ln -s of %d bytes: exit %d\n%s", len(target), code, errOut)
	}
	if rep := checkNoWrite(t, bin, img, "the image with a 4095-byte symlink", false); !rep.Clean || len(rep.Problems) != 0 {
		t.Fatalf("fsck -n -f flags the 4095-byte symlink: %+v", rep.Problems)
	}
	before := fileSum(t, img)
	if _, errOut, code := fsckRun(t, bin, "fsck", "-y", "-f", img); code != 0 || fileSum(t, img) != before {
		t.Fatalf("fsck -y -f: exit %d, image changed %v\n%s", code, fileSum(t, img) != before, errOut)
	}
}
