package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CompareOpts says what CompareTrees compares. The zero value compares
// entry types, permission bits (setuid, setgid and sticky included),
// sizes of non-directories, contents byte for byte, symlink targets and
// hard-link structure; owners and times are opt-in.
type CompareOpts struct {
	IgnoreModes     bool // skip permission bits
	IgnoreHardLinks bool // skip the check that the same sets of paths share an inode
	// SymlinksAsFiles accepts, for a symlink in want, a regular file in got
	// whose content is the link's target. (tsk_recover does this for slow
	// symlinks only; for fast ones it writes zeros: use IgnoreSymlinks.)
	SymlinksAsFiles  bool
	IgnoreSymlinks   bool // skip symlinks of want: missing or of another type in got is fine
	IgnoreEmptyFiles bool // accept zero-length files of want missing from got
	// IgnoreEmptyDirs accepts directories of want missing from got when
	// nothing compared lies beneath them (empty files and symlinks do not
	// count when the options above ignore them).
	IgnoreEmptyDirs bool

	Owners bool // compare uid and gid

	Times bool // compare mtime (of every entry, the root included)
	// TimeGranularity truncates both mtimes before comparing: 0 compares
	// to the nanosecond, time.Second to whole seconds.
	TimeGranularity time.Duration
}

// ContentOnly is what survives tsk_recover: the non-empty regular files,
// their bytes and the directories holding them.
func ContentOnly() CompareOpts {
	return CompareOpts{IgnoreModes: true, IgnoreHardLinks: true, IgnoreSymlinks: true,
		IgnoreEmptyFiles: true, IgnoreEmptyDirs: true}
}

// ignored reports whether opts skip the entry e of want when it is missing
// or different in got.
func (opts CompareOpts) ignored(e entry) bool {
	m := e.info.Mode()
	return opts.IgnoreSymlinks && m.Type() == fs.ModeSymlink ||
		opts.IgnoreEmptyFiles && m.IsRegular() && e.info.Size() == 0
}

// entry is one Lstat'ed path of a tree.
type entry struct {
	info fs.FileInfo
	st   *syscall.Stat_t
}

// walkTree Lstats every path under root, keyed by slash-separated path
// relative to root ("." for the root).
func walkTree(root string) (map[string]entry, error) {
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat_t", p)
		}
		m[filepath.ToSlash(rel)] = entry{info: info, st: st}
		return nil
	})
	return m, err
}

// CompareTrees walks want and got (without following symlinks) and returns
// every difference as a line of text, sorted by path; an empty result
// means the trees are the same under opts. Errors reading either tree
// fail the test.
func CompareTrees(t testing.TB, want, got string, opts CompareOpts) []string {
	t.Helper()
	w, err := walkTree(want)
	if err != nil {
		t.Fatalf("CompareTrees: walking want: %v", err)
	}
	g, err := walkTree(got)
	if err != nil {
		t.Fatalf("CompareTrees: walking got: %v", err)
	}
	var diffs []string
	var diffBuf []byte // firstDifference's scratch
	add := func(p, format string, args ...any) {
		diffs = append(diffs, p+": "+fmt.Sprintf(format, args...))
	}

	// Directories of want holding some non-directory, for IgnoreEmptyDirs.
	nonEmpty := map[string]bool{}
	for p, e := range w {
		if !e.info.IsDir() && !opts.ignored(e) {
			for d := p; d != "."; {
				d = parent(d)
				nonEmpty[d] = true
			}
		}
	}

	paths := make([]string, 0, len(w)+len(g))
	for p := range w {
		paths = append(paths, p)
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)

	for _, p := range paths {
		we, inW := w[p]
		ge, inG := g[p]
		switch {
		case inW && opts.ignored(we):
			continue
		case !inG:
			if opts.IgnoreEmptyDirs && we.info.IsDir() && !nonEmpty[p] {
				continue
			}
			add(p, "missing in got (%s)", kind(we.info.Mode()))
			continue
		case !inW:
			add(p, "extra in got (%s)", kind(ge.info.Mode()))
			continue
		}
		wt, gt := we.info.Mode().Type(), ge.info.Mode().Type()
		symlinkAsFile := opts.SymlinksAsFiles && wt == fs.ModeSymlink && gt.IsRegular()
		if wt != gt && !symlinkAsFile {
			add(p, "type: want %s, got %s", kind(we.info.Mode()), kind(ge.info.Mode()))
			continue
		}
		if !opts.IgnoreModes && !symlinkAsFile {
			if wm, gm := we.st.Mode&0o7777, ge.st.Mode&0o7777; wm != gm {
				add(p, "mode: want %#o, got %#o", wm, gm)
			}
		}
		if opts.Owners && (we.st.Uid != ge.st.Uid || we.st.Gid != ge.st.Gid) {
			add(p, "owner: want %d:%d, got %d:%d", we.st.Uid, we.st.Gid, ge.st.Uid, ge.st.Gid)
		}
		if opts.Times {
			wm, gm := we.info.ModTime(), ge.info.ModTime()
			if opts.TimeGranularity > 0 {
				wm, gm = wm.Truncate(opts.TimeGranularity), gm.Truncate(opts.TimeGranularity)
			}
			if !wm.Equal(gm) {
				add(p, "mtime: want %s, got %s", fmtTime(wm), fmtTime(gm))
			}
		}
		switch {
		case symlinkAsFile:
			target, err := os.Readlink(filepath.Join(want, p))
			if err != nil {
				t.Fatalf("CompareTrees: %v", err)
			}
			content, err := os.ReadFile(filepath.Join(got, p))
			if err != nil {
				t.Fatalf("CompareTrees: %v", err)
			}
			if string(content) != target {
				add(p, "symlink target (recovered as a file): want %q, got %q", target, content)
			}
		case wt == fs.ModeSymlink:
			wl, err1 := os.Readlink(filepath.Join(want, p))
			gl, err2 := os.Readlink(filepath.Join(got, p))
			if err := errors.Join(err1, err2); err != nil {
				t.Fatalf("CompareTrees: %v", err)
			}
			if wl != gl {
				add(p, "symlink target: want %q, got %q", wl, gl)
			}
		case wt.IsRegular():
			if ws, gs := we.info.Size(), ge.info.Size(); ws != gs {
				add(p, "size: want %d, got %d", ws, gs)
				continue
			}
			if diffBuf == nil {
				diffBuf = make([]byte, 2*diffChunk)
			}
			off, err := firstDifference(filepath.Join(want, p), filepath.Join(got, p), diffBuf)
			if err != nil {
				t.Fatalf("CompareTrees: %v", err)
			}
			if off >= 0 {
				add(p, "content differs from byte %d", off)
			}
		case wt == 0 || wt.IsDir():
		default: // devices, fifos, sockets
			if we.st.Rdev != ge.st.Rdev {
				add(p, "device: want %#x, got %#x", we.st.Rdev, ge.st.Rdev)
			}
		}
	}

	if !opts.IgnoreHardLinks {
		diffs = append(diffs, compareLinks(w, g)...)
	}
	return diffs
}

