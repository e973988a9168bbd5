package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/testutil"
)

// TestInUseByMount: while "ufs2 mount" holds an image read-write, the
// commands that only read it (dumpfs, fsck -n, ls, get) work and warn on
// stderr, in one line naming the mount point, that it is in use; the
// commands that would write it (put, newfs, fsck -y, a second mount) are
// refused in one line naming the mount point and saying to unmount.
func TestInUseByMount(t *testing.T) {
	testutil.RequireTool(t, "fusermount3", "fuse3")
	ufs2 := ufs2Binary(t)
	src, img := makeMountImage(t)
	mnt := newMountpoint(t)
	if out, err := exec.Command(ufs2, "mount", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("ufs2 mount: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if isMounted(t, mnt) {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount: %v\n%s", err, out)
			}
		}
		waitReleased(t, img)
		out, err := exec.Command(ufs2, "fsck", "-n", "-f", img).CombinedOutput()
		if err != nil {
			t.Errorf("fsck -n -f after the test: %v\n%s", err, out)
		}
	})
	var file string // a regular file of the tree, relative to src
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && file == "" && d.Type().IsRegular() {
			file, _ = filepath.Rel(src, p)
		}
		return err
	})
	if file == "" {
		t.Fatal("the test tree has no regular file")
	}
	dest := filepath.Join(t.TempDir(), "copy")

	readers := [][]string{
		{"dumpfs", img},
		{"fsck", "-n", img},
		{"ls", "-l", img, "/"},
		{"get", img, "/" + file, dest},
	}
	for _, args := range readers {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(ufs2, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		warn := strings.TrimSpace(stderr.String())
		if err != nil || strings.Count(warn, "\n") != 0 || !strings.Contains(warn, "warning: ") ||
			!strings.Contains(warn, "mounted on "+mnt) || !strings.Contains(warn, "may not be consistent") {
			t.Errorf("ufs2 %q beside a mount: %v\nstderr: %s\nwant exit 0 and a one-line warning naming %s", args, err, warn, mnt)
		}
		if stdout.Len() == 0 && args[0] != "get" {
			t.Errorf("ufs2 %q printed nothing", args)
		}
	}
	want, err := os.ReadFile(filepath.Join(src, file))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, want) {
		t.Errorf("ufs2 get beside a mount: %d bytes, %v; want the %d of %s", len(got), err, len(want), file)
	}

	host := filepath.Join(t.TempDir(), "new")
	if err := os.WriteFile(host, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt2 := newMountpoint(t)
	writers := []struct {
		args []string
		code int
	}{
		{[]string{"put", img, host, "/new"}, 1},
		{[]string{"newfs", img}, 1},
		{[]string{"fsck", "-y", img}, 8},
		{[]string{"mount", img, mnt2}, 32},
	}
	for _, w := range writers {
		out, err := exec.Command(ufs2, w.args...).CombinedOutput()
		msg := strings.TrimSpace(string(out))
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != w.code || strings.Count(msg, "\n") != 0 ||
			!strings.Contains(msg, "umount "+mnt) {
			t.Errorf("ufs2 %q beside a mount: %v\n%s\nwant exit %d and one line saying to umount %s", w.args, err, msg, w.code, mnt)
		}
		if isMounted(t, mnt2) {
			t.Fatalf("a second mount of %s went through", img)
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/new after the refused put: %v", err)
	}
}
