package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// fsckReport is the part of ufs2 fsck --json the tests read.
type fsckReport struct {
	ExitCode int  `json:"exit_code"`
	Clean    bool `json:"clean"`
	Summary  struct {
		Files int64 `json:"files"`
	} `json:"summary"`
	Problems []struct {
		Phase   string `json:"phase"`
		Ino     uint32 `json:"ino"`
		Message string `json:"message"`
		Fixed   bool   `json:"fixed"`
	} `json:"problems"`
}

// buildFsckBinary builds ufs2 once into a temporary directory.
func buildFsckBinary(t *testing.T) string { return ufs2Binary(t) }

// fsckRun runs the built binary and returns its stdout, stderr and exit
// status.
func fsckRun(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatalf("ufs2 %q: %v", args, err)
	return "", "", -1
}

// copyFile copies src to a new file in a temporary directory.
func copyFile(t *testing.T, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// damageImage applies change to the superblock and file of the image at
// path.
func damageImage(t *testing.T, path string, change func(f *os.File, sb *ondisk.Superblock) error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, _, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := change(f, sb); err != nil {
		t.Fatal(err)
	}
}

// zeroCg0 zeroes the first cylinder group's block.
func zeroCg0(f *os.File, sb *ondisk.Superblock) error {
	_, err := f.WriteAt(make([]byte, sb.Cgsize), sb.FragOffset(sb.Cgtod(0)))
	return err
}

// rootLinks9 gives the root directory a link count of 9.
func rootLinks9(f *os.File, sb *ondisk.Superblock) error {
	raw := make([]byte, ondisk.DinodeSize)
	off := sb.InoOffset(ondisk.RootIno)
	if _, err := f.ReadAt(raw, off); err != nil {
		return err
	}
	var dp ondisk.Dinode
	if err := dp.Decode(raw); err != nil {
		return err
	}
	dp.Nlink = 9
	if err := dp.EncodeWithHash(sb, raw); err != nil {
		return err
	}
	_, err := f.WriteAt(raw, off)
	return err
}

func oneLine(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && !strings.Contains(s, "\n")
}

func TestFsckCommand(t *testing.T) {
	bin := buildFsckBinary(t)
	dir := t.TempDir()

	newfsImg := filepath.Join(dir, "newfs.img")
	if out, errOut, code := fsckRun(t, bin, "newfs", "-s", "64m", newfsImg); code != 0 {
		t.Fatalf("ufs2 newfs: exit %d\n%s%s", code, out, errOut)
	}
	src := t.TempDir()
	testutil.MakeTree(t, src, testutil.TreeSpec{Seed: 5, Depth: 2, Dirs: 3, Files: 30, MaxFileSize: 40 << 10, ShortSymlinks: 2})
	makefsImg := filepath.Join(dir, "makefs.img")
	testutil.Makefs(t, src, makefsImg, "")
	notUFS := filepath.Join(dir, "zero.img")
	if err := os.WriteFile(notUFS, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.img")

	t.Run("clean images", func(t *testing.T) {
		for _, tt := range []struct {
			img  string
			args []string
			want string
		}{
			{newfsImg, []string{"-n", "-f"}, " files, "},
			{newfsImg, []string{"-p"}, "FILE SYSTEM CLEAN; SKIPPING CHECKS"},
			{newfsImg, []string{"-p", "-f"}, " files, "},
			{makefsImg, []string{"-n", "-f"}, " files, "},
			{makefsImg, []string{"-y", "-f"}, "***** FILE SYSTEM IS CLEAN *****"},
		} {
			args := append(append([]string{"fsck"}, tt.args...), tt.img)
			out, errOut, code := fsckRun(t, bin, args...)
			if code != 0 || !strings.Contains(out, tt.want) || !strings.Contains(out, "fragmentation)") || errOut != "" {
				t.Errorf("ufs2 %q: exit %d, want 0, %q and the summary line\nstdout:\n%s\nstderr:\n%s",
					args[1:], code, tt.want, out, errOut)
			}
		}
	})

	t.Run("damaged", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			damage func(*os.File, *ondisk.Superblock) error
			nexit  int    // fsck_ffs's status for -n
			want   string // in the -n transcript
		}{
			// -n cannot rebuild the group and asks for a rerun (16).
			{"zeroed cylinder group", zeroCg0, 16, "CYLINDER GROUP 0: INTEGRITY CHECK FAILED"},
			// What -n declines to fix leaves fsck_ffs's status at 0.
			{"wrong link count", rootLinks9, 0, "ADJUST? no"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				img := copyFile(t, makefsImg, "damaged.img")
				damageImage(t, img, tt.damage)
				before, err := os.ReadFile(img)
				if err != nil {
					t.Fatal(err)
				}

				out, errOut, code := fsckRun(t, bin, "fsck", "-n", "-f", img)
				if testing.Verbose() {
					t.Logf("fsck -n -f: exit %d\n%s%s", code, out, errOut)
				}
				if code != tt.nexit || !strings.Contains(out, tt.want) {
					t.Errorf("fsck -n: exit %d, want %d and %q\n%s%s", code, tt.nexit, tt.want, out, errOut)
				}
				if !oneLine(errOut) {
					t.Errorf("fsck -n: stderr is not one line: %q", errOut)
				}
				after, err := os.ReadFile(img)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(before, after) {
					t.Fatal("fsck -n changed the image")
				}

				out, errOut, code = fsckRun(t, bin, "fsck", "-n", "-f", "--json", img)
				var rep fsckReport
				if err := json.Unmarshal([]byte(out), &rep); err != nil {
					t.Fatalf("--json output does not parse: %v\n%s", err, out)
				}
				if code != tt.nexit || rep.ExitCode != tt.nexit || rep.Clean || len(rep.Problems) == 0 || rep.Summary.Files == 0 {
					t.Errorf("fsck -n --json: exit %d, report %+v\nstderr: %s", code, rep, errOut)
				}
				for _, p := range rep.Problems {
					if p.Phase == "" || p.Message == "" || p.Fixed {
						t.Errorf("problem %+v: want a phase, a message and not fixed", p)
					}
				}

				// -y repairs, in at most two runs (16 asks for another).
				var yout string
				for run := 0; ; run++ {
					out, errOut, code = fsckRun(t, bin, "fsck", "-y", img)
					yout += out + errOut
					if code == 0 {
						break
					}
					if code != 16 || run == 1 {
						t.Fatalf("fsck -y: exit %d\n%s", code, yout)
					}
				}
				if testing.Verbose() {
					t.Logf("fsck -y:\n%s", yout)
				}
				if !strings.Contains(yout, "***** FILE SYSTEM WAS MODIFIED *****") {
					t.Errorf("fsck -y modified nothing:\n%s", yout)
				}

				out, errOut, code = fsckRun(t, bin, "fsck", "-n", "-f", "--json", img)
				rep = fsckReport{}
				if err := json.Unmarshal([]byte(out), &rep); err != nil {
					t.Fatalf("--json output does not parse: %v\n%s", err, out)
				}
				if code != 0 || !rep.Clean || len(rep.Problems) != 0 || errOut != "" {
					t.Errorf("fsck -n -f after -y: exit %d, report %+v, stderr %q\n-y said:\n%s", code, rep, errOut, yout)
				}
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			args []string
			code int
			msg  string // in the one line on stderr
		}{
			{"-n and -y", []string{"-n", "-y", newfsImg}, 64, "exclude each other"},
			{"-n and -p", []string{"-np", newfsImg}, 64, "exclude each other"},
			{"no target", []string{"-n"}, 64, "TARGET"},
			{"two targets", []string{"-n", newfsImg, makefsImg}, 64, "TARGET"},
			{"negative -b", []string{"-n", "-b", "-5", newfsImg}, 64, "-b"},
			{"missing file", []string{"-n", missing}, 8, "missing.img"},
			{"missing file, preen", []string{"-p", missing}, 3, "missing.img"},
			{"not UFS", []string{"-n", notUFS}, 8, "no usable superblock"},
			{"not UFS, preen", []string{"-p", notUFS}, 3, "no usable superblock"},
			{"not UFS, preen -f", []string{"-p", "-f", notUFS}, 8, "no usable superblock"},
			{"-b not a superblock", []string{"-n", "-b", "100", newfsImg}, 8, "no usable superblock"},
		} {
			args := append([]string{"fsck"}, tt.args...)
			_, errOut, code := fsckRun(t, bin, args...)
			if code != tt.code || !oneLine(errOut) || !strings.Contains(errOut, tt.msg) {
				t.Errorf("%s: ufs2 %q: exit %d, stderr %q; want exit %d and one line with %q",
					tt.name, args, code, errOut, tt.code, tt.msg)
			}
		}
	})
}
