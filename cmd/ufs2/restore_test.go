package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/dump"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// level0 dumps a fresh image of the dump tests' tree and returns the
// source tree, the image and the dump.
func level0(t *testing.T) (src, dir, img, df string) {
	t.Helper()
	src = dumpTree(t)
	dir, img = newDumpImage(t, src)
	df = filepath.Join(dir, "level0.dump")
	mustUFS2(t, dir, "dump", "-0", "-D", filepath.Join(dir, "dd"), "-f", df, img)
	return src, dir, img, df
}

// TestRestoreListExtract covers -t (every name with its inode number, as
// restore prints them; a subtree; -h) and -x (named files and
// directories with the directories leading to them; names not on the
// dump).
func TestRestoreListExtract(t *testing.T) {
	src, dir, img, df := level0(t)
	out, _, code := runUFS2(t, dir, nil, "restore", "-tf", df)
	if code != 0 {
		t.Fatalf("restore -t: exit %d", code)
	}
	if !strings.HasPrefix(out, "Dump   date: ") || !strings.Contains(out, "\nDumped from: the epoch\n") {
		t.Errorf("restore -t does not start with the dump's dates:\n%.200s", out)
	}
	listed := map[string]string{}
	re := regexp.MustCompile(`^ *([0-9]+)\t(\..*)$`)
	for _, l := range strings.Split(out, "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			if len(m[1]) > 10 || !strings.HasPrefix(l, strings.Repeat(" ", 10-len(m[1]))) {
				t.Errorf("line %q: the inode number is not right-aligned in 10 columns", l)
			}
			listed[m[2]] = m[1]
		}
	}
	n := 0
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := "./" + filepath.ToSlash(rel)
		if rel == "." {
			name = "."
		}
		ino, ok := listed[name]
		if !ok {
			t.Errorf("restore -t does not list %s", name)
			return nil
		}
		if n++; n%10 == 1 {
			if st := imageStat(t, img, "/"+filepath.ToSlash(rel)); fmt.Sprint(st.Ino) != ino {
				t.Errorf("%s: listed as inode %s, it is %d", name, ino, st.Ino)
			}
		}
		return nil
	})
	if len(listed) != n {
		t.Errorf("restore -t lists %d names, the tree has %d", len(listed), n)
	}

	// a subtree, and with -h only the directory itself
	var sub string
	for name := range listed {
		if fi, err := os.Lstat(filepath.Join(src, name)); err == nil && fi.IsDir() && name != "." {
			sub = name
			break
		}
	}
	out = mustUFS2(t, dir, "restore", "-tf", df, sub)
	for _, l := range strings.Split(out, "\n") {
		if m := re.FindStringSubmatch(l); m != nil && m[2] != sub && !strings.HasPrefix(m[2], sub+"/") {
			t.Errorf("restore -t %s lists %s", sub, m[2])
		}
	}
	out = mustUFS2(t, dir, "restore", "-thf", df, sub)
	if c := len(re.FindAllString(out, -1)); strings.Count(out, "\t") != 1 {
		t.Errorf("restore -th %s lists %d names:\n%s", sub, c, out)
	}

	// -x of a file deep down and of a directory
	var file string
	for name := range listed {
		if fi, err := os.Lstat(filepath.Join(src, name)); err == nil && fi.Mode().IsRegular() && strings.Count(name, "/") >= 3 {
			file = name
			break
		}
	}
	x := t.TempDir()
	if o, e, code := runUFS2(t, x, nil, "restore", "-xf", df, file, sub); code != 0 {
		t.Fatalf("restore -x: exit %d\n%s%s", code, o, e)
	}
	for _, name := range []string{file, sub} {
		w, _ := os.ReadFile(filepath.Join(src, name))
		g, err := os.ReadFile(filepath.Join(x, name))
		if fi, _ := os.Stat(filepath.Join(src, name)); fi.IsDir() {
			if _, err := os.Stat(filepath.Join(x, name)); err != nil {
				t.Errorf("restore -x %s: %v", name, err)
			}
			continue
		}
		if err != nil || string(w) != string(g) {
			t.Errorf("restore -x %s: %v, %d bytes, want %d", name, err, len(g), len(w))
		}
	}
	extracted := 0
	filepath.Walk(x, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			extracted++
			rel, _ := filepath.Rel(x, p)
			if name := "./" + filepath.ToSlash(rel); name != file && !strings.HasPrefix(name, sub+"/") {
				t.Errorf("restore -x %s %s extracted %s", file, sub, name)
			}
		}
		return nil
	})
	if extracted == 0 {
		t.Error("restore -x extracted nothing")
	}
	if _, err := os.Stat(filepath.Join(x, dump.SymtabName)); err == nil {
		t.Error("restore -x wrote a symbol table")
	}
	// -s 2: the second of two dumps in one file
	two := filepath.Join(dir, "two.dump")
	b, _ := os.ReadFile(df)
	os.WriteFile(two, append(append([]byte(nil), b...), b...), 0o644)
	if o := mustUFS2(t, dir, "restore", "-t", "-s", "2", "-f", two); !strings.Contains(o, "\t"+file+"\n") {
		t.Errorf("restore -t -s 2 of two dumps:\n%.300s", o)
	}
	if _, e, code := runUFS2(t, dir, nil, "restore", "-t", "-s", "3", "-f", two); code != 1 || !strings.Contains(e, "no further dump") {
		t.Errorf("restore -s 3 of two dumps: exit %d\n%s", code, e)
	}
	// names not on the dump
	_, e, code := runUFS2(t, x, nil, "restore", "-xf", df, "./no/such/file")
	if code != 1 || !strings.Contains(e, "./no/such/file: restore: not on the dump") {
		t.Errorf("restore -x of a missing name: exit %d\n%s", code, e)
	}
}

