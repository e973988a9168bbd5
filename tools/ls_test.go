package tools

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/testutil"
)

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		mode uint16
		want string
	}{
		{0o100644, "-rw-r--r--"},
		{0o104755, "-rwsr-xr-x"},
		{0o104644, "-rwSr--r--"},
		{0o102755, "-rwxr-sr-x"},
		{0o102745, "-rwxr-Sr-x"},
		{0o041777, "drwxrwxrwt"},
		{0o041770, "drwxrwx--T"},
		{0o120777, "lrwxrwxrwx"},
		{0o020600, "crw-------"},
		{0o060640, "brw-r-----"},
		{0o010000, "p---------"},
		{0o140755, "srwxr-xr-x"},
		{0o000644, "?rw-r--r--"},
	} {
		if got := ModeString(tc.mode); got != tc.want {
			t.Errorf("ModeString(0%o) = %s, want %s", tc.mode, got, tc.want)
		}
	}
}

func TestFreeBSDDevParts(t *testing.T) {
	for _, tc := range []struct {
		dev          uint64
		major, minor uint32
	}{
		{0x0103, 1, 3},
		{0x1_0000_002c | 0xfa00, 250, 300}, // makedev(250, 300) in FreeBSD's encoding
		{0x100_0000_0500, 0x105, 0},        // a major above 255
	} {
		ma, mi := FreeBSDDevParts(tc.dev)
		if ma != tc.major || mi != tc.minor {
			t.Errorf("FreeBSDDevParts(0x%x) = %d, %d; want %d, %d", tc.dev, ma, mi, tc.major, tc.minor)
		}
	}
}

func TestList(t *testing.T) {
	src := t.TempDir()
	mk := func(p string, data string, mode uint32, mtime int64) {
		full := filepath.Join(src, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		unix.Lchown(full, 1001, 20) // before chmod: chown clears setuid
		unix.Chmod(full, mode)
		os.Chtimes(full, time.Unix(mtime, 0), time.Unix(mtime, 0))
	}
	mk("b/setuid", "12345", 0o4755, 1700000000)
	mk("a", "", 0o1644, 1600000000)
	os.Symlink("b/setuid", filepath.Join(src, "ln"))
	os.Link(filepath.Join(src, "a"), filepath.Join(src, "b/a2"))
	unix.Mknod(filepath.Join(src, "tty"), unix.S_IFCHR|0o620, int(unix.Mkdev(4, 1)))
	unix.Chmod(filepath.Join(src, "tty"), 0o620)
	unix.Chmod(filepath.Join(src, "b"), 0o2750)
	for _, p := range []string{"b", "ln", "tty"} {
		ts := []unix.Timespec{{Sec: 1500000000}, {Sec: 1500000000}}
		unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, p), ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	img := makefs2(t, src, testutil.MakefsOptions{})
	fsys := openUFS(t, img)

	tests := []struct {
		path string
		opts ListOptions
		want string
	}{
		{"/", ListOptions{}, "a\nb\nln\ntty\n"},
		{"/b", ListOptions{}, "a2\nsetuid\n"},
		{"/", ListOptions{Long: true}, "total 5\n" +
			"-rw-r--r-T  2 1001 20         0 2020-09-13 12:26 a\n" +
			"drwxr-s---  2 0 0       512 2017-07-14 02:40 b\n" +
			"lrwxrwxrwx  1 0 0         8 2017-07-14 02:40 ln -> b/setuid\n" +
			"crw--w----  1 0 0      4, 1 2017-07-14 02:40 tty\n"},
		{"/b/setuid", ListOptions{Long: true}, "-rwsr-xr-x  1 1001 20         5 2023-11-14 22:13 setuid\n"},
		{"/", ListOptions{Recursive: true}, "/:\na\nb\nln\ntty\n\n/b:\na2\nsetuid\n"},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		if err := List(fsys, tc.path, tc.opts, &buf); err != nil {
			t.Fatalf("List(%s, %+v): %v", tc.path, tc.opts, err)
		}
		got := buf.String()
		if tc.opts.Long && strings.HasPrefix(tc.want, "total ") {
			// The total depends on makefs's allocation: compare the
			// entry lines only.
			if !strings.HasPrefix(got, "total ") {
				t.Errorf("List(%s): no total line: %q", tc.path, got)
			}
			got = got[strings.Index(got, "\n")+1:]
			tc.want = tc.want[strings.Index(tc.want, "\n")+1:]
		}
		if got != tc.want {
			t.Errorf("List(%s, %+v) =\n%s\nwant\n%s", tc.path, tc.opts, got, tc.want)
		}
	}
}
