package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTargetFirst: every offline verb takes TARGET first, then paths.
func TestTargetFirst(t *testing.T) {
	offline := map[string]bool{"cat": true, "chmod": true, "chown": true, "get": true, "ln": true,
		"ls": true, "mkdir": true, "mv": true, "put": true, "rm": true, "dumpfs": true, "fsck": true, "newfs": true, "mount": true}
	seen := 0
	for _, c := range newApp().Commands {
		if !offline[c.Name] {
			continue
		}
		seen++
		if !strings.HasPrefix(c.ArgsUsage, "TARGET") {
			t.Errorf("ufs2 %s %s: TARGET is not first", c.Name, c.ArgsUsage)
		}
	}
	if seen != len(offline) {
		t.Errorf("found %d of the %d verbs", seen, len(offline))
	}
}

// TestCatAndLsSeveral: get TARGET PATH - and cat write a file's bytes to
// stdout (holes as zeros, symlinks followed); ls lists several paths as
// ls(1) does, reporting a missing one and going on.
func TestCatAndLsSeveral(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "c.img")
	if _, errOut, code := fsckRun(t, bin, "newfs", "-n", "-s", "64m", img); code != 0 {
		t.Fatalf("newfs: %s", errOut)
	}
	fsckCleanup(t, bin, img)
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i*31 + i>>16)
	}
	clear(data[1<<20 : 2<<20]) // a hole
	f, err := os.Create(filepath.Join(src, "d", "big"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data[:1<<20])
	f.WriteAt(data[2<<20:], 2<<20)
	f.Close()
	if err := os.WriteFile(filepath.Join(src, "small"), []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d/big", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := fsckRun(t, bin, "put", img, src, "/"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	for _, args := range [][]string{{"get", img, "/d/big", "-"}, {"cat", img, "/link"}} {
		out, errOut, code := fsckRun(t, bin, args...)
		if code != 0 || errOut != "" || !bytes.Equal([]byte(out), data) {
			t.Errorf("%v: exit %d, %d bytes (want %d), stderr %q", args, code, len(out), len(data), errOut)
		}
	}
	out, errOut, code := fsckRun(t, bin, "cat", img, "/small", "/nope", "/d", "/small")
	if code != 1 || out != "small\nsmall\n" || errOut != "ufs2: cat: /nope: No such file or directory\nufs2: cat: /d: Is a directory\n" {
		t.Errorf("cat of files, a missing one and a directory: exit %d, %q, %q", code, out, errOut)
	}
	if _, errOut, code := fsckRun(t, bin, "get", img, "/d", "-"); code != 1 || errOut != "ufs2: get: /d: Is a directory\n" {
		t.Errorf("get DIR -: exit %d, %q", code, errOut)
	}

	out, errOut, code = fsckRun(t, bin, "ls", img, "/d", "/small", "/nope", "/link", "/d/e")
	if want := "/link\n/small\n\n/d:\nbig\ne\n\n/d/e:\n"; code != 1 || out != want || errOut != "ufs2: ls: /nope: No such file or directory\n" {
		t.Errorf("ls of several paths: exit %d, stdout %q (want %q), stderr %q", code, out, want, errOut)
	}
	out, _, code = fsckRun(t, bin, "ls", "-R", img, "/d", "/small")
	if want := "/small\n\n/d:\nbig\ne\n\n/d/e:\n"; code != 0 || out != want {
		t.Errorf("ls -R of a file and a directory: exit %d, %q, want %q", code, out, want)
	}
	out, _, code = fsckRun(t, bin, "ls", img, "/d")
	if code != 0 || out != "big\ne\n" {
		t.Errorf("ls of one directory: exit %d, %q", code, out)
	}
}
