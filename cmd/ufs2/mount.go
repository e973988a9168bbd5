package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"log/syslog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/mount"
	"github.com/ufs2/ufs2/ufs"
)

// The mount command. Without -f it daemonizes: the command re-executes
// itself with daemonEnv set and a pipe as file descriptor 3, in a new
// session, with /dev/null as stdin, stdout and stderr. The child mounts and
// writes one line to the pipe — "0" once the filesystem is mounted, or
// "CODE MESSAGE" if it failed — and the parent exits with that status.
//
// Installed as mount.ufs2 (a symlink to ufs2, found by argv[0]), it is
// mount(8)'s helper: mount(8) runs "mount.ufs2 SPEC DIR [-sfnv] [-o OPTS]"
// for "mount -t ufs2" and for fstab lines of type ufs2.

const (
	daemonEnv = "UFS2_MOUNT_DAEMON"
	// profileEnv, when set to a path, makes the server write a CPU
	// profile of its whole run to PATH.PID (for bench/ and tuning; not
	// documented in the help).
	profileEnv = "UFS2_CPUPROFILE"
	helperCmd  = "mount.ufs2"

	exitMountFailed = 32 // mount(8)'s "mount failure"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "mount",
		Usage:     "mount a UFS2 filesystem through FUSE",
		ArgsUsage: "TARGET MOUNTPOINT",
		Description: "Mounts the UFS2 filesystem on TARGET at MOUNTPOINT and serves it in the\n" +
			"background; the command returns once the mount is usable. umount\n" +
			"MOUNTPOINT, fusermount3 -u MOUNTPOINT, SIGINT or SIGTERM end it: everything\n" +
			"is written, the device flushed and the filesystem marked clean.\n\n" +
			"Options (-o, comma-separated, may repeat):\n" +
			"  ro, rw          read-only or read-write (default rw)\n" +
			"  force           mount read-write even if fsck is needed (it stays marked so)\n" +
			"  allow_other     let other users in (permissions are still checked)\n" +
			"  noacl           do not enforce POSIX ACLs\n" +
			"  suid, dev, exec, noexec, noatime, ...   as mount(8); nosuid,nodev by default\n" +
			"  fsname=NAME     source shown in /proc/mounts (default: TARGET)\n" +
			"  timeout=SEC     kernel attribute and name cache time (default 1)\n" +
			"  syncdelay=SEC   write everything dirty this often (default 30; 0 never)\n" +
			"  snapshot=NAME   with ro: mount that snapshot of the filesystem (also\n" +
			"                  while the filesystem itself is mounted)\n" +
			"  readahead=KIB   read-ahead of the mount (default 1024)\n" +
			"  debug           log every FUSE request\n\n" +
			"With -f the server logs to stderr and prints a line on stdout once the\n" +
			"filesystem is mounted. In the background it logs to syslog, or, with no\n" +
			"syslog at /dev/log, to /var/log/ufs2/mount.log (root) or\n" +
			"$XDG_STATE_HOME/ufs2/mount.log (~/.local/state), which the mount names.\n" +
			"A mount that fails gives the cause: the mount point, /dev/fuse, or what\n" +
			"fusermount3 said. A read-write mount records MOUNTPOINT as the\n" +
			"filesystem's last mount point (fs_fsmnt), as FreeBSD does.\n\n" +
			"A filesystem not cleanly unmounted and without soft updates is only\n" +
			"mounted read-only or with -o force: run ufs2 fsck first. A forced\n" +
			"read-write mount leaves it marked not clean, so that fsck still runs.\n\n" +
			"Installed as mount.ufs2 (ln -s \"$(command -v ufs2)\" /sbin/mount.ufs2),\n" +
			"it lets mount -t ufs2 IMAGE DIR and fstab lines of type ufs2 work.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "o", Usage: "comma-separated mount `OPTIONS` (listed in the description)"},
			&cli.BoolFlag{Name: "f", Usage: "stay in the foreground, log to stderr and say when mounted"},
			// Set by the mount.ufs2 helper for mount(8)'s -s and -f.
			&cli.BoolFlag{Name: "sloppy", Hidden: true},
			&cli.BoolFlag{Name: "fake", Hidden: true},
		},
		Action: mountAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 mount disk.img /mnt", "Mount read-write and return once /mnt is usable; umount /mnt ends it."},
			{"ufs2 mount -o ro,noatime disk.img@2 /mnt", "Mount partition 2 of disk.img read-only."},
			{"ufs2 mount -f -o debug disk.img /mnt", "Serve in the foreground, logging every FUSE request to stderr, until interrupted."},
		},
		Exit: "0 mounted (in the foreground: unmounted again and written), 1 the server failed, " +
			"32 the mount failed (mount(8)'s status; the message gives the cause), 64 a bad command line.",
		SeeAlso: []string{"ufs2-fsck(8)", "mount(8)", "umount(8)", "fusermount3(1)", "fstab(5)"},
	}))
	if filepath.Base(os.Args[0]) == helperCmd {
		os.Args = helperArgs(os.Args)
	}
}

