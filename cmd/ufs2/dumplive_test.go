package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	src, _ := makeMountImage(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "live.img") // room for the writer below
	if out, err := exec.Command(bin, "newfs", "-s", "96m", "--from", src, img).CombinedOutput(); err != nil {
		t.Fatalf("newfs --from: %v\n%s", err, out)
	}
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
	// A writer runs through the dump: files w/N, each in one write.
	content := func(n int) []byte { return []byte(strings.Repeat(fmt.Sprintf("file %d ", n), 500)) }
	if err := os.Mkdir(filepath.Join(mnt, "w"), 0o755); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; n < 100; n++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if err := os.WriteFile(filepath.Join(mnt, "w", strconv.Itoa(n)), content(n), 0o644); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
		}
	}()
	d0 := filepath.Join(dir, "d0")
	out := run("dump", "-0", "-L", "-f", d0, mnt)
	close(stop)
	wg.Wait()
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
	// The writer's files in the dump: those of before the snapshot, each
	// whole or (the one being written at that instant) a prefix of it.
	ents, err := os.ReadDir(filepath.Join(into, "w"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		b, err := os.ReadFile(filepath.Join(into, "w", e.Name()))
		if err != nil || !bytes.HasPrefix(content(n), b) {
			t.Errorf("w/%s in the live dump: %d bytes, not a prefix of what was written (%v)", e.Name(), len(b), err)
		}
	}
	t.Logf("the live dump holds %d of the writer's files", len(ents))
	os.RemoveAll(filepath.Join(into, "w"))
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
