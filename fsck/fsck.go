package fsck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// Mode says how questions are answered.
type Mode int

// The modes of fsck_ffs.
const (
	// No answers no to every question and writes nothing (fsck -n).
	No Mode = iota
	// Yes answers yes to every question (fsck -y).
	Yes
	// Preen fixes only the inconsistencies soft updates can leave and
	// stops at anything else (fsck -p).
	Preen
)

func (m Mode) String() string {
	switch m {
	case No:
		return "no"
	case Yes:
		return "yes"
	case Preen:
		return "preen"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Exit statuses of fsck_ffs (fsck.h, main.c and fsck_ffs(8)).
const (
	// ExitOK: the check ran to its end and asks for no second run. With
	// -n (or without write access) that includes a filesystem with
	// inconsistencies left unrepaired; Report.Clean tells them apart.
	ExitOK = 0
	// ExitNoSuperblock: a preen without -f or -b could not read the
	// superblock.
	ExitNoSuperblock = 3
	// ExitError (EEXIT): the check could not be made or was stopped: no
	// usable superblock, an I/O error, a preen that met an inconsistency
	// it may not fix.
	ExitError = 8
	// ExitInterrupted: the check was cancelled (fsck_ffs's SIGINT status).
	ExitInterrupted = 12
	// ExitRerun (ERERUN): the filesystem could not be completely repaired
	// in this run; another may finish it. With write access this includes
	// a repair left undone (the filesystem stays marked dirty).
	ExitRerun = 16
)

// Sentinel errors. Check returns them wrapped; a damaged filesystem is not
// an error of Check (it is reported in the Report), only a failure to run.
var (
	// ErrNoSuperblock means no usable superblock was found.
	ErrNoSuperblock = errors.New("fsck: no usable superblock")
	// ErrAborted means the check stopped before the end: a preen found an
	// inconsistency it may not fix, or a question answered no left nothing
	// to check.
	ErrAborted = errors.New("fsck: check stopped")
	// ErrIO means the device failed a read or write.
	ErrIO = errors.New("fsck: I/O error")
	// ErrBadOptions means the options contradict each other.
	ErrBadOptions = errors.New("fsck: bad options")
)

// Options control a check.
type Options struct {
	Mode Mode
	// Force checks a filesystem marked clean (fsck -f); without it a
	// preen skips clean filesystems.
	Force bool
	// AltSuperblock, when not zero, is the location of an alternate
	// superblock in 512-byte sectors, as fsck_ffs -b takes it (newfs
	// prints the backups in these units).
	AltSuperblock int64
	// Debug prints fsck_ffs's -d details.
	Debug bool
	// Output receives the transcript in fsck_ffs's words; nil discards it.
	Output io.Writer
	// Logger receives structured records of each problem; nil discards.
	Logger *slog.Logger
	// Progress, when not nil, is called as the check advances with the
	// phase ("1", "1b", "2", ... "5") and the percentage done.
	Progress func(phase string, pct float64)
}

// Problem is one inconsistency found.
type Problem struct {
	Phase    string `json:"phase"`
	Kind     string `json:"kind"` // one of the Kind constants; see Leak
	Ino      uint32 `json:"ino,omitempty"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
	Question string `json:"question,omitempty"` // what fsck asked, e.g. "CLEAR"
	Fixed    bool   `json:"fixed"`
}

// Summary is fsck_ffs's closing line.
type Summary struct {
	Files         int64   `json:"files"`
	Used          int64   `json:"used"` // fragments in use by files
	Free          int64   `json:"free"` // free fragments, whole blocks included
	FreeFrags     int64   `json:"free_frags"`
	FreeBlocks    int64   `json:"free_blocks"`
	Fragmentation float64 `json:"fragmentation_pct"`
}

// Report is the result of a check.
type Report struct {
	Device   string    `json:"device"`
	Mode     string    `json:"mode"`
	ExitCode int       `json:"exit_code"`
	Skipped  bool      `json:"skipped,omitempty"` // clean and not forced
	Modified bool      `json:"modified"`
	Clean    bool      `json:"clean"` // no problems found or all fixed
	Rerun    bool      `json:"rerun,omitempty"`
	Summary  Summary   `json:"summary"`
	Problems []Problem `json:"problems"`
	// Backups lists the backup superblocks (in 512-byte sectors, for -b)
	// when the primary could not be used.
	Backups []int64 `json:"backup_superblocks,omitempty"`
	// UsedAlternate is the sector of the alternate superblock used, if any.
	UsedAlternate int64 `json:"used_alternate,omitempty"`

	// refusedWrites counts the writes a check without write access
	// dropped (see writeAt): always zero unless a path is wrong.
	refusedWrites int
}

// lfname and lfmode are fsck_ffs's defaults for lost+found.
const (
	lfname = "lost+found"
	lfmode = 0o700
)

// abortError carries the reason a check stopped.
type abortError struct{ msg string }

func (e *abortError) Error() string { return e.msg }

// Unwrap makes a stopped preen match ErrAborted.
func (e *abortError) Unwrap() error { return ErrAborted }

// Check checks the filesystem on dev and, as opts.Mode allows, repairs it.
// The Report says what was found; the error is non-nil only when the check
// could not run to its end (no superblock, I/O errors, a preen that met an
// inconsistency it may not fix, a cancelled context), and then the Report
// still says what was seen and its ExitCode is ExitError.
func Check(ctx context.Context, dev blockdev.Device, opts Options) (*Report, error) {
	if opts.Mode < No || opts.Mode > Preen {
		return nil, fmt.Errorf("%w: unknown mode %d", ErrBadOptions, int(opts.Mode))
	}
	if opts.AltSuperblock < 0 {
		return nil, fmt.Errorf("%w: negative alternate superblock %d", ErrBadOptions, opts.AltSuperblock)
	}
	c := newChecker(ctx, dev, opts)
	err := c.run()
	c.report.refusedWrites = c.refusedWrites
	c.report.Problems = c.problems
	if c.report.Problems == nil {
		c.report.Problems = []Problem{}
	}
	if err != nil {
		switch {
		case c.exitCode != 0:
			c.report.ExitCode = c.exitCode
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			c.report.ExitCode = ExitInterrupted
		default:
			c.report.ExitCode = ExitError
		}
		c.report.Clean = false
		return c.report, err
	}
	return c.report, nil
}

// run is Check's body: checkfilesys of main.c.
func (c *checker) run() error {
	ok, err := c.setup()
	if err != nil || !ok {
		if err == nil {
			err = ErrNoSuperblock
		}
		if c.opts.Mode == Preen && c.exitCode != ExitNoSuperblock {
			c.printf("%s: CAN'T CHECK FILE SYSTEM.\n", c.name)
		}
		return err
	}
	if c.report.Skipped {
		c.report.ExitCode = ExitOK
		c.report.Clean = true
		c.fillSummary(c.sb.Cstotal.Nffree, c.sb.Cstotal.Nbfree)
		return nil
	}
	if c.opts.Mode != Preen {
		c.printf("** Last Mounted on %s\n", c.sb.MountPoint())
		c.printf("** Phase 1 - Check Blocks and Sizes\n")
	}
	phases := []struct {
		name, title string
		fn          func() error
		when        func() bool
	}{
		{"1", "", c.pass1, nil},
		{"1b", "** Phase 1b - Rescan For More DUPS\n", c.pass1b, func() bool { return len(c.dups) > 0 }},
		{"2", "** Phase 2 - Check Pathnames\n", c.pass2, nil},
		{"3", "** Phase 3 - Check Connectivity\n", c.pass3, nil},
		{"4", "** Phase 4 - Check Reference Counts\n", c.pass4, nil},
		{"5", "** Phase 5 - Check Cyl groups\n", c.pass5, nil},
	}
	for _, p := range phases {
		if p.when != nil && !p.when() {
			continue
		}
		c.phase = p.name
		if p.title != "" && (c.opts.Mode != Preen || p.name == "1b") {
			c.printf("%s", p.title)
		}
		if err := p.fn(); err != nil {
			return c.stop(err)
		}
		if err := c.checkStop(); err != nil {
			return c.stop(err)
		}
	}
	c.phase = ""
	nffree, nbfree := c.sb.Cstotal.Nffree, c.sb.Cstotal.Nbfree
	c.fillSummary(nffree, nbfree)
	c.pwarn("%d files, %d used, %d free ", c.nFiles, c.nBlks, nffree+int64(c.sb.Frag)*nbfree)
	c.printf("(%d frags, %d blocks, %.1f%% fragmentation)\n", nffree, nbfree, c.report.Summary.Fragmentation)
	if c.opts.Debug && len(c.dups) > 0 {
		c.printf("The following duplicate blocks remain:")
		for _, d := range c.dupOrder {
			if c.dups[d] > 0 {
				c.printf(" %d,", d)
			}
		}
		c.printf("\n")
	}
	if err := c.finish(c.resolved && !c.rerun); err != nil {
		return c.stop(err)
	}
	if c.modified && c.opts.Mode != Preen {
		c.printf("\n***** FILE SYSTEM WAS MODIFIED *****\n")
	}
	if c.rerun {
		c.printf("\n***** PLEASE RERUN FSCK *****\n")
	}
	c.report.Modified = c.modified
	c.report.Rerun = c.rerun
	c.report.Clean = c.resolved && !c.rerun
	// checkfilesys returns ERERUN or 0 and nothing else: what -n leaves
	// unrepaired does not change it, and with write access a repair left
	// undone has already set rerun in finish (ckfini).
	if c.rerun {
		c.report.ExitCode = ExitRerun
	} else {
		c.report.ExitCode = ExitOK
	}
	return nil
}

// stop ends a check early: what is dirty is not written except when the
// reason is a preen abort, where fsck_ffs's ckfini(0) flushes what was
// already fixed and leaves the filesystem marked dirty.
func (c *checker) stop(err error) error {
	var ab *abortError
	if errors.As(err, &ab) && c.writable() {
		if ferr := c.finish(false); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	c.report.Modified = c.modified
	return err
}

func (c *checker) fillSummary(nffree, nbfree int64) {
	s := &c.report.Summary
	s.Files = c.nFiles
	s.Used = c.nBlks
	s.FreeFrags = nffree
	s.FreeBlocks = nbfree
	s.Free = nffree + int64(c.sb.Frag)*nbfree
	if c.sb.Dsize > 0 {
		s.Fragmentation = float64(nffree) * 100 / float64(c.sb.Dsize)
	}
}

// checker holds the state of one run (the globals of fsck_ffs).
type checker struct {
	ctx    context.Context
	dev    blockdev.Device
	opts   Options
	out    io.Writer
	log    *slog.Logger
	name   string
	report *Report

	sb      *ondisk.Superblock
	sbRaw   []byte // bytes the superblock was read from
	sbLoc   int64  // byte offset the superblock was read from
	sbDirty bool
	// lastAlt is the backup superblock of the last group, found
	// disagreeing with the standard one and ignored; finish makes it
	// agree (syncLastAlternate), at lastAltLoc.
	lastAlt    *ondisk.Superblock
	lastAltLoc int64
	cs         []ondisk.Csum // fs_csp
	cgs        []*cgbuf
	maxino     ondisk.Ino // fs_ncg * fs_ipg
	maxfsblk   int64      // fs_size
	dirSize    int64      // MAXDIRSIZE

	preen, noWrite bool
	refusedWrites  int // writes dropped for want of write access (writeAt)
	usedSoftdep    bool
	resolved       bool
	rerun          bool
	modified       bool
	fatalErr       error // set by a preen pfatal: the check stops
	exitCode       int   // when not 0, the status of a check that stopped
	phase          string

	ist      [][]inostat // per group, for the first numalloced inodes
	scratch  inostat
	bmap     []uint64 // one bit per fragment: in use
	dirs     dirTable
	dups     map[ondisk.Frag]int32 // extra claims of each duplicate fragment
	dupOrder []ondisk.Frag         // unique duplicates in the order found
	partial  map[ondisk.Ino]bool   // inodes pass 1 stopped walking (remap.go)
	remap    bool                  // rebuild the block map before pass 5

	nFiles    int64
	nBlks     int64
	countDirs int64
	lfdir     ondisk.Ino
	displaced []displacedEntry
	owners    map[uint32]string // user names by uid, for messages
	pathBusy  bool

	problems []Problem

	// Scratch space reused from inode to inode by pass 1 (checkinode is
	// not reentrant) and block buffers lent to directory and indirect
	// block walks, which may nest.
	p1      pass1State
	p1desc  desc
	p1dino  ondisk.Dinode
	pass1fn func(*desc) int
	bufs    [][]byte
}

type cgbuf struct {
	cg    *ondisk.CylGroup
	dirty bool
	bad   bool // failed its integrity check and was not rebuilt
}

func newChecker(ctx context.Context, dev blockdev.Device, opts Options) *checker {
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &checker{
		ctx: ctx, dev: dev, opts: opts, out: out, log: log, name: dev.Name(),
		preen:    opts.Mode == Preen,
		resolved: true,
		dups:     map[ondisk.Frag]int32{},
	}
	c.pass1fn = c.pass1check
	c.noWrite = opts.Mode == No || dev.ReadOnly()
	c.report = &Report{Device: dev.Name(), Mode: opts.Mode.String()}
	return c
}

func (c *checker) writable() bool { return !c.noWrite }

// printf writes to the transcript.
func (c *checker) printf(format string, args ...any) {
	fmt.Fprintf(c.out, format, args...)
}

// pwarn prints a message, prefixed by the device name when preening.
func (c *checker) pwarn(format string, args ...any) {
	if c.preen {
		c.printf("%s: ", c.name)
	}
	c.printf(format, args...)
}

// problem records an inconsistency of the given kind (a Kind constant).
func (c *checker) problem(kind string, ino ondisk.Ino, path, format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	c.problems = append(c.problems, Problem{Phase: c.phase, Kind: kind, Ino: uint32(ino), Path: path, Message: msg})
	c.log.Warn(msg, "phase", c.phase, "kind", kind, "ino", uint32(ino), "path", path)
}

// setKind changes the kind of the last problem recorded.
func (c *checker) setKind(kind string) {
	if n := len(c.problems); n > 0 {
		c.problems[n-1].Kind = kind
	}
}

// fixed marks the last problem as fixed (used where fsck_ffs fixes
// without asking: preen's "(CORRECTED)" and friends).
func (c *checker) fixed() {
	if n := len(c.problems); n > 0 {
		c.problems[n-1].Fixed = true
	}
}

// warn prints a pwarn message and records it as a problem.
func (c *checker) warn(kind string, ino ondisk.Ino, path, format string, args ...any) {
	c.pwarn(format, args...)
	c.problem(kind, ino, path, format, args...)
}

// pfatal reports an inconsistency fsck_ffs calls unexpected: when preening
// it stops the check (exit 8), otherwise it prints and goes on.
func (c *checker) pfatal(kind string, ino ondisk.Ino, path, format string, args ...any) {
	c.problem(kind, ino, path, format, args...)
	if !c.preen {
		c.printf(format, args...)
		if c.usedSoftdep {
			c.printf("\nUNEXPECTED SOFT UPDATE INCONSISTENCY\n")
		}
		return
	}
	c.printf("%s: ", c.name)
	c.printf(format, args...)
	what := " "
	if c.usedSoftdep {
		what = " SOFT UPDATE "
	}
	c.printf("\n%s: UNEXPECTED%sINCONSISTENCY; RUN fsck MANUALLY.\n", c.name, what)
	c.resolved = false
	if c.fatalErr == nil {
		c.fatalErr = &abortError{msg: fmt.Sprintf("%s: unexpected%sinconsistency (%s); run fsck manually: %v",
			c.name, strings.ToLower(what), strings.TrimSpace(fmt.Sprintf(format, args...)), ErrAborted)}
	}
}

// reply asks question: no when -n or without write access, yes when -y.
// A preen never asks: reaching here while preening stops the check.
func (c *checker) reply(question string) bool {
	n := len(c.problems)
	if n > 0 {
		c.problems[n-1].Question = question
	}
	if c.preen {
		c.pfatal(KindPreen, 0, "", "%s? CANNOT BE ANSWERED WHEN PREENING", question)
		return false
	}
	persevere := question == "CONTINUE"
	c.printf("\n")
	if !persevere && c.noWrite {
		c.printf("%s? no\n\n", question)
		c.resolved = false
		return false
	}
	c.printf("%s? yes\n\n", question)
	if n > 0 && !persevere {
		c.problems[n-1].Fixed = true
	}
	return true
}

// checkStop returns the reason to stop, if any: a preen abort or a
// cancelled context.
func (c *checker) checkStop() error {
	if c.fatalErr != nil {
		return c.fatalErr
	}
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("fsck %s: %w", c.name, err)
	}
	return nil
}

func (c *checker) progress(pct float64) {
	if c.opts.Progress != nil {
		c.opts.Progress(c.phase, pct)
	}
}

func (c *checker) debugf(format string, args ...any) {
	if c.opts.Debug {
		c.printf(format, args...)
	}
}
