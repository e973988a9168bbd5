package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/newfs"
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

	// Again over the existing image (-F: it holds a filesystem), whole
	// size, soft updates off.
	if out, code := runCLI(t, "-F", "--no-softdep", img); code != 0 {
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

// fsckCleanup checks img with ufs2 fsck -n -f when the test ends.
func fsckCleanup(t *testing.T, bin, img string) {
	t.Cleanup(func() {
		if out, errOut, code := fsckRun(t, bin, "fsck", "-n", "-f", img); code != 0 {
			t.Errorf("fsck -n -f %s: exit %d\n%s%s", img, code, out, errOut)
		}
	})
}

// TestNewfsExisting: newfs over a target that holds a filesystem (ours,
// ext4, or a signature only blkid knows) is refused in one line, writing
// nothing, unless -F is given or the answer on a terminal is yes; a
// missing image without -s is refused naming -s.
func TestNewfsExisting(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	ufsImg := filepath.Join(dir, "ufs.img")
	if _, errOut, code := fsckRun(t, bin, "newfs", "-s", "64m", "-L", "vol1", ufsImg); code != 0 {
		t.Fatalf("newfs: exit %d: %s", code, errOut)
	}
	fsckCleanup(t, bin, ufsImg)
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	extImg := filepath.Join(dir, "ext.img")
	if err := os.WriteFile(extImg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(extImg, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", "home", extImg).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	testutil.RequireTool(t, "mkswap", "util-linux")
	testutil.RequireTool(t, "blkid", "util-linux")
	swapImg := filepath.Join(dir, "swap.img")
	if err := os.WriteFile(swapImg, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkswap", swapImg).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v\n%s", err, out)
	}
	for _, tc := range []struct{ img, want string }{
		{ufsImg, "ufs2: newfs: " + ufsImg + " holds a UFS2 filesystem (label vol1); give -F to make a new filesystem over it\n"},
		{extImg, "ufs2: newfs: " + extImg + " holds an ext4 filesystem (label home); give -F to make a new filesystem over it\n"},
		{swapImg, "ufs2: newfs: " + swapImg + " holds a swap signature (blkid -p); give -F to make a new filesystem over it\n"},
	} {
		before, err := os.ReadFile(tc.img)
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := fsckRun(t, bin, "newfs", tc.img)
		if code != 1 || errOut != tc.want || out != "" {
			t.Errorf("newfs %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", filepath.Base(tc.img), code, out, errOut, tc.want)
		}
		if after, _ := os.ReadFile(tc.img); !bytes.Equal(before, after) {
			t.Errorf("the refused newfs changed %s", tc.img)
		}
	}
	// -F makes the filesystem without asking.
	if _, errOut, code := fsckRun(t, bin, "newfs", "-F", extImg); code != 0 {
		t.Fatalf("newfs -F over ext4: exit %d: %s", code, errOut)
	}
	fsckCleanup(t, bin, extImg)
	if sb := readSB(t, extImg); sb.Size != 64<<20/4096 {
		t.Errorf("newfs -F: size %d frags", sb.Size)
	}

	// On a terminal newfs asks; only yes goes ahead.
	testutil.RequireTool(t, "script", "bsdutils")
	for _, tc := range []struct {
		answer string
		code   int
		label  string
	}{{"n", 1, "vol1"}, {"", 1, "vol1"}, {"y", 0, ""}} {
		cmd := exec.Command("script", "-qec", bin+" newfs "+ufsImg+" >/dev/null", "/dev/null")
		cmd.Stdin = strings.NewReader(tc.answer + "\n")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), ufsImg+" holds a UFS2 filesystem (label vol1). Make a new filesystem over it? (y,N)") {
			t.Errorf("answer %q: exit %d, want %d; terminal showed %q", tc.answer, code, tc.code, out)
		}
		if tc.code != 0 && !strings.Contains(string(out), "ufs2: newfs: "+ufsImg+" left as it was") {
			t.Errorf("answer %q: no refusal on the terminal: %q", tc.answer, out)
		}
		if got := readSB(t, ufsImg).VolumeName(); got != tc.label {
			t.Errorf("answer %q: label now %q, want %q", tc.answer, got, tc.label)
		}
	}

	missing := filepath.Join(dir, "missing.img")
	_, errOut, code := fsckRun(t, bin, "newfs", missing)
	if want := "ufs2: newfs: " + missing + " does not exist; give its size with -s (as -s 10g) to create it, or --from DIR to size it from a tree\n"; code != 1 || errOut != want {
		t.Errorf("newfs on a missing image: exit %d, %q; want 1, %q", code, errOut, want)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("newfs without -s created %s", missing)
	}
}

