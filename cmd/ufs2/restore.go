package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/dump"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "restore",
		Usage:     "restore files from a dump in FreeBSD's format into the current directory (FreeBSD restore)",
		ArgsUsage: "[FILES...]",
		Description: "Reads a dump written by ufs2 dump or FreeBSD's dump(8) (plain, or a zstd or\n" +
			"gzip stream, recognised by its magic) and, as FreeBSD's restore(8), works in\n" +
			"the current directory, any host directory (a ufs2 mount included):\n" +
			"-r rebuilds the dumped filesystem there from a level 0 dump and then each\n" +
			"incremental in order, keeping ./restoresymtable between them; -x extracts\n" +
			"the named FILES (all with none), with the directories leading to them; -t\n" +
			"lists the named FILES (all with none) as inode number and name; -C compares\n" +
			"them with the current directory, one line for each difference; -i is\n" +
			"restore's shell (ls, cd, pwd, add, delete, extract, what, verbose, quit)\n" +
			"to choose what to extract. Modes, owners (as root), times to the\n" +
			"nanosecond, hard links, symlinks, device nodes, fifos, holes and extended\n" +
			"attributes (FreeBSD's user namespace as Linux user.*, system as trusted.*)\n" +
			"come back. --into TARGET restores into an unmounted UFS2 image instead,\n" +
			"offline, with file flags as well (the symbol table is then TARGET's\n" +
			"/restoresymtable). A damaged or truncated dump\n" +
			"stops the restore at the first bad record, which the message names; what\n" +
			"was restored until then stays.",
		HideHelp:        true, // -h is restore's
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "r", Usage: "rebuild the filesystem in the current directory (level 0 first, then each incremental)"},
			&cli.BoolFlag{Name: "x", Usage: "extract the named FILES (all of the dump with none)"},
			&cli.BoolFlag{Name: "t", Usage: "list the named FILES (all of the dump with none)"},
			&cli.BoolFlag{Name: "C", Usage: "compare the dump (or the named FILES) with the current directory; exit 1 if anything differs"},
			&cli.BoolFlag{Name: "i", Usage: "interactive restore: a shell (ls, cd, pwd, add, delete, extract, what, verbose, quit) over the dump's directories"},
			&cli.BoolFlag{Name: "R", Usage: "resume an interrupted full restore (not supported: restart with -r)"},
			&cli.StringFlag{Name: "f", Usage: "read the dump from `FILE`, - for standard input (default: $TAPE)"},
			&cli.StringFlag{Name: "b", Usage: "`KB` per read (accepted for FreeBSD compatibility: a file has no tape records)"},
			&cli.StringFlag{Name: "s", Usage: "restore dump number `N` of a file holding several dumps one after the other"},
			&cli.BoolFlag{Name: "N", Usage: "read the dump, write nothing"},
			&cli.BoolFlag{Name: "y", Usage: "do not ask; go on after errors (restore never asks)"},
			&cli.BoolFlag{Name: "u", Usage: "replace existing files (restore always does)"},
			&cli.BoolFlag{Name: "v", Usage: "verbose: name each file and each step"},
			&cli.StringFlag{Name: "into", Usage: "restore into the root of the UFS2 filesystem on `TARGET` (an unmounted image, device or PATH@N) instead of the current directory; file flags come back too"},
			&cli.GenericFlag{Name: "h", Value: &switchFlag{}, Usage: "extract or list a named directory itself, not what it holds"},
			&cli.BoolFlag{Name: "help", Usage: "show this help"},
		},
		Action: restoreAction,
	}, manDoc{
		Examples: []example{
			{"cd /mnt/new && ufs2 restore -rf /backup/disk.0.dump", "Rebuild the dumped filesystem in /mnt/new (a mounted ufs2 image, for one)."},
			{"cd /mnt/new && ufs2 restore -rf /backup/disk.1.dump", "Then apply the level 1 dump on top: renames, deletions and changes."},
			{"ufs2 restore -tf disk.dump ./etc", "List what the dump holds under /etc."},
			{"zstd -dc disk.dump.zst | ufs2 restore -xf - ./etc/rc.conf", "Extract one file from a compressed dump (ufs2 restore also reads the .zst directly)."},
			{"ufs2 newfs -s 10g new.img && ufs2 restore -r --into new.img -f disk.dump", "Rebuild the dumped filesystem in a new image, file flags included."},
		},
		Exit:    "0 on success, 1 when the dump cannot be read, is damaged or truncated, or does not follow the previous restore (the message says which record or why), 64 for a bad command line.",
		SeeAlso: []string{"ufs2-dump(8)", "restore(8)", "dump(8)"},
	}))
}

