package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the README's first command as a user would and checks
// that it mounted, wrote, unmounted and found the image clean; a second
// run on the same image is refused without touching it.
func TestDemo(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "demo.img")
	out, errOut, code := fsckRun(t, bin, "demo", img)
	if code != 0 {
		t.Fatalf("ufs2 demo: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"through a FUSE mount", "fsck -n -f: 0 problems", "read back offline", "random.bin"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	before, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = fsckRun(t, bin, "demo", img)
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("second demo on the same image: exit %d, stderr %q", code, errOut)
	}
	after, _ := os.ReadFile(img)
	if string(before) != string(after) {
		t.Fatal("the refused demo changed the image")
	}
}

// TestDemoDefaultPlace: without IMAGE the demo makes its image in a new
// directory under $TMPDIR, leaves the current directory alone, keeps the
// image and prints where it is; -d DIR puts it in DIR.
func TestDemoDefaultPlace(t *testing.T) {
	bin := ufs2Binary(t)
	tmp, cwd, d := t.TempDir(), t.TempDir(), t.TempDir()
	for _, tc := range []struct {
		args []string
		dir  func() string // where demo.img must be
	}{
		{nil, func() string {
			m, _ := filepath.Glob(filepath.Join(tmp, "ufs2-demo-*"))
			if len(m) != 1 {
				t.Fatalf("$TMPDIR holds %v, want one ufs2-demo-* directory", m)
			}
			return m[0]
		}},
		{[]string{"-d", d}, func() string { return d }},
	} {
		cmd := exec.Command(bin, append([]string{"demo"}, tc.args...)...)
		cmd.Dir = cwd
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("ufs2 demo %v: %v\n%s%s", tc.args, err, out.String(), errOut.String())
		}
		img := filepath.Join(tc.dir(), "demo.img")
		if fi, err := os.Stat(img); err != nil || fi.Size() != 1<<30 {
			t.Errorf("demo %v: image %s: %v", tc.args, img, err)
		}
		if !strings.Contains(out.String(), "the image is kept: "+img+"\n") {
			t.Errorf("demo %v does not say where the image is:\n%s", tc.args, out.String())
		}
		fsckCleanup(t, bin, img)
		if ents, _ := os.ReadDir(cwd); len(ents) != 0 {
			t.Errorf("demo %v wrote into the current directory: %v", tc.args, ents)
		}
	}
	if _, errOut, code := fsckRun(t, bin, "demo", "-d", d, "x.img"); code != 64 || !strings.Contains(errOut, "not both") {
		t.Errorf("demo -d DIR IMAGE: exit %d, %q", code, errOut)
	}
}
