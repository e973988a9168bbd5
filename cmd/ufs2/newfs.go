package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/tools"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(newfsCommand(), manDoc{
		Examples: []example{
			{"ufs2 newfs -s 10g disk.img", "Make a 10 GiB image file (sparse: only metadata is written) holding a new filesystem."},
			{"ufs2 newfs -N /dev/sdb1", "Print the layout newfs would give the partition and write nothing."},
			{"ufs2 newfs -s 2g --from ./rootfs -L root root.img", "Make a 2 GiB image labelled root holding the host tree ./rootfs."},
			{"ufs2 newfs -F disk.img", "Make a new filesystem over the one disk.img already holds, without asking."},
		},
		Exit: "0 on success; 1 for a bad option value or a target that cannot be used; " +
			"13 to 40 for FreeBSD mkfs's own checks (the message is mkfs's); " +
			"64 for a bad command line; 130 interrupted while filling from --from (the image made is removed).",
		SeeAlso: []string{"ufs2-dumpfs(8)", "ufs2-fsck(8)", "ufs2-mount(8)", "newfs(8)", "makefs(8)"},
	}))
}

func newfsCommand() *cli.Command {
	str := func(name, usage string) cli.Flag { return &cli.StringFlag{Name: name, Usage: usage} }
	boolf := func(name, usage string) cli.Flag { return &cli.BoolFlag{Name: name, Usage: usage} }
	return &cli.Command{
		Name:      "newfs",
		Usage:     "construct a new UFS2 filesystem (FreeBSD's newfs)",
		ArgsUsage: "TARGET",
		Description: "Builds an empty UFS2 filesystem on TARGET (an image file, a block device or\n" +
			"PATH@N) with FreeBSD 14's layout and defaults: 32 KiB blocks, 4 KiB fragments,\n" +
			"soft updates and metadata check-hashes on. Only metadata is written: a new\n" +
			"image file stays sparse. With -s and a missing file, the file is created;\n" +
			"with --from and no -s, it is made large enough for DIR.\n\n" +
			"A TARGET that already holds a filesystem (UFS1, UFS2, ext2/3/4, or anything\n" +
			"blkid -p recognises) is only overwritten with -F, or when the answer to the\n" +
			"question newfs asks on a terminal is yes, as mke2fs does.\n\n" +
			"Sizes take FreeBSD's suffixes (k, m, g, t, p: powers of 1024). For -s a bare\n" +
			"number counts sectors of -S bytes (512 by default), as in FreeBSD: -s 2097152\n" +
			"and -s 1g are the same size. Soft updates are on by default, as in FreeBSD 14;\n" +
			"--no-softdep turns them off (FreeBSD has no newfs option for that).\n\n" +
			"--from DIR fills the new filesystem from the host directory DIR, as\n" +
			"mke2fs -d and makefs do: files (sparse ones stay sparse), directories,\n" +
			"symlinks, hard links, devices, fifos, modes, owners, times and extended\n" +
			"attributes, exactly as ufs2 put; the root directory takes DIR's mode,\n" +
			"owner and times. /.snap is made unless -n. A DIR that does not fit (blocks\n" +
			"or inodes, estimated from the host tree) is refused before anything is\n" +
			"written.",
		HideHelp:        true, // -h is FreeBSD's avgfpdir
		HideHelpCommand: true,
		Flags: []cli.Flag{
			boolf("E", "erase (discard) the old contents of the device first"),
			boolf("F", "make the filesystem even if TARGET already holds one, without asking"),
			boolf("J", "enable gjournal (sets FS_GJOURNAL)"),
			str("L", "volume `LABEL` (letters, digits, dashes, underscores)"),
			boolf("N", "print the layout and write nothing"),
			str("O", "filesystem `FORMAT`: only 2 (UFS2) is supported"),
			boolf("R", "regression mode: fixed time and sequential random numbers"),
			str("S", "sector `SIZE` in bytes (default: 512)"),
			boolf("U", "soft updates; they are on by default (as in FreeBSD 14), --no-softdep turns them off"),
			boolf("no-softdep", "no soft updates: synchronous metadata writes instead"),
			str("a", "at most `MAXCONTIG` blocks written together (default: 1 MiB worth)"),
			str("b", "block `SIZE` in bytes (default: 32k)"),
			str("c", "at most `BLOCKS` per cylinder group (default: as many as one group map holds)"),
			str("d", "largest extent `SIZE` in bytes (default: the block size)"),
			str("e", "`MAXBPG` blocks of a file in one cylinder group before it moves on to the next (default: block size / 8)"),
			str("f", "fragment `SIZE` in bytes (default: 4k)"),
			str("g", "expected average file `SIZE` in bytes (default: 16k)"),
			str("h", "expected average `FILES` per directory (default: 64)"),
			str("i", "`BYTES` of data per inode (default: 2 fragments' worth, 8k)"),
			boolf("j", "journaled soft updates (not supported)"),
			str("k", "`FRAGS` held for metadata in each cylinder group (default: half the minfree reserve)"),
			boolf("l", "enable multilabel MAC (sets FS_MULTILABEL)"),
			str("m", "minimum free space, `PERCENT` of the data area (default: 8)"),
			boolf("n", "do not create the .snap directory"),
			str("o", "`OPTIMIZATION`: space or time (default: time)"),
			str("r", "`SECTORS` reserved at the end of the device (default: 0)"),
			str("s", "filesystem `SIZE`: sectors, or bytes with a suffix (1g, 100g, 1t); default: the whole device"),
			boolf("t", "enable TRIM (sets FS_TRIM)"),
			str("from", "fill the new filesystem from the host directory `DIR`"),
			boolf("help", "show this help"),
		},
		Action: runNewfs,
	}
}

