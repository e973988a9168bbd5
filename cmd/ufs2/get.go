package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "get",
		Usage:     "copy a file or a tree out of an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET PATH DEST|-",
		Description: "Copies PATH of the filesystem on TARGET to DEST on the host, keeping\n" +
			"modes, owners (as root), times, symlinks, hard links, holes, device\n" +
			"nodes, fifos and extended attributes (FreeBSD's user namespace as\n" +
			"Linux user.*, system as trusted.*). As cp -R: if DEST is an existing\n" +
			"directory the copy is DEST/NAME (for PATH / the root's contents go into\n" +
			"DEST). Nothing on the host is changed: existing directories are filled\n" +
			"but keep their modes, owners and times, and an existing file in the way\n" +
			"is refused before anything is copied, unless -f replaces it. A directory\n" +
			"is never replaced by a file or a file by a directory. Problems setting\n" +
			"owners or extended attributes are reported and skipped.\n\n" +
			"With DEST -, the contents of the file PATH (a final symlink followed) go\n" +
			"to standard output, as ufs2 cat TARGET PATH.",
		Flags: []cli.Flag{
			snapshotFlag,
			&cli.BoolFlag{Name: "f", Usage: "replace existing host files that the copy lands on"},
		},
		Action: getAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 get disk.img /etc/rc.conf .", "Copy one file into the current directory."},
			{"ufs2 get disk.img / ./root", "Copy the whole filesystem into ./root, keeping owners, times, links, holes and extended attributes."},
			{"ufs2 get disk.img /etc/rc.conf - | less", "Read one file without copying it to the host."},
		},
		Exit:    "0 on success, 1 when something could not be copied (the message says what), 64 for a bad command line, 130 interrupted (DEST is incomplete).",
		SeeAlso: []string{"ufs2-put(8)", "ufs2-ls(8)", "ufs2-cat(8)"},
	}))
}

func getAction(c *cli.Context) error {
	if c.NArg() != 3 {
		return exitf(exitUsage, "get: want TARGET PATH DEST; see ufs2 get --help")
	}
	target, p, dest := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
	if dest == "-" {
		if c.String("snapshot") != "" {
			return exitf(exitUsage, "get: --snapshot with - is not supported; copy the file out to a path")
		}
		return catFiles("get", target, []string{p})
	}
	fsys, err := openFSFor("get", target, c.String("snapshot"))
	if err != nil {
		return err
	}
	defer fsys.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := tools.Get(ctx, fsys, p, dest, tools.GetOptions{
		Force: c.Bool("f"),
		Warn:  func(err error) { fmt.Fprintf(os.Stderr, "ufs2 get: warning: %v\n", err) },
	})
	copied := "nothing was copied"
	if !res.Empty() {
		copied = "copied " + res.String() + " before stopping"
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return exitf(130, "get: interrupted; %s is incomplete: %s", dest, copied)
	case errors.Is(err, tools.ErrHostExists):
		return exitf(1, "get: %v; %s (-f replaces existing files)", err, copied)
	case errors.Is(err, tools.ErrHostKind):
		return exitf(1, "get: %v; %s", err, copied)
	case errors.Is(err, tools.ErrGetHost):
		return exitf(1, "get: %s; %s", strings.TrimPrefix(err.Error(), tools.ErrGetHost.Error()+": "), copied)
	case !res.Empty():
		var ee *exitError
		if errors.As(fileError("get", target, p, err), &ee) {
			return exitf(ee.code, "%s; %s", ee.msg, copied)
		}
	}
	return fileError("get", target, p, err)
}

// openFSReadOnly opens TARGET read-only as a UFS2 filesystem, turning
// failures into one-line messages.
func openFSReadOnly(cmd, target string) (*ufs.FS, error) {
	dev, err := openForReading(cmd, target)
	if err != nil {
		return nil, exitf(1, "%v", err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
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
	return fsys, nil
}

// fileError turns an error of a file verb on path into its one-line message.
func fileError(cmd, target, path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ufs.ErrNotFound):
		return exitf(1, "%s: %s: No such file or directory in %s (list it with ufs2 ls %s)", cmd, path, target, target)
	case errors.Is(err, ufs.ErrNotDir):
		return exitf(1, "%s: %s: Not a directory (a component of the path, in %s)", cmd, path, target)
	case errors.Is(err, ufs.ErrCorrupt):
		return exitf(1, "%s: %s; check %s with ufs2 fsck", cmd, posixText(err), target)
	}
	return exitf(1, "%s: %s", cmd, posixText(err))
}
