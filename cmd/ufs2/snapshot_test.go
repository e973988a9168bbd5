package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSnapshotCommand: snapshot create, list (text and JSON), and the
// read-only commands with --snapshot, end to end through the binary; the
// bad inputs are one-line errors with the right status.
func TestSnapshotCommand(t *testing.T) {
	bin := ufs2Binary(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "s.img")
	src := filepath.Join(dir, "h.txt")
	if err := os.WriteFile(src, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(want int, args ...string) string {
		t.Helper()
		out, errs, code := fsckRun(t, bin, args...)
		if code != want {
			t.Fatalf("ufs2 %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errs)
		}
		if want != 0 && !oneLine(errs) {
			t.Errorf("ufs2 %s: error is not one line: %q", strings.Join(args, " "), errs)
		}
		return out + errs
	}
	must(0, "newfs", "-s", "64m", img)
	must(0, "put", img, src, "/h.txt")
	must(0, "snapshot", "create", img, "one")
	if out := must(0, "snapshot", "list", img); !strings.Contains(out, "one") {
		t.Errorf("snapshot list: %q", out)
	}
	var list []snapshotInfo
	if err := json.Unmarshal([]byte(must(0, "snapshot", "list", "--json", img)), &list); err != nil || len(list) != 1 || list[0].Name != "one" || list[0].Blocks == 0 {
		t.Errorf("snapshot list --json: %+v, %v", list, err)
	}
	if out := must(0, "ls", "--snapshot", "one", img); !strings.Contains(out, "h.txt") {
		t.Errorf("ls --snapshot: %q", out)
	}
	got := filepath.Join(dir, "out.txt")
	must(0, "get", "--snapshot", "one", img, "/h.txt", got)
	if b, err := os.ReadFile(got); err != nil || string(b) != "hello\n" {
		t.Errorf("get --snapshot: %q, %v", b, err)
	}
	must(0, "fsck", "-n", "--snapshot", "one", img)
	must(0, "fsck", "-n", "-f", img)
	must(0, "dumpfs", "--snapshot", "one", img)

	if out := must(1, "ls", "--snapshot", "two", img); !strings.Contains(out, `no snapshot "two"; it has: one`) {
		t.Errorf("unknown snapshot: %q", out)
	}
	if out := must(1, "snapshot", "create", img, "two"); !strings.Contains(out, "snapshot") {
		t.Errorf("second snapshot: %q", out)
	}
	must(1, "snapshot", "delete", img, "two")
	must(0, "snapshot", "delete", img, "one")
	if out := must(0, "snapshot", "list", img); strings.Contains(out, "one") {
		t.Errorf("snapshot list after delete: %q", out)
	}
	must(0, "put", img, src, "/again.txt") // writable again
	must(0, "fsck", "-n", "-f", img)
	must(64, "snapshot", "bogus", img)
	must(64, "snapshot", "create", img)
	must(64, "fsck", "-y", "--snapshot", "one", img)
}