// TestRestoreDamaged: a truncated dump and one with a damaged header make
// restore name the first bad record, keep what it restored and exit 1.
func TestRestoreDamaged(t *testing.T) {
	_, _, _, df := level0(t)
	b, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	// the 20th file header of pass IV
	hdr := -1
	files := 0
	for i := 0; i+dump.TPBsize <= len(b); i += dump.TPBsize {
		var h dump.Header
		h.Decode(b[i:])
		if dump.CheckRecord(b[i:i+dump.TPBsize]) == nil && h.Type == dump.TSInode && h.Mode&ondisk.IFMT == ondisk.IFREG {
			if files++; files == 20 {
				hdr = i / dump.TPBsize
				break
			}
		}
	}
	if hdr < 0 {
		t.Fatal("no 20th file in the dump")
	}
	damaged := append([]byte(nil), b...)
	damaged[hdr*dump.TPBsize+100] ^= 0x40
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", b[:len(b)/dump.TPBsize*9/10*dump.TPBsize+100], "truncated: only 100 of 1024 bytes"},
		{"header", damaged, fmt.Sprintf("record %d (byte %d): expected a header: dump: not a valid dump: header checksum mismatch", hdr, hdr*dump.TPBsize)},
		{"empty", nil, "the input is empty, not a dump"},
		{"garbage", []byte(strings.Repeat("not a dump at all ", 200)), "not a dump"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "d")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			_, e, code := runUFS2(t, out, nil, "restore", "-rf", p)
			if code != 1 || !strings.Contains(e, tc.want) || strings.Contains(e, "panic") {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tc.want, e)
			}
			if tc.data == nil || tc.name == "garbage" {
				return
			}
			restored := 0
			filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					restored++
				}
				return nil
			})
			if restored < 10 {
				t.Errorf("only %d files kept from before the damage", restored)
			}
			if _, err := os.Stat(filepath.Join(out, dump.SymtabName)); err == nil {
				t.Error("a failed restore wrote a symbol table")
			}
		})
	}
}