// helperArgs turns mount(8)'s helper call
//
//	mount.ufs2 SPEC DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE]
//
// into the equivalent "ufs2 mount" command line. -n and -v are accepted and
// ignored; -N is refused (mount inside the namespace instead).
func helperArgs(args []string) []string {
	out := []string{"ufs2", "mount"}
	var pos, opts []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		switch a {
		case "-o", "-t", "-N":
			if i+1 >= len(args) {
				return append(out, "--usage-error="+a+" needs a value")
			}
			i++
			switch a {
			case "-o":
				opts = append(opts, args[i])
			case "-N":
				return append(out, "--usage-error=-N (mount namespaces) is not supported; run mount inside the namespace")
			}
			continue
		}
		for _, c := range a[1:] {
			switch c {
			case 's':
				out = append(out, "--sloppy")
			case 'f':
				out = append(out, "--fake")
			case 'n', 'v', 'r', 'w':
				if c == 'r' {
					opts = append(opts, "ro")
				}
				if c == 'w' {
					opts = append(opts, "rw")
				}
			default:
				return append(out, "--usage-error=unknown option -"+string(c))
			}
		}
	}
	if len(opts) > 0 {
		out = append(out, "-o", strings.Join(opts, ","))
	}
	return append(out, pos...)
}

// mountRequest is a parsed mount command line.
type mountRequest struct {
	target, dir string
	opts        mount.Options
	optList     string
	foreground  bool
	fake        bool
	sloppy      bool
}

func parseMount(c *cli.Context) (*mountRequest, error) {
	for _, a := range c.Args().Slice() {
		if msg, ok := strings.CutPrefix(a, "--usage-error="); ok {
			return nil, exitf(exitUsage, "mount: %s; see ufs2 mount --help", msg)
		}
	}
	if c.NArg() != 2 {
		return nil, exitf(exitUsage, "mount: want TARGET MOUNTPOINT; see ufs2 mount --help")
	}
	r := &mountRequest{foreground: c.Bool("f"), fake: c.Bool("fake"), sloppy: c.Bool("sloppy")}
	var err error
	if r.target, err = absTarget(c.Args().Get(0)); err != nil {
		return nil, exitf(exitUsage, "mount: %v", err)
	}
	if r.dir, err = filepath.Abs(c.Args().Get(1)); err != nil {
		return nil, exitf(exitUsage, "mount: %v", err)
	}
	r.optList = strings.Join(c.StringSlice("o"), ",")
	if err := mount.ParseOptions(&r.opts, r.optList, r.sloppy); err != nil {
		return nil, exitf(exitUsage, "mount: %s; see ufs2 mount --help", errText(err))
	}
	if r.opts.FsName == "" {
		r.opts.FsName = r.target
	}
	return r, nil
}

// absTarget makes the path part of TARGET (PATH or PATH@N) absolute, so
// that the daemon, which runs in /, finds it.
func absTarget(target string) (string, error) {
	path, part, err := blockdev.ParseTarget(target)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if part > 0 {
		return abs + "@" + strconv.Itoa(part), nil
	}
	return abs, nil
}

func mountAction(c *cli.Context) error {
	r, err := parseMount(c)
	if err != nil {
		return err
	}
	if r.fake {
		return nil // mount -f: check the arguments, mount nothing
	}
	if fd := os.Getenv(daemonEnv); fd != "" {
		return runDaemon(r, fd)
	}
	if !r.foreground {
		return spawnDaemon(r)
	}
	lvl := slog.LevelInfo
	if r.opts.Debug {
		lvl = slog.LevelDebug
	}
	r.opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return serve(r, func(srv *mount.Server, note string) {
		if note != "" {
			fmt.Fprintf(os.Stderr, "ufs2 mount: %s\n", note)
		}
		how := "read-write"
		if srv.ReadOnly() {
			how = "read-only"
		}
		fmt.Printf("ufs2 mount: %s mounted on %s (%s); umount %s or interrupt to end\n", r.target, r.dir, how, r.dir)
	})
}