// TestProbeFS: our own probe names UFS1, UFS2 and ext2/3/4 from their
// superblocks' magic numbers, with label and last mount point.
func TestProbeFS(t *testing.T) {
	ext := func(compat, incompat uint32) []byte {
		b := make([]byte, 4096)
		sb := b[1024:]
		binary.LittleEndian.PutUint16(sb[56:], 0xEF53)
		binary.LittleEndian.PutUint32(sb[92:], compat)
		binary.LittleEndian.PutUint32(sb[96:], incompat)
		copy(sb[120:], "data")
		copy(sb[136:], "/srv")
		return b
	}
	ufs := func(off int, magic uint32) []byte {
		b := make([]byte, 300<<10)
		binary.LittleEndian.PutUint32(b[off+1372:], magic)
		copy(b[off+212:], "/usr")
		copy(b[off+680:], "usr")
		return b
	}
	for _, tc := range []struct {
		name string
		img  []byte
		want string // "" for nothing found
	}{
		{"empty", make([]byte, 1<<20), ""},
		{"short", make([]byte, 100), ""},
		{"ext2", ext(0, 0), "an ext2 filesystem (label data, last mounted on /srv)"},
		{"ext3", ext(0x4, 0x2), "an ext3 filesystem (label data, last mounted on /srv)"},
		{"ext4", ext(0x4, 0x2|0x40|0x200), "an ext4 filesystem (label data, last mounted on /srv)"},
		{"ufs2", ufs(65536, 0x19540119), "a UFS2 filesystem (label usr, last mounted on /usr)"},
		{"ufs2-piggy", ufs(262144, 0x19540119), "a UFS2 filesystem (label usr, last mounted on /usr)"},
		{"ufs1", ufs(8192, 0x011954), "a UFS1 filesystem (label usr, last mounted on /usr)"},
		{"unfinished-newfs", ufs(65536, 0x19960408), ""},
	} {
		f, ok := probeFS(bytes.NewReader(tc.img))
		got := ""
		if ok {
			got = f.String()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestNewfsFromSizes: newfs --from without -s on a missing image makes
// one just large enough for the tree, and the tree is in it.
func TestNewfsFromSizes(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.MakeTree(t, src, testutil.Small())
	img := filepath.Join(dir, "from.img")
	_, errOut, code := fsckRun(t, bin, "newfs", "-n", "--from", src, img)
	if code != 0 || !strings.HasPrefix(errOut, "ufs2: newfs: making "+img+" ") || !strings.HasSuffix(errOut, " MiB, large enough for "+src+"\n") {
		t.Fatalf("newfs --from: exit %d, stderr %q", code, errOut)
	}
	fsckCleanup(t, bin, img)
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 32<<20 || fi.Size()%(1<<20) != 0 {
		t.Errorf("image size %d: not a whole number of MiB from 32 MiB up", fi.Size())
	}
	out := filepath.Join(dir, "out")
	if _, errOut, code := fsckRun(t, bin, "get", img, "/", out); code != 0 {
		t.Fatalf("get: exit %d: %s", code, errOut)
	}
	testutil.AssertSameTree(t, src, out, testutil.ContentOnly())
}

// TestNewfsFromTooSmall: --from a tree larger than the filesystem -s asks
// for is refused before anything is written, with the numbers.
func TestNewfsFromTooSmall(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 40<<20)
	for i := range data {
		data[i] = byte(i ^ i>>11)
	}
	if err := os.WriteFile(filepath.Join(src, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, existing := range []bool{false, true} {
		img := filepath.Join(dir, fmt.Sprintf("small-%v.img", existing))
		args := []string{"newfs", "--from", src, "-s", "32m", img}
		var before []byte
		if existing {
			before = bytes.Repeat([]byte("old "), 8<<20)
			if err := os.WriteFile(img, before, 0o644); err != nil {
				t.Fatal(err)
			}
			args = []string{"newfs", "--from", src, img}
		}
		_, errOut, code := fsckRun(t, bin, args...)
		l, err := newfs.Compute(newfs.DefaultParams(), 32<<20)
		if err != nil {
			t.Fatal(err)
		}
		free := (int64(l.SB.Blkstofrags(l.SB.Cstotal.Nbfree)) + l.SB.Cstotal.Nffree) * int64(l.SB.Fsize)
		want := fmt.Sprintf("ufs2: newfs: %s: %s needs about 40.0 MiB and 2 inodes; a filesystem of 32.0 MiB holds %s and %d inodes; nothing was written (for a new image, without -s newfs sizes it)\n",
			img, src, humanSize(free), l.SB.Cstotal.Nifree)
		if code != 1 || errOut != want {
			t.Errorf("existing %v: exit %d, %q; want 1, %q", existing, code, errOut, want)
		}
		got, err := os.ReadFile(img)
		switch {
		case existing && !bytes.Equal(got, before):
			t.Errorf("the refused newfs changed %s", img)
		case !existing && !errors.Is(err, os.ErrNotExist):
			t.Errorf("the refused newfs left %s: %v", img, err)
		}
	}
}

// TestNewfsExistingPartition: the check looks inside PATH@N, with our own
// probe and with blkid (a swap signature in partition 1), and at the
// partition table of the whole image.
func TestNewfsExistingPartition(t *testing.T) {
	testutil.RequireTool(t, "mkswap", "util-linux")
	testutil.RequireTool(t, "blkid", "util-linux")
	bin := ufs2Binary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	const start, size = 1 << 20, 32 << 20
	disk := make([]byte, 64<<20)
	e := disk[446:]
	e[4] = 0x83 // Linux
	binary.LittleEndian.PutUint32(e[8:], start/512)
	binary.LittleEndian.PutUint32(e[12:], size/512)
	disk[510], disk[511] = 0x55, 0xaa
	swap := filepath.Join(dir, "swap")
	if err := os.WriteFile(swap, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkswap", swap).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v\n%s", err, out)
	}
	sw, err := os.ReadFile(swap)
	if err != nil {
		t.Fatal(err)
	}
	copy(disk[start:], sw)
	if err := os.WriteFile(img, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ target, want string }{
		{img + "@1", "ufs2: newfs: " + img + "@1 holds a swap signature (blkid -p); give -F to make a new filesystem over it\n"},
		{img, "ufs2: newfs: " + img + " holds a dos partition table (blkid -p); give -F to make a new filesystem over it\n"},
	} {
		if _, errOut, code := fsckRun(t, bin, "newfs", tc.target); code != 1 || errOut != tc.want {
			t.Errorf("newfs %s: exit %d, %q; want 1, %q", filepath.Base(tc.target), code, errOut, tc.want)
		}
	}
	if got, _ := os.ReadFile(img); !bytes.Equal(got, disk) {
		t.Fatal("a refused newfs changed the image")
	}
	if _, errOut, code := fsckRun(t, bin, "newfs", "-F", img+"@1"); code != 0 {
		t.Fatalf("newfs -F %s@1: %s", img, errOut)
	}
	fsckCleanup(t, bin, img+"@1")
	if _, errOut, code := fsckRun(t, bin, "newfs", img+"@1"); code != 1 || !strings.Contains(errOut, "@1 holds a UFS2 filesystem; give -F") {
		t.Errorf("newfs over the new UFS2 in partition 1: exit %d, %q", code, errOut)
	}
}
