package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/testutil"
)

// TestDumpLive: dump -L of a live read-write mount (given by its mount
// point) dumps a snapshot taken through the mount's control channel and
// deletes it after; the dump restores to the tree as it was, while the
// mount kept changing after the snapshot; snapshot commands go through
// the mount too. -L of an image nothing mounts warns and dumps it
// directly, as FreeBSD's dump does.
func TestDumpLive(t *testing.T) {
	testutil.RequireTool(t, "fusermount3", "fuse3")
	bin, _ := buildUFS2(t)
	src, img := makeMountImage(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ufs2 %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// A read-write copy of the source image, mounted.
	mnt := newMountpoint(t)
	run("mount", img, mnt)
	mounted := true
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", mnt).Run()
			waitReleased(t, img)
		}
	})
	d0 := filepath.Join(dir, "d0")
	out := run("dump", "-0", "-L", "-f", d0, mnt)
	if !strings.Contains(out, "dump_snapshot") || !strings.Contains(out, "DUMP IS DONE") {
		t.Errorf("dump -L output:\n%s", out)
	}
	if out := run("snapshot", "list", mnt); strings.TrimSpace(out) != "" {
		t.Errorf("the snapshot was not deleted after the dump: %q", out)
	}
	// Change the live tree; the dump keeps the old one.
	if err := os.WriteFile(filepath.Join(mnt, "after-dump"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(dir, "restored")
	if err := os.Mkdir(into, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "restore", "-rf", d0)
	cmd.Dir = into
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restore -rf: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(into, "restoresymtable"))
	os.RemoveAll(filepath.Join(into, ".snap")) // the snapshot's own (empty) file, as FreeBSD's dump -L leaves it
	testutil.AssertSameTree(t, src, into, testutil.CompareOpts{})

	run("snapshot", "create", mnt, "kept")
	if out := run("snapshot", "list", img); !strings.Contains(out, "kept") {
		t.Errorf("snapshot list of the mounted image: %q", out)
	}
	run("snapshot", "delete", mnt, "kept")
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	waitReleased(t, img)
	mounted = false
	run("fsck", "-n", "-f", img)
	if out := run("dump", "-0", "-L", "-f", filepath.Join(dir, "d1"), img); !strings.Contains(out, "Cannot use -L on an unmounted filesystem") {
		t.Errorf("dump -L of an unmounted image:\n%s", out)
	}
}