// TestDumpNodump: a file with the nodump flag is in a level 0 dump, as the
// honour level is 1 by default, and left out with -h 0.
func TestDumpNodump(t *testing.T) {
	src := dumpTree(t)
	dir, img := newDumpImage(t, src)
	file := someFiles(t, src)[3]
	editImage(t, img, func(fsys *ufs.FS) {
		fl := uint32(ondisk.UFNodump)
		if _, err := fsys.Setattr(namei(t, fsys, file), ufs.SetAttr{Flags: &fl}); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		args []string
		in   bool
	}{{nil, true}, {[]string{"-h", "0"}, false}} {
		df := filepath.Join(dir, "d")
		mustUFS2(t, dir, append(append([]string{"dump", "-0", "-D", filepath.Join(dir, "dd"), "-f", df}, tc.args...), img)...)
		list := mustUFS2(t, dir, "restore", "-tf", df)
		if got := strings.Contains(list, "\t."+file+"\n"); got != tc.in {
			t.Errorf("dump %v: %s listed: %v, want %v", tc.args, file, got, tc.in)
		}
		out := t.TempDir()
		restoreInto(t, out, df, nil)
		if _, err := os.Lstat(filepath.Join(out, file)); (err == nil) != tc.in {
			t.Errorf("dump %v: %s restored: %v, want %v", tc.args, file, err == nil, tc.in)
		}
	}
}

// TestDumpRestoreUsage: bad command lines exit 64 and -L, not supported
// yet, exits 1; nothing is written.
func TestDumpRestoreUsage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	mustUFS2(t, dir, "newfs", "-s", "32m", img)
	t.Cleanup(func() { fsckImage(t, img) })
	out := filepath.Join(dir, "out")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dump", "-0", "-1", "-f", out, img}, 64, "more than one dump level"},
		{[]string{"dump", "-0", "-b", "0", "-f", out, img}, 64, "between 1 and 1000"},
		{[]string{"dump", "-0", "-z", "lz4", "-f", out, img}, 64, "unknown compression"},
		{[]string{"dump", "-0", "-z", "zstd:99", "-f", out, img}, 64, "give 1 to 22"},
		{[]string{"dump", "-0u", "-T", "Mon Dec  7 05:00:00 2026", "-f", out, img}, 64, "mutually exclusive"},
		{[]string{"dump", "-0", "-T", "yesterday", "-f", out, img}, 64, "ctime's format"},
		{[]string{"dump", "-0", img}, 64, "no output"},
		{[]string{"dump", "-0", "-f", out}, 64, "exactly one TARGET"},
		{[]string{"dump", "-0", "-D", filepath.Join(dir, "dd"), "-f", out, filepath.Join(dir, "missing.img")}, 1, "Cannot open"},
		{[]string{"restore", "-f", out}, 64, "none of C, i, R, r, t or x options specified"},
		{[]string{"restore", "-r", "-t", "-f", out}, 64, "mutually exclusive"},
		{[]string{"restore", "-r", "-s", "0", "-f", out}, 64, "dump number must be greater than 0"},
		{[]string{"restore", "-rf", out, "./x"}, 64, "takes no FILES"},
		{[]string{"restore", "-if", "-"}, 64, "reads its commands from standard input"},
		{[]string{"restore", "-rf", filepath.Join(dir, "missing")}, 1, "No such file or directory"},
	} {
		o, e, code := runUFS2(t, dir, nil, tc.args...)
		if code != tc.code || !strings.Contains(e, tc.want) || strings.Count(strings.TrimSpace(e), "\n") > 0 {
			t.Errorf("ufs2 %s: exit %d, want %d and one line with %q:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.want, o, e)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("ufs2 %s wrote %s", strings.Join(tc.args, " "), out)
			os.Remove(out)
		}
	}
	// -S estimates and writes nothing
	o, e, code := runUFS2(t, dir, nil, "dump", "-0S", "-D", filepath.Join(dir, "dd"), img)
	if code != 0 || o != "" || !regexp.MustCompile(`\n  DUMP: estimated [0-9]+ tape blocks\.\n$`).MatchString(e) {
		t.Errorf("dump -S: exit %d\n%s%s", code, o, e)
	}
}

// TestRestoreCompare: -C finds a restored tree identical to the dump and
// names each change made to it after: contents (same size and mtime),
// mode, a symlink target, an extended attribute, a missing file.
func TestRestoreCompare(t *testing.T) {
	src, _, _, df := level0(t)
	out := t.TempDir()
	restoreInto(t, out, df, nil)
	if o, e, code := runUFS2(t, out, nil, "restore", "-Cf", df); code != 0 || e != "" {
		t.Fatalf("restore -C of the restored tree: exit %d\n%s%s", code, o, e)
	}
	files := someFiles(t, src)
	p := filepath.Join(out, files[0])
	fi, _ := os.Stat(p)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, fi.Size()/2)
	b[0] ^= 1
	f.WriteAt(b, fi.Size()/2)
	f.Close()
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	os.Chmod(filepath.Join(out, files[1]), 0o601)
	os.Remove(filepath.Join(out, files[2]))
	unix.Lsetxattr(filepath.Join(out, files[3]), "user.extra", []byte("x"), 0)
	_, e, code := runUFS2(t, out, nil, "restore", "-Cf", df)
	for _, want := range []string{
		fmt.Sprintf(".%s: contents differ at byte %d", files[0], fi.Size()/2),
		fmt.Sprintf(".%s: mode 0601 on the host", files[1]),
		fmt.Sprintf(".%s: missing on the host", files[2]),
		fmt.Sprintf(".%s: extended attributes [user.extra=x", files[3]),
		"Some files were modified! (restore: some files differ from the dump: 4 differences)",
	} {
		if !strings.Contains(e, want) {
			t.Errorf("restore -C does not say %q", want)
		}
	}
	if code != 1 {
		t.Errorf("restore -C: exit %d, want 1\n%s", code, e)
	}
}

