package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "chown",
		Usage:     "change file owners in an unmounted UFS2 filesystem",
		ArgsUsage: "OWNER[:GROUP] TARGET PATH...",
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
			{"ufs2 chown -R 0:0 disk.img /etc", "Make root (uid 0, gid 0) own /etc and everything below it."},
			{"ufs2 chown -h www:www disk.img /srv/current", "Change the owner of the symlink /srv/current itself; the names are looked up on this host."},
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
		return exitf(exitUsage, "chown: want OWNER[:GROUP] TARGET PATH...; see ufs2 chown --help")
	}
	uid, gid, err := tools.ParseOwner(c.Args().Get(0))
	if err != nil {
		return exitf(1, "chown: %v", err)
	}
	sw := c.Generic("h").(*switchFlag)
	noFollow := sw.on
	sw.on = false // the flag's value outlives this run of the command
	target := c.Args().Get(1)
	return withFS(c, "chown", target, func(ctx context.Context, fsys *ufs.FS) error {
		return eachPath(ctx, "chown", target, c.Args().Slice()[2:], func(p string) error {
			return tools.Chown(ctx, fsys, p, uid, gid, c.Bool("R"), noFollow)
		})
	})
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
