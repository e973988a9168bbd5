package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(editCommand(&cli.Command{
		Name:      "mv",
		Usage:     "rename a file in an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET SRC DST",
		Description: "Renames SRC to DST in the filesystem on TARGET, or moves it into DST when\n" +
			"DST is an existing directory. An existing file DST is replaced, and so is an\n" +
			"empty directory DST when SRC is a directory. A directory cannot move below\n" +
			"itself.",
		Action: mvAction,
	}))
}

func mvAction(c *cli.Context) error {
	if c.NArg() != 3 {
		return exitf(64, "mv: want TARGET SRC DST; see ufs2 mv --help")
	}
	target, src, dst := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
	return withFS(c, "mv", target, func(_ context.Context, fsys *ufs.FS) error {
		return editError("mv", target, tools.Rename(fsys, src, dst))
	})
}
