package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "ls",
		Usage:     "list files of an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET [PATH...]",
		Description: "Lists the directory PATH (default /) of the filesystem on TARGET, or\n" +
			"PATH itself if it is not a directory, without mounting it. Several PATHs\n" +
			"are listed as ls(1) lists them: files first, then each directory under a\n" +
			"PATH: header; a PATH that does not exist is reported and the rest listed.\n" +
			"-l prints\n" +
			"mode, links, numeric owner and group, size, mtime (UTC) and symlink\n" +
			"targets; -R lists every directory below.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "l", Usage: "long listing"},
			&cli.BoolFlag{Name: "R", Usage: "list subdirectories recursively"},
			snapshotFlag,
		},
		Action: lsAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 ls disk.img", "List the root directory."},
			{"ufs2 ls -lR disk.img /etc", "List /etc and everything below it, with modes, owners, sizes and times."},
			{"ufs2 ls -l disk.img /etc/rc.conf /boot /COPYRIGHT", "List two files, then the directory /boot."},
		},
		Exit:    "0 on success, 1 when TARGET or PATH cannot be read, 64 for a bad command line.",
		SeeAlso: []string{"ufs2-get(8)", "ufs2-dumpfs(8)"},
	}))
}

func lsAction(c *cli.Context) error {
	if c.NArg() < 1 {
		return exitf(exitUsage, "ls: want TARGET [PATH...]; see ufs2 ls --help")
	}
	target, paths := c.Args().First(), c.Args().Tail()
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	fsys, err := openFSFor("ls", target, c.String("snapshot"))
	if err != nil {
		return err
	}
	defer fsys.Close()
	failed := false
	opts := tools.ListOptions{Long: c.Bool("l"), Recursive: c.Bool("R")}
	err = tools.ListPaths(fsys, paths, opts, os.Stdout, func(err error) {
		var ee *exitError
		if errors.As(lsError(target, err), &ee) {
			fmt.Fprintf(os.Stderr, "ufs2: %s\n", ee.msg)
		}
		failed = true
	})
	if err != nil {
		return lsError(target, err)
	}
	if failed {
		return exitf(1, "")
	}
	return nil
}

// lsError is ls's message for err, which names the path.
func lsError(target string, err error) error {
	if errors.Is(err, ufs.ErrCorrupt) {
		return exitf(1, "ls: %s; check %s with ufs2 fsck", posixText(err), target)
	}
	return exitf(1, "ls: %s", posixText(err))
}