func runNewfs(c *cli.Context) error {
	if c.Bool("help") {
		return cli.ShowSubcommandHelp(c)
	}
	if c.NArg() != 1 {
		return exitf(exitUsage, "newfs: give exactly one TARGET (an image file, a block device or PATH@N)")
	}
	target := c.Args().First()
	p, sizeGiven, err := newfsParams(c)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if out == nil {
		out = os.Stdout
	}
	width := 80
	if v, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && v > 0 {
		width = v
	}

	if c.Bool("N") {
		return newfsDryRun(out, target, p, sizeGiven, width)
	}
	from := c.String("from")
	if from != "" {
		fi, err := os.Stat(from)
		if err != nil {
			return exitf(1, "newfs: --from %s", posixText(err))
		}
		if !fi.IsDir() {
			return exitf(1, "newfs: --from %s: not a directory; give the directory whose contents the filesystem should hold", from)
		}
	}

	path, part, err := blockdev.ParseTarget(target)
	if err != nil {
		return exitf(1, "newfs: %v", err)
	}
	created := false
	opts := blockdev.Options{}
	_, serr := os.Stat(path)
	missing := errors.Is(serr, fs.ErrNotExist) && part == 0
	sizedForTree := false // the size was chosen to hold --from DIR
	if missing && !sizeGiven {
		if from == "" {
			return exitf(1, "newfs: %s does not exist; give its size with -s (as -s 10g) to create it, or --from DIR to size it from a tree", target)
		}
		size, err := sizeFromTree(p, from)
		if err != nil {
			return err
		}
		p.Size, sizeGiven, sizedForTree = size, true, true
		fmt.Fprintf(os.Stderr, "ufs2: newfs: making %s %s, large enough for %s\n", target, humanSize(size), from)
	}
	if sizeGiven {
		if missing {
			// Check the parameters before the file exists.
			if _, err := newfs.Compute(p, p.Size); err != nil {
				return newfsError(target, err)
			}
			opts = blockdev.Options{Create: true, CreateSize: p.Size}
			created = true
		}
	}
	dev, err := blockdev.Open(target, opts)
	if err != nil {
		return exitf(1, "newfs: %v", err)
	}
	cleanup := func() {
		_ = dev.Close()
		if created {
			_ = os.Remove(path)
		}
	}
	l, err := newfs.Compute(p, dev.Size())
	if err != nil {
		cleanup()
		return newfsError(target, err)
	}
	if from != "" && !sizedForTree {
		if err := checkFromFits(l, target, from); err != nil {
			cleanup()
			return err
		}
	}
	if !created && !c.Bool("F") {
		if err := checkOverwrite(dev, target, path, part); err != nil {
			cleanup()
			return err
		}
	}
	if p.Erase {
		switch {
		case part != 0:
			fmt.Fprintf(os.Stderr, "newfs: %s: cannot erase a partition; -E skipped\n", target)
			p.Erase = false
		default:
			d, err := newfs.WithDiscard(dev, path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "newfs: %v; -E skipped\n", err)
				p.Erase = false
			} else {
				dev = d
			}
		}
	}
	for _, n := range l.Notes {
		fmt.Fprintln(out, n)
	}
	if err := l.WriteSummary(out, target, width); err != nil {
		cleanup()
		return exitf(1, "newfs: %v", err)
	}
	if p.Erase {
		fmt.Fprintf(out, "Erasing sectors [%d...%d]\n", l.SB.Sblockloc/ondisk.DevBSize,
			l.SB.FsbToDb(ondisk.Frag(l.SB.Size))-1)
	}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && l.SB.Ncg >= 64 {
		p.Progress = func(done, total uint32) {
			if done%32 == 0 || done == total {
				fmt.Fprintf(os.Stderr, "\rwriting cylinder group %d of %d", done, total)
				if done == total {
					fmt.Fprintln(os.Stderr)
				}
			}
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	if _, err := newfs.Format(ctx, dev, p); err != nil {
		cleanup() // an image made for this run goes again
		return newfsError(target, err)
	}
	if from != "" {
		return newfsFrom(ctx, dev, target, from, created, path)
	}
	if err := dev.Close(); err != nil {
		return exitf(1, "newfs: %s: %v", target, err)
	}
	return nil
}

// checkOverwrite refuses to format over a filesystem dev already holds
// unless the user, asked on a terminal, says yes (mke2fs's check; -F skips
// it). blkid -p is asked too about what our own probe does not know.
func checkOverwrite(dev blockdev.Device, target, path string, part int) error {
	found, ok := probeFS(dev)
	switch {
	case ok:
	case part == 0:
		found, ok = blkidProbe(path)
	default:
		found, ok = blkidProbeDevice(dev)
	}
	if !ok {
		return nil
	}
	if isTerminal(os.Stdin) && isTerminal(os.Stderr) {
		if askYes(fmt.Sprintf("ufs2 newfs: %s holds %s. Make a new filesystem over it?", target, found)) {
			return nil
		}
		return exitf(1, "newfs: %s left as it was", target)
	}
	return exitf(1, "newfs: %s holds %s; give -F to make a new filesystem over it", target, found)
}

// newfsFrom fills the newly formatted dev from host directory dir through
// the engine and closes it. An image file made by this run is removed if
// filling fails. The engine runs without ordering its metadata writes
// (mount -o async), as makefs writes: until the final Close marks it
// clean, the new filesystem is of no use anyway.
func newfsFrom(ctx context.Context, dev blockdev.Device, target, dir string, created bool, path string) error {
	fsys, err := ufs.Open(dev, ufs.Options{UseReserve: true, Async: true})
	if err != nil {
		_ = dev.Close()
		if created {
			_ = os.Remove(path)
		}
		return exitf(1, "newfs: %s: opening the new filesystem: %v", target, err)
	}
	_, err = newfs.Populate(ctx, fsys, dir, newfs.CopyOptions{
		Warn: func(err error) { fmt.Fprintf(os.Stderr, "ufs2: newfs: warning: %v\n", err) },
	})
	cerr := fsys.Close()
	if err == nil && cerr != nil {
		err = fmt.Errorf("%s: writing the filesystem: %w", target, cerr)
	}
	if err == nil {
		return nil
	}
	if created {
		_ = os.Remove(path)
	}
	if errors.Is(err, context.Canceled) {
		return exitf(130, "newfs: interrupted while filling %s from %s", target, dir)
	}
	var ee *exitError
	if errors.As(editError("newfs", target, err), &ee) && ee.msg != "" {
		return exitf(1, "%s (filling from %s)", ee.msg, dir)
	}
	return exitf(1, "newfs: filling from %s: %v", dir, err)
}

// newfsDryRun is -N: compute and print, open nothing for writing. A target
// that does not exist yet is fine when -s says how large it will be.
func newfsDryRun(out io.Writer, target string, p newfs.Params, sizeGiven bool, width int) error {
	var media int64
	dev, err := blockdev.Open(target, blockdev.Options{ReadOnly: true})
	switch {
	case err == nil:
		media = dev.Size()
		_ = dev.Close()
	case errors.Is(err, blockdev.ErrNotFound) && sizeGiven:
		media = p.Size
	default:
		return exitf(1, "newfs: %v", err)
	}
	l, err := newfs.Compute(p, media)
	if err != nil {
		return newfsError(target, err)
	}
	for _, n := range l.Notes {
		fmt.Fprintln(out, n)
	}
	if err := l.WriteSummary(out, target, width); err != nil {
		return exitf(1, "newfs: %v", err)
	}
	return nil
}

func newfsError(target string, err error) error {
	var ne *newfs.Error
	if errors.As(err, &ne) {
		return exitf(ne.Code, "newfs: %s: %s", target, ne.Msg)
	}
	return exitf(1, "newfs: %s: %v", target, err)
}

// newfsParams turns the flags into newfs.Params. sizeGiven reports -s.
func newfsParams(c *cli.Context) (p newfs.Params, sizeGiven bool, err error) {
	p = newfs.DefaultParams()
	bad := func(flag, what string) error {
		return exitf(1, "newfs: %s: bad %s (-%s)", c.String(flag), what, flag)
	}
	num := func(flag, what string, dst *int, positive bool) error {
		if !c.IsSet(flag) {
			return nil
		}
		v, err := expandNumber(c.String(flag))
		if err != nil || v > 1<<31-1 || v < 0 || (positive && v == 0) {
			return bad(flag, what)
		}
		*dst = int(v)
		return nil
	}
	if v := c.String("O"); c.IsSet("O") && v != "2" {
		if v == "1" {
			return p, false, exitf(1, "newfs: UFS1 (-O 1) is not supported; UFS2 is the only format")
		}
		return p, false, exitf(1, "newfs: %s: bad file system format value", v)
	}
	if c.Bool("j") {
		return p, false, exitf(1, "newfs: journaled soft updates (-j) are not supported; use plain soft updates (the default)")
	}
	for _, n := range []struct {
		flag, what string
		dst        *int
		positive   bool
	}{
		{"S", "sector size", &p.SectorSize, true},
		{"a", "maximum contiguous blocks", &p.Maxcontig, true},
		{"b", "block size", &p.Bsize, true},
		{"c", "blocks per cylinder group", &p.MaxBlksPerCg, true},
		{"d", "extent block size", &p.Maxbsize, true},
		{"e", "blocks per file in a cylinder group", &p.Maxbpg, true},
		{"f", "fragment size", &p.Fsize, true},
		{"g", "average file size", &p.AvgFileSize, true},
		{"h", "average files per dir", &p.AvgFilesPerDir, true},
		{"i", "bytes per inode", &p.Density, true},
	} {
		if err := num(n.flag, n.what, n.dst, n.positive); err != nil {
			return p, false, err
		}
	}
	if c.IsSet("k") {
		v, err := strconv.Atoi(c.String("k"))
		if err != nil || v < 0 {
			return p, false, bad("k", "metadata space")
		}
		p.Metaspace = v
		if v == 0 {
			p.Metaspace = -1 // -k 0: none at all
		}
	}
	if c.IsSet("m") {
		v, err := strconv.Atoi(c.String("m"))
		if err != nil || v < 0 || v > 99 {
			return p, false, exitf(1, "newfs: %s: bad free space %% (-m takes 0 to 99)", c.String("m"))
		}
		p.Minfree = v
	}
	if c.IsSet("o") {
		switch c.String("o") {
		case "space":
			p.Optim = ondisk.FSOptSpace
		case "time":
			p.Optim = ondisk.FSOptTime
		default:
			return p, false, exitf(1, "newfs: %s: unknown optimization preference: use `space' or `time'", c.String("o"))
		}
	}
	if c.IsSet("L") {
		p.VolumeLabel = c.String("L")
		if err := newfs.CheckVolumeLabel(p.VolumeLabel); err != nil {
			return p, false, exitf(1, "newfs: %v", err)
		}
	}
	sector := int64(p.SectorSize)
	if sector == 0 {
		sector = newfs.DefaultSectorSize
	}
	if c.IsSet("r") {
		v, err := strconv.ParseInt(c.String("r"), 0, 64)
		if err != nil || v < 0 {
			return p, false, bad("r", "reserved size")
		}
		p.Reserved = v
	}
	if c.IsSet("s") {
		v, err := parseFsSize(c.String("s"), sector)
		if err != nil {
			return p, false, bad("s", "file system size")
		}
		p.Size = v
		sizeGiven = v > 0
	}
	p.SoftUpdates = !c.Bool("no-softdep")
	if c.Bool("U") && c.Bool("no-softdep") {
		return p, false, exitf(exitUsage, "newfs: -U and --no-softdep contradict each other; give one")
	}
	p.Erase = c.Bool("E")
	p.Gjournal = c.Bool("J")
	p.Regression = c.Bool("R")
	p.Multilabel = c.Bool("l")
	p.NoSnapDir = c.Bool("n")
	p.Trim = c.Bool("t")
	return p, sizeGiven, nil
}

// parseFsSize reads -s: a bare number is a count of sectors of the given
// size (FreeBSD), a number with a suffix is bytes.
func parseFsSize(s string, sector int64) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	last := s[len(s)-1]
	if last >= '0' && last <= '9' {
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil || v < 0 || v > (1<<63-1)/sector {
			return 0, errors.New("bad size")
		}
		return v * sector, nil
	}
	return expandNumber(s)
}

