package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "ls",
		Usage:     "list files of an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET [PATH]",
		Description: "Lists the directory PATH (default /) of the filesystem on TARGET, or\n" +
			"PATH itself if it is not a directory, without mounting it. -l prints\n" +
			"mode, links, numeric owner and group, size, mtime (UTC) and symlink\n" +
			"targets; -R lists every directory below.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "l", Usage: "long listing"},
			&cli.BoolFlag{Name: "R", Usage: "list subdirectories recursively"},
		},
		Action: lsAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 ls disk.img", "List the root directory."},
			{"ufs2 ls -lR disk.img /etc", "List /etc and everything below it, with modes, owners, sizes and times."},
		},
		Exit:    "0 on success, 1 when TARGET or PATH cannot be read, 64 for a bad command line.",
		SeeAlso: []string{"ufs2-get(8)", "ufs2-dumpfs(8)"},
	}))
}

func lsAction(c *cli.Context) error {
	if c.NArg() < 1 || c.NArg() > 2 {
		return exitf(exitUsage, "ls: want TARGET [PATH]; see ufs2 ls --help")
	}
	target, p := c.Args().Get(0), "/"
	if c.NArg() == 2 {
		p = c.Args().Get(1)
	}
	fsys, err := openFSReadOnly("ls", target)
	if err != nil {
		return err
	}
	defer fsys.Close()
	err = tools.List(fsys, p, tools.ListOptions{Long: c.Bool("l"), Recursive: c.Bool("R")}, os.Stdout)
	return fileError("ls", target, p, err)
}
