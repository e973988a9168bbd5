package mount

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/ufs"
)

// hostTree reads the tree under dir as treeOf does for an engine.
func hostTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, dir)
		switch {
		case rel == "":
			return nil
		case rel == "/.snap":
			return filepath.SkipDir
		case d.IsDir():
			out[rel+"/"] = ""
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestControlSnapshotLive takes a snapshot of a live read-write mount
// through its control channel, found from the mount point and from the
// image; writers go on through the mount after it; the snapshot holds the
// tree as it was, the image is clean. Bad requests get one-line errors.
func TestControlSnapshotLive(t *testing.T) {
	img := newImage(t, 96<<20)
	mnt, srv := mountImage(t, img, Options{})
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mnt, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mnt, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		write(filepath.Join("d", string(rune('a'+i%5)), "f"+strings.Repeat("x", i)), strings.Repeat("content ", 1000*i))
	}
	write("big", strings.Repeat("big ", 500000))
	before := hostTree(t, mnt)

	rec, ok := FindMount(mnt)
	if !ok {
		t.Fatal("the mount point's record is not in the registry")
	}
	if r2, ok := FindMount(img); !ok || r2.Socket != rec.Socket {
		t.Fatalf("the image does not lead to its mount: %+v, %v", r2, ok)
	}
	var hello MountRecord
	if err := Call(rec, "hello", nil, &hello); err != nil || hello.MountPoint != rec.MountPoint {
		t.Fatalf("hello: %+v, %v", hello, err)
	}
	var s ufs.Snapshot
	if err := Call(rec, "snapshot.create", SnapshotArgs{Name: "live"}, &s); err != nil {
		t.Fatal(err)
	}
	// Writers go on: overwrite, remove, add.
	write("big", "short now")
	if err := os.RemoveAll(filepath.Join(mnt, "d", "b")); err != nil {
		t.Fatal(err)
	}
	write("new/file", "after the snapshot")
	var list []ufs.Snapshot
	if err := Call(rec, "snapshot.list", nil, &list); err != nil || len(list) != 1 || list[0].Name != "live" {
		t.Errorf("snapshot.list: %+v, %v", list, err)
	}
	for _, bad := range []struct{ op, want string }{{"snapshot.create", "already holds"}, {"nonsense", "unknown request"}} {
		err := Call(rec, bad.op, SnapshotArgs{Name: "second"}, nil)
		if err == nil || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", bad.op, err, bad.want)
		}
	}
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, ok := FindMount(mnt); ok {
		t.Error("the registry still lists the mount after the unmount")
	}
	checkSnapshotImage(t, img, before, "live")
}

// TestMountSnapshotRO mounts a snapshot read-only (-o ro,snapshot=NAME),
// while the live filesystem is mounted read-write and changing (read
// through the live mount's control channel), and again from the image
// once it is unmounted: both show the tree as it was.
func TestMountSnapshotRO(t *testing.T) {
	img := newImage(t, 64<<20)
	t.Cleanup(func() { checkImage(t, img) })
	mnt, srv := mountImage(t, img, Options{})
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(mnt, "f"+strings.Repeat("x", i)), []byte(strings.Repeat("old ", 3000*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := hostTree(t, mnt)
	rec, ok := FindMount(mnt)
	if !ok {
		t.Fatal("no record of the mount")
	}
	if err := Call(rec, "snapshot.create", SnapshotArgs{Name: "s"}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(mnt, "f"+strings.Repeat("x", i)), []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenTarget(img, &Options{Snapshot: "s"}); err == nil || !strings.Contains(err.Error(), "add ro") {
		t.Errorf("snapshot without ro: %v", err)
	}
	check := func(when string) {
		t.Helper()
		smnt, ssrv := mountImage(t, img, Options{ReadOnly: true, Snapshot: "s"})
		got := hostTree(t, smnt)
		for p, w := range before {
			if got[p] != w {
				t.Errorf("%s: %s in the mounted snapshot has %d bytes, want %d", when, p, len(got[p]), len(w))
			}
		}
		if err := ssrv.Unmount(); err != nil {
			t.Fatal(err)
		}
		if err := ssrv.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	check("live mount running")
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	check("from the image")
}
