package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

func TestHelperArgs(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{[]string{"/sbin/mount.ufs2", "img", "/mnt"}, []string{"ufs2", "mount", "img", "/mnt"}},
		{[]string{"mount.ufs2", "img", "/mnt", "-o", "rw,noatime"}, []string{"ufs2", "mount", "-o", "rw,noatime", "img", "/mnt"}},
		{[]string{"mount.ufs2", "img", "/mnt", "-sfnv", "-o", "ro", "-t", "ufs2"}, []string{"ufs2", "mount", "--sloppy", "--fake", "-o", "ro", "img", "/mnt"}},
		{[]string{"mount.ufs2", "img", "/mnt", "-r", "-o", "x-a", "-o", "dev"}, []string{"ufs2", "mount", "-o", "ro,x-a,dev", "img", "/mnt"}},
		{[]string{"mount.ufs2", "img", "/mnt", "-N", "1234"}, []string{"ufs2", "mount", "--usage-error=-N (mount namespaces) is not supported; run mount inside the namespace"}},
		{[]string{"mount.ufs2", "img", "/mnt", "-o"}, []string{"ufs2", "mount", "--usage-error=-o needs a value"}},
		{[]string{"mount.ufs2", "img", "/mnt", "-x"}, []string{"ufs2", "mount", "--usage-error=unknown option -x"}},
	}
	for _, tt := range tests {
		if got := helperArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("helperArgs(%q) =\n %q, want\n %q", tt.in, got, tt.want)
		}
	}
}

// buildUFS2 builds the ufs2 binary (the daemon re-executes itself, so the
// mount command needs the real program) and a mount.ufs2 symlink to it.
func buildUFS2(t *testing.T) (ufs2, helper string) {
	t.Helper()
	ufs2 = ufs2Binary(t)
	helper = filepath.Join(t.TempDir(), "mount.ufs2")
	if err := os.Symlink(ufs2, helper); err != nil {
		t.Fatal(err)
	}
	return ufs2, helper
}

// makeMountImage makes a small tree and its makefs image.
func makeMountImage(t *testing.T) (src, img string) {
	t.Helper()
	src = t.TempDir()
	testutil.MakeTree(t, src, testutil.TreeSpec{Seed: 3, Depth: 2, Dirs: 3, Files: 20, MaxFileSize: 20 << 10, ShortSymlinks: 2})
	img = filepath.Join(t.TempDir(), "ufs2.img")
	testutil.Makefs(t, src, img, "")
	return src, img
}

func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 2 && fields[1] == dir {
			return true
		}
	}
	return false
}

