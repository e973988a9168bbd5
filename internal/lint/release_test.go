package lint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// onlyIn lists calls that the engine makes in one file only: every block
// free goes through ufs/release.go, which drops the cached buffer before
// the block leaves the engine's hands (and where snapshots will claim the
// blocks they need).
var onlyIn = []struct{ call, file string }{
	{"alloc.FreeBlock(", "release.go"},
	{".sd.FreeBlocks(", "release.go"},
	{"cache.Invalidate(", "release.go"},
}

// TestOneWayToFree checks that the engine's non-test files make each call
// of onlyIn in its file only.
func TestOneWayToFree(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	dir := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "ufs")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	found := make(map[string]bool)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, c := range onlyIn {
				if !strings.Contains(line, c.call) {
					continue
				}
				if filepath.Base(f) != c.file {
					t.Errorf("%s:%d calls %s: free blocks through ufs/%s instead", filepath.Base(f), i+1, c.call, c.file)
				}
				found[c.call] = true
			}
		}
	}
	for _, c := range onlyIn {
		if !found[c.call] {
			t.Errorf("no call of %s in ufs/%s: update onlyIn", c.call, c.file)
		}
	}
}
