package crashtest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// Workload drives random namespace and data operations through a ufs.FS,
// keeping its own picture of the tree so that every operation is a valid
// one. Files it fsyncs and then leaves alone ("kept" files, in directories
// of their own) become Expects.
type Workload struct {
	FS  *ufs.FS
	Rng *rand.Rand
	// Ops reports how many operations the device has seen (the
	// recorder's log length): an Expect's At.
	Ops func() int
	// Options.
	DirRenames bool  // rename directories to other parents too
	MaxFile    int64 // largest file offset written (reaches indirect blocks when large)
	// MoveKept renames kept files now and then (to the root or into
	// another kept file's directory), sometimes fsyncing them again.
	MoveKept bool
	MoveRate int // percent of steps that move a kept file (with MoveKept)
	// OnKeep, when set, is told of each kept file once its fsync
	// returned; OnMove of each rename of a kept file (from its current
	// name to a new one) before it starts.
	OnKeep func(Expect)
	OnMove func(from, to string)

	dirs    []ondisk.Ino                         // live directories (not kept)
	entries map[ondisk.Ino]map[string]ondisk.Ino // directory -> name -> inode
	parent  map[ondisk.Ino]ondisk.Ino            // directory -> parent
	isDir   map[ondisk.Ino]bool
	files   map[ondisk.Ino]int // regular file -> links
	open    map[ondisk.Ino]int // references held (unlinked files kept open)
	keep    int
	seq     int
	expects []Expect
	kept    []keptFile
	// Log is what was done, for failure reports: op index -> action.
	Log map[int]string
}

// NewWorkload starts a workload on fsys, whose root is empty but for
// whatever newfs put there (left alone).
func NewWorkload(fsys *ufs.FS, rng *rand.Rand, ops func() int) *Workload {
	w := &Workload{FS: fsys, Rng: rng, Ops: ops, MaxFile: 200 << 10,
		entries: map[ondisk.Ino]map[string]ondisk.Ino{}, parent: map[ondisk.Ino]ondisk.Ino{},
		isDir: map[ondisk.Ino]bool{}, files: map[ondisk.Ino]int{}, open: map[ondisk.Ino]int{},
		Log: map[int]string{}}
	root := fsys.Root()
	w.dirs = []ondisk.Ino{root}
	w.entries[root] = map[string]ondisk.Ino{}
	w.parent[root] = root
	w.isDir[root] = true
	return w
}

// Expects returns the kept files fsync'd so far.
func (w *Workload) Expects() []Expect { return w.expects }

func (w *Workload) note(format string, args ...any) {
	w.Log[w.Ops()] = fmt.Sprintf(format, args...)
}

func (w *Workload) name() string {
	w.seq++
	return fmt.Sprintf("n%d", w.seq)
}

func (w *Workload) pick(m []ondisk.Ino) ondisk.Ino { return m[w.Rng.IntN(len(m))] }

// fileList lists the live regular files in a stable order.
func (w *Workload) fileList() []ondisk.Ino {
	return slices.Sorted(maps.Keys(w.files))
}

// entryOf finds a name of ino (a directory it is in, and the name).
func (w *Workload) entryOf(ino ondisk.Ino) (ondisk.Ino, string, bool) {
	for _, d := range w.dirs {
		names := slices.Sorted(maps.Keys(w.entries[d]))
		for _, n := range names {
			if w.entries[d][n] == ino {
				return d, n, true
			}
		}
	}
	return 0, "", false
}

// under reports whether directory d is a or lies below it.
func (w *Workload) under(d, a ondisk.Ino) bool {
	for i := 0; i < 10000; i++ {
		if d == a {
			return true
		}
		p := w.parent[d]
		if p == d {
			return false
		}
		d = p
	}
	return false
}

func (w *Workload) data(n int) []byte {
	b := make([]byte, n)
	v := byte(w.Rng.IntN(250) + 1)
	for i := range b {
		b[i] = v + byte(i/512)
	}
	return b
}

// fileData returns n bytes to write at offset off of file ino: the
// pattern CheckContents recognises, with a random byte of this write.
// Writes and truncations stay 8-byte aligned (but for the end of a kept
// file, which is never written again), so that every aligned word of a
// file is all from one write or all zeros.
func (w *Workload) fileData(ino ondisk.Ino, off int64, n int) []byte {
	b := make([]byte, n)
	v := byte(w.Rng.IntN(255) + 1)
	for i := range b {
		b[i] = patternByte(ino, off+int64(i), v)
	}
	return b
}

