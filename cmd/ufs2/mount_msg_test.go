package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/testutil"
)

// logNoteRe is the line a background mount prints when it logs to a file.
var logNoteRe = regexp.MustCompile(`(?m)^ufs2 mount: the server logs to \S+ \(no syslog at /dev/log\)\n`)

// withoutLogNote is a background mount's output without that line.
func withoutLogNote(out string) string { return logNoteRe.ReplaceAllString(out, "") }

// TestMountCause: a mount that fails says why (the mount point, or
// /dev/fuse, or fusermount3's own words), never "fusermount exited with
// code 256"; -f says when it is mounted; a background mount says where it
// logs when there is no syslog; a read-write mount records fs_fsmnt.
func TestMountCause(t *testing.T) {
	testutil.RequireTool(t, "fusermount3", "fuse3")
	testutil.RequireTool(t, "setpriv", "util-linux")
	ufs2, _ := buildUFS2(t)
	// A directory everyone may enter, for the unprivileged user.
	pub, err := os.MkdirTemp("", "ufs2-mount-cause-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(pub, "ufs2")
	data, err := os.ReadFile(ufs2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(pub, "m.img")
	if _, errOut, code := fsckRun(t, bin, "newfs", "-s", "32m", img); code != 0 {
		t.Fatalf("newfs: %s", errOut)
	}
	os.Chmod(img, 0o644)
	fsckCleanup(t, bin, img)
	mnt := filepath.Join(pub, "mnt")
	if err := os.Mkdir(mnt, 0o777); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(pub, "file")
	os.WriteFile(file, nil, 0o644)

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"mount", img, filepath.Join(pub, "missing")}, "ufs2: mount: " + filepath.Join(pub, "missing") + ": No such file or directory (the mount point must be an existing directory)\n"},
		{[]string{"mount", "-f", img, file}, "ufs2: mount: " + file + ": Not a directory\n"},
	} {
		_, errOut, code := fsckRun(t, bin, tc.args...)
		if code != 32 || errOut != tc.msg {
			t.Errorf("ufs2 %v: exit %d, %q; want 32, %q", tc.args, code, errOut, tc.msg)
		}
	}

	// As nobody, in the background and in the foreground.
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/fuse", &st); err != nil {
		t.Fatalf("/dev/fuse: %v", err)
	}
	for _, fg := range []bool{false, true} {
		args := []string{"--reuid=65534", "--regid=65534", "--clear-groups", bin, "mount", "-o", "ro"}
		if fg {
			args = append(args, "-f")
		}
		cmd := exec.Command("setpriv", append(args, img, mnt)...)
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(pub, "state"), "HOME="+pub)
		out, err := cmd.CombinedOutput()
		if err == nil {
			exec.Command("umount", mnt).Run()
			t.Fatalf("nobody could mount (foreground %v): %s", fg, out)
		}
		msg := string(out)
		if st.Mode&0o006 != 0o006 {
			// Only root may open /dev/fuse here.
			want := "ufs2: mount: /dev/fuse: Permission denied (it is c" + os.FileMode(st.Mode & 0o777).String()[1:] + " root:root; run as root, or give this user access to /dev/fuse)\n"
			if msg != want {
				t.Errorf("nobody's mount (foreground %v): %q, want %q", fg, msg, want)
			}
		} else if !strings.HasPrefix(msg, "ufs2: mount: "+mnt+": fusermount3: ") || strings.Count(msg, "\n") != 1 {
			t.Errorf("nobody's mount (foreground %v): %q, want fusermount3's words in one line", fg, msg)
		}
		if strings.Contains(msg, "exited with code") {
			t.Errorf("the message does not give the cause: %q", msg)
		}
	}

	// -f says when it is mounted; a read-write mount leaves fs_fsmnt.
	cmd := exec.Command(bin, "mount", "-f", img, mnt)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		if want := "ufs2 mount: " + img + " mounted on " + mnt + " (read-write); umount " + mnt + " or interrupt to end\n"; line != want {
			t.Errorf("mount -f said %q, want %q", line, want)
		}
	case <-time.After(20 * time.Second):
		t.Error("mount -f said nothing in 20 s")
	}
	if !isMounted(t, mnt) {
		t.Error("mount -f said it mounted, but nothing is mounted")
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Errorf("umount: %v %s", err, out)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("mount -f after umount: %v", err)
	}
	if got := readSB(t, img).MountPoint(); got != mnt {
		t.Errorf("fs_fsmnt %q after mounting on %s", got, mnt)
	}

	// In the background: the log goes to syslog if there is one, else to
	// a file that the mount names.
	out, err := exec.Command(bin, "mount", img, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	exec.Command("umount", mnt).Run()
	waitReleased(t, img)
	if _, err := os.Stat("/dev/log"); err == nil {
		if len(out) != 0 {
			t.Errorf("a background mount with syslog printed %q", out)
		}
	} else if want := "ufs2 mount: the server logs to /var/log/ufs2/mount.log (no syslog at /dev/log)\n"; string(out) != want {
		t.Errorf("a background mount without syslog printed %q, want %q", out, want)
	}
}

// TestDaemonLogger: the background server logs to the syslog socket when
// it answers, else to the first log file it can open.
func TestDaemonLogger(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	saved, savedFile := syslogSocket, rootLogFile
	t.Cleanup(func() { syslogSocket, rootLogFile = saved, savedFile })
	syslogSocket, rootLogFile = sock, filepath.Join(dir, "root", "mount.log")
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	lg, where, err := daemonLogger(false)
	if err != nil || where != "syslog" {
		t.Fatalf("with a syslog socket: %q, %v", where, err)
	}
	lg.Error("test message", "dir", "/mnt")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "ufs2") || !strings.Contains(string(buf[:n]), `msg="test message" dir=/mnt`) {
		t.Errorf("syslog got %q, %v", buf[:n], err)
	}

	syslogSocket = filepath.Join(dir, "none")
	lg, where, err = daemonLogger(false)
	if err != nil || where != logFiles()[0] {
		t.Fatalf("without syslog: %q, %v; want %s", where, err, logFiles()[0])
	}
	lg.Warn("to the file", "n", 1)
	b, err := os.ReadFile(where)
	if err != nil || !strings.Contains(string(b), `msg="to the file" n=1`) {
		t.Errorf("%s holds %q, %v", where, b, err)
	}
}
