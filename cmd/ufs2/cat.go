package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "cat",
		Usage:     "write files of an unmounted UFS2 filesystem to standard output",
		ArgsUsage: "TARGET PATH...",
		Description: "Writes the contents of each regular file PATH (a final symlink followed) of\n" +
			"the filesystem on TARGET to standard output, one after the other, as cat(1)\n" +
			"does; holes read as zeros. A PATH that cannot be read is reported and the\n" +
			"others still written. ufs2 get TARGET PATH - is the same for one file.",
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return exitf(exitUsage, "cat: want TARGET PATH...; see ufs2 cat --help")
			}
			return catFiles("cat", c.Args().First(), c.Args().Tail())
		},
	}, manDoc{
		Examples: []example{
			{"ufs2 cat disk.img /etc/rc.conf", "Print /etc/rc.conf of the image."},
			{"ufs2 cat disk.img /var/log/messages | grep error", "Search a log without copying it out."},
		},
		Exit:    "0 on success, 1 when TARGET or a PATH cannot be read (the others are still written), 64 for a bad command line.",
		SeeAlso: []string{"ufs2-get(8)", "ufs2-ls(8)", "cat(1)"},
	}))
}

// catFiles writes the files paths of TARGET to standard output, reporting
// each that cannot be read on its own line, as cat(1) does.
func catFiles(cmd, target string, paths []string) error {
	fsys, err := openFSReadOnly(cmd, target)
	if err != nil {
		return err
	}
	defer fsys.Close()
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	failed := false
	for _, p := range paths {
		_, err := tools.Cat(fsys, p, out)
		switch {
		case err == nil:
			continue
		case errors.Is(err, tools.ErrCatOutput):
			return exitf(1, "%s: %s", cmd, posixText(err))
		case errors.Is(err, ufs.ErrCorrupt):
			fmt.Fprintf(os.Stderr, "ufs2: %s: %s; check %s with ufs2 fsck\n", cmd, posixText(err), target)
		default:
			fmt.Fprintf(os.Stderr, "ufs2: %s: %s\n", cmd, posixText(err))
		}
		failed = true
	}
	if err := out.Flush(); err != nil {
		return exitf(1, "%s: writing standard output: %v", cmd, err)
	}
	if failed {
		return exitf(1, "")
	}
	return nil
}