// serve opens the target, mounts it, calls ready (with a note for the
// user if a read-write mount became read-only), and serves until the
// filesystem is unmounted (by umount or a signal).
func serve(r *mountRequest, ready func(srv *mount.Server, note string)) error {
	if path := os.Getenv(profileEnv); path != "" {
		stop, err := startProfile(fmt.Sprintf("%s.%d", path, os.Getpid()))
		if err != nil {
			return exitf(1, "mount: %s: %v", profileEnv, err)
		}
		defer stop()
	}
	wantRW := !r.opts.ReadOnly
	// Signals are caught before the kernel mount exists: one arriving while
	// go-fuse still checks its new mount (a stat and an open from this
	// process) must not end the process with the mount's requests
	// unanswered, which leaves a thread of it stuck in the kernel and the
	// mount point dead. A signal caught before Mount returns is handled
	// (the filesystem unmounted) as soon as it does.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	// The engine's warning that it opens the filesystem read-only is this
	// command's message (the refusal, or the note that the mount is
	// read-only): not logged as well.
	logger := r.opts.Logger
	r.opts.Logger = slog.New(dropMessage{logger.Handler(), "opening read-only"})
	fsys, err := mount.OpenTarget(r.target, &r.opts)
	r.opts.Logger = logger
	if err != nil {
		return openError(r.target, err)
	}
	srv, err := mountExplained(r.dir, fsys, r.opts)
	if err != nil {
		fsys.Close()
		return err
	}
	fsys.SetMountPoint(r.dir) // fs_fsmnt, "last mounted on", as FreeBSD's mount
	go func() {
		for range sig {
			if err := srv.Unmount(); err != nil {
				r.opts.Logger.Error("unmount on signal", "dir", r.dir, "err", err)
			}
		}
	}()
	note := ""
	if wantRW && srv.ReadOnly() {
		note = r.dir + " is mounted read-only"
		if why := fsys.ReadOnlyReason(); why != "" {
			note += ": " + fsckAdvice(why, r.target)
		}
	}
	ready(srv, note)
	if err := srv.Wait(); err != nil {
		return exitf(1, "mount: %s: writing the filesystem at unmount: %v; run ufs2 fsck %s", r.target, err, r.target)
	}
	return nil
}

// dropMessage is a slog.Handler that leaves out the records whose message
// is msg and passes the others on.
type dropMessage struct {
	slog.Handler
	msg string
}

func (d dropMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == d.msg {
		return nil
	}
	return d.Handler.Handle(ctx, r)
}

func (d dropMessage) WithAttrs(as []slog.Attr) slog.Handler {
	return dropMessage{d.Handler.WithAttrs(as), d.msg}
}

func (d dropMessage) WithGroup(name string) slog.Handler {
	return dropMessage{d.Handler.WithGroup(name), d.msg}
}

// startProfile starts a CPU profile written to path; the function it
// returns stops it and closes the file.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// openError turns a failure to open TARGET into its one-line message.
func openError(target string, err error) error {
	switch {
	case errors.Is(err, mount.ErrNeedsFsck):
		// The reason and the advice say what the sentinel says.
		return exitf(exitMountFailed, "mount: %s", strings.TrimPrefix(err.Error(), mount.ErrNeedsFsck.Error()+": "))
	case errors.Is(err, mount.ErrCannotWrite):
		return exitf(exitMountFailed, "mount: %s", strings.TrimPrefix(err.Error(), mount.ErrCannotWrite.Error()+": "))
	case errors.Is(err, ufs.ErrUFS1):
		return exitf(exitMountFailed, "mount: %s: UFS1 is not supported; only UFS2", target)
	case errors.Is(err, ufs.ErrNotUFS2):
		return exitf(exitMountFailed, "mount: %s: not a UFS2 filesystem (no superblock at 64 KiB, 8 KiB, 0 or 256 KiB); for a partition give PATH@N", target)
	case errors.Is(err, ufs.ErrCorrupt):
		return exitf(exitMountFailed, "mount: %s; run ufs2 fsck %s", posixText(err), target)
	}
	return exitf(exitMountFailed, "mount: %s", errText(err))
}

