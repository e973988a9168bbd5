package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/dump"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/mount"
	"github.com/ufs2/ufs2/ufs"
)

// dump's exit statuses (sbin/dump/dump.h).
const (
	dumpXStartup = 1 // X_STARTUP: nothing was dumped
	dumpXAbort   = 3 // X_ABORT: the dump stopped part way
)

func init() {
	flags := []cli.Flag{}
	for d := '0'; d <= '9'; d++ {
		flags = append(flags, &cli.BoolFlag{Name: string(d), Usage: fmt.Sprintf("dump level %c", d)})
	}
	flags = append(flags,
		&cli.BoolFlag{Name: "u", Usage: "record the dump in the dumpdates file"},
		&cli.BoolFlag{Name: "L", Usage: "live dump: TARGET a ufs2 mount (its mount point or the image it holds); dump a snapshot taken through the mount (/.snap/dump_snapshot), deleted after"},
		&cli.BoolFlag{Name: "a", Usage: "auto-size: write until the output ends (always so: a file has no tape length)"},
		&cli.StringFlag{Name: "b", Usage: "`KB` per write, 1 to 1000 (default: 10)"},
		&cli.StringFlag{Name: "D", Usage: "the dumpdates `FILE` (default: /etc/dumpdates)"},
		&cli.StringFlag{Name: "f", Usage: "write the dump to `FILE`, - for standard output (default: $TAPE)"},
		&cli.StringFlag{Name: "h", Usage: "honour the nodump flag at dump `LEVEL` and above (default: 1)"},
		&cli.StringFlag{Name: "T", Usage: "dump what changed since `DATE` (ctime's format) instead of the date in dumpdates"},
		&cli.BoolFlag{Name: "S", Usage: "print the estimated size of the dump and exit"},
		&cli.BoolFlag{Name: "W", Usage: "list every filesystem in dumpdates, '>' before those due, and exit"},
		&cli.BoolFlag{Name: "w", Usage: "list the filesystems due for a dump and exit"},
		&cli.StringFlag{Name: "z", Usage: "compress the dump with `ALG`: zstd or gzip, optionally with :LEVEL (zstd 1-22, default 3; gzip 1-9, default 6)"},
		&cli.StringFlag{Name: "snapshot", Usage: "dump the snapshot `NAME` (in /.snap, see ufs2 snapshot) of TARGET: the filesystem as it was when it was taken"},
		&cli.BoolFlag{Name: "json", Usage: "print a JSON summary on standard output"},
		&cli.BoolFlag{Name: "help", Usage: "show this help"},
	)
	register(withDoc(&cli.Command{
		Name:      "dump",
		Usage:     "write a dump of a UFS2 filesystem in FreeBSD's format (FreeBSD dump)",
		ArgsUsage: "TARGET",
		Description: "Writes the files of the UFS2 filesystem on TARGET (an image, a device or\n" +
			"PATH@N) as FreeBSD's dump(8) does, record for record, so that FreeBSD's\n" +
			"restore(8) and ufs2 restore read it. A level 0 dump holds everything; a\n" +
			"dump of level N holds what changed since the latest dump of a lower level\n" +
			"recorded in the dumpdates file (-u records this one). Files with the\n" +
			"nodump flag are left out of dumps at the -h level and above. -z compresses\n" +
			"the stream as a standard zstd or gzip stream (zstd -dc | restore -rf -).\n" +
			"Messages go to standard error with dump's \"  DUMP: \" prefix.",
		HideHelp:        true, // -h is dump's honour level
		HideHelpCommand: true,
		Flags:           flags,
		Action:          dumpAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 dump -0u -D dumpdates -f disk.dump disk.img", "A full dump of disk.img, recorded in ./dumpdates."},
			{"ufs2 dump -1u -D dumpdates -f disk.1.dump disk.img", "What changed since the level 0 dump."},
			{"ufs2 dump -0 -z zstd -f - disk.img | ssh backup 'cat > disk.dump.zst'", "A compressed dump sent to another host."},
			{"ufs2 dump -W -D dumpdates", "When each filesystem was last dumped."},
		},
		Exit:    "0 on success, 1 when nothing could be dumped (a bad TARGET, output or dumpdates file, or a snapshot -L could not take), 3 when the dump stopped part way, 64 for a bad command line.",
		SeeAlso: []string{"ufs2-restore(8)", "dump(8)", "restore(8)"},
	}))
}