func restoreAction(c *cli.Context) error {
	if c.Bool("help") {
		return cli.ShowSubcommandHelp(c)
	}
	sw := c.Generic("h").(*switchFlag)
	noDescend := sw.on
	sw.on = false
	var cmds []string
	for _, m := range []string{"C", "i", "R", "r", "t", "x"} {
		if c.Bool(m) {
			cmds = append(cmds, m)
		}
	}
	switch {
	case len(cmds) == 0:
		return exitf(exitUsage, "restore: none of C, i, R, r, t or x options specified")
	case len(cmds) > 1:
		return exitf(exitUsage, "restore: %s and %s options are mutually exclusive", cmds[0], cmds[1])
	}
	mode := dump.ModeRestore
	switch cmds[0] {
	case "i":
		mode = dump.ModeInteractive
	case "R":
		return exitf(1, "restore: -R: resuming is not supported; remove what the interrupted restore made and run restore -r again")
	case "t":
		mode = dump.ModeList
	case "C":
		mode = dump.ModeCompare
	case "x":
		mode = dump.ModeExtract
	}
	if c.String("into") != "" && (mode == dump.ModeCompare || mode == dump.ModeList) {
		return exitf(exitUsage, "restore: --into is for -r and -x; -t and -C read only the dump and the current directory")
	}
	if mode == dump.ModeInteractive && c.String("f") == "-" {
		return exitf(exitUsage, "restore: -i reads its commands from standard input: give the dump with -f FILE")
	}
	if mode == dump.ModeRestore && c.NArg() > 0 {
		return exitf(exitUsage, "restore: -r restores the whole dump and takes no FILES; use -x to extract some")
	}
	if c.IsSet("b") {
		if n, err := strconv.Atoi(c.String("b")); err != nil {
			return exitf(exitUsage, "restore: illegal blocksize -- %s", c.String("b"))
		} else if n <= 0 {
			return exitf(exitUsage, "restore: block size must be greater than 0")
		}
	}
	skip := 0
	if c.IsSet("s") {
		n, err := strconv.Atoi(c.String("s"))
		if err != nil {
			return exitf(exitUsage, "restore: illegal dump number -- %s", c.String("s"))
		}
		if n <= 0 {
			return exitf(exitUsage, "restore: dump number must be greater than 0")
		}
		skip = n - 1
	}
	input := c.String("f")
	if input == "" {
		input = os.Getenv("TAPE")
	}
	if input == "" {
		return exitf(exitUsage, "restore: no input: give -f FILE (- for standard input) or set TAPE")
	}
	var in io.Reader
	if input == "-" {
		in = os.Stdin
	} else {
		f, err := os.Open(input)
		if err != nil {
			return exitf(1, "restore: %s", posixText(err))
		}
		defer f.Close()
		in = f
	}
	cwd, err := os.Getwd()
	if err != nil {
		return exitf(1, "restore: cannot find the current directory: %v", err)
	}
	verbose := c.Bool("v")
	rd, err := dump.NewReader(in, skip)
	if err != nil {
		return exitf(1, "restore: %s: %v", input, err)
	}
	defer rd.Close()
	vol := &rd.Volume
	if verbose || mode == dump.ModeList {
		fmt.Fprintf(c.App.Writer, "Dump   date: %s\n", dump.Ctime(timeOf(vol.Date)))
		if vol.Ddate == 0 {
			fmt.Fprintf(c.App.Writer, "Dumped from: the epoch\n")
		} else {
			fmt.Fprintf(c.App.Writer, "Dumped from: %s\n", dump.Ctime(timeOf(vol.Ddate)))
		}
		if vol.HostString() != "" {
			fmt.Fprintf(os.Stderr, "Level %d dump of %s on %s:%s\n", vol.Level, vol.FilesysString(), vol.HostString(), vol.DevString())
			fmt.Fprintf(os.Stderr, "Label: %s\n", vol.LabelString())
		}
	}
	opts := dump.RestoreOptions{
		Mode: mode, Dir: cwd, Names: c.Args().Slice(), NoWrite: c.Bool("N"),
		Owners: os.Geteuid() == 0, NoDescend: noDescend, List: c.App.Writer, Commands: os.Stdin,
		Warn: func(err error) { fmt.Fprintf(os.Stderr, "%v\n", err) },
	}
	if verbose {
		opts.Verbose = func(s string) { fmt.Fprint(c.App.Writer, s) }
	}
	var fsys *ufs.FS
	if into := c.String("into"); into != "" && mode != dump.ModeList {
		if fsys, err = openFSReadWrite("restore", into); err != nil {
			return err
		}
		t := dump.NewImageTarget(fsys, into)
		opts.Into = &t
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := dump.Restore(ctx, rd, opts)
	if fsys != nil {
		if cerr := fsys.Close(); cerr != nil && err == nil {
			return exitf(1, "restore: %s: writing the filesystem: %v; check it with ufs2 fsck %s", c.String("into"), cerr, c.String("into"))
		}
	}
	if err != nil {
		what := ""
		if mode != dump.ModeList {
			what = fmt.Sprintf(" (%d files and %d directories restored before it are kept)", res.Files, res.Dirs)
		}
		switch {
		case errors.Is(err, dump.ErrDiffers):
			return exitf(1, "restore: Some files were modified! (%v)", err)
		case errors.Is(err, dump.ErrIncremental), errors.Is(err, dump.ErrSymtab):
			return exitf(1, "restore: %v", err)
		case errors.Is(err, context.Canceled):
			return exitf(1, "restore: interrupted%s", what)
		}
		return exitf(1, "restore: %s: %v%s", input, err, what)
	}
	return nil
}

func timeOf(sec int64) time.Time { return time.Unix(sec, 0) }
