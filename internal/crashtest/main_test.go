package crashtest

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the children of the kill tests: the test binary started
// again with one of their environment variables set does that child's
// work (killChild, mountChild) instead of running the tests.
func TestMain(m *testing.M) {
	var child func() error
	switch {
	case os.Getenv(envChildImage) != "":
		child = killChild
	case os.Getenv(envMountImage) != "":
		child = mountChild
	}
	if child == nil {
		os.Exit(m.Run())
	}
	if err := child(); err != nil {
		fmt.Fprintln(os.Stderr, "crash test child:", err)
		os.Exit(1)
	}
}
