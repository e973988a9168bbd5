package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "chown",
		Usage:     "change file owners in an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET OWNER[:GROUP] PATH...",
		Description: "Sets the owner and/or group of each PATH in the filesystem on TARGET. OWNER\n" +
			"and GROUP are numbers or names looked up on this host; :GROUP changes the\n" +
			"group only. A final symlink is followed unless -h. -R changes everything\n" +
			"below each directory too; symlinks met there are changed themselves, not\n" +
			"followed.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "R", Usage: "change directories and their contents"},
			// Not a BoolFlag: urfave/cli takes any true boolean named h
			// for a request for help.
			&cli.GenericFlag{Name: "h", Value: &switchFlag{}, Usage: "change a symlink itself, not what it points at"},
			&cli.BoolFlag{Name: "help", Usage: "show this help"},
		},
		HideHelp:        true, // -h is chown's
		HideHelpCommand: true,
		Action:          chownAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 chown -R disk.img 0:0 /etc", "Make root (uid 0, gid 0) own /etc and everything below it."},
			{"ufs2 chown -h disk.img www:www /srv/current", "Change the owner of the symlink /srv/current itself; the names are looked up on this host."},
		},
		Exit:    exitStd,
		SeeAlso: []string{"ufs2-chmod(8)", "ufs2-ls(8)", "chown(8)"},
	}))
}

func chownAction(c *cli.Context) error {
	if c.Bool("help") {
		return cli.ShowSubcommandHelp(c)
	}
	if c.NArg() < 3 {
		return exitf(exitUsage, "chown: want TARGET OWNER[:GROUP] PATH...; see ufs2 chown --help")
	}
	if err := targetFirst("chown", "TARGET OWNER[:GROUP] PATH...", c.Args().Slice()); err != nil {
		return err
	}
	uid, gid, err := tools.ParseOwner(c.Args().Get(1))
	if err != nil {
		return exitf(1, "chown: %s", posixText(err))
	}
	sw := c.Generic("h").(*switchFlag)
	noFollow := sw.on
	sw.on = false // the flag's value outlives this run of the command
	target := c.Args().Get(0)
	return withFS(c, "chown", target, func(ctx context.Context, fsys *ufs.FS) error {
		return eachPath(ctx, "chown", target, c.Args().Slice()[2:], func(p string) error {
			return tools.Chown(ctx, fsys, p, uid, gid, c.Bool("R"), noFollow)
		})
	})
}

// targetFirst catches the argument order chmod and chown once had (chmod
// MODE TARGET PATH...): a first argument that is no host file followed by
// one that is, is a usage error naming the order.
func targetFirst(cmd, usage string, args []string) error {
	if len(args) < 2 {
		return nil
	}
	if _, err := os.Stat(args[0]); err == nil {
		return nil
	}
	path, _, err := blockdev.ParseTarget(args[1])
	if err != nil {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return exitf(exitUsage, "%s: TARGET comes first: ufs2 %s %s (%s is not a file here, %s is)", cmd, cmd, usage, args[0], args[1])
}

// switchFlag is a flag without a value, like a BoolFlag, that does not
// read as a boolean.
type switchFlag struct{ on bool }

func (s *switchFlag) Set(string) error { s.on = true; return nil }
func (s *switchFlag) IsBoolFlag() bool { return true }
func (s *switchFlag) String() string {
	if s.on {
		return "given"
	}
	return ""
}