// Step does one random operation; errors of the engine fail it.
func (w *Workload) Step() error {
	fs := w.FS
	if w.MoveKept && len(w.kept) > 0 && w.Rng.IntN(100) < w.MoveRate {
		return w.moveKept()
	}
	switch r := w.Rng.IntN(100); {
	case r < 16: // create, maybe with data
		d := w.pick(w.dirs)
		n := w.name()
		w.note("create %d/%s", d, n)
		ino, err := fs.Create(d, n, 0o644, 0, 0)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		w.entries[d][n] = ino
		w.files[ino] = 1
		if w.Rng.IntN(2) == 0 {
			return w.write(ino)
		}
	case r < 32:
		if fl := w.fileList(); len(fl) > 0 {
			return w.write(w.pick(fl))
		}
	case r < 40: // truncate
		if fl := w.fileList(); len(fl) > 0 {
			ino := w.pick(fl)
			size := uint64(w.Rng.Int64N(w.MaxFile)) &^ 7 // see fileData
			if w.Rng.IntN(3) == 0 {
				size = 0
			}
			w.note("truncate %d to %d", ino, size)
			if err := fs.Truncate(ino, size); err != nil {
				return fmt.Errorf("truncate %d: %w", ino, err)
			}
		}
	case r < 50: // rename
		return w.rename()
	case r < 55: // hard link
		if fl := w.fileList(); len(fl) > 0 {
			ino := w.pick(fl)
			d := w.pick(w.dirs)
			n := w.name()
			w.note("link %d as %d/%s", ino, d, n)
			if err := fs.Link(ino, d, n); err != nil {
				return fmt.Errorf("link: %w", err)
			}
			w.entries[d][n] = ino
			w.files[ino]++
		}
	case r < 63: // mkdir
		d := w.pick(w.dirs)
		n := w.name()
		w.note("mkdir %d/%s", d, n)
		ino, err := fs.Mkdir(d, n, 0o755, 0, 0)
		if err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		w.entries[d][n] = ino
		w.entries[ino] = map[string]ondisk.Ino{}
		w.parent[ino] = d
		w.isDir[ino] = true
		w.dirs = append(w.dirs, ino)
	case r < 68: // rmdir of an empty directory
		for _, d := range w.dirs {
			if d == fs.Root() || len(w.entries[d]) > 0 {
				continue
			}
			p := w.parent[d]
			for n, x := range w.entries[p] {
				if x == d {
					w.note("rmdir %d/%s", p, n)
					if err := fs.Rmdir(p, n); err != nil {
						return fmt.Errorf("rmdir: %w", err)
					}
					delete(w.entries[p], n)
					delete(w.entries, d)
					delete(w.isDir, d)
					w.dirs = slices.DeleteFunc(w.dirs, func(x ondisk.Ino) bool { return x == d })
					return nil
				}
			}
		}
	case r < 80: // unlink, sometimes of a file held open
		if fl := w.fileList(); len(fl) > 0 {
			ino := w.pick(fl)
			d, n, ok := w.entryOf(ino)
			if !ok {
				return nil
			}
			hold := w.Rng.IntN(3) == 0
			if hold {
				if err := fs.Ref(ino); err != nil {
					return fmt.Errorf("ref: %w", err)
				}
				w.open[ino]++
			}
			w.note("unlink %d/%s (ino %d, held %v)", d, n, ino, hold)
			if err := fs.Unlink(d, n); err != nil {
				return fmt.Errorf("unlink: %w", err)
			}
			delete(w.entries[d], n)
			if w.files[ino]--; w.files[ino] == 0 {
				delete(w.files, ino)
				if hold {
					// Still writable while open.
					off := int64(w.Rng.IntN(20000)) &^ 7
					if _, err := fs.WriteAt(ino, w.fileData(ino, off, 3000), off); err != nil {
						return fmt.Errorf("write to unlinked open file: %w", err)
					}
				}
			}
		}
	case r < 84: // close files held open
		for ino, n := range w.open {
			for range n {
				fs.Unref(ino)
			}
			delete(w.open, ino)
			w.note("unref %d", ino)
			break
		}
	case r < 90: // extended attributes
		if fl := w.fileList(); len(fl) > 0 {
			ino := w.pick(fl)
			name := fmt.Sprintf("a%d", w.Rng.IntN(4))
			if w.Rng.IntN(3) == 0 {
				w.note("rmxattr %d %s", ino, name)
				if err := fs.RemoveXattr(ino, ondisk.ExtattrNamespaceUser, name); err != nil && !errors.Is(err, ufs.ErrNoAttr) {
					return fmt.Errorf("removexattr: %w", err)
				}
				return nil
			}
			w.note("setxattr %d %s", ino, name)
			if err := fs.SetXattr(ino, ondisk.ExtattrNamespaceUser, name, w.data(w.Rng.IntN(1500)+1), ufs.XattrFlags{}); err != nil && !errors.Is(err, ufs.ErrXattrSpace) {
				return fmt.Errorf("setxattr: %w", err)
			}
		}
	case r < 94: // fsync of some file
		if fl := w.fileList(); len(fl) > 0 {
			ino := w.pick(fl)
			w.note("fsync %d", ino)
			if err := fs.Fsync(ino, false); err != nil {
				return fmt.Errorf("fsync: %w", err)
			}
		}
	default:
		if w.MoveKept && len(w.kept) > 0 && w.Rng.IntN(2) == 0 {
			return w.moveKept()
		}
		return w.Keep()
	}
	return nil
}

