// Package crashtest checks that the engine leaves a filesystem that fsck
// can repair after a crash at any instant.
//
// A workload runs through ufs on a blockdev.Recorder over an in-memory
// image: the recorder logs every write and every flush in the order the
// device saw them. A crash state is what a power cut after the first k
// operations of the log could leave: everything up to the last flush in
// those k operations is on the device; the writes after it may each have
// landed or not, in any order (State). Check then runs what a boot after
// the crash runs: fsck -n -f must find only the problems the caller
// allows (for soft updates: the leaks of fsck.Problem.Leak), fsck -p must
// repair them, a second fsck -n -f must find nothing, and every file the
// workload fsync'd before the cut must read back as it was fsync'd, under
// its name or, when it was renamed since, under its old or its new name
// (a rename never leaves a file with none). CheckContents reads every file
// of a repaired state: each aligned word is zeros or the pattern the
// workload wrote at that offset of that file, so no file shows a block of
// another file, of metadata, or of another offset. MountAtOnce uses a
// crash state without fsck, as FreeBSD mounts a filesystem with soft
// updates after a crash, before it is checked. Replayer.InOrder models a
// device without a write cache instead (a crash state is a prefix of the
// log), the device the ordering without soft updates assumes.
//
// The tests (crash_test.go) run random workloads (workload.go: creates,
// writes, truncates, renames across directories and over files,
// RENAME_EXCHANGE, hard links, mkdir and rmdir, unlinks of open files,
// extended attributes, fsyncs, and fsync'd files renamed again), a big
// directory, directory renames, and an engine process killed with SIGKILL
// at random moments; -crash.states, -crash.seed, -crash.steps and
// -crash.kills scale them, and each logs how many crash states it checked
// and what fsck found.
//
// This package is for tests only (internal/lint's testOnly list): it sits
// above everything it checks.
package crashtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"github.com/ufs2/ufs2/fsck"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// Expect is a file fsync'd by a workload: every crash state cut at or after
// At operations of the log must hold it at Path with Data and Xattrs (user
// namespace), or at one of Moves, the names it was renamed to later (a
// rename leaves a file with its old name, its new one or both, never with
// none).
type Expect struct {
	At     int
	Path   string
	Moves  []string
	Data   []byte
	Xattrs map[string][]byte
}

// names lists the names e may be found at.
func (e Expect) names() []string { return append([]string{e.Path}, e.Moves...) }

// Run is a recorded workload.
type Run struct {
	Base   []byte         // the image before the workload
	Ops    []blockdev.Op  // every write and flush the workload made
	Expect []Expect       // the files it fsync'd
	Notes  map[int]string // what the workload did at some op indexes (for failure reports)
}

// lastSync returns the index of the last OpSync among ops[:k], or -1.
func lastSync(ops []blockdev.Op, k int) int {
	for i := k - 1; i >= 0; i-- {
		if ops[i].Kind == blockdev.OpSync {
			return i
		}
	}
	return -1
}

// Replayer builds crash states of a Run in ascending order of the cut:
// the durable part (everything before the last flush) is applied once, to
// an image kept from state to state; each state is that image under an
// overlay of the writes after the flush, which the checks may write to.
type Replayer struct {
	// InOrder models a device that completes writes in the order it
	// gets them (no write cache): a crash state is then exactly a prefix
	// of the log. The synchronous ordering without soft updates assumes
	// such a device, as FreeBSD's does.
	InOrder bool

	r *Run
	// durable holds the pages of r.Base that r.Ops[:applied] changed.
	// Images share it, so it is never changed once handed out: the
	// next advance copies the map (not the pages) and replaces the
	// pages it writes, and states already handed out, which other
	// goroutines may still be checking, keep what they had.
	durable map[int64][]byte
	shared  bool           // durable was handed out
	owned   map[int64]bool // pages of durable written since it was last handed out
	applied int
}

// NewReplayer starts replaying r.
func NewReplayer(r *Run) *Replayer {
	return &Replayer{r: r, durable: map[int64][]byte{}, owned: map[int64]bool{}}
}

// apply writes data at off into the durable layer.
func (p *Replayer) apply(data []byte, off int64) {
	if p.shared {
		p.durable = maps.Clone(p.durable)
		p.shared = false
		clear(p.owned)
	}
	for done := 0; done < len(data); {
		at := off + int64(done)
		pg, in := at/pageSize, int(at%pageSize)
		c := min(len(data)-done, pageSize-in)
		if !p.owned[pg] {
			b := make([]byte, pageSize)
			if old, ok := p.durable[pg]; ok {
				copy(b, old)
			} else {
				copy(b, p.r.Base[pg*pageSize:])
			}
			p.durable[pg] = b
			p.owned[pg] = true
		}
		copy(p.durable[pg][in:], data[done:done+c])
		done += c
	}
}

