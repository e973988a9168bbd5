package main

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/tools"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "dumpfs",
		Usage:     "print the superblock and cylinder groups of a UFS2 filesystem (FreeBSD dumpfs)",
		ArgsUsage: "TARGET",
		Description: "Prints the superblock, the summary area and every cylinder group as\n" +
			"FreeBSD's dumpfs(8) does. -f lists free fragments instead (-ff one per\n" +
			"line), -m prints a newfs command that recreates the filesystem, --json\n" +
			"prints the full dump as JSON keyed by FreeBSD's field names.",
		Flags: []cli.Flag{
			snapshotFlag,
			&cli.BoolFlag{Name: "f", Usage: "list free fragments as ranges of fragment numbers; twice (-ff): each fragment"},
			&cli.BoolFlag{Name: "m", Usage: "print a newfs command that recreates the filesystem"},
			&cli.BoolFlag{Name: "json", Usage: "print the dump as JSON"},
		},
		Action: dumpfsAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 dumpfs disk.img | less", "Page through the superblock and the cylinder groups."},
			{"ufs2 dumpfs -m disk.img", "Print the newfs command that makes a filesystem of the same geometry."},
			{"ufs2 dumpfs --json disk.img | jq .superblock.fs_fsmnt", "Read one superblock field by FreeBSD's name."},
		},
		Exit:    "0 on success, 1 when TARGET cannot be read or holds no UFS2 filesystem, 64 for a bad command line.",
		SeeAlso: []string{"ufs2-newfs(8)", "ufs2-fsck(8)", "dumpfs(8)"},
	}))
}

func dumpfsAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return exitf(exitUsage, "dumpfs: want exactly one TARGET (an image, a device or PATH@N); see ufs2 dumpfs --help")
	}
	free := c.Count("f") // -ff lists single fragments
	marshal, asJSON := c.Bool("m"), c.Bool("json")
	switch {
	case free > 2:
		return exitf(exitUsage, "dumpfs: -f given %d times; -f lists ranges, -ff single fragments", free)
	case free > 0 && marshal:
		return exitf(exitUsage, "dumpfs: -f and -m cannot be used together; choose one")
	case asJSON && (free > 0 || marshal):
		return exitf(exitUsage, "dumpfs: --json prints the full dump; drop -f or -m")
	}
	target := c.Args().First()
	dev, err := openDeviceFor("dumpfs", target, c.String("snapshot"))
	if err != nil {
		return exitf(1, "dumpfs: %v", err)
	}
	defer dev.Close()

	if asJSON {
		err = tools.DumpfsJSON(dev, os.Stdout)
	} else {
		err = tools.Dumpfs(dev, os.Stdout, tools.DumpfsOptions{Name: target, FreeSpace: free, Marshal: marshal})
	}
	return dumpfsError(target, err)
}

// dumpfsError turns an error of tools.Dumpfs into the one-line message and
// exit status of ufs2 dumpfs.
func dumpfsError(target string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tools.ErrDumpfsDamage):
		return exitf(1, "%s: %v; check it with ufs2 fsck", target, err)
	case errors.Is(err, ondisk.ErrUFS1):
		return exitf(1, "%s: UFS1 is not supported; only UFS2", target)
	case errors.Is(err, ondisk.ErrNotFound):
		return exitf(1, "%s: not a UFS2 filesystem (no superblock at 64 KiB, 8 KiB, 0 or 256 KiB); for a partition give PATH@N", target)
	case errors.Is(err, ondisk.ErrCorrupt):
		return exitf(1, "%s: %v; the superblock is damaged: run ufs2 fsck (it can use a backup superblock)", target, err)
	}
	return exitf(1, "%s: %v", target, err)
}