// keptFile is a kept file: its inode, where it is now, and its Expects.
type keptFile struct {
	ino     ondisk.Ino
	path    string
	expects []int // indexes in Workload.expects
}

// split cuts a path into its directory and last name.
func split(path string) (string, string) {
	i := strings.LastIndexByte(path, '/')
	return path[:max(i, 1)], path[i+1:]
}

// moveKept renames a kept file to the root or into the directory of
// another kept file (directories the workload leaves alone), and
// sometimes fsyncs it there.
func (w *Workload) moveKept() error {
	fs := w.FS
	k := &w.kept[w.Rng.IntN(len(w.kept))]
	fromDir, fromName := split(k.path)
	toDir := "/"
	if w.Rng.IntN(3) > 0 {
		toDir, _ = split(w.kept[w.Rng.IntN(len(w.kept))].path)
	}
	// Long names, so that directories often grow by a chunk or a
	// fragment for the new name.
	to := toDir + "/moved-" + w.name() + strings.Repeat("x", w.Rng.IntN(200))
	if toDir == "/" {
		to = to[1:]
	}
	from, err := fs.Namei(fromDir)
	if err != nil {
		return fmt.Errorf("move kept: %s: %w", fromDir, err)
	}
	dst, err := fs.Namei(toDir)
	if err != nil {
		return fmt.Errorf("move kept: %s: %w", toDir, err)
	}
	// Any name it may have on disk counts from now on.
	for _, i := range k.expects {
		w.expects[i].Moves = append(w.expects[i].Moves, to)
	}
	if w.OnMove != nil {
		w.OnMove(k.path, to)
	}
	_, toName := split(to)
	if w.Rng.IntN(3) == 0 {
		// Over another file (dirrewrite), made here for that.
		decoy, err := fs.Create(dst, toName, 0o644, 0, 0)
		if err != nil {
			return fmt.Errorf("move kept: decoy %s: %w", to, err)
		}
		if _, err := fs.WriteAt(decoy, w.fileData(decoy, 0, 4096), 0); err != nil {
			return fmt.Errorf("move kept: decoy %s: %w", to, err)
		}
	}
	w.note("move kept %s -> %s (ino %d)", k.path, to, k.ino)
	if err := fs.Rename(from, fromName, dst, toName, ufs.RenameFlags{}); err != nil {
		return fmt.Errorf("move kept %s: %w", k.path, err)
	}
	k.path = to
	if w.Rng.IntN(2) == 0 {
		return nil
	}
	// fsync makes the new name durable: from now on the file is there
	// (or at a name it gets later).
	if err := fs.Fsync(k.ino, false); err != nil {
		return fmt.Errorf("fsync of moved kept %s: %w", to, err)
	}
	prev := w.expects[k.expects[0]]
	e := Expect{At: w.Ops(), Path: to, Data: prev.Data, Xattrs: prev.Xattrs}
	k.expects = append(k.expects, len(w.expects))
	w.expects = append(w.expects, e)
	if w.OnKeep != nil {
		w.OnKeep(e)
	}
	return nil
}

// write writes a random range of file ino.
func (w *Workload) write(ino ondisk.Ino) error {
	off := w.Rng.Int64N(w.MaxFile)
	if w.Rng.IntN(2) == 0 {
		off = w.Rng.Int64N(8192)
	}
	off &^= 7 // see fileData
	n := (w.Rng.IntN(20000) + 8) &^ 7
	w.note("write %d bytes at %d of %d", n, off, ino)
	if _, err := w.FS.WriteAt(ino, w.fileData(ino, off, n), off); err != nil {
		return fmt.Errorf("write %d: %w", ino, err)
	}
	return nil
}