// dumpJSON is dump --json's summary.
type dumpJSON struct {
	Target      string  `json:"target"`
	Output      string  `json:"output"`
	Level       int     `json:"level"`
	Date        int64   `json:"date"`
	Ddate       int64   `json:"ddate"`
	Compression string  `json:"compression,omitempty"`
	Estimated   int64   `json:"estimated_records"`
	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes_written"`
	Dirs        int     `json:"directories"`
	Files       int     `json:"files"`
	Skipped     int     `json:"skipped"`
	ReadErrors  int     `json:"read_errors"`
	Seconds     float64 `json:"seconds"`
}

func dumpMsg(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "  DUMP: "+format, args...)
}

func dumpAction(c *cli.Context) error {
	if c.Bool("help") {
		return cli.ShowSubcommandHelp(c)
	}
	level := -1
	for d := '0'; d <= '9'; d++ {
		if c.Bool(string(d)) {
			if level >= 0 {
				return exitf(exitUsage, "dump: more than one dump level given (-%d and -%c); give one of -0 to -9", level, d)
			}
			level = int(d - '0')
		}
	}
	if level < 0 {
		level = 0
	}
	dumpdates := "/etc/dumpdates"
	if c.IsSet("D") {
		dumpdates = c.String("D")
	}
	if c.Bool("W") || c.Bool("w") {
		if c.NArg() != 0 {
			return exitf(exitUsage, "dump: -W and -w take no TARGET; they only read the dumpdates file")
		}
		return dumpWhat(c, dumpdates, c.Bool("w"))
	}
	if c.NArg() != 1 {
		return exitf(exitUsage, "dump: want exactly one TARGET (an image, a device or PATH@N); see ufs2 dump --help")
	}
	ntrec := dump.NTREC
	if c.IsSet("b") {
		n, err := strconv.Atoi(c.String("b"))
		if err != nil {
			return exitf(exitUsage, "dump: illegal number of blocks per write -- %s", c.String("b"))
		}
		if n < 1 || n > 1000 {
			return exitf(exitUsage, "dump: number of blocks per write must be between 1 and 1000, not %d", n)
		}
		ntrec = n
	}
	honor := 1
	if c.IsSet("h") {
		n, err := strconv.Atoi(c.String("h"))
		if err != nil || n < 0 || n > 10 {
			return exitf(exitUsage, "dump: -h %s: honor level must be between 0 and 10", c.String("h"))
		}
		honor = n
	}
	var since time.Time
	if c.IsSet("T") {
		if c.Bool("u") {
			return exitf(exitUsage, "dump: -T and -u are mutually exclusive (a dump relative to a given date is not recorded)")
		}
		t, err := dump.Unctime(c.String("T"))
		if err != nil {
			return exitf(exitUsage, "dump: -T: %v", err)
		}
		since = t
	}
	comp, compLevel, err := parseCompression(c.String("z"))
	if err != nil {
		return exitf(exitUsage, "dump: -z: %v", err)
	}
	output := c.String("f")
	if output == "" {
		output = os.Getenv("TAPE")
	}
	if output == "" && !c.Bool("S") {
		return exitf(exitUsage, "dump: no output: give -f FILE (- for standard output) or set TAPE")
	}
	if output == "-" && c.Bool("json") && !c.Bool("S") {
		return exitf(exitUsage, "dump: --json prints on standard output, where -f - writes the dump; write the dump to a file")
	}
	target := c.Args().First()
	snap := c.String("snapshot")
	var dev blockdev.Device
	now := time.Now()
	live := false
	if c.Bool("L") {
		if snap != "" {
			return exitf(exitUsage, "dump: -L takes its own snapshot; drop --snapshot")
		}
		rec, ok := mount.FindMount(target)
		if !ok {
			// FreeBSD's dump: -L of a filesystem not mounted read-write
			// is ignored with a warning.
			dumpMsg("WARNING: Cannot use -L on an unmounted filesystem.\n")
		} else {
			d, when, cleanup, err := liveSnapshot(rec)
			if err != nil {
				return exitf(dumpXStartup, "dump: -L: %s: %v", target, err)
			}
			defer cleanup()
			dev, now, live, snap = d, when, true, liveSnapName
		}
	}
	if live {
		// dev is the snapshot taken through the mount.
	} else if snap != "" {
		// as dump -L dumps the snapshot it takes, dated by it
		d, when, err := openSnapshotDevice(target, snap)
		if err != nil {
			return exitf(dumpXStartup, "dump: %v", err)
		}
		dev, now = d, when
	} else {
		d, err := blockdev.Open(target, blockdev.Options{ReadOnly: true, AllowInUse: true})
		if err != nil {
			return exitf(dumpXStartup, "dump: Cannot open %s: %v", target, err)
		}
		dev = d
		if holder, ok := blockdev.InUse(dev); ok {
			dumpMsg("WARNING: should use -L when dumping live read-write filesystems!\n")
			dumpMsg("         (%s)\n", holder)
		}
	}
	defer dev.Close()
	// dumpdates names the filesystem as given, as FreeBSD's dump does.
	name := target
	if c.Bool("u") && len(name) > dump.DumpFmtLen {
		return exitf(dumpXStartup, "dump: name '%s' exceeds DUMPFMTLEN (%d) bytes, the width of a dumpdates line; give a shorter path to TARGET (run dump from nearer it)", name, dump.DumpFmtLen)
	}
	host, _ := os.Hostname()
	opts := dump.Options{Level: level, Date: now.Unix(), HonorLevel: honor, Ntrec: ntrec,
		Dev: name, Host: host, Msg: func(s string) { dumpMsg("%s", s) }}

	dumpMsg("Date of this level %d dump: %s\n", level, dump.Ctime(now))
	switch {
	case c.IsSet("T"):
		opts.Ddate = since.Unix()
		dumpMsg("Date of last (level unknown) dump: %s\n", dump.Ctime(since))
	default:
		dates, err := dump.ReadDumpDates(dumpdates, func(s string) { dumpMsg("%s", s) })
		if err != nil {
			return exitf(dumpXStartup, "dump: %v", err)
		}
		if last, ok := dump.LastDump(dates, name, level); ok {
			opts.Ddate = last.Date.Unix()
			dumpMsg("Date of last level %d dump: %s\n", last.Level, dump.Ctime(last.Date))
		} else {
			dumpMsg("Date of last level %d dump: the epoch\n", 0)
		}
	}

	var out io.Writer
	var outFile *os.File
	switch {
	case c.Bool("S"):
		out = io.Discard
	case output == "-":
		out = os.Stdout
	default:
		f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
		if err != nil {
			return exitf(dumpXStartup, "dump: %s: cannot create the output: %v", output, err)
		}
		outFile = f
		out = f
	}
	if !c.Bool("S") {
		what := name
		if snap != "" {
			what = "snapshot " + snap + " of " + name
		}
		dumpMsg("Dumping %s to %s\n", what, output)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	var w io.Writer = bw
	var closeComp func() error = func() error { return nil }
	switch comp {
	case "zstd":
		zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(compLevel)))
		if err != nil {
			return exitf(dumpXStartup, "dump: zstd: %v", err)
		}
		w, closeComp = zw, zw.Close
	case "gzip":
		zw, err := gzip.NewWriterLevel(bw, compLevel)
		if err != nil {
			return exitf(dumpXStartup, "dump: gzip: %v", err)
		}
		w, closeComp = zw, zw.Close
	}
	if c.Bool("S") {
		w = io.Discard
	}
	if isTerminal(os.Stderr) {
		last := time.Now()
		opts.Progress = func(written, est int64) {
			if time.Since(last) < 5*time.Second || est <= 0 {
				return
			}
			last = time.Now()
			frac := float64(written) / float64(est)
			left := time.Duration(float64(time.Since(now)) * (1 - frac) / max(frac, 1e-9))
			dumpMsg("%3.2f%% done, finished in %d:%02d\n", 100*frac, int(left.Hours()), int(left.Minutes())%60)
		}
	}
	if c.Bool("S") {
		opts.EstimateOnly = true
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := dump.Dump(ctx, dev, w, opts)
	if c.Bool("S") {
		if err != nil {
			return exitf(dumpXStartup, "dump: %v", err)
		}
		if c.Bool("json") {
			return printJSON(c.App.Writer, dumpJSON{Target: target, Level: level, Date: opts.Date, Ddate: opts.Ddate, Estimated: res.Estimated})
		}
		return nil
	}
	if err == nil {
		err = closeComp()
	}
	if err == nil {
		err = bw.Flush()
	}
	if outFile != nil {
		if cerr := outFile.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", output, cerr)
		}
	}
	if err != nil {
		code := dumpXAbort
		if errors.Is(err, dump.ErrFS) {
			code = dumpXStartup
		}
		dumpMsg("%v\n", err)
		return exitf(code, "dump: The ENTIRE dump is aborted.")
	}
	elapsed := time.Since(start)
	dumpMsg("DUMP: %d tape blocks\n", res.Records)
	dumpMsg("%s", dump.Elapsed(res.Records, elapsed))
	if c.Bool("u") {
		if err := dump.UpdateDumpDates(dumpdates, name, level, now); err != nil {
			return exitf(dumpXAbort, "dump: %v", err)
		}
		dumpMsg("level %d dump on %s\n", level, dump.Ctime(now))
	}
	if output != "-" {
		dumpMsg("Closing %s\n", output)
	}
	dumpMsg("DUMP IS DONE\n")
	if c.Bool("json") {
		j := dumpJSON{Target: target, Output: output, Level: level, Date: opts.Date, Ddate: opts.Ddate, Compression: comp,
			Estimated: res.Estimated, Records: res.Records, Bytes: res.Bytes, Dirs: res.Dirs, Files: res.Files,
			Skipped: res.Skipped, ReadErrors: res.ReadErrs, Seconds: elapsed.Seconds()}
		return printJSON(c.App.Writer, j)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseCompression reads -z's ALGORITHM[:LEVEL].
func parseCompression(s string) (string, int, error) {
	if s == "" {
		return "", 0, nil
	}
	alg, lv, hasLevel := strings.Cut(s, ":")
	level := 0
	switch alg {
	case "zstd":
		level = 3
	case "gzip":
		level = 6
	default:
		return "", 0, fmt.Errorf("unknown compression %q: give zstd or gzip, with an optional :LEVEL", alg)
	}
	if hasLevel {
		n, err := strconv.Atoi(lv)
		lo, hi := 1, 22
		if alg == "gzip" {
			hi = 9
		}
		if err != nil || n < lo || n > hi {
			return "", 0, fmt.Errorf("%s level %q: give %d to %d", alg, lv, lo, hi)
		}
		level = n
	}
	return alg, level, nil
}

// dumpWhat is -W and -w.
func dumpWhat(c *cli.Context, dumpdates string, onlyDue bool) error {
	f, err := os.Open(dumpdates)
	if err != nil {
		return exitf(dumpXStartup, "dump: cannot read %s: %v", dumpdates, posixText(err))
	}
	defer f.Close()
	dates, err := dump.ParseDumpDates(f, func(n int, _ string) {
		dumpMsg("Unknown intermediate format in %s, line %d\n", dumpdates, n)
	})
	if err != nil {
		return exitf(dumpXStartup, "dump: %s: %v", dumpdates, err)
	}
	var tab []dump.FstabEntry
	if ft, err := os.Open("/etc/fstab"); err == nil {
		tab = dump.ParseFstab(ft)
		ft.Close()
	}
	dump.WhatToDump(c.App.Writer, dates, tab, onlyDue, time.Now())
	return nil
}

// liveSnapName is the snapshot dump -L takes, as FreeBSD's dump names it.
const liveSnapName = "dump_snapshot"

// liveSnapshot takes snapshot dump_snapshot of the live mount of rec and
// returns its frozen image, read through the mount, and a cleanup that
// deletes it.
func liveSnapshot(rec mount.MountRecord) (blockdev.Device, time.Time, func(), error) {
	cl, err := mount.Dial(rec)
	if err != nil {
		return nil, time.Time{}, nil, errors.New(controlErr(err))
	}
	var s ufs.Snapshot
	if err := cl.Call("snapshot.create", mount.SnapshotArgs{Name: liveSnapName}, &s); err != nil {
		cl.Close()
		return nil, time.Time{}, nil, errors.New(controlErr(err))
	}
	dumpMsg("snapshot %s taken through the mount on %s\n", liveSnapName, rec.MountPoint)
	cleanup := func() {
		if err := cl.Call("snapshot.delete", mount.SnapshotArgs{Name: liveSnapName}, nil); err != nil {
			dumpMsg("WARNING: could not delete snapshot %s: %s; delete it with ufs2 snapshot delete %s %s\n", liveSnapName, controlErr(err), rec.MountPoint, liveSnapName)
		}
		cl.Close()
	}
	return cl.SnapshotDevice(liveSnapName, s.Size), time.Unix(s.Time, 0), cleanup, nil
}

// openSnapshotDevice opens the frozen image of snapshot snap of the
// filesystem on target, and says when it was taken.
func openSnapshotDevice(target, snap string) (blockdev.Device, time.Time, error) {
	dev, err := openDeviceFor("dump", target, snap)
	if err != nil {
		return nil, time.Time{}, err
	}
	sp, ok := dev.(*snapParent)
	if !ok {
		dev.Close()
		return nil, time.Time{}, fmt.Errorf("%s: snapshot %s did not open as a snapshot", target, snap)
	}
	s, err := sp.parent.SnapshotByName(snap)
	if err != nil {
		dev.Close()
		return nil, time.Time{}, fmt.Errorf("%s: %w", target, err)
	}
	return dev, time.Unix(s.Time, 0), nil
}
