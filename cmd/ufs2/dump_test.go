package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/dump"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// runUFS2 runs the ufs2 program in dir with stdin and returns its
// standard output, standard error and exit status.
func runUFS2(t *testing.T, dir string, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(ufs2Binary(t), args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ufs2 %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// mustUFS2 is runUFS2 for a command that must succeed.
func mustUFS2(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := runUFS2(t, dir, nil, args...)
	if code != 0 {
		t.Fatalf("ufs2 %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// dumpTree makes the varied host tree of the dump tests: testutil's small
// tree with a sparse file, extended attributes, a fifo and a device node.
func dumpTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	spec := testutil.Small()
	spec.SparseSize = 3 << 20
	testutil.MakeTree(t, src, spec)
	n := 0
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		if n++; n%7 == 0 {
			mt := fi.ModTime()
			if err := unix.Lsetxattr(p, "user.note", []byte(fmt.Sprint("value ", n)), 0); err != nil {
				return err
			}
			if n%14 == 0 {
				if err := unix.Lsetxattr(p, "trusted.sys", bytes.Repeat([]byte{byte(n)}, 300), 0); err != nil {
					return err
				}
			}
			return os.Chtimes(p, mt, mt)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1600000000, 123456789)
	for _, p := range []string{"fifo", "null", "."} {
		if err := os.Chtimes(filepath.Join(src, p), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// newDumpImage formats a 128 MiB image filled from src (no .snap, so
// that the image's tree is src's) and checks it with fsck at the end.
func newDumpImage(t *testing.T, src string) (dir, img string) {
	t.Helper()
	dir = t.TempDir()
	img = filepath.Join(dir, "disk.img")
	mustUFS2(t, dir, "newfs", "-n", "-s", "128m", "--from", src, img)
	t.Cleanup(func() { fsckImage(t, img) })
	return dir, img
}

// restoreInto runs restore -rf DUMP in out and sets the symbol table
// aside (keeping the root's times as restore left them) so that out can be
// compared with a tree; it returns the table's new place.
func restoreInto(t *testing.T, out, dumpFile string, stdin io.Reader) {
	t.Helper()
	args := []string{"restore", "-rf", dumpFile}
	o, e, code := runUFS2(t, out, stdin, args...)
	if code != 0 {
		t.Fatalf("ufs2 %s: exit %d\n%s%s", strings.Join(args, " "), code, o, e)
	}
	if e != "" {
		t.Errorf("restore warned:\n%s", e)
	}
	symtabAside(t, out, true)
}

// symtabAside moves out/restoresymtable to out.symtab (aside) or back.
func symtabAside(t *testing.T, out string, aside bool) {
	t.Helper()
	in, away := filepath.Join(out, dump.SymtabName), out+".symtab"
	from, to := in, away
	if !aside {
		from, to = away, in
	}
	var st unix.Stat_t
	if err := unix.Lstat(out, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(from, to); err != nil {
		t.Fatalf("the symbol table: %v", err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, out, ts, 0); err != nil {
		t.Fatal(err)
	}
}

var fullCompare = testutil.CompareOpts{Owners: true, Times: true}

// assertSameXattrs compares the user.* and trusted.* attributes of every
// path of want with got's.
func assertSameXattrs(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		w, g := xattrsOf(t, p), xattrsOf(t, filepath.Join(got, rel))
		n += len(w)
		if strings.Join(w, "\n") != strings.Join(g, "\n") {
			t.Errorf("%s: extended attributes %q, want %q", rel, g, w)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("%s has no extended attributes to compare", want)
	}
}

// TestDumpRestoreLevel0 dumps an image of a varied tree (plain, zstd and
// gzip) and restores each dump into an empty directory: the result is the
// source tree — types, modes, owners, sizes, contents, holes, symlink
// targets, hard links, extended attributes and nanosecond mtimes.
func TestDumpRestoreLevel0(t *testing.T) {
	src := dumpTree(t)
	dir, img := newDumpImage(t, src)
	dd := filepath.Join(dir, "dumpdates")
	sizes := map[string]int64{}
	for _, z := range []string{"", "zstd", "gzip:1"} {
		t.Run("z="+z, func(t *testing.T) {
			df := filepath.Join(dir, "level0"+strings.ReplaceAll(z, ":", "")+".dump")
			args := []string{"dump", "-0", "-D", dd, "-f", df}
			if z != "" {
				args = append(args, "-z", z)
			}
			_, errOut, code := runUFS2(t, dir, nil, append(args, img)...)
			if code != 0 || !strings.Contains(errOut, "  DUMP: DUMP IS DONE\n") {
				t.Fatalf("dump: exit %d\n%s", code, errOut)
			}
			fi, err := os.Stat(df)
			if err != nil {
				t.Fatal(err)
			}
			sizes[z] = fi.Size()
			head := make([]byte, 4)
			f, _ := os.Open(df)
			f.Read(head)
			f.Close()
			switch {
			case z == "zstd" && !bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}),
				z == "gzip:1" && !bytes.Equal(head[:2], []byte{0x1f, 0x8b}):
				t.Fatalf("-z %s wrote a stream starting % x", z, head)
			}
			out := t.TempDir()
			var stdin io.Reader
			name := df
			if z == "gzip:1" { // and standard input
				f, err := os.Open(df)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				stdin, name = f, "-"
			}
			restoreInto(t, out, name, stdin)
			testutil.AssertSameTree(t, src, out, fullCompare)
			assertSameXattrs(t, src, out)
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(out, findFile(t, src, "sparse.bin")), &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks*512 > 1<<20 {
				t.Errorf("sparse.bin takes %d bytes on the host: its hole was written", st.Blocks*512)
			}
		})
	}
	if sizes["zstd"] == 0 || sizes["zstd"] >= sizes[""] {
		t.Errorf("a zstd dump of %d bytes against %d plain", sizes["zstd"], sizes[""])
	}
	t.Logf("dump sizes: plain %d, zstd %d (%.2f), gzip:1 %d", sizes[""], sizes["zstd"], float64(sizes["zstd"])/float64(sizes[""]), sizes["gzip:1"])
}

// editImage opens img read-write through the engine for fn.
func editImage(t *testing.T, img string, fn func(fsys *ufs.FS)) {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	defer func() {
		if err := fsys.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	fn(fsys)
}

// findFile returns the path of the file called name under root, relative
// and slash-separated.
func findFile(t *testing.T, root, name string) string {
	t.Helper()
	found := ""
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == name && found == "" {
			found, _ = filepath.Rel(root, p)
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no %s under %s", name, root)
	}
	return filepath.ToSlash(found)
}

func namei(t *testing.T, fsys *ufs.FS, p string) ondisk.Ino {
	t.Helper()
	ino, err := fsys.Namei(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return ino
}

// someFiles returns the regular files of src (relative, slash-separated)
// with a single name, in walk order.
func someFiles(t *testing.T, src string) []string {
	t.Helper()
	var out []string
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Sys().(*syscall.Stat_t).Nlink == 1 && fi.Size() > 0 {
			rel, _ := filepath.Rel(src, p)
			out = append(out, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// TestDumpRestoreIncremental is a level 0, 1 and 2 chain recorded in a
// dumpdates file, with renames (of files and of a directory), deletions,
// new files, a truncation, a change in the middle of a file, a new hard
// link and metadata-only changes between the levels; restored in order,
// each level gives the image's tree as ufs2 get extracts it. A level
// restored out of order is refused.
func TestDumpRestoreIncremental(t *testing.T) {
	src := dumpTree(t)
	dir, img := newDumpImage(t, src)
	dd := filepath.Join(dir, "dumpdates")
	out := t.TempDir()
	files := someFiles(t, src)
	if len(files) < 12 {
		t.Fatalf("only %d files to change", len(files))
	}
	var dirs []string
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && p != src {
			rel, _ := filepath.Rel(src, p)
			dirs = append(dirs, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	changes := []func(fsys *ufs.FS){
		func(fsys *ufs.FS) { // level 1
			root := namei(t, fsys, "/")
			// rename a file into the root, delete one, truncate one,
			// chmod one, write into the middle of the big file, link one
			d, n := filepath.Split(files[0])
			if err := fsys.Rename(namei(t, fsys, d), n, root, "renamed-"+n, ufs.RenameFlags{}); err != nil {
				t.Fatal(err)
			}
			d, n = filepath.Split(files[1])
			if err := fsys.Unlink(namei(t, fsys, d), n); err != nil {
				t.Fatal(err)
			}
			size := uint64(100)
			if _, err := fsys.Setattr(namei(t, fsys, files[2]), ufs.SetAttr{Size: &size}); err != nil {
				t.Fatal(err)
			}
			mode := uint16(0o611)
			if _, err := fsys.Setattr(namei(t, fsys, files[3]), ufs.SetAttr{Mode: &mode}); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.WriteAt(namei(t, fsys, "/"+findFile(t, src, "big.bin")), []byte("changed in the middle"), 1<<20); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Link(namei(t, fsys, files[4]), root, "new-link"); err != nil {
				t.Fatal(err)
			}
			ino, err := fsys.Create(root, "new-file", 0o640, 7, 8)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.WriteAt(ino, bytes.Repeat([]byte("new"), 5000), 0); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.Mkdir(root, "new-dir", 0o711, 0, 0); err != nil {
				t.Fatal(err)
			}
		},
		func(fsys *ufs.FS) { // level 2
			root := namei(t, fsys, "/")
			// rename a directory under the new one, remove the renamed
			// file, set an extended attribute, change the owner of one
			d := dirs[len(dirs)-1]
			pd, n := filepath.Split(d)
			if err := fsys.Rename(namei(t, fsys, pd), n, namei(t, fsys, "/new-dir"), "moved", ufs.RenameFlags{}); err != nil {
				t.Fatal(err)
			}
			_, n = filepath.Split(files[0])
			if err := fsys.Unlink(root, "renamed-"+n); err != nil {
				t.Fatal(err)
			}
			if err := fsys.SetXattr(namei(t, fsys, files[5]), ondisk.ExtattrNamespaceUser, "added", []byte("at level 2"), ufs.XattrFlags{}); err != nil {
				t.Fatal(err)
			}
			uid := uint32(4242)
			if _, err := fsys.Setattr(namei(t, fsys, files[6]), ufs.SetAttr{UID: &uid}); err != nil {
				t.Fatal(err)
			}
			ino, err := fsys.Create(namei(t, fsys, "/new-dir/moved"), "deep-new", 0o600, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.WriteAt(ino, []byte("x"), 200000); err != nil { // sparse
				t.Fatal(err)
			}
		},
	}
	var dumps []string
	for level := 0; level <= 2; level++ {
		if level > 0 {
			// dump dates are in seconds: the levels get dates of their own
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			editImage(t, img, changes[level-1])
		}
		df := filepath.Join(dir, fmt.Sprintf("level%d.dump", level))
		dumps = append(dumps, df)
		_, errOut, code := runUFS2(t, dir, nil, "dump", fmt.Sprintf("-%du", level), "-D", dd, "-f", df, "disk.img")
		if code != 0 {
			t.Fatalf("dump -%d: exit %d\n%s", level, code, errOut)
		}
		want := filepath.Join(t.TempDir(), "want")
		mustUFS2(t, dir, "get", img, "/", want)
		if level > 0 {
			symtabAside(t, out, false)
		}
		restoreInto(t, out, df, nil)
		testutil.AssertSameTree(t, want, out, fullCompare)
		assertSameXattrs(t, want, out)
		if t.Failed() {
			t.Fatalf("level %d restore differs", level)
		}
	}
	// dumpdates in FreeBSD's format: one line per level
	b, err := os.ReadFile(dd)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^(.{53}) ([0-9]) ([A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4})$`)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("dumpdates:\n%s", b)
	}
	for i, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil || strings.TrimSpace(m[1]) != "disk.img" || m[2] != fmt.Sprint(i) {
			t.Errorf("dumpdates line %d %q: want the image, level %d and a ctime date", i+1, l, i)
		}
	}
	// a level restored again, and one of another chain, are refused
	symtabAside(t, out, false)
	_, errOut, code := runUFS2(t, out, nil, "restore", "-rf", dumps[1])
	if code != 1 || !strings.Contains(errOut, "Incremental tape too high") {
		t.Errorf("restoring level 1 after level 2: exit %d, %s", code, errOut)
	}
	// -W lists the image with its last dump
	w := mustUFS2(t, dir, "dump", "-W", "-D", dd)
	if !strings.Contains(w, "Last dump(s) done (Dump '>' file systems):\n") || !strings.Contains(w, "disk.img") || !strings.Contains(w, "Level 2") {
		t.Errorf("dump -W:\n%s", w)
	}
}

// imageFlags returns the chflags flags of every inode under the root of
// img by path.
func imageFlags(t *testing.T, img string) map[string]uint32 {
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
	out := map[string]uint32{}
	var walk func(ino ondisk.Ino, p string)
	walk = func(ino ondisk.Ino, p string) {
		st, err := fsys.Stat(ino)
		if err != nil {
			t.Fatal(err)
		}
		if st.Flags != 0 {
			out[p] = st.Flags
		}
		if !st.IsDir() {
			return
		}
		var ents []ufs.Dirent
		fsys.ReadDir(ino, func(d ufs.Dirent) bool {
			if d.Name != "." && d.Name != ".." && d.Name != dump.SymtabName {
				ents = append(ents, d)
			}
			return true
		})
		for _, d := range ents {
			walk(d.Ino, p+"/"+d.Name)
		}
	}
	walk(ondisk.RootIno, "")
	return out
}

// TestDumpRestoreIntoImage restores a level 0 and a level 1 dump into a
// second image with restore --into: its tree is the first image's, as
// ufs2 get extracts both, and so are the file flags.
func TestDumpRestoreIntoImage(t *testing.T) {
	src := dumpTree(t)
	dir, img := newDumpImage(t, src)
	dd := filepath.Join(dir, "dumpdates")
	files := someFiles(t, src)
	dst := filepath.Join(dir, "restored.img")
	mustUFS2(t, dir, "newfs", "-n", "-s", "128m", dst)
	t.Cleanup(func() { fsckImage(t, dst) })
	setFlags := func(fsys *ufs.FS, p string, fl uint32) {
		if _, err := fsys.Setattr(namei(t, fsys, p), ufs.SetAttr{Flags: &fl}); err != nil {
			t.Fatal(err)
		}
	}
	editImage(t, img, func(fsys *ufs.FS) {
		setFlags(fsys, files[0], ondisk.UFHidden)
		setFlags(fsys, files[1], ondisk.UFArchive|ondisk.SFArchived)
		setFlags(fsys, path.Dir(files[2]), ondisk.UFHidden)
	})
	for level := 0; level <= 1; level++ {
		if level == 1 {
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			editImage(t, img, func(fsys *ufs.FS) {
				setFlags(fsys, files[0], 0)
				setFlags(fsys, files[3], ondisk.UFArchive)
				d, n := filepath.Split(files[4])
				if err := fsys.Rename(namei(t, fsys, d), n, namei(t, fsys, "/"), "moved", ufs.RenameFlags{}); err != nil {
					t.Fatal(err)
				}
				d, n = filepath.Split(files[5])
				if err := fsys.Unlink(namei(t, fsys, d), n); err != nil {
					t.Fatal(err)
				}
			})
		}
		df := filepath.Join(dir, fmt.Sprintf("level%d.dump", level))
		mustUFS2(t, dir, "dump", fmt.Sprintf("-%du", level), "-D", dd, "-f", df, "disk.img")
		if o, e, code := runUFS2(t, dir, nil, "restore", "-r", "--into", dst, "-f", df); code != 0 || e != "" {
			t.Fatalf("restore --into: exit %d\n%s%s", code, o, e)
		}
		want, got := filepath.Join(t.TempDir(), "want"), filepath.Join(t.TempDir(), "got")
		mustUFS2(t, dir, "get", img, "/", want)
		mustUFS2(t, dir, "get", dst, "/", got)
		symtabAside(t, got, true)
		testutil.AssertSameTree(t, want, got, fullCompare)
		assertSameXattrs(t, want, got)
		wf, gf := imageFlags(t, img), imageFlags(t, dst)
		if len(wf) < 3 || fmt.Sprint(wf) != fmt.Sprint(gf) {
			t.Errorf("level %d: flags %v, want %v", level, gf, wf)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestDumpMountedWarns: dumping an image a read-write mount holds warns
// as FreeBSD's dump does and dumps; with -L, given the image the mount
// holds, it dumps a snapshot taken through the mount instead, and no warning.
func TestDumpMountedWarns(t *testing.T) {
	testutil.RequireTool(t, "fusermount3", "fuse3")
	bin := ufs2Binary(t)
	_, img := makeMountImage(t)
	mnt := newMountpoint(t)
	if out, err := exec.Command(bin, "mount", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("ufs2 mount: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if isMounted(t, mnt) {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount: %v\n%s", err, out)
			}
		}
		waitReleased(t, img)
		fsckImage(t, img)
	})
	dir := t.TempDir()
	df := filepath.Join(dir, "d")
	_, e, code := runUFS2(t, dir, nil, "dump", "-0", "-D", filepath.Join(dir, "dd"), "-f", df, img)
	if code != 0 || !strings.Contains(e, "  DUMP: WARNING: should use -L when dumping live read-write filesystems!\n") || !strings.Contains(e, mnt) {
		t.Errorf("dump of a mounted image: exit %d\n%s", code, e)
	}
	if list := mustUFS2(t, dir, "restore", "-tf", df); !strings.Contains(list, "\t.\n") {
		t.Errorf("the dump of a mounted image lists:\n%s", list)
	}
	_, e, code = runUFS2(t, dir, nil, "dump", "-0L", "-D", filepath.Join(dir, "dd"), "-f", df+"L", img)
	if code != 0 || strings.Contains(e, "should use -L") || !strings.Contains(e, "dump_snapshot") {
		t.Errorf("dump -L of a mounted image: exit %d\n%s", code, e)
	}
	if list := mustUFS2(t, dir, "restore", "-tf", df+"L"); !strings.Contains(list, "\t.\n") {
		t.Errorf("the dump -L lists:\n%s", list)
	}
}

// TestDumpSnapshot: dump --snapshot dumps the frozen image of a snapshot
// (as dump -L dumps the one it takes), dated by the snapshot; restored,
// it is the tree ufs2 get --snapshot extracts. An unknown name is refused.
func TestDumpSnapshot(t *testing.T) {
	src := dumpTree(t)
	dir, img := newDumpImage(t, src)
	mustUFS2(t, dir, "snapshot", "create", img, "s1")
	df := filepath.Join(dir, "snap.dump")
	_, e, code := runUFS2(t, dir, nil, "dump", "-0", "--snapshot", "s1", "-D", filepath.Join(dir, "dd"), "-f", df, img)
	if code != 0 || !strings.Contains(e, "  DUMP: Dumping snapshot s1 of "+img) {
		t.Fatalf("dump --snapshot: exit %d\n%s", code, e)
	}
	want := filepath.Join(t.TempDir(), "want")
	mustUFS2(t, dir, "get", "--snapshot", "s1", img, "/", want)
	out := t.TempDir()
	restoreInto(t, out, df, nil)
	testutil.AssertSameTree(t, want, out, fullCompare)
	list := mustUFS2(t, dir, "restore", "-tf", df)
	snaps := mustUFS2(t, dir, "snapshot", "list", "--json", img)
	var taken []struct {
		Created time.Time `json:"created"`
	}
	if err := json.Unmarshal([]byte(snaps), &taken); err != nil || len(taken) != 1 {
		t.Fatalf("snapshot list --json: %v\n%s", err, snaps)
	}
	if !strings.Contains(list, "Dump   date: "+dump.Ctime(taken[0].Created)+"\n") {
		t.Errorf("the dump is not dated by the snapshot (%s):\n%.200s", taken[0].Created, list)
	}
	_, e, code = runUFS2(t, dir, nil, "dump", "-0", "--snapshot", "nope", "-D", filepath.Join(dir, "dd"), "-f", df+"2", img)
	if code != 1 || !strings.Contains(e, `has no snapshot "nope"; it has: s1`) {
		t.Errorf("dump --snapshot nope: exit %d\n%s", code, e)
	}
}
