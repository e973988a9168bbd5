package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "put",
		Usage:     "copy a host file or tree into an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET SRC PATH",
		Description: "Copies the host file or tree SRC to PATH in the filesystem on TARGET, keeping\n" +
			"modes (setuid, setgid and sticky included), owners, atime and mtime to the\n" +
			"nanosecond, symlinks, hard links, holes (sparse files stay sparse; blocks of\n" +
			"zeros are not written), device nodes, fifos, sockets and extended attributes\n" +
			"(Linux user.* as FreeBSD's user namespace, trusted.* as system). If PATH is an\n" +
			"existing directory, a directory SRC is merged into it (PATH takes SRC's\n" +
			"attributes: put TARGET DIR / fills the root) and a file SRC lands as\n" +
			"PATH/NAME. Existing files of the same name are replaced.\n\n" +
			"Before writing anything, put estimates the blocks and inodes SRC needs\n" +
			"(holes and hard links counted as they are copied) and refuses, saying how\n" +
			"much it needs and how much is free, when the filesystem cannot hold it. A\n" +
			"copy that fails later leaves what it copied, and the message says what.",
		Action: putAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 put disk.img ./rc.conf /etc/rc.conf", "Copy one host file in, replacing /etc/rc.conf."},
			{"ufs2 put disk.img ./rootfs /", "Merge the host tree ./rootfs into the root directory."},
		},
		Exit:    "0 on success, 1 when something could not be copied (the message says what), 64 for a bad command line, 130 interrupted (the filesystem is consistent; the copy is partial).",
		SeeAlso: []string{"ufs2-get(8)", "ufs2-newfs(8)", "ufs2-mkdir(8)"},
	}))
}

func putAction(c *cli.Context) error {
	if c.NArg() != 3 {
		return exitf(exitUsage, "put: want TARGET SRC PATH; see ufs2 put --help")
	}
	target, src, p := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
	if _, err := os.Lstat(src); err != nil {
		return exitf(1, "put: %s", posixText(err))
	}
	return withFS(c, "put", target, func(ctx context.Context, fsys *ufs.FS) error {
		res, err := tools.Put(ctx, fsys, src, p, tools.PutOptions{
			Warn:       func(err error) { fmt.Fprintf(os.Stderr, "ufs2: put: warning: %v\n", err) },
			UseReserve: true, // openFSReadWrite's
		})
		return putError(target, res, err)
	})
}

// putError is put's one-line message for err, saying what was copied
// before it: a copy refused for want of space copied nothing; one that
// failed part-way leaves what it made, which the message lists.
func putError(target string, res tools.PutResult, err error) error {
	var se *tools.SpaceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return exitf(1, "put: %s: %v; nothing was copied (make room, or a larger filesystem)", target, se)
	}
	copied := "nothing was copied"
	if got := tools.GetResult(res); !got.Empty() {
		copied = "copied " + got.String() + " before stopping"
	}
	if errors.Is(err, context.Canceled) {
		return exitf(130, "put: interrupted; %s (the filesystem on %s is consistent)", copied, target)
	}
	var ee *exitError
	if errors.As(editError("put", target, err), &ee) {
		return exitf(ee.code, "%s; %s", ee.msg, copied)
	}
	return err
}

// withFS opens TARGET read-write, runs fn with a context that an
// interrupt cancels, and closes the filesystem (marking it clean) whatever
// fn returned.
func withFS(c *cli.Context, cmd, target string, fn func(context.Context, *ufs.FS) error) error {
	fsys, err := openFSReadWrite(cmd, target)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	err = fn(ctx, fsys)
	if errors.Is(err, context.Canceled) {
		err = exitf(130, "%s: interrupted; the filesystem on %s is consistent but the change is partial", cmd, target)
	}
	if cerr := fsys.Close(); cerr != nil && err == nil {
		err = exitf(1, "%s: %s: writing the filesystem: %v; check it with ufs2 fsck %s", cmd, target, cerr, target)
	}
	return err
}

