package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "rm",
		Usage:     "remove files from an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET PATH...",
		Description: "Removes each PATH from the filesystem on TARGET (a symlink itself, never\n" +
			"what it points at). Directories need -r (or -R), which removes everything\n" +
			"below them first. -f: a missing PATH is not an error. / and paths ending in\n" +
			". or .. are refused.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "r", Usage: "remove directories and their contents"},
			&cli.BoolFlag{Name: "R", Usage: "the same as -r"},
			&cli.BoolFlag{Name: "f", Usage: "ignore missing paths"},
		},
		Action: rmAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 rm disk.img /etc/motd", "Remove one file."},
			{"ufs2 rm -rf disk.img /usr/obj", "Remove a tree; no error if it is not there."},
		},
		Exit:    exitStd,
		SeeAlso: []string{"ufs2-mkdir(8)", "ufs2-mv(8)", "rm(1)"},
	}))
}

func rmAction(c *cli.Context) error {
	if c.NArg() < 2 && !(c.NArg() == 1 && c.Bool("f")) {
		return exitf(exitUsage, "rm: want TARGET PATH...; see ufs2 rm --help")
	}
	opts := tools.RemoveOptions{Recursive: c.Bool("r") || c.Bool("R"), Force: c.Bool("f")}
	target := c.Args().First()
	return withFS(c, "rm", target, func(ctx context.Context, fsys *ufs.FS) error {
		return eachPath(ctx, "rm", target, c.Args().Slice()[1:], func(p string) error {
			return tools.Remove(ctx, fsys, p, opts)
		})
	})
}
