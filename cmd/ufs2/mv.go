package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "mv",
		Usage:     "rename a file in an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET SRC DST",
		Description: "Renames SRC to DST in the filesystem on TARGET, or moves it into DST when\n" +
			"DST is an existing directory. An existing file DST is replaced, and so is an\n" +
			"empty directory DST when SRC is a directory. A directory cannot move below\n" +
			"itself.",
		Action: mvAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 mv disk.img /etc/rc.conf /etc/rc.conf.old", "Rename a file."},
			{"ufs2 mv disk.img /tmp/build /usr/obj", "Move the directory /tmp/build into the existing directory /usr/obj."},
		},
		Exit:    exitStd,
		SeeAlso: []string{"ufs2-ln(8)", "ufs2-rm(8)", "mv(1)"},
	}))
}

func mvAction(c *cli.Context) error {
	if c.NArg() != 3 {
		return exitf(exitUsage, "mv: want TARGET SRC DST; see ufs2 mv --help")
	}
	target, src, dst := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
	return withFS(c, "mv", target, func(_ context.Context, fsys *ufs.FS) error {
		return editError("mv", target, tools.Rename(fsys, src, dst))
	})
}
