package mount

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs TestMmap's child (mmapChild) when the test binary is
// started again with envMmapFile set, and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(envMmapFile) == "" {
		os.Exit(m.Run())
	}
	if err := mmapChild(); err != nil {
		fmt.Fprintln(os.Stderr, "mmap child:", err)
		os.Exit(1)
	}
}