// expandNumber is FreeBSD's expand_number(3): a decimal number with an
// optional suffix b, k, m, g, t, p or e (any case), each a power of 1024.
func expandNumber(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	shift := 0
	switch strings.ToLower(s[len(s)-1:]) {
	case "b":
		s = s[:len(s)-1]
	case "k":
		shift = 10
	case "m":
		shift = 20
	case "g":
		shift = 30
	case "t":
		shift = 40
	case "p":
		shift = 50
	case "e":
		shift = 60
	}
	if shift != 0 {
		s = s[:len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: not a number", s)
	}
	if v > (1<<63-1)>>shift {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return v << shift, nil
}

// checkFromFits refuses, before anything is written, a filesystem of
// layout l too small for --from DIR (tools.EstimateTree; the copy may use
// the minfree reserve, as makefs does).
func checkFromFits(l *newfs.Layout, target, dir string) error {
	sb := l.SB
	u, err := tools.EstimateTree(dir, int64(sb.Bsize), int64(sb.Fsize))
	if err != nil {
		return exitf(1, "newfs: --from %s", strings.TrimPrefix(posixText(err), newfs.ErrHost.Error()+": "))
	}
	free := int64(sb.Blkstofrags(sb.Cstotal.Nbfree)) + sb.Cstotal.Nffree
	if u.Frags <= free && u.Inodes <= sb.Cstotal.Nifree {
		return nil
	}
	return exitf(1, "newfs: %s: %s needs about %s and %d inodes; a filesystem of %s holds %s and %d inodes; nothing was written (for a new image, without -s newfs sizes it)",
		target, dir, humanSize(u.Frags*int64(sb.Fsize)), u.Inodes, humanSize(l.MediaSize), humanSize(free*int64(sb.Fsize)), sb.Cstotal.Nifree)
}

// sizeFromTree picks the size of a new image for newfs --from DIR without
// -s: the smallest whole number of MiB, growing by a quarter at a time,
// whose filesystem holds DIR (tools.EstimateTree) outside the minfree
// reserve with a tenth to spare, in blocks and in inodes.
func sizeFromTree(p newfs.Params, dir string) (int64, error) {
	const mib = 1 << 20
	var u tools.TreeUsage
	estimated := int64(0) // fragment size u was estimated for
	size := int64(32 * mib)
	for range 200 {
		l, err := newfs.Compute(p, size)
		if err != nil {
			return 0, newfsError(dir, err)
		}
		sb := l.SB
		if int64(sb.Fsize) != estimated {
			if u, err = tools.EstimateTree(dir, int64(sb.Bsize), int64(sb.Fsize)); err != nil {
				return 0, exitf(1, "newfs: --from %s", strings.TrimPrefix(posixText(err), newfs.ErrHost.Error()+": "))
			}
			estimated = int64(sb.Fsize)
		}
		free := int64(sb.Blkstofrags(sb.Cstotal.Nbfree)) + sb.Cstotal.Nffree - sb.Dsize*int64(sb.Minfree)/100
		if free >= u.Frags+u.Frags/10 && sb.Cstotal.Nifree >= u.Inodes+u.Inodes/10+16 {
			return size, nil
		}
		size = (size + size/4 + mib - 1) / mib * mib
	}
	return 0, exitf(1, "newfs: --from %s: found no size that holds it; give one with -s", dir)
}

// humanSize prints n bytes in the largest binary unit that keeps it at
// least 1, as "1.5 GiB".
func humanSize(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