// errCutOrder is State's answer to a decreasing cut.
var errCutOrder = errors.New("crashtest: Replayer.State called with a decreasing cut")

// State returns the image a crash after the first k operations could
// leave: every operation before the last flush in ops[:k] applied in
// order, then a random subset of the writes after it applied in a random
// order (rng chooses; all of them in order with InOrder). k must not
// decrease from call to call.
func (p *Replayer) State(k int, rng *rand.Rand) (*Image, error) {
	ops := p.r.Ops
	s := lastSync(ops, k)
	if s+1 < p.applied {
		return nil, errCutOrder
	}
	for _, op := range ops[p.applied : s+1] {
		if op.Kind == blockdev.OpWrite {
			p.apply(op.Data, op.Off)
		}
	}
	p.applied = max(p.applied, s+1)
	img := NewImage(p.r.Base)
	img.layer = p.durable
	p.shared = true
	tail := make([]int, 0, k-s-1)
	for i := s + 1; i < k; i++ {
		if ops[i].Kind == blockdev.OpWrite && (p.InOrder || rng.IntN(2) == 0) {
			tail = append(tail, i)
		}
	}
	if !p.InOrder {
		rng.Shuffle(len(tail), func(a, b int) { tail[a], tail[b] = tail[b], tail[a] })
	}
	for _, i := range tail {
		if _, err := img.WriteAt(ops[i].Data, ops[i].Off); err != nil {
			return nil, fmt.Errorf("crashtest: replaying op %d: %w", i, err)
		}
	}
	return img, nil
}

// pageSize is the Image's unit of copy-on-write.
const pageSize = 4096

// Image is a blockdev.Device over a base image it never changes: writes go
// to private copies of the pages they touch. A Replayer's states also
// share a read-only layer of pages over the base (the durable part of the
// log), so that a state costs only the pages it changes.
type Image struct {
	base  []byte
	layer map[int64][]byte // read-only pages over base, shared; may be nil
	mu    *sync.RWMutex
	pages map[int64][]byte
	ro    bool
}

// page returns the shared page pg: from the layer or the base.
func (m *Image) page(pg int64) []byte {
	if b, ok := m.layer[pg]; ok {
		return b
	}
	return m.base[pg*pageSize : min(int64(len(m.base)), (pg+1)*pageSize)]
}

var _ blockdev.Device = (*Image)(nil)

// NewImage returns a writable Image over base (which must not change
// while the Image is used).
func NewImage(base []byte) *Image {
	return &Image{base: base, mu: &sync.RWMutex{}, pages: map[int64][]byte{}}
}

// ReadOnlyView returns a read-only Image sharing m's pages.
func (m *Image) ReadOnlyView() *Image {
	return &Image{base: m.base, layer: m.layer, mu: m.mu, pages: m.pages, ro: true}
}

// Clone returns a writable copy of m over the same base (which must not
// change while either is used).
func (m *Image) Clone() *Image {
	c := NewImage(m.base)
	c.layer = m.layer
	m.mu.RLock()
	defer m.mu.RUnlock()
	for pg, b := range m.pages {
		c.pages[pg] = bytes.Clone(b)
	}
	return c
}