// mountExplained is mount.Mount with the real cause in its error: the
// message fusermount3 printed (captured: a background server's stderr goes
// nowhere), or what is wrong with the mount point or /dev/fuse, rather
// than "fusermount exited with code 256".
func mountExplained(dir string, eng mount.Engine, o mount.Options) (*mount.Server, error) {
	var said bytes.Buffer
	pr, pw, perr := os.Pipe()
	if perr != nil {
		srv, err := mount.Mount(dir, eng, o)
		if err != nil {
			return nil, exitf(exitMountFailed, "mount: %s", mountCause(dir, err, ""))
		}
		return srv, nil
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(&said, pr)
		close(copied)
	}()
	// go-fuse hands fusermount3 os.Stderr as its stderr.
	stderr := os.Stderr
	os.Stderr = pw
	srv, err := mount.Mount(dir, eng, o)
	os.Stderr = stderr
	pw.Close()
	<-copied
	pr.Close()
	if err != nil {
		return nil, exitf(exitMountFailed, "mount: %s", mountCause(dir, err, said.String()))
	}
	if s := strings.TrimSpace(said.String()); s != "" {
		fmt.Fprintln(os.Stderr, s)
	}
	return srv, nil
}

// mountCause says why mounting on dir failed with err, fusermount3 having
// printed said.
func mountCause(dir string, err error, said string) string {
	if errors.Is(err, mount.ErrMountpoint) {
		switch st, serr := os.Stat(dir); {
		case errors.Is(serr, fs.ErrNotExist):
			return dir + ": No such file or directory (the mount point must be an existing directory)"
		case serr == nil && !st.IsDir():
			return dir + ": Not a directory"
		}
	}
	if f, ferr := os.OpenFile("/dev/fuse", os.O_RDWR, 0); ferr == nil {
		f.Close()
	} else if errors.Is(ferr, fs.ErrNotExist) {
		return "/dev/fuse: No such device (load the kernel's fuse module: modprobe fuse; in a container, pass it --device /dev/fuse)"
	} else if errors.Is(ferr, fs.ErrPermission) && strings.Contains(said, "/dev/fuse") {
		return "/dev/fuse: Permission denied (" + fuseDevOwner() + "; run as root, or give this user access to /dev/fuse)"
	}
	if _, lerr := exec.LookPath("fusermount3"); lerr != nil && os.Geteuid() != 0 {
		if _, lerr := exec.LookPath("fusermount"); lerr != nil {
			return "fusermount3 not found: install fuse3, or mount as root"
		}
	}
	if line := lastLine(said); line != "" {
		return dir + ": " + line
	}
	return strings.TrimSpace(errText(err))
}

// fuseDevOwner describes /dev/fuse's mode and owner: "crw------- root:root".
func fuseDevOwner() string {
	var st syscall.Stat_t
	if syscall.Stat("/dev/fuse", &st) != nil {
		return "it cannot be opened"
	}
	owner, group := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return fmt.Sprintf("it is c%s %s:%s", fs.FileMode(st.Mode & 0o777).String()[1:], owner, group)
}

// lastLine is the last non-empty line of s, without the path of the
// program that printed it ("/usr/bin/fusermount3: x" is "fusermount3: x").
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if prog, rest, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(prog, "/") {
		line = filepath.Base(prog) + ": " + rest
	}
	return line
}

// errText is err's message without the "mount: " its sentinel starts
// with (the command's messages already say "mount:").
func errText(err error) string { return strings.TrimPrefix(err.Error(), "mount: ") }

