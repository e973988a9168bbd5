package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "ln",
		Usage:     "make a link in an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET SRC DST",
		Description: "Makes DST a hard link to SRC in the filesystem on TARGET (a symlink SRC is\n" +
			"linked itself), or with -s a symbolic link holding the text SRC, which need\n" +
			"not exist. When DST is an existing directory the link is DST/NAME, NAME\n" +
			"being SRC's last component. An existing DST is an error.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "s", Usage: "make a symbolic link"},
		},
		Action: lnAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 ln disk.img /bin/sh /bin/rsh", "Make /bin/rsh a second name of /bin/sh."},
			{"ufs2 ln -s disk.img /usr/local/etc/rc.conf /etc/rc.conf.local", "Make a symbolic link holding the text /usr/local/etc/rc.conf."},
		},
		Exit:    exitStd,
		SeeAlso: []string{"ufs2-mv(8)", "ufs2-rm(8)", "ln(1)"},
	}))
}

func lnAction(c *cli.Context) error {
	if c.NArg() != 3 {
		return exitf(exitUsage, "ln: want TARGET SRC DST; see ufs2 ln --help")
	}
	target, src, dst := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
	return withFS(c, "ln", target, func(_ context.Context, fsys *ufs.FS) error {
		if c.Bool("s") {
			return editError("ln", target, tools.Symlink(fsys, src, dst, uint32(os.Geteuid())))
		}
		return editError("ln", target, tools.Link(fsys, src, dst))
	})
}