// Bytes returns a copy of the whole image.
func (m *Image) Bytes() []byte {
	out := bytes.Clone(m.base)
	for pg, b := range m.layer {
		copy(out[pg*pageSize:], b)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for pg, b := range m.pages {
		copy(out[pg*pageSize:], b)
	}
	return out
}

func (m *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.base)) {
		return 0, io.EOF
	}
	n := min(len(p), len(m.base)-int(off))
	m.mu.RLock()
	defer m.mu.RUnlock()
	for done := 0; done < n; {
		at := off + int64(done)
		pg, in := at/pageSize, int(at%pageSize)
		c := min(n-done, pageSize-in)
		if b, ok := m.pages[pg]; ok {
			copy(p[done:done+c], b[in:])
		} else {
			copy(p[done:done+c], m.page(pg)[in:])
		}
		done += c
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *Image) WriteAt(p []byte, off int64) (int, error) {
	if m.ro {
		return 0, fmt.Errorf("crashtest image: %w", blockdev.ErrReadOnly)
	}
	if off < 0 || off+int64(len(p)) > int64(len(m.base)) {
		return 0, fmt.Errorf("crashtest image: write of %d bytes at %d: %w", len(p), off, blockdev.ErrOutOfRange)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for done := 0; done < len(p); {
		at := off + int64(done)
		pg, in := at/pageSize, int(at%pageSize)
		c := min(len(p)-done, pageSize-in)
		b, ok := m.pages[pg]
		if !ok {
			b = make([]byte, pageSize)
			copy(b, m.page(pg))
			m.pages[pg] = b
		}
		copy(b[in:], p[done:done+c])
		done += c
	}
	return len(p), nil
}

func (m *Image) Size() int64    { return int64(len(m.base)) }
func (m *Image) Sync() error    { return nil }
func (m *Image) Close() error   { return nil }
func (m *Image) ReadOnly() bool { return m.ro }
func (m *Image) Name() string   { return "crash-state" }

// Outcome is what Check found in one crash state.
type Outcome struct {
	Kinds    map[string]int // problems of the first fsck -n -f, by kind
	FixExit  int            // the last repairing run's exit status
	FixRuns  int            // repairing runs needed
	Repaired bool           // a second fsck -n -f found nothing
}

// ErrCheck marks a crash state that failed a check.
var ErrCheck = errors.New("crashtest: crash state fails")

// Mode says how a crash state is judged.
type Mode int

const (
	// SoftUpdates: the first fsck -n -f may report only what allowed
	// accepts, fsck -p must exit 0, a second fsck -n -f must be clean,
	// and the fsync'd files must be there.
	SoftUpdates Mode = iota
	// Repairable: whatever the first fsck -n -f reports (Outcome counts
	// it), fsck -y must leave a filesystem a second fsck -n -f finds
	// clean (the promise of an engine without soft updates), and the
	// fsync'd files must be there.
	Repairable
)

// Check runs the checks of the package documentation on img (k operations
// of the log applied): allowed says which problem kinds the first fsck -n
// -f may report under SoftUpdates; expects are checked when their At is at
// most k.
func Check(mem *Image, k int, mode Mode, allowed func(kind string) bool, expects []Expect) (Outcome, error) {
	out := Outcome{Kinds: map[string]int{}}
	ctx := context.Background()
	var tr strings.Builder
	rep, err := fsck.Check(ctx, mem.ReadOnlyView(), fsck.Options{Mode: fsck.No, Force: true, Output: &tr})
	if err != nil {
		return out, fmt.Errorf("%w: fsck -n -f: %w\n%s", ErrCheck, err, tr.String())
	}
	var bad []string
	for _, p := range rep.Problems {
		out.Kinds[p.Kind]++
		if !allowed(p.Kind) {
			bad = append(bad, fmt.Sprintf("%s (%s, ino %d)", p.Message, p.Kind, p.Ino))
		}
	}
	if mode == SoftUpdates && len(bad) > 0 {
		return out, fmt.Errorf("%w: fsck -n -f found %s\n%s", ErrCheck, strings.Join(bad, "; "), tr.String())
	}
	first := tr.String()
	fix := fsck.Preen
	runs := 1
	if mode == Repairable {
		// An engine without soft updates promises only that fsck -y
		// repairs the filesystem; fsck_ffs sometimes needs more than
		// one run for that (Outcome.FixRuns counts them).
		fix = fsck.Yes
		runs = 3
	}
	for run := 1; ; run++ {
		tr.Reset()
		rep, err = fsck.Check(ctx, mem, fsck.Options{Mode: fix, Force: true, Output: &tr})
		out.FixExit, out.FixRuns = rep.ExitCode, run
		if err != nil || (mode == SoftUpdates && rep.ExitCode != fsck.ExitOK) {
			return out, fmt.Errorf("%w: fsck -%s: exit %d: %v\n%s\nfirst fsck -n -f:\n%s", ErrCheck, fix, rep.ExitCode, err, tr.String(), first)
		}
		fixed := tr.String()
		tr.Reset()
		rep, err = fsck.Check(ctx, mem.ReadOnlyView(), fsck.Options{Mode: fsck.No, Force: true, Output: &tr})
		if err == nil && len(rep.Problems) == 0 {
			break
		}
		if run >= runs {
			return out, fmt.Errorf("%w: fsck -n -f after %d fsck -%s: %v, %d problems\n%s\nthe fsck -%s:\n%s\nfirst fsck -n -f:\n%s",
				ErrCheck, run, fix, err, len(rep.Problems), tr.String(), fix, fixed, first)
		}
	}
	out.Repaired = true
	var due []Expect
	for _, e := range expects {
		if e.At <= k {
			due = append(due, e)
		}
	}
	if len(due) == 0 {
		return out, nil
	}
	fsys, err := ufs.Open(mem, ufs.Options{ReadOnly: true})
	if err != nil {
		return out, fmt.Errorf("%w: opening the repaired image: %w", ErrCheck, err)
	}
	defer fsys.Close()
	for _, e := range due {
		if err := checkFile(fsys, e); err != nil {
			return out, fmt.Errorf("%w: fsync'd at op %d: %w", ErrCheck, e.At, err)
		}
	}
	return out, nil
}

// MountAtOnce uses a crash state as FreeBSD may use a filesystem with
// soft updates right after a crash: it opens mem read-write without fsck,
// checks the fsync'd files, creates, writes, renames and removes a few
// files, fsyncs one and closes. The image must then still pass Check
// (which the caller runs).
func MountAtOnce(mem *Image, k int, expects []Expect, rng *rand.Rand) error {
	fsys, err := ufs.Open(mem, ufs.Options{SyncInterval: -1})
	if err != nil {
		return fmt.Errorf("%w: opening the crashed image read-write: %w", ErrCheck, err)
	}
	for _, e := range expects {
		if e.At <= k {
			if err := checkFile(fsys, e); err != nil {
				fsys.Close()
				return fmt.Errorf("%w: before fsck, fsync'd at op %d: %w", ErrCheck, e.At, err)
			}
		}
	}
	if err := afterCrash(fsys, rng); err != nil {
		fsys.Close()
		return fmt.Errorf("%w: working on the crashed image: %w", ErrCheck, err)
	}
	if err := fsys.Close(); err != nil {
		return fmt.Errorf("%w: closing the crashed image: %w", ErrCheck, err)
	}
	return nil
}

// afterCrash is MountAtOnce's work: files of up to 64 KiB (so into the
// indirect blocks) in a new directory, half of them removed, one renamed
// to the root and fsync'd.
func afterCrash(fsys *ufs.FS, rng *rand.Rand) error {
	root := fsys.Root()
	dir, err := fsys.Mkdir(root, fmt.Sprintf("after-crash-%d", rng.Uint32()), 0o755, 0, 0)
	if err != nil {
		return err
	}
	var data [64 << 10]byte
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	for i := range 16 {
		name := fmt.Sprintf("f%d", i)
		ino, err := fsys.Create(dir, name, 0o644, 0, 0)
		if err != nil {
			return err
		}
		if _, err := fsys.WriteAt(ino, data[:rng.IntN(len(data))], 0); err != nil {
			return err
		}
		if i%2 == 1 {
			if err := fsys.Unlink(dir, name); err != nil {
				return err
			}
		}
	}
	if err := fsys.Rename(dir, "f0", root, fmt.Sprintf("moved-%d", rng.Uint32()), ufs.RenameFlags{}); err != nil {
		return err
	}
	ino, err := fsys.Lookup(dir, "f2")
	if err != nil {
		return err
	}
	return fsys.Fsync(ino, false)
}

// patternByte is the byte a workload writes at offset off of file ino:
// every aligned 8-byte word holds the inode number (4 bytes), the word's
// index in the file (3 bytes) and a byte of the write (v).
func patternByte(ino ondisk.Ino, off int64, v byte) byte {
	switch k := off % 8; {
	case k < 4:
		return byte(uint32(ino) >> (8 * k))
	case k < 7:
		return byte(uint64(off/8) >> (8 * (k - 4)))
	default:
		return v
	}
}

// checkPattern checks data read at offset off (a multiple of 8) of file
// ino: every aligned word is all zeros or patternByte's (the workload's
// writes are aligned; a last partial word is compared as far as it goes).
// It returns the offset of the first wrong word.
func checkPattern(ino ondisk.Ino, data []byte, off int64) (int64, bool) {
	const mask = 1<<56 - 1 // the write's own byte is anything
	var word [8]byte
	full := len(data) &^ 7
	for i := 0; i < full; i += 8 {
		w := binary.LittleEndian.Uint64(data[i:i+8]) & mask
		if want := (uint64(ino) | uint64((off+int64(i))/8)<<32) & mask; w != 0 && w != want {
			return off + int64(i), false
		}
	}
	for i := full; i < len(data); i += 8 {
		o := off + int64(i)
		n := copy(word[:], data[i:])
		clear(word[n:])
		w := binary.LittleEndian.Uint64(word[:]) & mask
		want := (uint64(ino) | uint64(o/8)<<32) & mask
		if n < 8 {
			m := uint64(1)<<(8*n) - 1
			w, want = w&m, want&m
		}
		if w != 0 && w != want {
			return o, false
		}
	}
	return 0, true
}

// CheckContents reads every regular file reachable from the root of the
// (repaired) image and checks that each byte is 0 or what the workload
// wrote there (patternByte): no file shows a block that belonged to
// another file, to metadata, or to another offset (soft updates write a
// new block before the pointer to it, and reuse a freed block only once
// no pointer on disk reaches it). It returns how many files it read.
func CheckContents(mem *Image) (int, error) {
	fsys, err := ufs.Open(mem.ReadOnlyView(), ufs.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("%w: opening the repaired image: %w", ErrCheck, err)
	}
	defer fsys.Close()
	files := 0
	seen := map[ondisk.Ino]bool{}
	buf := make([]byte, 64<<10)
	var walk func(dir ondisk.Ino, path string) error
	walk = func(dir ondisk.Ino, path string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		var ents []ufs.Dirent
		if err := fsys.ReadDir(dir, func(e ufs.Dirent) bool {
			if e.Name != "." && e.Name != ".." && e.Name != ".snap" {
				ents = append(ents, e)
			}
			return true
		}); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, e := range ents {
			p := path + "/" + e.Name
			switch e.Type {
			case ondisk.DTDir:
				if err := walk(e.Ino, p); err != nil {
					return err
				}
			case ondisk.DTReg:
				if seen[e.Ino] {
					continue
				}
				seen[e.Ino] = true
				files++
				st, err := fsys.Stat(e.Ino)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				for off := int64(0); off < int64(st.Size); off += int64(len(buf)) {
					n, err := fsys.ReadAt(e.Ino, buf, off)
					if n == 0 && err != nil && !errors.Is(err, io.EOF) {
						return fmt.Errorf("%s: reading at %d: %w", p, off, err)
					}
					if o, ok := checkPattern(e.Ino, buf[:n], off); !ok {
						return fmt.Errorf("%s (ino %d): byte %d is %#x: not written to this file there", p, e.Ino, o, buf[o-off])
					}
				}
			}
		}
		return nil
	}
	if err := walk(fsys.Root(), ""); err != nil {
		return files, fmt.Errorf("%w: %w", ErrCheck, err)
	}
	return files, nil
}

// checkFile looks for what was fsync'd under each name e may have.
func checkFile(fsys *ufs.FS, e Expect) error {
	names := e.names()
	var first, last error
	for _, path := range names {
		err := checkFileAt(fsys, e, path)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
		last = err
	}
	if len(names) == 1 {
		return first
	}
	return fmt.Errorf("under none of its %d names: %w; ...; %w", len(names), first, last)
}

// checkFileAt compares the file at path with what was fsync'd.
func checkFileAt(fsys *ufs.FS, e Expect, path string) error {
	ino, err := fsys.Namei(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.Size != uint64(len(e.Data)) {
		return fmt.Errorf("%s: size %d, fsync'd %d", path, st.Size, len(e.Data))
	}
	got := make([]byte, len(e.Data))
	if n, err := fsys.ReadAt(ino, got, 0); n != len(got) {
		return fmt.Errorf("%s: read %d of %d bytes: %v", path, n, len(got), err)
	}
	if !bytes.Equal(got, e.Data) {
		at := 0
		for at < len(got) && got[at] == e.Data[at] {
			at++
		}
		return fmt.Errorf("%s: content differs from byte %d", path, at)
	}
	xs, err := fsys.ListXattr(ino)
	if err != nil {
		return fmt.Errorf("%s: extended attributes: %w", path, err)
	}
	have := map[string][]byte{}
	for _, x := range xs {
		if x.Namespace == ondisk.ExtattrNamespaceUser {
			v, err := fsys.GetXattr(ino, x.Namespace, x.Name)
			if err != nil {
				return fmt.Errorf("%s: attribute %s: %w", path, x.Name, err)
			}
			have[x.Name] = v
		}
	}
	for name, v := range e.Xattrs {
		if !bytes.Equal(have[name], v) {
			return fmt.Errorf("%s: attribute %s is %q, fsync'd %q", path, name, have[name], v)
		}
	}
	if len(have) != len(e.Xattrs) {
		names := make([]string, 0, len(have))
		for n := range have {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("%s: attributes %v, fsync'd %d", path, names, len(e.Xattrs))
	}
	return nil
}

// Cuts chooses the crash points to check in a log of n operations: every
// one when n+1 <= max, else max of them at random (always including 0 and
// n).
func Cuts(n, max int, rng *rand.Rand) []int {
	if n+1 <= max {
		cuts := make([]int, n+1)
		for i := range cuts {
			cuts[i] = i
		}
		return cuts
	}
	cuts := []int{0, n}
	for len(cuts) < max {
		cuts = append(cuts, rng.IntN(n+1))
	}
	slices.Sort(cuts)
	return cuts
}
