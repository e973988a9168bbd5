package testutil

import (
	"bytes"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// RequireTool fails the test at once when the executable tool is not on
// PATH, naming the Debian package that provides it. It never skips: a
// missing tool is a broken test machine, not a reason to pass.
func RequireTool(t testing.TB, tool, debianPkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s not found: install the Debian package %s (apt-get install %s)", tool, debianPkg, debianPkg)
	}
}

// run runs name with args and returns its stdout. On a non-zero exit it
// fails the test with the command line, stdout and stderr.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s\nstdout:\n%s", name, strings.Join(args, " "), err,
			stderr.String(), tail(stdout.String(), 4000))
	}
	return stdout.String()
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// MakefsOptions are the knobs of MakefsWith. The zero value is
// "makefs -t ffs -o version=1 -M 1m".
type MakefsOptions struct {
	Version int    // UFS version: 2 for UFS2; 0 or 1 for UFS1
	Size    string // -s: exact image size (makefs syntax: 64m, 1g, 512k); "" lets makefs choose
	Bsize   int    // -o bsize; 0 for makefs's default (8192)
	Fsize   int    // -o fsize; 0 for makefs's default (1024)
	Extra   []string
}

// Makefs builds a UFS2 image from srcDir with Debian's makefs:
//
//	makefs -t ffs -o version=2 [-s sizeHint] image srcDir
//
// sizeHint uses makefs's syntax ("64m"); when it is empty makefs sizes the
// image to fit, with a floor of 1 MiB (-M 1m) because makefs refuses the
// smallest sizes it computes for tiny trees. The superblock lands at byte
// 8192, which sleuthkit cannot read (see the package documentation).
func Makefs(t testing.TB, srcDir, image, sizeHint string) {
	t.Helper()
	MakefsWith(t, srcDir, image, MakefsOptions{Version: 2, Size: sizeHint})
}

// MakefsWith runs makefs with explicit options; Makefs is the usual entry.
// It fails the test with makefs's output if makefs fails.
func MakefsWith(t testing.TB, srcDir, image string, o MakefsOptions) {
	t.Helper()
	RequireTool(t, "makefs", "makefs")
	ver := o.Version
	if ver == 0 {
		ver = 1
	}
	fsopts := []string{"version=" + strconv.Itoa(ver)}
	if o.Bsize != 0 {
		fsopts = append(fsopts, "bsize="+strconv.Itoa(o.Bsize))
	}
	if o.Fsize != 0 {
		fsopts = append(fsopts, "fsize="+strconv.Itoa(o.Fsize))
	}
	args := []string{"-t", "ffs", "-o", strings.Join(fsopts, ",")}
	if o.Size != "" {
		args = append(args, "-s", o.Size)
	} else {
		args = append(args, "-M", "1m")
	}
	args = append(args, o.Extra...)
	args = append(args, image, srcDir)
	// makefs reports some failures on stdout; run includes both.
	run(t, "makefs", args...)
}

// withType puts "-f ufs2" in front of args unless they already name a type.
func withType(args []string) []string {
	if slices.Contains(args, "-f") {
		return args
	}
	return append([]string{"-f", "ufs2"}, args...)
}

// Fsstat returns sleuthkit's "fsstat -f ufs2 image". Note that -f ufs2
// only selects the UFS driver: a UFS1 image is read too, and its output
// says "File System Type: UFS 1".
func Fsstat(t testing.TB, image string) string {
	t.Helper()
	RequireTool(t, "fsstat", "sleuthkit")
	return run(t, "fsstat", "-f", "ufs2", image)
}

// Fls returns sleuthkit's "fls [-f ufs2] args... image"; -f ufs2 is added
// unless args contain -f. Useful args: -r (recursive), -p (full paths),
// -l (long listing with times and sizes), -u / -d (undeleted / deleted).
func Fls(t testing.TB, image string, args ...string) string {
	t.Helper()
	RequireTool(t, "fls", "sleuthkit")
	return run(t, "fls", append(withType(args), image)...)
}

// TskRecover runs "tsk_recover -a -f ufs2 image outDir", copying the
// allocated files of image into outDir (created if needed).
//
// What tsk_recover produces is content only; compare with ContentOnly().
// Measured with sleuthkit 4.11.1: non-empty regular files keep their
// bytes (holes read back as zeros); modes are lost (files 0644, directories
// 0755 under umask 022), and so are owners and times (all "now"); each
// hard link becomes a separate copy; zero-length files are not created,
// nor are directories holding nothing else; a symlink becomes a regular
// file which, for a slow symlink (target longer than the inode's fast
// area: 60 bytes in UFS1, 120 in UFS2), holds the target, and for a fast
// symlink holds as many zero bytes as the target is long.
func TskRecover(t testing.TB, image, outDir string) {
	t.Helper()
	RequireTool(t, "tsk_recover", "sleuthkit")
	run(t, "tsk_recover", "-a", "-f", "ufs2", image, outDir)
}
