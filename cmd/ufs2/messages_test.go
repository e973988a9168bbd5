package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// TestMessagesSpeakOfPaths: the offline verbs' messages name paths, not
// the engine's inode numbers or Go package names, and say each thing once.
func TestMessagesSpeakOfPaths(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "m.img")
	if _, errOut, code := fsckRun(t, bin, "newfs", "-s", "64m", img); code != 0 {
		t.Fatalf("newfs: %s", errOut)
	}
	host := filepath.Join(dir, "f")
	if err := os.WriteFile(host, []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"mkdir", "-p", img, "/a/b/c"}, {"put", img, host, "/f"}} {
		if _, errOut, code := fsckRun(t, bin, args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mkdir", img, "/a"}, 1, "mkdir: /a: File exists"},
		{[]string{"mkdir", img, "/x/y"}, 1, "mkdir: /x: No such file or directory"},
		{[]string{"mkdir", "-m", "u+q", img, "/z"}, 1, `mkdir: invalid file mode: "u+q": bad permissions "q": use r w x X s t, or one of u g o`},
		{[]string{"rm", img, "/"}, 1, `rm: "/" may not be removed`},
		{[]string{"rm", "-r", img, "/a/.."}, 1, `rm: "." and ".." may not be removed`},
		{[]string{"rm", img, "/nope"}, 1, "rm: /nope: No such file or directory"},
		{[]string{"mv", img, "/a", "/a/b/c"}, 1, "mv: /a to /a/b/c/a: Invalid argument: a directory cannot move below itself"},
		{[]string{"mv", img, "/nope", "/x"}, 1, "mv: /nope: No such file or directory"},
		{[]string{"mv", img, "/f", "/a/b/c/../../b"}, 0, ""},
		{[]string{"mv", img, "/a", "/a/b/../b/c"}, 1, "mv: /a to /a/b/c/a: Invalid argument: a directory cannot move below itself"},
		{[]string{"ln", img, "/a", "/l"}, 1, "ln: /a: Is a directory"},
		{[]string{"ln", "-s", img, "x", "/a/b/f"}, 1, "ln: /a/b/f: File exists"},
		{[]string{"chmod", img, "u+q", "/a"}, 1, `chmod: invalid file mode: "u+q": bad permissions "q": use r w x X s t, or one of u g o`},
		{[]string{"chmod", img, "0755", "/nope"}, 1, "chmod: /nope: No such file or directory"},
		{[]string{"chmod", img, "-w", "/a/b"}, 0, ""},
		{[]string{"chown", img, "no-such-user-here", "/a"}, 1, `chown: invalid owner: unknown user "no-such-user-here"`},
		{[]string{"put", img, host, "/nope/x"}, 1, "put: /nope: No such file or directory; nothing was copied"},
		{[]string{"ls", img, "/nope"}, 1, "ls: /nope: No such file or directory"},
	} {
		_, errOut, code := fsckRun(t, bin, tc.args...)
		want := ""
		if tc.msg != "" {
			want = "ufs2: " + tc.msg + "\n"
		}
		if code != tc.code || errOut != want {
			t.Errorf("ufs2 %s: exit %d, %q; want %d, %q", strings.Join(tc.args, " "), code, errOut, tc.code, want)
		}
	}

	// A filesystem that needs fsck: the advice is given once, as the
	// command to run.
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	sb, loc, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	sb.Clean = 0
	sb.Flags &^= ondisk.FSDoSoftdep
	if _, err := f.WriteAt(sb.EncodeWithHash(), loc); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, errOut, code := fsckRun(t, bin, "mkdir", img, "/n")
	if want := "ufs2: mkdir: " + img + ": cannot write: it was not cleanly unmounted and has no soft updates; run ufs2 fsck " + img + "\n"; code != 1 || errOut != want {
		t.Errorf("mkdir on an unclean filesystem: exit %d, %q; want 1, %q", code, errOut, want)
	}
	_, errOut, code = fsckRun(t, bin, "mount", "-f", img, t.TempDir())
	if want := "ufs2: mount: " + img + ": it was not cleanly unmounted and has no soft updates; run ufs2 fsck " + img + ", mount with -o ro, or with -o force to write it anyway\n"; code != 32 || errOut != want {
		t.Errorf("mount of an unclean filesystem: exit %d, %q; want 32, %q", code, errOut, want)
	}
	if _, errOut, code := fsckRun(t, bin, "fsck", "-y", img); code != 0 {
		t.Fatalf("fsck -y: exit %d: %s", code, errOut)
	}
	fsckCleanup(t, bin, img)
}

// TestDamageMessage: an inode that cannot be read is reported with the
// path, as damage to check with fsck, without package names.
func TestDamageMessage(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	if _, errOut, code := fsckRun(t, bin, "newfs", "-n", "-s", "32m", img); code != 0 {
		t.Fatalf("newfs: %s", errOut)
	}
	if _, errOut, code := fsckRun(t, bin, "mkdir", "-p", img, "/d/e"); code != 0 {
		t.Fatalf("mkdir: %s", errOut)
	}
	ino := func() ondisk.Ino {
		dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer fsys.Close()
		ino, err := fsys.Namei("/d/e")
		if err != nil {
			t.Fatal(err)
		}
		return ino
	}()
	sb := readSB(t, img)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, ondisk.DinodeSize)
	for i := range junk {
		junk[i] = 0xa5
	}
	if _, err := f.WriteAt(junk, sb.InoOffset(ino)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		args   []string
		prefix string
		suffix string
	}{
		{[]string{"ls", "-l", img, "/d"}, "ufs2: ls: /d/e: damaged filesystem: ", "; check " + img + " with ufs2 fsck\n"},
		{[]string{"ls", img, "/d/e"}, "ufs2: ls: /d/e: damaged filesystem: ", "; check " + img + " with ufs2 fsck\n"},
		{[]string{"get", img, "/d", filepath.Join(dir, "out")}, "ufs2: get: /d/e: damaged filesystem: ", "; check " + img + " with ufs2 fsck; copied 1 directory before stopping\n"},
	} {
		_, errOut, code := fsckRun(t, bin, tc.args...)
		if code != 1 || !strings.HasPrefix(errOut, tc.prefix) || !strings.HasSuffix(errOut, tc.suffix) ||
			packagePrefixRe.MatchString(strings.TrimPrefix(errOut, "ufs2: ")) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("ufs2 %v: exit %d, %q; want 1, %q...%q", tc.args, code, errOut, tc.prefix, tc.suffix)
		}
	}
	// fsck repairs the damage; the image is then clean.
	if out, errOut, code := fsckRun(t, bin, "fsck", "-y", img); code != 0 {
		t.Errorf("fsck -y: exit %d\n%s%s", code, out, errOut)
	}
	fsckCleanup(t, bin, img)
}