// openFSReadWrite opens TARGET read-write as a UFS2 filesystem, turning
// failures (and a filesystem the engine will only open read-only) into
// one-line messages.
func openFSReadWrite(cmd, target string) (*ufs.FS, error) {
	dev, err := blockdev.Open(target, blockdev.Options{})
	if err != nil {
		if errors.Is(err, blockdev.ErrMounted) {
			return nil, exitf(1, "%s: %v; unmount it first, or change it through the mount", cmd, err)
		}
		return nil, exitf(1, "%s: %v", cmd, err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{UseReserve: true})
	if err != nil {
		dev.Close()
		switch {
		case errors.Is(err, ufs.ErrUFS1):
			return nil, exitf(1, "%s: %s: UFS1 is not supported; only UFS2", cmd, target)
		case errors.Is(err, ufs.ErrNotUFS2):
			return nil, exitf(1, "%s: %s: not a UFS2 filesystem (no superblock at 64 KiB, 8 KiB, 0 or 256 KiB); for a partition give PATH@N", cmd, target)
		case errors.Is(err, ufs.ErrCorrupt):
			return nil, exitf(1, "%s: %s; check %s with ufs2 fsck", cmd, posixText(err), target)
		}
		return nil, exitf(1, "%s: %s: %s", cmd, target, posixText(err))
	}
	if fsys.ReadOnly() {
		reason := fsys.ReadOnlyReason()
		fsys.Close()
		return nil, exitf(1, "%s: %s: cannot write: %s", cmd, target, fsckAdvice(reason, target))
	}
	return fsys, nil
}

// fsckAdvice is the engine's read-only reason with its "run fsck" said
// once, as the command to run.
func fsckAdvice(reason, target string) string {
	if !strings.Contains(reason, "; run fsck") {
		return reason
	}
	return strings.ReplaceAll(reason, "; run fsck", "") + "; run ufs2 fsck " + target
}

// posixTexts gives the POSIX wording of the errors the file verbs meet.
var posixTexts = []struct {
	err  error
	text string
}{
	{ufs.ErrCorrupt, "damaged filesystem"}, // first: its details may wrap others
	{ufs.ErrNotFound, "No such file or directory"},
	{ufs.ErrNotDir, "Not a directory"},
	{ufs.ErrIsDir, "Is a directory"},
	{ufs.ErrExist, "File exists"},
	{ufs.ErrNotEmpty, "Directory not empty"},
	{ufs.ErrTooManyLinks, "Too many links"},
	{ufs.ErrPerm, "Operation not permitted"},
	{ufs.ErrXattrSpace, "No space left for extended attributes"},
	{ufs.ErrNoSpace, "No space left on device"},
	{ufs.ErrNameTooLong, "File name too long"},
	{ufs.ErrLoop, "Too many levels of symbolic links"},
	{ufs.ErrTooBig, "File too large"},
	{ufs.ErrInvalid, "Invalid argument"},
	{ufs.ErrReadOnly, "Read-only file system"},
	{ufs.ErrNotSupported, "Operation not supported"},
	{ufs.ErrNoAttr, "Attribute not found"},
	{os.ErrNotExist, "No such file or directory"},
	{os.ErrPermission, "Permission denied"},
}

// posixText is err's message with the sentinel's package wording replaced
// by the POSIX one ("/a: ufs: file exists" becomes "/a: File exists"),
// without package names and without the engine's inode numbers: the
// messages of the verbs already name the path (pathText).
func posixText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) && error(pe) == err {
		text := pe.Err.Error()
		if text != "" {
			text = strings.ToUpper(text[:1]) + text[1:]
		}
		return pe.Path + ": " + text
	}
	msg := err.Error()
	for _, e := range toolsTexts {
		if errors.Is(err, e.err) {
			msg = strings.Replace(msg, e.err.Error()+e.sep, e.text, 1)
		}
	}
	for _, e := range posixTexts {
		if errors.Is(err, e.err) {
			s := e.err.Error()
			if i := strings.Index(msg, s); i >= 0 {
				msg = msg[:i] + e.text + msg[i+len(s):]
			} else {
				msg += " (" + e.text + ")"
			}
			break
		}
	}
	return pathText(msg)
}

// toolsTexts are the tools package's sentinels as the messages show them:
// without the package name, or (ErrRefused, whose text follows) at all.
var toolsTexts = []struct {
	err       error
	sep, text string
}{
	{tools.ErrRefused, ": ", ""},
	{tools.ErrBadMode, "", "invalid file mode"},
	{tools.ErrBadOwner, "", "invalid owner"},
	{tools.ErrCatOutput, ": ", ""},
}

// The engine's errors name directories by inode number, which the verbs'
// messages do not need: they start with the path.
var (
	inDirectoryRe = regexp.MustCompile(`: "(?:[^"\\]|\\.)*" in directory \d+`)
	underItselfRe = regexp.MustCompile(`directory \d+ would move under itself`)
	hardLinkDirRe = regexp.MustCompile(`: hard link to directory \d+`)
)

// packagePrefixRe finds the package names the project's sentinel errors
// start with ("ufs: ", "ondisk: "), at the start of msg or of one of its
// ": "-separated parts.
var packagePrefixRe = regexp.MustCompile(`(^|: )(?:ufs|ondisk|alloc|blockdev|bcache|softdep|newfs|tools|mount): `)

// pathText drops the engine's inode numbers and the package names from
// msg: `/a: File exists: "a" in directory 2` is `/a: File exists`.
func pathText(msg string) string {
	for m := ""; m != msg; {
		m = msg
		msg = packagePrefixRe.ReplaceAllString(msg, "$1")
	}
	msg = strings.ReplaceAll(msg, " may not be replaced", "") // follows `"name" in directory N`
	msg = inDirectoryRe.ReplaceAllString(msg, "")
	msg = underItselfRe.ReplaceAllString(msg, "a directory cannot move below itself")
	return hardLinkDirRe.ReplaceAllString(msg, ": a directory cannot have hard links")
}

// editError turns an error of a file-changing verb into its one-line
// message (exit status 1).
func editError(cmd, target string, err error) error {
	var ee *exitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, ufs.ErrCorrupt):
		return exitf(1, "%s: %s; check %s with ufs2 fsck", cmd, posixText(err), target)
	case errors.Is(err, newfs.ErrHost):
		return exitf(1, "%s: %s", cmd, strings.TrimPrefix(posixText(err), newfs.ErrHost.Error()+": "))
	}
	return exitf(1, "%s: %s", cmd, posixText(err))
}

// eachPath runs fn for every path, reporting each failure on its own line
// as rm(1) and chmod(1) do, and fails (exit 1) at the end if any did. An
// interrupt stops at once.
func eachPath(ctx context.Context, cmd, target string, paths []string, fn func(p string) error) error {
	failed := false
	for _, p := range paths {
		err := fn(p)
		if err == nil {
			continue
		}
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			return context.Canceled
		}
		var ee *exitError
		if !errors.As(editError(cmd, target, err), &ee) {
			return err
		}
		fmt.Fprintf(os.Stderr, "ufs2: %s\n", ee.msg)
		failed = true
	}
	if failed {
		return exitf(1, "")
	}
	return nil
}