// newMountpoint makes a mount point and makes sure nothing is left mounted
// on it when the test ends.
func newMountpoint(t *testing.T) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isMounted(t, mnt) {
			t.Errorf("%s still mounted at the end of the test", mnt)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

// waitReleased waits until the server has closed the image: an exclusive
// (read-write) open succeeds only then.
func waitReleased(t *testing.T, img string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dev, err := blockdev.Open(img, blockdev.Options{})
		if err == nil {
			dev.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %s: %v", img, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMountCommand runs "ufs2 mount" as a user would: it returns once the
// filesystem is mounted, umount ends the background server, and failures
// are one-line messages with mount(8)'s exit codes.
func TestMountCommand(t *testing.T) {
	testutil.RequireTool(t, "fusermount3", "fuse3")
	ufs2, helper := buildUFS2(t)
	src, img := makeMountImage(t)

	mnt := newMountpoint(t)
	out, err := exec.Command(ufs2, "mount", "-o", "ro", img, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("ufs2 mount: %v\n%s", err, out)
	}
	if !isMounted(t, mnt) {
		t.Fatal("ufs2 mount returned but nothing is mounted")
	}
	testutil.AssertSameTree(t, src, mnt, testutil.CompareOpts{})
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	waitReleased(t, img)

	// mount.ufs2 as mount(8) calls it: -f (fake) mounts nothing, -s
	// ignores unknown options.
	if out, err := exec.Command(helper, img, mnt, "-f", "-o", "ro").CombinedOutput(); err != nil || isMounted(t, mnt) {
		t.Fatalf("mount.ufs2 -f: %v, mounted %v\n%s", err, isMounted(t, mnt), out)
	}
	if out, err := exec.Command(helper, img, mnt, "-s", "-o", "ro,frobnicate,noatime").CombinedOutput(); err != nil {
		t.Fatalf("mount.ufs2 -s: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(mnt, "deep1")); err != nil {
		t.Error(err)
	}
	if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v\n%s", err, out)
	}
	waitReleased(t, img)

	unclean := filepath.Join(t.TempDir(), "unclean.img")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unclean, data, 0o644); err != nil {
		t.Fatal(err)
	}
	markUnclean(t, unclean)
	notUFS := filepath.Join(t.TempDir(), "zero.img")
	if err := os.WriteFile(notUFS, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mount", img}, 64, "want TARGET MOUNTPOINT"},
		{[]string{"mount", "-o", "bogus", img, mnt}, 64, `bad mount option: "bogus"`},
		{[]string{"mount", img, filepath.Join(mnt, "missing")}, 32, "missing: No such file or directory (the mount point must be an existing directory)"},
		{[]string{"mount", notUFS, mnt}, 32, "not a UFS2 filesystem"},
		{[]string{"mount", unclean, mnt}, 32, "run ufs2 fsck"},
		{[]string{"mount", filepath.Join(t.TempDir(), "none.img"), mnt}, 32, "none.img"},
	}
	for _, tt := range tests {
		cmd := exec.Command(ufs2, tt.args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tt.code || !strings.Contains(string(out), tt.msg) ||
			strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("ufs2 %q: %v\n%s\nwant exit %d and one line with %q", tt.args, err, out, tt.code, tt.msg)
		}
		if isMounted(t, mnt) {
			t.Fatalf("ufs2 %q mounted something", tt.args)
		}
	}
	// Read-only mounts of an unclean filesystem work.
	if out, err := exec.Command(ufs2, "mount", "-o", "ro", unclean, mnt).CombinedOutput(); err != nil {
		t.Fatalf("read-only mount of an unclean filesystem: %v\n%s", err, out)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	waitReleased(t, unclean)

	// -o force mounts it read-write; it stays marked not clean.
	if out, err := exec.Command(ufs2, "mount", "-o", "force", unclean, mnt).CombinedOutput(); err != nil || len(withoutLogNote(string(out))) != 0 {
		t.Fatalf("forced mount of an unclean filesystem: %v\n%s", err, out)
	}
	werr := os.WriteFile(filepath.Join(mnt, "forced"), []byte("written"), 0o644)
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	waitReleased(t, unclean)
	if werr != nil {
		t.Fatalf("writing through a forced mount: %v", werr)
	}
	f, err := os.Open(unclean)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sb, _, err := ondisk.FindSuperblock(f); err != nil || sb.Clean != 0 || sb.Flags&ondisk.FSUnclean == 0 {
		t.Errorf("after a forced mount: %v, superblock %+v; want fs_clean 0 and FS_UNCLEAN", err, sb)
	}
	dest := filepath.Join(t.TempDir(), "forced")
	if out, err := exec.Command(ufs2, "get", unclean, "/forced", dest).CombinedOutput(); err != nil {
		t.Errorf("ufs2 get of the file written through the forced mount: %v\n%s", err, out)
	} else if got, err := os.ReadFile(dest); err != nil || string(got) != "written" {
		t.Errorf("the file written through the forced mount: %q, %v", got, err)
	}
}

// markUnclean clears fs_clean and soft updates in an image's superblock.
func markUnclean(t *testing.T, img string) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, loc, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	sb.Clean = 0
	sb.Flags &^= ondisk.FSDoSoftdep
	if _, err := f.WriteAt(sb.EncodeWithHash(), loc); err != nil {
		t.Fatal(err)
	}
}

// TestMountForegroundSignals: "ufs2 mount -f" serves in the foreground
// and SIGTERM or SIGINT unmounts and ends it with status 0.
func TestMountForegroundSignals(t *testing.T) {
	testutil.RequireTool(t, "fusermount3", "fuse3")
	ufs2, _ := buildUFS2(t)
	_, img := makeMountImage(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		mnt := newMountpoint(t)
		cmd := exec.Command(ufs2, "mount", "-f", "-o", "ro", img, mnt)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !isMounted(t, mnt) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("ufs2 mount -f did not mount: %s", stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after %v: %v\n%s", sig, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("ufs2 mount -f did not end on %v", sig)
		}
		if isMounted(t, mnt) {
			t.Errorf("still mounted after %v", sig)
		}
	}
}

// TestMountHelperWithMount8 runs mount(8) with "-t ufs2" and with an fstab
// line, in a private mount namespace where /usr/sbin (/sbin) holds only
// the mount.ufs2 helper, so the test installs nothing on the host.
func TestMountHelperWithMount8(t *testing.T) {
	testutil.RequireTool(t, "unshare", "util-linux")
	testutil.RequireTool(t, "mount", "mount")
	_, helper := buildUFS2(t)
	_, img := makeMountImage(t)
	sbin := filepath.Dir(helper)
	mnt := newMountpoint(t)
	fstab := filepath.Join(t.TempDir(), "fstab")
	if err := os.WriteFile(fstab, []byte(img+" "+mnt+" ufs2 ro,noauto,nofail 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
mount --make-rprivate /
mount --bind "$SBIN" /usr/sbin
mount -t ufs2 -o ro "$IMG" "$MNT"
grep -q " $MNT fuse.ufs2 ro," /proc/mounts
test -d "$MNT/deep1"
umount "$MNT"
mount -T "$FSTAB" "$MNT"
test -d "$MNT/deep1"
umount "$MNT"
! grep -q " $MNT " /proc/mounts
`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "SBIN="+sbin, "IMG="+img, "MNT="+mnt, "FSTAB="+fstab)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount(8) with the helper: %v\n%s", err, out)
	}
	waitReleased(t, img)
}

// TestMountLargeFile writes a 1 GiB file through a read-write mount made
// by "ufs2 mount", reads it back by checksum before and after a remount,
// and checks the unmounted image with ufs2 fsck -n -f.
func TestMountLargeFile(t *testing.T) {
	testutil.RequireTool(t, "sha256sum", "coreutils")
	ufs2, _ := buildUFS2(t)
	img := filepath.Join(t.TempDir(), "big.img")
	if out, err := exec.Command(ufs2, "newfs", "-n", "-s", "1300m", img).CombinedOutput(); err != nil {
		t.Fatalf("ufs2 newfs: %v\n%s", err, out)
	}
	mnt := newMountpoint(t)
	if out, err := exec.Command(ufs2, "mount", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("ufs2 mount: %v\n%s", err, out)
	}
	p := filepath.Join(mnt, "big")
	f, err := os.Create(p)
	if err != nil {
		exec.Command("umount", mnt).Run()
		t.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	for i := range 1024 {
		binary.LittleEndian.PutUint64(buf, uint64(i))
		h.Write(buf)
		if _, err := f.Write(buf); err != nil {
			f.Close()
			exec.Command("umount", mnt).Run()
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	sum := func() string {
		out, err := exec.Command("sha256sum", p).Output()
		if err != nil {
			t.Errorf("sha256sum: %v", err)
			return ""
		}
		return strings.Fields(string(out))[0]
	}
	if got := sum(); got != want {
		t.Errorf("checksum %s, want %s", got, want)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	waitReleased(t, img)
	if out, err := exec.Command(ufs2, "mount", "-o", "ro", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("ufs2 mount -o ro: %v\n%s", err, out)
	}
	if got := sum(); got != want {
		t.Errorf("checksum after remount %s, want %s", got, want)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	waitReleased(t, img)
	if out, err := exec.Command(ufs2, "fsck", "-n", "-f", img).CombinedOutput(); err != nil {
		t.Errorf("ufs2 fsck -n -f: %v\n%s", err, out)
	}
}
