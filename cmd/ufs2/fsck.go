package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "fsck",
		Usage:     "check and repair a UFS2 filesystem (FreeBSD fsck_ffs)",
		ArgsUsage: "TARGET",
		Description: "Runs the five phases of FreeBSD's fsck_ffs over TARGET. -n answers no to\n" +
			"every question and opens TARGET read-only; -y answers yes; -p (preen) fixes\n" +
			"only what soft updates can leave behind and stops at anything else. -f checks\n" +
			"a filesystem marked clean (a preen skips it otherwise). -b N uses the backup\n" +
			"superblock at sector N (512-byte sectors, as newfs lists them).",
		Flags: []cli.Flag{
			snapshotFlag,
			&cli.BoolFlag{Name: "n", Usage: "answer no to every question; open TARGET read-only"},
			&cli.BoolFlag{Name: "y", Usage: "answer yes to every question"},
			&cli.BoolFlag{Name: "p", Usage: "preen: fix only soft-updates inconsistencies"},
			&cli.BoolFlag{Name: "f", Usage: "check even if the filesystem is marked clean"},
			&cli.Int64Flag{Name: "b", Usage: "use the alternate superblock at sector `N`"},
			&cli.BoolFlag{Name: "d", Usage: "print debugging details"},
			&cli.BoolFlag{Name: "json", Usage: "print the summary and the problems found as JSON"},
		},
		Action: fsckAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 fsck -n -f disk.img", "Check a filesystem even if it is marked clean, changing nothing."},
			{"ufs2 fsck -p disk.img", "Repair what soft updates can leave after a crash; stop at anything else."},
			{"ufs2 fsck -y -b 192 disk.img", "Repair everything, reading the backup superblock at sector 192 (newfs lists where the backups are)."},
		},
		Exit: "fsck_ffs's statuses: 0 the check ran to its end (with -n, inconsistencies " +
			"found are listed but do not change the status; --json's \"clean\" tells), 3 a " +
			"preen without -f or -b could not read the superblock, 8 the check could not " +
			"be made or a preen met an inconsistency it may not fix, 12 interrupted, 16 not " +
			"completely repaired: run fsck again, 64 a bad command line.",
		SeeAlso: []string{"ufs2-newfs(8)", "ufs2-dumpfs(8)", "ufs2-mount(8)", "fsck_ffs(8)"},
	}))
}

func fsckAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return exitf(exitUsage, "fsck: want exactly one TARGET (an image, a device or PATH@N); see ufs2 fsck --help")
	}
	n, y, p := c.Bool("n"), c.Bool("y"), c.Bool("p")
	count := 0
	for _, b := range []bool{n, y, p} {
		if b {
			count++
		}
	}
	if count > 1 {
		return exitf(exitUsage, "fsck: -n, -y and -p exclude each other; choose one")
	}
	if c.Int64("b") < 0 {
		return exitf(exitUsage, "fsck: -b wants a sector number, not %d", c.Int64("b"))
	}
	mode := fsck.No
	switch {
	case y:
		mode = fsck.Yes
	case p:
		mode = fsck.Preen
	case n:
		mode = fsck.No
	default:
		// Without -n, -y or -p fsck_ffs asks; with no one to ask, answer
		// no and write nothing.
		if !isTerminal(os.Stdin) {
			fmt.Fprintln(os.Stderr, "ufs2 fsck: no -n, -y or -p given; answering no to every question (-n)")
		} else {
			fmt.Fprintln(os.Stderr, "ufs2 fsck: interactive answers are not supported; answering no (-n). Use -y to repair")
		}
	}
	target := c.Args().First()
	var dev blockdev.Device
	var err error
	if mode == fsck.No {
		dev, err = openDeviceFor("fsck", target, c.String("snapshot"))
	} else if c.String("snapshot") != "" {
		return exitf(exitUsage, "fsck: a snapshot is read-only: check it with -n")
	} else {
		dev, err = blockdev.Open(target, blockdev.Options{})
	}
	if err != nil {
		// fsck_ffs -p (without -f or -b) exits 3 when it cannot read the
		// superblock, an unopenable device included; otherwise 8.
		code := fsck.ExitError
		if mode == fsck.Preen && !c.Bool("f") && c.Int64("b") == 0 {
			code = fsck.ExitNoSuperblock
		}
		return exitf(code, "fsck: %v", err)
	}
	defer dev.Close()

	asJSON := c.Bool("json")
	var out io.Writer = os.Stdout
	if asJSON {
		out = io.Discard
	}
	opts := fsck.Options{
		Mode:          mode,
		Force:         c.Bool("f"),
		AltSuperblock: c.Int64("b"),
		Debug:         c.Bool("d"),
		Output:        out,
	}
	if isTerminal(os.Stderr) && !asJSON {
		last := ""
		opts.Progress = func(phase string, pct float64) {
			s := fmt.Sprintf("\r%s: phase %s: %3.0f%%", target, phase, pct)
			if s != last {
				fmt.Fprint(os.Stderr, s+"\x1b[K")
				last = s
			}
		}
		defer fmt.Fprint(os.Stderr, "\r\x1b[K")
	}
	ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt)
	defer cancel()
	if ctx == nil {
		ctx = context.Background()
	}
	rep, err := fsck.Check(ctx, dev, opts)
	if asJSON && rep != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			return exitf(1, "fsck: writing JSON: %v", jerr)
		}
	}
	if err != nil {
		code := fsck.ExitError
		if rep != nil && rep.ExitCode != 0 {
			code = rep.ExitCode
		}
		msg := err.Error()
		if errors.Is(err, fsck.ErrNoSuperblock) {
			msg += "; not a UFS2 filesystem, or give a backup superblock with -b (listed above, or by newfs -N)"
		}
		return exitf(code, "fsck %s: %s", target, msg)
	}
	// One line on stderr, where scripts reading stdout (or --json) are not
	// disturbed, when something is left to do. With -n, fsck_ffs exits 0
	// even so.
	msg := ""
	switch {
	case rep.Clean || rep.Skipped:
	case mode == fsck.No || dev.ReadOnly():
		unfixed := 0
		for _, p := range rep.Problems {
			if !p.Fixed {
				unfixed++
			}
		}
		msg = fmt.Sprintf("fsck %s: %d problems found and left unrepaired; run ufs2 fsck -y %s to repair", target, unfixed, target)
	default:
		msg = fmt.Sprintf("fsck %s: not completely repaired; run ufs2 fsck -y %s again", target, target)
	}
	if rep.ExitCode != 0 {
		return exitf(rep.ExitCode, "%s", msg)
	}
	if msg != "" {
		fmt.Fprintf(os.Stderr, "ufs2: %s\n", msg)
	}
	return nil
}
