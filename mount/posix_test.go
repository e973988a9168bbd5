package mount

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// TestPosix runs go-fuse's POSIX conformance suite against a read-write
// mount, each test in a directory of its own: every test of
// posixtest.All but FcntlFlockLocksFile (see TestPosixLocks), plus
// FallocateKeepSize.
func TestPosix(t *testing.T) {
	_, mnt, _ := mountRW(t, 256<<20)
	tests := map[string]func(*testing.T, string){"FallocateKeepSize": posixtest.FallocateKeepSize}
	for name, fn := range posixtest.All {
		if name != "FcntlFlockLocksFile" {
			tests[name] = fn
		}
	}
	names := make([]string, 0, len(tests))
	for name := range tests {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(mnt, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tests[name](t, dir)
		})
	}
}

// TestPosixLocks stands in for posixtest's FcntlFlockLocksFile, which
// expects a process's second descriptor to conflict with its own POSIX
// lock: no kernel filesystem does that (go-fuse's own run against a
// kernel directory skips the test). The mount, whose locks the kernel
// keeps, must behave as the host filesystem does.
func TestPosixLocks(t *testing.T) {
	_, mnt, _ := mountRW(t, 64<<20)
	lockTwice := func(dir string) error {
		name := filepath.Join(dir, "locked")
		f1, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f1.Close()
		if err := syscall.FcntlFlock(f1.Fd(), syscall.F_SETLK, &syscall.Flock_t{Type: syscall.F_WRLCK}); err != nil {
			t.Fatalf("F_SETLK: %v", err)
		}
		f2, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f2.Close()
		return syscall.FcntlFlock(f2.Fd(), syscall.F_SETLK, &syscall.Flock_t{Type: syscall.F_RDLCK})
	}
	host, mount := lockTwice(t.TempDir()), lockTwice(mnt)
	if !errors.Is(mount, host) && !(host == nil && mount == nil) {
		t.Errorf("second lock by the same process: %v on the mount, %v on the host", mount, host)
	}
}