// compareLinks reports paths, present in both trees, whose sets of names
// for the same inode differ between the trees. Directories are skipped.
func compareLinks(w, g map[string]entry) []string {
	type key struct{ dev, ino uint64 }
	groups := func(m map[string]entry, other map[string]entry) map[string]string {
		byIno := map[key][]string{}
		for p, e := range m {
			if e.info.IsDir() {
				continue
			}
			if o, ok := other[p]; !ok || o.info.IsDir() {
				continue
			}
			k := key{uint64(e.st.Dev), e.st.Ino}
			byIno[k] = append(byIno[k], p)
		}
		set := map[string]string{}
		for _, ps := range byIno {
			slices.Sort(ps)
			s := strings.Join(ps, ", ")
			for _, p := range ps {
				set[p] = s
			}
		}
		return set
	}
	ws, gs := groups(w, g), groups(g, w)
	var diffs []string
	seen := map[string]bool{}
	paths := make([]string, 0, len(ws))
	for p := range ws {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		a, b := ws[p], gs[p]
		if a == b || seen[a+"\x00"+b] {
			continue
		}
		seen[a+"\x00"+b] = true
		diffs = append(diffs, fmt.Sprintf("%s: hard links: want {%s}, got {%s}", p, a, b))
	}
	return diffs
}

// diffChunk is how much of each file firstDifference reads at a time.
const diffChunk = 256 << 10

// firstDifference streams both files and returns the offset of the first
// differing byte, or -1 if they are equal. buf is scratch space of at
// least 2*diffChunk bytes, reused from file to file (a tree of tens of
// thousands of files would otherwise allocate and clear half a megabyte
// for each).
func firstDifference(a, b string, buf []byte) (int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return 0, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return 0, err
	}
	defer fb.Close()
	ba, bb := buf[:diffChunk:diffChunk], buf[diffChunk:2*diffChunk]
	var off int64
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		n := min(na, nb)
		if !bytes.Equal(ba[:n], bb[:n]) {
			for i := range n {
				if ba[i] != bb[i] {
					return off + int64(i), nil
				}
			}
		}
		if na != nb {
			return off + int64(n), nil
		}
		off += int64(n)
		aDone := erra == io.EOF || erra == io.ErrUnexpectedEOF
		bDone := errb == io.EOF || errb == io.ErrUnexpectedEOF
		if erra != nil && !aDone {
			return 0, erra
		}
		if errb != nil && !bDone {
			return 0, errb
		}
		if aDone || bDone {
			return -1, nil
		}
	}
}

func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

func kind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "file"
	case fs.ModeDir:
		return "directory"
	case fs.ModeSymlink:
		return "symlink"
	case fs.ModeNamedPipe:
		return "fifo"
	case fs.ModeSocket:
		return "socket"
	case fs.ModeDevice:
		return "block device"
	case fs.ModeDevice | fs.ModeCharDevice:
		return "char device"
	}
	return m.Type().String()
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// AssertSameTree fails the test (without stopping it) if CompareTrees
// finds differences, listing up to 20 of them.
func AssertSameTree(t testing.TB, want, got string, opts CompareOpts) {
	t.Helper()
	diffs := CompareTrees(t, want, got, opts)
	if len(diffs) == 0 {
		return
	}
	const limit = 20
	msg := strings.Join(diffs[:min(len(diffs), limit)], "\n  ")
	if len(diffs) > limit {
		msg += fmt.Sprintf("\n  ... and %d more", len(diffs)-limit)
	}
	t.Errorf("trees differ: want %s, got %s: %d differences:\n  %s", want, got, len(diffs), msg)
}