// spawnDaemon starts the background server and waits for its report.
func spawnDaemon(r *mountRequest) error {
	exe, err := os.Executable()
	if err != nil {
		return exitf(1, "mount: cannot find my own executable to start the server: %v", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return exitf(1, "mount: %v", err)
	}
	defer pr.Close()
	args := []string{"ufs2", "mount", "-f"}
	if r.sloppy {
		args = append(args, "--sloppy")
	}
	if r.optList != "" {
		args = append(args, "-o", r.optList)
	}
	args = append(args, r.target, r.dir)
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        args,
		Env:         append(os.Environ(), daemonEnv+"=3"),
		Dir:         "/",
		ExtraFiles:  []*os.File{pw},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return exitf(1, "mount: starting the server: %v", err)
	}
	pw.Close()
	line, rerr := bufio.NewReader(pr).ReadString('\n')
	line = strings.TrimSpace(line)
	if rerr != nil && !errors.Is(rerr, io.EOF) || line == "" {
		werr := cmd.Wait()
		return exitf(exitMountFailed, "mount: the server for %s exited before mounting it (%v)", r.dir, werr)
	}
	codeStr, msg, _ := strings.Cut(line, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return exitf(1, "mount: garbled report from the server: %q", line)
	}
	if code == 0 {
		if msg != "" {
			fmt.Fprintf(os.Stderr, "ufs2 mount: %s\n", msg)
		}
		return cmd.Process.Release()
	}
	cmd.Wait()
	return exitf(code, "%s", msg)
}

// syslogSocket is where syslog(3) listens; a machine without it (many
// containers) gets a log file instead.
var syslogSocket = "/dev/log"

// daemonLogger sends the background server's log (warnings and errors,
// everything with -o debug) to syslog, or, without one, appends it to a
// log file (logFile). where says which, for the user.
func daemonLogger(debug bool) (lg *slog.Logger, where string, err error) {
	lvl := slog.LevelWarn
	if debug {
		lvl = slog.LevelDebug
	}
	var w io.Writer
	for _, network := range []string{"unixgram", "unix"} {
		if sw, err := syslog.Dial(network, syslogSocket, syslog.LOG_DAEMON|syslog.LOG_WARNING, "ufs2"); err == nil {
			w, where = sw, "syslog"
			break
		}
	}
	var firstErr error
	for _, path := range logFiles() {
		if w != nil {
			break
		}
		f, err := openLog(path)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		w, where = f, path
	}
	if w == nil {
		return nil, "", fmt.Errorf("no syslog at %s and no log file: %w", syslogSocket, firstErr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), where, nil
}

// rootLogFile is root's log file without syslog.
var rootLogFile = "/var/log/ufs2/mount.log"

// logFiles are the background server's log files when there is no
// syslog, in the order tried: /var/log/ufs2/mount.log for root, else
// $XDG_STATE_HOME/ufs2/mount.log (~/.local/state by default); then
// ufs2-UID/mount.log in the temporary directory.
func logFiles() []string {
	var paths []string
	if os.Geteuid() == 0 {
		paths = append(paths, rootLogFile)
	} else if state := os.Getenv("XDG_STATE_HOME"); state != "" {
		paths = append(paths, filepath.Join(state, "ufs2", "mount.log"))
	} else if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".local", "state", "ufs2", "mount.log"))
	}
	return append(paths, filepath.Join(os.TempDir(), fmt.Sprintf("ufs2-%d", os.Geteuid()), "mount.log"))
}

// openLog opens path for appending, making its directory.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// runDaemon is the background server: it reports on the file descriptor
// daemonEnv names whether the mount worked, then serves until unmounted.
func runDaemon(r *mountRequest, fdStr string) error {
	fd, err := strconv.Atoi(fdStr)
	if err != nil || fd < 3 {
		return exitf(1, "mount: bad %s=%q", daemonEnv, fdStr)
	}
	os.Unsetenv(daemonEnv)
	report := os.NewFile(uintptr(fd), "report")
	reported := false
	send := func(code int, msg string) {
		if !reported {
			fmt.Fprintf(report, "%d %s\n", code, strings.ReplaceAll(msg, "\n", " "))
			report.Close()
			reported = true
		}
	}
	lg, where, err := daemonLogger(r.opts.Debug)
	if err != nil {
		send(1, "mount: "+err.Error())
		return err
	}
	r.opts.Logger = lg
	err = serve(r, func(_ *mount.Server, note string) {
		if where != "syslog" {
			if note != "" {
				note += "; "
			}
			note += "the server logs to " + where + " (no syslog at " + syslogSocket + ")"
		}
		send(0, note)
	})
	if err != nil && !reported {
		var ee *exitError
		if errors.As(err, &ee) {
			send(ee.code, ee.msg)
		} else {
			send(1, err.Error())
		}
	} else if err != nil {
		lg.Error("server ended", "dir", r.dir, "err", err)
	}
	return err
}
