package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The tests that run the real program share one build of it, made on
// first use in a directory removed when the test binary exits (TestMain).
var (
	binOnce sync.Once
	binDir  string
	binErr  error
	binOut  []byte
)

// ufs2Binary returns the path of the ufs2 program built from this
// package, building it once per test run.
func ufs2Binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "ufs2-bin-")
		if binErr != nil {
			return
		}
		binOut, binErr = exec.Command("go", "build", "-o", filepath.Join(binDir, "ufs2"), ".").CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binOut)
	}
	return filepath.Join(binDir, "ufs2")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
