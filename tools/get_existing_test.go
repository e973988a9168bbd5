package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/testutil"
)

// hostSnapshot describes every path under root: kind, mode, owner, size,
// mtime and a regular file's contents, to show a refused Get changed
// nothing.
func hostSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		s := fmt.Sprintf("mode 0%o uid %d gid %d size %d mtime %d.%09d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += " " + string(b)
		}
		rel, _ := filepath.Rel(root, p)
		snap[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s is gone", what, p)
		} else if a != b {
			t.Errorf("%s: %s changed:\n before %s\n after  %s", what, p, b, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was made", what, p)
		}
	}
}

// TestGetExisting: Get follows cp -R's rules against what the host
// already has. A directory copied to an existing directory lands inside
// it; existing directories keep their own modes and times; an existing
// file in the way is refused (ErrHostExists) before anything is written,
// unless Force replaces it; a directory where a file goes, or a file
// where a directory goes, is refused even with Force (ErrHostKind).
func TestGetExisting(t *testing.T) {
	src := t.TempDir()
	for p, body := range map[string]string{"d/f": "image f", "d/e/g": "image g", "top": "image top"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(src, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Chmod(filepath.Join(src, "d"), 0o1777); err != nil {
		t.Fatal(err)
	}
	fsys := openUFS(t, makefs2(t, src, testutil.MakefsOptions{}))
	// host makes a fresh host directory (mode 0700) holding the given
	// files ("x/" for a directory, 0750).
	host := func(t *testing.T, paths ...string) string {
		dir := filepath.Join(t.TempDir(), "host")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			full := filepath.Join(dir, p)
			os.MkdirAll(filepath.Dir(full), 0o750)
			var err error
			if strings.HasSuffix(p, "/") {
				err = os.Mkdir(full, 0o750)
			} else {
				err = os.WriteFile(full, []byte("host "+p), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name   string
		have   []string // on the host, under dest
		src    string
		dest   string // under the host directory
		force  bool
		err    error             // nil: the copy is made
		want   map[string]string // for a copy: host paths and their contents ("/" a directory)
		modes  map[string]uint32 // for a copy: permission bits expected
		copied bool              // for an error: whether something was made
	}{
		{name: "directory into an existing directory", src: "/d", dest: "",
			want:  map[string]string{"d": "/", "d/f": "image f", "d/e/g": "image g"},
			modes: map[string]uint32{"": 0o700, "d": 0o1777}},
		{name: "root's contents into an existing directory", src: "/", dest: "",
			want:  map[string]string{"d/f": "image f", "top": "image top"},
			modes: map[string]uint32{"": 0o700, "d": 0o1777}},
		{name: "directory to a new name", src: "/d", dest: "new",
			want:  map[string]string{"new/f": "image f", "new/e/g": "image g"},
			modes: map[string]uint32{"": 0o700, "new": 0o1777}},
		{name: "directory merged into an existing one", have: []string{"d/", "d/other"}, src: "/d", dest: "",
			want:  map[string]string{"d/f": "image f", "d/e/g": "image g", "d/other": "host d/other"},
			modes: map[string]uint32{"": 0o700, "d": 0o750, "d/e": 0o755}},
		{name: "file into an existing directory", src: "/top", dest: "",
			want: map[string]string{"top": "image top"}},
		{name: "file over an existing file", have: []string{"top"}, src: "/top", dest: "top", err: ErrHostExists},
		{name: "file over an existing file, forced", have: []string{"top"}, src: "/top", dest: "top", force: true,
			want: map[string]string{"top": "image top"}},
		{name: "directory over existing files", have: []string{"d/e/g"}, src: "/d", dest: "", err: ErrHostExists},
		{name: "directory over existing files, forced", have: []string{"d/e/g", "d/f"}, src: "/d", dest: "", force: true,
			want:  map[string]string{"d/f": "image f", "d/e/g": "image g"},
			modes: map[string]uint32{"d": 0o750}},
		{name: "directory where a file is", have: []string{"d/e"}, src: "/d", dest: "", force: true, err: ErrHostKind},
		{name: "file where a directory is", have: []string{"d/f/"}, src: "/d", dest: "", force: true, err: ErrHostKind},
		{name: "directory over a file", have: []string{"x"}, src: "/d", dest: "x", err: ErrHostKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := host(t, tt.have...)
			before := hostSnapshot(t, dir)
			res, err := Get(context.Background(), fsys, tt.src, filepath.Join(dir, tt.dest), GetOptions{Force: tt.force, NoOwners: true})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Get = %v, want %v", err, tt.err)
				}
				if !res.Empty() {
					t.Errorf("a refused Get made %s", res)
				}
				sameSnapshot(t, "refused Get", before, hostSnapshot(t, dir))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, body := range tt.want {
				full := filepath.Join(dir, p)
				if body == "/" {
					if fi, err := os.Stat(full); err != nil || !fi.IsDir() {
						t.Errorf("%s: %v, want a directory", p, err)
					}
					continue
				}
				if b, err := os.ReadFile(full); err != nil || string(b) != body {
					t.Errorf("%s holds %q, %v; want %q", p, b, err, body)
				}
			}
			for p, mode := range tt.modes {
				if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || uint32(fi.Mode().Perm())|stickyBit(fi) != mode {
					t.Errorf("%q: mode %v, %v; want 0%o", p, fi.Mode(), err, mode)
				}
			}
		})
	}
}

func stickyBit(fi fs.FileInfo) uint32 {
	if fi.Mode()&fs.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

// TestGetCommandExisting: ufs2 get refuses an existing file in one line
// naming it, with exit 1 and nothing written; -f replaces it; a copy that
// fails midway (a full host filesystem) says what it had copied.
func TestGetCommandExisting(t *testing.T) {
	bin := buildUFS2(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d/a"), []byte("image a"), 0o644)
	os.WriteFile(filepath.Join(src, "d/b"), bytes.Repeat([]byte("big"), 1<<20), 0o644)
	img := makefs2(t, src, testutil.MakefsOptions{})
	get := func(args ...string) (string, int) {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"get"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	dir := t.TempDir()
	existing := filepath.Join(dir, "a")
	os.WriteFile(existing, []byte("host a"), 0o600)
	msg, code := get(img, "/d/a", dir)
	if code != 1 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, existing) || !strings.Contains(msg, "nothing was copied") {
		t.Errorf("get over an existing file: exit %d, %q; want exit 1 and one line naming %s", code, msg, existing)
	}
	if b, _ := os.ReadFile(existing); string(b) != "host a" {
		t.Errorf("the refused get changed %s to %q", existing, b)
	}
	if msg, code := get("-f", img, "/d/a", dir); code != 0 || msg != "" {
		t.Errorf("get -f: exit %d, %q", code, msg)
	}
	if b, _ := os.ReadFile(existing); string(b) != "image a" {
		t.Errorf("get -f left %s holding %q", existing, b)
	}

	// A host filesystem too small for d/b: the message counts what came out.
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the test needs root): %v\n%s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(small, 0) })
	msg, code = get(img, "/d", small)
	if code != 1 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "no space left on device; copied 1 directory") ||
		!strings.HasSuffix(msg, " before stopping\n") {
		t.Errorf("get onto a full filesystem: exit %d, %q; want exit 1 and what was copied", code, msg)
	}
}
