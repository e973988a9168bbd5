package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "chmod",
		Usage:     "change file modes in an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET MODE PATH...",
		Description: "Sets the mode of each PATH (following a final symlink) in the filesystem on\n" +
			"TARGET. MODE is octal (0755, 4755) or symbolic as for chmod(1): clauses\n" +
			"[ugoa][+-=][rwxXst] separated by commas (u+x,g-w,o=r), or =u, =g, =o to\n" +
			"copy bits; without u, g, o or a the umask's bits are left alone. Options go\n" +
			"before TARGET, so a MODE such as -w needs no '--'. -R changes everything\n" +
			"below each directory too, skipping symlinks.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "R", Usage: "change directories and their contents"},
		},
		Action: chmodAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 chmod disk.img 0755 /usr/local/bin/tool", "Make one file executable by everyone."},
			{"ufs2 chmod -R disk.img go-w /etc", "Take write permission from group and others below /etc."},
		},
		Exit:    exitStd,
		SeeAlso: []string{"ufs2-chown(8)", "ufs2-ls(8)", "chmod(1)"},
	}))
}

func chmodAction(c *cli.Context) error {
	if c.NArg() < 3 {
		return exitf(exitUsage, "chmod: want TARGET MODE PATH...; see ufs2 chmod --help")
	}
	if err := targetFirst("chmod", "TARGET MODE PATH...", c.Args().Slice()); err != nil {
		return err
	}
	target := c.Args().Get(0)
	m, err := tools.ParseMode(c.Args().Get(1), processUmask())
	if err != nil {
		return exitf(1, "chmod: %s", posixText(err))
	}
	return withFS(c, "chmod", target, func(ctx context.Context, fsys *ufs.FS) error {
		return eachPath(ctx, "chmod", target, c.Args().Slice()[2:], func(p string) error {
			return tools.Chmod(ctx, fsys, p, m, c.Bool("R"))
		})
	})
}