// TestRestoreInteractive drives -i: cd, ls with the marks of add, a
// delete under an added directory, extract.
func TestRestoreInteractive(t *testing.T) {
	src, _, _, df := level0(t)
	files := someFiles(t, src)
	deep := ""
	for _, f := range files {
		if strings.Count(f, "/") >= 3 {
			deep = f
			break
		}
	}
	dir := path.Dir(deep)
	var keep []string // the other files of that directory
	ents, _ := os.ReadDir(filepath.Join(src, dir))
	for _, e := range ents {
		if e.Type().IsRegular() && path.Join(dir, e.Name()) != deep {
			keep = append(keep, e.Name())
		}
	}
	if len(keep) == 0 {
		t.Fatalf("%s holds one file", dir)
	}
	out := t.TempDir()
	cmds := strings.Join([]string{"cd " + dir, "add .", "delete " + path.Base(deep), "ls", "pwd", "frobnicate", "extract", "quit"}, "\n") + "\n"
	o, e, code := runUFS2(t, out, strings.NewReader(cmds), "restore", "-if", df)
	if code != 0 || e != "" {
		t.Fatalf("restore -i: exit %d\n%s%s", code, o, e)
	}
	for _, want := range []string{"*" + keep[0], "\n" + path.Base(deep) + "\n", "restore > " + dir + "\n", "frobnicate: unknown command; type ? for help"} {
		if !strings.Contains(o, want) {
			t.Errorf("restore -i output lacks %q:\n%s", want, o)
		}
	}
	if _, err := os.Lstat(filepath.Join(out, deep)); err == nil {
		t.Errorf("%s was deleted from the list but extracted", deep)
	}
	for _, k := range keep {
		w, _ := os.ReadFile(filepath.Join(src, dir, k))
		g, err := os.ReadFile(filepath.Join(out, dir, k))
		if err != nil || string(g) != string(w) {
			t.Errorf("%s/%s: %v, %d bytes, want %d", dir, k, err, len(g), len(w))
		}
	}
}

// TestDumpSinceAndJSON: -T dumps what changed since a date (here: one
// new file and the root), and --json summarises the dump.
func TestDumpSinceAndJSON(t *testing.T) {
	src := dumpTree(t)
	dir, img := newDumpImage(t, src)
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	since := dump.Ctime(time.Now())
	editImage(t, img, func(fsys *ufs.FS) {
		ino, err := fsys.Create(namei(t, fsys, "/"), "after", 0o644, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.WriteAt(ino, []byte("new"), 0); err != nil {
			t.Fatal(err)
		}
	})
	df := filepath.Join(dir, "since.dump")
	o, e, code := runUFS2(t, dir, nil, "dump", "-1", "-T", since, "--json", "-f", df, img)
	if code != 0 || !strings.Contains(e, "  DUMP: Date of last (level unknown) dump: "+since+"\n") || !strings.Contains(e, "  DUMP: Closing "+df+"\n") {
		t.Fatalf("dump -T: exit %d\n%s", code, e)
	}
	var j struct {
		Level   int   `json:"level"`
		Ddate   int64 `json:"ddate"`
		Records int64 `json:"records"`
		Bytes   int64 `json:"bytes_written"`
		Files   int   `json:"files"`
		Dirs    int   `json:"directories"`
	}
	if err := json.Unmarshal([]byte(o), &j); err != nil {
		t.Fatalf("--json: %v\n%s", err, o)
	}
	// the tree's mtimes run to 2031: those after the date count as changed
	sinceT, _ := dump.Unctime(since)
	future := map[uint64]bool{}
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !fi.ModTime().Before(sinceT) {
			future[fi.Sys().(*syscall.Stat_t).Ino] = true
		}
		return nil
	})
	fi, _ := os.Stat(df)
	if j.Level != 1 || j.Files != len(future)+1 || j.Bytes != fi.Size() || j.Records*dump.TPBsize < j.Bytes {
		t.Errorf("--json: %+v for a dump of %d bytes; %d files have later mtimes", j, fi.Size(), len(future))
	}
	list := mustUFS2(t, dir, "restore", "-tf", df)
	if !strings.Contains(list, "\t./after\n") {
		t.Errorf("restore -t of the -T dump:\n%s", list)
	}
}
