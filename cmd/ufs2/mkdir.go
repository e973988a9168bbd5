package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "mkdir",
		Usage:     "make directories in an unmounted UFS2 filesystem",
		ArgsUsage: "TARGET PATH...",
		Description: "Makes each directory PATH in the filesystem on TARGET, with mode 0777 less\n" +
			"this process's umask (or -m MODE, octal or symbolic as for chmod), owned by\n" +
			"this process's user and the parent directory's group (as BSD does). -p makes\n" +
			"missing parents (mode u+wx on top of the default) and accepts existing\n" +
			"directories.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "p", Usage: "make parent directories as needed; no error if a directory exists"},
			&cli.StringFlag{Name: "m", Usage: "`MODE` of the new directories, octal or symbolic (default: 0777 less the umask)"},
		},
		Action: mkdirAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 mkdir -p disk.img /usr/local/etc", "Make /usr/local/etc and any missing parent."},
			{"ufs2 mkdir -m 0700 disk.img /root/.ssh", "Make a directory only its owner may enter."},
		},
		Exit:    exitStd,
		SeeAlso: []string{"ufs2-rm(8)", "ufs2-put(8)", "mkdir(1)"},
	}))
}

// processUmask reads the umask (umask(2) can only be read by setting it).
func processUmask() uint16 {
	m := unix.Umask(0)
	unix.Umask(m)
	return uint16(m & 0o777)
}

func mkdirAction(c *cli.Context) error {
	if c.NArg() < 2 {
		return exitf(exitUsage, "mkdir: want TARGET PATH...; see ufs2 mkdir --help")
	}
	umask := processUmask()
	def := 0o777 &^ umask
	mode := def
	if c.IsSet("m") {
		m, err := tools.ParseMode(c.String("m"), umask)
		if err != nil {
			return exitf(1, "mkdir: %s", posixText(err))
		}
		mode = m.Apply(0o777, true)
	}
	opts := tools.MkdirOptions{
		Parents:    c.Bool("p"),
		Mode:       mode,
		ParentMode: def | 0o300,
		UID:        uint32(os.Geteuid()),
	}
	target := c.Args().First()
	return withFS(c, "mkdir", target, func(ctx context.Context, fsys *ufs.FS) error {
		return eachPath(ctx, "mkdir", target, c.Args().Slice()[1:], func(p string) error {
			_, err := tools.Mkdir(fsys, p, opts)
			return err
		})
	})
}
