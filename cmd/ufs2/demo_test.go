package main

import (
	"os"
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
