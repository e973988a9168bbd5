package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// runCLI runs "ufs2 newfs args..." in-process and returns what it printed
// and the exit status run would give.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	t.Setenv("COLUMNS", "")
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"ufs2", "newfs"}, args...))
	if err == nil {
		return out.String(), 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return out.String() + ee.msg, ee.code
	}
	return out.String() + err.Error(), 1
}

func readSB(t *testing.T, path string) *ondisk.Superblock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, _, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestNewfsDryRun(t *testing.T) {
	img := filepath.Join(t.TempDir(), "md0")
	out, code := runCLI(t, "-N", "-s", "1g", img)
	want := img + ": 1024.0MB (2097152 sectors) block size 32768, fragment size 4096\n" +
		"\tusing 4 cylinder groups of 256.03MB, 8193 blks, 32896 inodes.\n" +
		"\twith soft updates\n" +
		"super-block backups (for fsck_ffs -b #) at:\n" +
		" 192, 524544, 1048896, 1573248\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("-N created the image: %v", err)
	}
	// Bare numbers are sectors of -S bytes.
	for _, args := range [][]string{{"-s", "2097152"}, {"-S", "4096", "-s", "262144"}, {"-s", "1048576k"}} {
		got, code := runCLI(t, append(append([]string{"-N"}, args...), img)...)
		if code != 0 || !strings.Contains(got, "1024.0MB (2097152 sectors)") {
			t.Errorf("%v: exit %d\n%s", args, code, got)
		}
	}
	if got, _ := runCLI(t, "-N", "--no-softdep", "-s", "1g", img); strings.Contains(got, "soft updates") {
		t.Errorf("--no-softdep still reports soft updates:\n%s", got)
	}
}

func TestNewfsCreates(t *testing.T) {
	img := filepath.Join(t.TempDir(), "fs.img")
	out, code := runCLI(t, "-s", "256m", "-L", "vol1", "-n", img)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	fi, err := os.Stat(img)
	if err != nil || fi.Size() != 256<<20 {
		t.Fatalf("image: %v %v", fi, err)
	}
	sb := readSB(t, img)
	if sb.VolumeName() != "vol1" || sb.Flags&ondisk.FSDoSoftdep == 0 || sb.Cstotal.Ndir != 1 {
		t.Errorf("volname %q flags %#x ndir %d", sb.VolumeName(), sb.Flags, sb.Cstotal.Ndir)
	}
	if ls := testutil.Fls(t, img); strings.Contains(ls, ".snap") {
		t.Errorf("-n made .snap:\n%s", ls)
	}

	// Again over the existing image, whole size, soft updates off.
	if out, code := runCLI(t, "--no-softdep", img); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	sb = readSB(t, img)
	if sb.Flags&ondisk.FSDoSoftdep != 0 || sb.VolumeName() != "" || sb.Size != 256<<20/4096 {
		t.Errorf("flags %#x volname %q size %d", sb.Flags, sb.VolumeName(), sb.Size)
	}
	if ls := testutil.Fls(t, img); !strings.Contains(ls, ".snap") {
		t.Errorf("no .snap:\n%s", ls)
	}
}

// TestNewfsRejects: bad options fail with FreeBSD's exit status, an
// existing target is left as it was and a missing one is not created.
func TestNewfsRejects(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.img")
	content := bytes.Repeat([]byte("keep me "), 1<<17) // 1 MiB
	if err := os.WriteFile(existing, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(existing, 64<<20); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(existing)
	missing := filepath.Join(dir, "missing.img")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bsize-small", []string{"-b", "3000"}, 1, "block size too small"},
		{"bsize-pow2", []string{"-b", "12288"}, 16, "block size must be a power of 2"},
		{"fsize-pow2", []string{"-b", "16384", "-f", "3000"}, 17, "fragment size must be a power of 2"},
		{"bsize-large", []string{"-b", "128k"}, 1, "block size too large"},
		{"too-large", []string{"-s", "2g"}, 1, "maximum file system size"},
		{"too-small", []string{"-s", "100k"}, 28, "minimum size"},
		{"minfree", []string{"-m", "100"}, 1, "bad free space"},
		{"ufs1", []string{"-O", "1"}, 1, "UFS1"},
		{"journal", []string{"-j"}, 1, "journaled soft updates"},
		{"optim", []string{"-o", "fast"}, 1, "unknown optimization preference"},
		{"label", []string{"-L", "bad label"}, 1, "bad volume label"},
		{"size-syntax", []string{"-s", "12q"}, 1, "bad file system size"},
		{"density", []string{"-i", "-5"}, 1, "bad bytes per inode"},
		{"unknown-flag", []string{"-Z"}, 64, "flag provided but not defined"},
		{"contradiction", []string{"-U", "--no-softdep"}, 64, "contradict"},
	} {
		for _, target := range []string{existing, missing} {
			if tc.name == "too-large" && target == missing {
				continue // a missing image is created at the size asked for
			}
			args := tc.args
			if target == missing && !strings.Contains(strings.Join(args, " "), "-s") {
				args = append(append([]string{}, args...), "-s", "64m")
			}
			out, code := runCLI(t, append(args, target)...)
			if code != tc.code || !strings.Contains(out, tc.msg) {
				t.Errorf("%s on %s: exit %d, %q; want %d and %q", tc.name, filepath.Base(target), code, out, tc.code, tc.msg)
			}
			if strings.Count(strings.TrimSpace(out), "\n") > 0 {
				t.Errorf("%s: more than one line: %q", tc.name, out)
			}
		}
		after, err := os.Stat(existing)
		if err != nil || !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
			t.Fatalf("%s: target changed: %v %v", tc.name, after, err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: created the missing target", tc.name)
		}
	}
	got, err := os.ReadFile(existing)
	if err != nil || !bytes.Equal(got[:len(content)], content) || !bytes.Equal(got[len(content):], make([]byte, len(got)-len(content))) {
		t.Fatal("target contents changed")
	}
	if _, code := runCLI(t); code != 64 {
		t.Errorf("no target: exit %d, want 64", code)
	}
}

func TestParseSizes(t *testing.T) {
	for _, tc := range []struct {
		in     string
		sector int64
		want   int64
		ok     bool
	}{
		{"2097152", 512, 1 << 30, true},
		{"1g", 512, 1 << 30, true},
		{"1G", 4096, 1 << 30, true},
		{"1t", 512, 1 << 40, true},
		{"100g", 512, 100 << 30, true},
		{"64m", 512, 64 << 20, true},
		{"512k", 512, 512 << 10, true},
		{"4096b", 512, 4096, true},
		{"262144", 4096, 1 << 30, true},
		{"0x100", 512, 256 * 512, true},
		{"", 512, 0, false},
		{"g", 512, 0, false},
		{"-1", 512, 0, false},
		{"1.5g", 512, 0, false},
		{"99999999999999999999", 512, 0, false},
		{"9000000000000000000", 512, 0, false},
		{"16e", 512, 0, false},
	} {
		got, err := parseFsSize(tc.in, tc.sector)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseFsSize(%q, %d) = %d, %v; want %d, ok=%v", tc.in, tc.sector, got, err, tc.want, tc.ok)
		}
	}
}
