package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// fsckImage runs fsck -n -f on img; it must find nothing.
func fsckImage(t *testing.T, img string) {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	var out bytes.Buffer
	rep, err := fsck.Check(context.Background(), dev, fsck.Options{Mode: fsck.No, Force: true, Output: &out})
	if err != nil || !rep.Clean || len(rep.Problems) > 0 {
		t.Errorf("fsck -n -f %s: %v, %d problems:\n%s", img, err, len(rep.Problems), out.String())
	}
}

// imageStat returns the attributes of path p in img, opened read-only.
func imageStat(t *testing.T, img, p string) ufs.Stat {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	defer fsys.Close()
	ino, err := fsys.Namei(p)
	if err != nil {
		t.Fatalf("%s in %s: %v", p, img, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// xattrsOf lists the user.* and trusted.* attributes of host path p as
// "name=value".
func xattrsOf(t *testing.T, p string) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "trusted.") {
			v := make([]byte, 64<<10)
			m, err := unix.Lgetxattr(p, name, v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, name+"="+string(v[:m]))
		}
	}
	sort.Strings(out)
	return out
}

// TestNewfsFrom is issue 2's acceptance test: an image made by
// "ufs2 newfs --from DIR" from the project's default tree (with extended
// attributes added) is extracted by sleuthkit's tsk_recover into DIR's
// contents, byte for byte, within sleuthkit's limits, and by "ufs2 get"
// into a tree identical to DIR: types, modes, owners, times to the
// nanosecond, symlinks, hard links and extended attributes.
func TestNewfsFrom(t *testing.T) {
	testutil.RequireTool(t, "tsk_recover", "sleuthkit")
	bin := buildFsckBinary(t)
	src := t.TempDir()
	testutil.MakeTree(t, src, testutil.DefaultTree())
	var files, slow, fast []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if len(target) >= ondisk.MaxSymlinkLen {
				slow = append(slow, p)
			} else {
				fast = append(fast, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(slow) == 0 || len(fast) == 0 {
		t.Fatalf("the default tree has %d slow and %d fast symlinks", len(slow), len(fast))
	}
	// Extended attributes change ctime only, so the tree's times stay.
	for i, p := range files {
		if i%50 == 0 {
			if err := unix.Lsetxattr(p, "user.note", []byte(fmt.Sprint("file ", i)), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := unix.Lsetxattr(src, "user.top", []byte("root"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(files[3], "trusted.sys", []byte{1, 2, 3}, 0); err != nil {
		t.Fatal(err)
	}

	img := filepath.Join(t.TempDir(), "from.img")
	if stdout, stderr, code := fsckRun(t, bin, "newfs", "--from", src, "-s", "256m", img); code != 0 {
		t.Fatalf("newfs --from: exit %d\n%s%s", code, stdout, stderr)
	}
	fsckImage(t, img)

	out := filepath.Join(t.TempDir(), "out")
	if _, stderr, code := fsckRun(t, bin, "get", img, "/", out); code != 0 || stderr != "" {
		t.Fatalf("get: exit %d: %s", code, stderr)
	}
	// /.snap is newfs's; removing it from the copy moves the copy's
	// times, which go back to the image root's.
	if err := os.Remove(filepath.Join(out, ".snap")); err != nil {
		t.Fatal(err)
	}
	root := imageStat(t, img, "/")
	if err := os.Chtimes(out, root.Atime, root.Mtime); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if w, g := xattrsOf(t, p), xattrsOf(t, filepath.Join(out, rel)); !slices.Equal(w, g) {
			t.Errorf("%s: xattrs %q, want %q", rel, g, w)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertSameTree(t, src, out, testutil.CompareOpts{Owners: true, Times: true})

	rec := t.TempDir()
	testutil.TskRecover(t, img, rec)
	testutil.AssertSameTree(t, src, rec, testutil.ContentOnly())
	// ContentOnly skips symlinks: sleuthkit gives a slow one as a file
	// holding its target, and a fast one as a file of as many zero bytes
	// (or nothing).
	for _, p := range slow {
		rel, _ := filepath.Rel(src, p)
		target, _ := os.Readlink(p)
		if got, err := os.ReadFile(filepath.Join(rec, rel)); err != nil || string(got) != target {
			t.Errorf("slow symlink %s: tsk_recover gave %q, %v; want its target", rel, got, err)
		}
	}
	for _, p := range fast {
		rel, _ := filepath.Rel(src, p)
		target, _ := os.Readlink(p)
		got, err := os.ReadFile(filepath.Join(rec, rel))
		if err == nil && len(got) != 0 && !bytes.Equal(got, make([]byte, len(target))) {
			t.Errorf("fast symlink %s: tsk_recover gave %q", rel, got)
		}
	}
}

// TestNewfsFromRejects checks that a bad --from leaves no image behind.
func TestNewfsFromRejects(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{filepath.Join(dir, "missing"), file} {
		img := filepath.Join(dir, "img")
		out, code := runCLI(t, "--from", from, "-s", "64m", img)
		if code != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, from) {
			t.Errorf("--from %s: exit %d, %q", from, code, out)
		}
		if _, err := os.Stat(img); err == nil {
			t.Errorf("--from %s left an image", from)
		}
	}
	// Too small: refused before the image is made (TestNewfsFromTooSmall
	// has the message).
	big := t.TempDir()
	if err := os.WriteFile(filepath.Join(big, "f"), bytes.Repeat([]byte{1}, 40<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "small")
	out, code := runCLI(t, "--from", big, "-s", "32m", img)
	if code != 1 || !strings.Contains(out, "needs about 40.0 MiB") {
		t.Errorf("40 MiB into 32 MiB: exit %d, %q", code, out)
	}
	if _, err := os.Stat(img); err == nil {
		t.Error("a failed --from left its image")
	}
}

// TestFileVerbs drives put, get, mkdir, rm, mv, ln, chmod and chown
// through the built binary on one image and checks each result, the exit
// statuses and the one-line messages; fsck finds nothing at the end and
// the filesystem is marked clean.
func TestFileVerbs(t *testing.T) {
	bin := buildFsckBinary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if _, stderr, code := fsckRun(t, bin, "newfs", "-s", "128m", img); code != 0 {
		t.Fatalf("newfs: %s", stderr)
	}
	src := t.TempDir()
	spec := testutil.Small()
	spec.Modes = true
	testutil.MakeTree(t, src, spec)

	run := func(wantCode int, args ...string) string {
		t.Helper()
		stdout, stderr, code := fsckRun(t, bin, args...)
		if code != wantCode {
			t.Fatalf("ufs2 %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		if wantCode != 0 && (strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "ufs2: ")) {
			t.Errorf("ufs2 %s: stderr is not one line: %q", strings.Join(args, " "), stderr)
		}
		return stderr
	}
	stat := func(p string) ufs.Stat { t.Helper(); return imageStat(t, img, p) }

	// put and get back.
	run(0, "put", img, src, "/t")
	out := filepath.Join(dir, "out")
	run(0, "get", img, "/t", out)
	testutil.AssertSameTree(t, src, out, testutil.CompareOpts{Owners: true, Times: true})
	var big string
	if err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "big.bin" {
			big = p
		}
		return err
	}); err != nil || big == "" {
		t.Fatalf("big.bin not found: %v", err)
	}
	run(0, "put", img, big, "/")
	if msg := run(1, "put", img, filepath.Join(src, "nope"), "/"); msg != "ufs2: put: "+filepath.Join(src, "nope")+": No such file or directory\n" {
		t.Errorf("put of a missing file: %q", msg)
	}
	if st := stat("/big.bin"); st.Size != uint64(spec.BigFileSize) {
		t.Errorf("/big.bin: size %d", st.Size)
	}

	// mkdir.
	run(0, "mkdir", "-p", "-m", "750", img, "/a/b/c", "/a/x")
	if st := stat("/a/b/c"); st.Perm() != 0o750 || !st.IsDir() {
		t.Errorf("/a/b/c: mode 0%o", st.Mode)
	}
	run(0, "mkdir", "-m", "u=rwx,go=rx", img, "/m")
	if st := stat("/m"); st.Perm() != 0o755 {
		t.Errorf("/m: mode 0%o", st.Perm())
	}
	if msg := run(1, "mkdir", img, "/m"); !strings.Contains(msg, "/m: File exists") {
		t.Errorf("mkdir of an existing directory: %q", msg)
	}
	run(1, "mkdir", img, "/no/such/dir")

	// ln, ln -s.
	run(0, "ln", "-s", img, "../big.bin", "/a/s")
	st := stat("/a/s")
	if st.Type() != ondisk.IFLNK || st.Size != uint64(len("../big.bin")) {
		t.Errorf("/a/s: %+v", st)
	}
	run(0, "ln", img, "/big.bin", "/a/hard")
	if a, b := stat("/big.bin"), stat("/a/hard"); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d and %d, %d links", a.Ino, b.Ino, a.Nlink)
	}
	run(1, "ln", img, "/a/b", "/a/dirlink")

	// mv.
	run(0, "mv", img, "/a/b", "/a/b2")
	run(0, "mv", img, "/big.bin", "/m")
	stat("/a/b2/c")
	stat("/m/big.bin")
	if msg := run(1, "mv", img, "/a", "/a/b2/c"); !strings.Contains(msg, "Invalid argument") {
		t.Errorf("mv below itself: %q", msg)
	}

	// chmod, symbolic and octal, -R.
	run(0, "chmod", "-R", img, "u+x,g-w,o=r", "/a")
	for p, want := range map[string]uint16{"/a": 0o754, "/a/b2": 0o754, "/a/b2/c": 0o754, "/a/hard": 0o744} {
		if st := stat(p); st.Perm() != want {
			t.Errorf("after chmod -R u+x,g-w,o=r: %s is 0%o, want 0%o", p, st.Perm(), want)
		}
	}
	run(0, "chmod", img, "4711", "/a/hard")
	if st := stat("/a/hard"); st.Perm() != 0o4711 {
		t.Errorf("chmod 4711: 0%o", st.Perm())
	}
	run(1, "chmod", img, "u+q", "/a")
	if msg := run(64, "chmod", "0755", img, "/a"); msg != "ufs2: chmod: TARGET comes first: ufs2 chmod TARGET MODE PATH... (0755 is not a file here, "+img+" is)\n" {
		t.Errorf("chmod in the old order: %q", msg)
	}

	// chown: numeric, names, -h, -R.
	run(0, "chown", "-R", img, "12:34", "/a")
	for _, p := range []string{"/a", "/a/b2/c", "/a/s", "/a/hard"} {
		if st := stat(p); st.UID != 12 || st.GID != 34 {
			t.Errorf("after chown -R 12:34: %s is %d:%d", p, st.UID, st.GID)
		}
	}
	run(0, "chown", "-h", img, "root:root", "/a/s")
	if st := stat("/a/s"); st.UID != 0 || st.GID != 0 {
		t.Errorf("chown -h root:root: %d:%d", st.UID, st.GID)
	}
	run(0, "chown", img, ":7", "/a/x")
	if st := stat("/a/x"); st.UID != 12 || st.GID != 7 {
		t.Errorf("chown :7: %d:%d", st.UID, st.GID)
	}
	run(1, "chown", img, "no-such-user-anywhere", "/a")
	run(64, "chown", "0:0", img, "/a")

	// rm.
	if msg := run(1, "rm", img, "/a"); !strings.Contains(msg, "/a: Is a directory") {
		t.Errorf("rm of a directory: %q", msg)
	}
	if msg := run(1, "rm", img, "/nope"); !strings.Contains(msg, "/nope: No such file or directory") {
		t.Errorf("rm of a missing file: %q", msg)
	}
	run(0, "rm", "-f", img, "/nope")
	run(1, "rm", "-rf", img, "/")
	run(0, "rm", "-r", img, "/a", "/t")
	for _, p := range []string{"/a", "/t"} {
		out := run(1, "ls", img, p)
		if !strings.Contains(out, "No such file") {
			t.Errorf("ls %s after rm -r: %q", p, out)
		}
	}
	if st := stat("/m/big.bin"); st.Nlink != 1 {
		t.Errorf("/m/big.bin has %d links after its other name went", st.Nlink)
	}

	// Usage errors.
	run(64, "mv", img, "/m")
	run(64, "rm", "--bogus", img, "/m")
	run(64, "put", img, src)
	run(64, "chown", "0")

	fsckImage(t, img)
	if sb := readSB(t, img); sb.Clean != 1 {
		t.Errorf("fs_clean %d after the verbs, want 1", sb.Clean)
	}
}

// TestPutMessages: a put the filesystem has no room for is refused before
// it writes, saying how much it needs and has; one that fails part-way
// says what it copied.
func TestPutMessages(t *testing.T) {
	bin := buildFsckBinary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if _, stderr, code := fsckRun(t, bin, "newfs", "-s", "32m", img); code != 0 {
		t.Fatalf("newfs: %s", stderr)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 40<<20)
	for i := range data {
		data[i] = byte(i ^ i>>9)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sb := readSB(t, img)
	free := (int64(sb.Blkstofrags(sb.Cstotal.Nbfree)) + sb.Cstotal.Nffree) * int64(sb.Fsize)
	_, stderr, code := fsckRun(t, bin, "put", img, src, "/src")
	want := fmt.Sprintf("ufs2: put: %s: %s needs about 40.0 MiB and 3 inodes; the filesystem has %.1f MiB and %d inodes free; nothing was copied (make room, or a larger filesystem)\n",
		img, src, float64(free)/(1<<20), sb.Cstotal.Nifree)
	if code != 1 || stderr != want {
		t.Errorf("put of 40 MiB into 32 MiB: exit %d\n%q\nwant\n%q", code, stderr, want)
	}
	if out, _, _ := fsckRun(t, bin, "ls", img, "/"); out != ".snap\n" {
		t.Errorf("the refused put left %q in /", out)
	}

	// /x/b is a directory in the image and a file on the host: a and the
	// directory x are copied, b cannot be.
	host := filepath.Join(dir, "x")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(host, n), []byte("12345"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, stderr, code := fsckRun(t, bin, "mkdir", "-p", img, "/x/b"); code != 0 {
		t.Fatal(stderr)
	}
	_, stderr, code = fsckRun(t, bin, "put", img, host, "/x")
	want = "ufs2: put: /x/b: Is a directory: cannot replace a directory with a non-directory; copied 1 directory, 1 file (5 bytes) before stopping\n"
	if code != 1 || stderr != want {
		t.Errorf("put over a directory: exit %d\n%q\nwant\n%q", code, stderr, want)
	}
	fsckImage(t, img)
}