// rename moves a random entry to a random directory, sometimes over an
// existing file.
func (w *Workload) rename() error {
	fs := w.FS
	from := w.pick(w.dirs)
	if len(w.entries[from]) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(w.entries[from]))
	on := names[w.Rng.IntN(len(names))]
	ino := w.entries[from][on]
	to := w.pick(w.dirs)
	if w.isDir[ino] {
		if to != from && !w.DirRenames {
			return nil
		}
		if w.under(to, ino) {
			return nil
		}
	}
	nn := w.name()
	if w.Rng.IntN(4) == 0 {
		if done, err := w.exchange(from, on, ino, to); done || err != nil {
			return err
		}
	}
	var victim ondisk.Ino
	if !w.isDir[ino] && w.Rng.IntN(3) == 0 {
		// Over an existing file of the target directory.
		tn := slices.Sorted(maps.Keys(w.entries[to]))
		for _, n := range tn {
			if x := w.entries[to][n]; !w.isDir[x] && x != ino {
				nn, victim = n, x
				break
			}
		}
	}
	w.note("rename %d/%s -> %d/%s (ino %d over %d)", from, on, to, nn, ino, victim)
	if err := fs.Rename(from, on, to, nn, ufs.RenameFlags{}); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	delete(w.entries[from], on)
	w.entries[to][nn] = ino
	if w.isDir[ino] {
		w.parent[ino] = to
	}
	if victim != 0 {
		if w.files[victim]--; w.files[victim] == 0 {
			delete(w.files, victim)
		}
	}
	return nil
}

// exchange swaps entry on (naming ino) of directory from with a random
// entry of directory to (RENAME_EXCHANGE). Directories only with
// DirRenames, and never into themselves. It reports whether it did one.
func (w *Workload) exchange(from ondisk.Ino, on string, ino, to ondisk.Ino) (bool, error) {
	names := slices.Sorted(maps.Keys(w.entries[to]))
	for _, tn := range names {
		x := w.entries[to][tn]
		if x == ino || (from == to && tn == on) {
			continue
		}
		if (w.isDir[x] || w.isDir[ino]) && !w.DirRenames {
			continue
		}
		if w.isDir[ino] && w.under(to, ino) || w.isDir[x] && w.under(from, x) {
			continue
		}
		w.note("exchange %d/%s (ino %d) with %d/%s (ino %d)", from, on, ino, to, tn, x)
		if err := w.FS.Rename(from, on, to, tn, ufs.RenameFlags{Exchange: true}); err != nil {
			return true, fmt.Errorf("exchange: %w", err)
		}
		w.entries[from][on], w.entries[to][tn] = x, ino
		if w.isDir[ino] {
			w.parent[ino] = to
		}
		if w.isDir[x] {
			w.parent[x] = from
		}
		return true, nil
	}
	return false, nil
}

// Keep makes a kept file: a new directory (sometimes two levels) holding
// a new file with data and attributes, fsync'd, then never touched again.
func (w *Workload) Keep() error {
	fs := w.FS
	w.keep++
	dname := fmt.Sprintf("keep%d", w.keep)
	w.note("keep %s", dname)
	d, err := fs.Mkdir(fs.Root(), dname, 0o755, 0, 0)
	if err != nil {
		return fmt.Errorf("keep mkdir: %w", err)
	}
	path := "/" + dname
	if w.Rng.IntN(2) == 0 {
		if d, err = fs.Mkdir(d, "sub", 0o755, 0, 0); err != nil {
			return fmt.Errorf("keep mkdir: %w", err)
		}
		path += "/sub"
	}
	ino, err := fs.Create(d, "f", 0o644, 0, 0)
	if err != nil {
		return fmt.Errorf("keep create: %w", err)
	}
	path += "/f"
	size := w.Rng.IntN(int(w.MaxFile)) + 1
	if w.Rng.IntN(3) == 0 {
		size = w.Rng.IntN(3000) + 1
	}
	data := w.fileData(ino, 0, size)
	// Written in two pieces, the second first: a hole filled later.
	half := size / 2 &^ 7 // see fileData
	if _, err := fs.WriteAt(ino, data[half:], int64(half)); err != nil {
		return fmt.Errorf("keep write: %w", err)
	}
	if _, err := fs.WriteAt(ino, data[:half], 0); err != nil {
		return fmt.Errorf("keep write: %w", err)
	}
	xattrs := map[string][]byte{}
	for i := range w.Rng.IntN(3) {
		name := fmt.Sprintf("k%d", i)
		v := w.data(w.Rng.IntN(700) + 1)
		if err := fs.SetXattr(ino, ondisk.ExtattrNamespaceUser, name, v, ufs.XattrFlags{}); err != nil {
			return fmt.Errorf("keep setxattr: %w", err)
		}
		xattrs[name] = v
	}
	if err := fs.Fsync(ino, false); err != nil {
		return fmt.Errorf("keep fsync: %w", err)
	}
	e := Expect{At: w.Ops(), Path: path, Data: bytes.Clone(data), Xattrs: xattrs}
	w.kept = append(w.kept, keptFile{ino: ino, path: path, expects: []int{len(w.expects)}})
	w.expects = append(w.expects, e)
	if w.OnKeep != nil {
		w.OnKeep(e)
	}
	return nil
}

// Finish drops the references still held (the files unlinked while open
// are freed).
func (w *Workload) Finish() {
	for _, ino := range slices.Sorted(maps.Keys(w.open)) {
		for range w.open[ino] {
			w.FS.Unref(ino)
		}
	}
	clear(w.open)
}
