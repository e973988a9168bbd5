package dump

// The reading side: restore's -r (rebuild a tree, level by level, keeping
// a symbol table between levels), -x (extract named files) and -t (list)
// into a host directory, as FreeBSD's sbin/restore does in the current
// directory.
//
// A dump carries every directory it holds before any other file (pass
// III before pass IV), so the whole new tree is known before the first
// file's data arrives. The tree is built from the dumped directories and,
// for an incremental dump, from the directories of the previous restore
// (the symbol table) that the dump did not carry because they did not
// change. An incremental -r then rebuilds the directory structure: the
// files kept from before are hard-linked aside, the old names removed,
// the new directories made, the kept files linked into their new names
// and the dumped files extracted. That gives renames, deletions, new and
// changed files without restore.c's case analysis; only the names are
// remade, never the data of a kept file.

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// Mode is restore's command.
type Mode int

// The commands.
const (
	ModeRestore     Mode = iota // -r
	ModeExtract                 // -x
	ModeList                    // -t
	ModeCompare                 // -C
	ModeInteractive             // -i
)

// RestoreOptions are restore's settings.
type RestoreOptions struct {
	Mode Mode
	// Dir is the directory restored into (FreeBSD's restore uses its
	// current directory), unless Into is set.
	Dir string
	// Into, if set, is restored into instead of Dir: the root of a UFS2
	// filesystem (NewImageTarget).
	Into *Target
	// Names are -x's and -t's arguments, paths inside the dump; none means
	// the whole dump.
	Names []string
	// Symtab is the symbol table -r reads (for an incremental dump) and
	// writes, relative to the target's root; "" means restoresymtable.
	Symtab string
	// NoWrite is -N: read everything, change nothing.
	NoWrite bool
	// Owners sets the files' owners (restore as root).
	Owners bool
	// NoDescend is -h: a directory named in Names is extracted (or
	// listed) without its contents.
	NoDescend bool
	// List receives -t's listing and -i's output.
	List io.Writer
	// Commands are -i's commands, one a line.
	Commands io.Reader
	// Verbose, if set, receives -v's messages, each with its newline.
	Verbose func(string)
	// Warn receives non-fatal problems.
	Warn func(error)
}

// RestoreResult counts what a restore did.
type RestoreResult struct {
	Dirs     int   // directories made (or listed)
	Files    int   // files extracted from the dump (or listed)
	Kept     int   // files of the previous restore given their new names
	Links    int   // extra hard links made
	Bytes    int64 // bytes of file data written
	Warnings int
}

// Errors of restoring.
var (
	// ErrIncremental: the dump is not the next one of the chain the
	// symbol table records.
	ErrIncremental = errors.New("restore: wrong incremental dump")
	// ErrSymtab: the symbol table cannot be read or written.
	ErrSymtab = errors.New("restore: symbol table")
	// ErrNotOnDump: a name given to -x or -t is not in the dump.
	ErrNotOnDump = errors.New("restore: not on the dump")
)

// SymtabName is the symbol table's name in the directory restored into.
const SymtabName = "restoresymtable"

const rootIno = uint32(ondisk.RootIno)

const symtabMagic = "ufs2 restoresymtable 1"

// fileAttr is what restore sets on a file besides its contents.
type fileAttr struct {
	Mode                 uint16
	UID, GID             uint32
	Atime, Mtime         int64
	Atimensec, Mtimensec int32
	Flags                uint32
	EA                   []byte
}

func attrOf(h *Header, ea []byte) fileAttr {
	return fileAttr{Mode: h.Mode, UID: h.UID, GID: h.GID, Atime: h.Atime, Mtime: h.Mtime,
		Atimensec: h.Atimensec, Mtimensec: h.Mtimensec, Flags: h.FileFlags, EA: ea}
}

type dirEntry struct {
	Name string
	Ino  uint32
}

type dirNode struct {
	Entries []dirEntry
	Attr    fileAttr
}

// symtab is what -r keeps between levels.
type symtab struct {
	Magic    string
	DumpDate int64 // c_date of the last dump restored
	Level    int32
	Dirs     map[uint32]*dirNode
}

// tree is the name space of the dirs, from the root.
type tree struct {
	dirs     map[uint32]*dirNode
	dirPath  map[uint32]string // "" is the root
	dirOrder []uint32          // parents before children
	files    map[uint32][]string
	order    []treeItem     // every name in walk order, for listing
	byPath   map[string]int // index in order
}

type treeItem struct {
	path string
	ino  uint32
	dir  bool
}

// walkTree places every directory reachable from the root once and every
// other inode keep accepts under all its names.
func walkTree(dirs map[uint32]*dirNode, keep func(uint32) bool, warn func(error)) *tree {
	t := &tree{dirs: dirs, dirPath: map[uint32]string{}, files: map[uint32][]string{}, byPath: map[string]int{}}
	if dirs[rootIno] == nil {
		return t
	}
	var walk func(ino uint32, p string)
	walk = func(ino uint32, p string) {
		t.dirPath[ino] = p
		t.dirOrder = append(t.dirOrder, ino)
		t.byPath[p] = len(t.order)
		t.order = append(t.order, treeItem{p, ino, true})
		for _, e := range dirs[ino].Entries {
			cp := path.Join(p, e.Name)
			if _, isDir := dirs[e.Ino]; isDir {
				if _, seen := t.dirPath[e.Ino]; seen {
					warn(fmt.Errorf("%s: directory inode %d already has a name (%s); this one is skipped", dotPath(cp), e.Ino, dotPath(t.dirPath[e.Ino])))
					continue
				}
				walk(e.Ino, cp)
				continue
			}
			if keep(e.Ino) {
				t.files[e.Ino] = append(t.files[e.Ino], cp)
				t.byPath[cp] = len(t.order)
				t.order = append(t.order, treeItem{cp, e.Ino, false})
			}
		}
	}
	walk(rootIno, "")
	return t
}

// dotPath is restore's way of naming a path: "." for the root, "./a/b".
func dotPath(p string) string {
	if p == "" {
		return "."
	}
	return "./" + p
}

// canon is restore's canon: a name given on the command line as a path
// relative to the dump's root ("" for the root itself).
func canon(name string) string {
	p := path.Clean("/" + name)
	return p[1:]
}

// lookup finds the inode at rel in t.
func (t *tree) lookup(rel string) (uint32, bool) {
	i, ok := t.byPath[rel]
	if !ok {
		return 0, false
	}
	return t.order[i].ino, true
}

// restorer is one run of Restore.
type restorer struct {
	ctx    context.Context
	rd     *Reader
	opts   RestoreOptions
	res    RestoreResult
	tg     target
	owners bool
	dirs   map[uint32]*dirNode // dumped directories
	next   *Header             // the first header after the directories
}

func (r *restorer) warn(err error) {
	r.res.Warnings++
	if r.opts.Warn != nil {
		r.opts.Warn(err)
	}
}

func (r *restorer) verbose(format string, args ...any) {
	if r.opts.Verbose != nil {
		r.opts.Verbose(fmt.Sprintf(format, args...))
	}
}

// setAttrs gives rel the attributes a.
func (r *restorer) setAttrs(rel string, a *fileAttr) error {
	return r.tg.setAttrs(rel, a, r.owners, r.warn)
}

// Restore runs restore's command on the dump rd is reading.
func Restore(ctx context.Context, rd *Reader, opts RestoreOptions) (RestoreResult, error) {
	if opts.Warn == nil {
		opts.Warn = func(error) {}
	}
	if opts.Symtab == "" {
		opts.Symtab = SymtabName
	}
	r := &restorer{ctx: ctx, rd: rd, opts: opts, dirs: map[uint32]*dirNode{}, owners: opts.Owners}
	if opts.Into != nil {
		r.tg = opts.Into.t
		r.owners = true // an image takes any owner
	} else {
		r.tg = &hostTarget{dir: opts.Dir}
	}
	r.verbose("Extract directories from tape\n")
	if err := r.readDirs(); err != nil {
		return r.res, err
	}
	var err error
	switch opts.Mode {
	case ModeList:
		err = r.list()
	case ModeExtract:
		err = r.extract()
	case ModeInteractive:
		err = r.interactive()
	case ModeCompare:
		if opts.Into != nil {
			return r.res, fmt.Errorf("restore: -C compares with a host directory, not a filesystem image")
		}
		err = r.compare()
	default:
		err = r.rebuild()
	}
	return r.res, err
}

// readDirs reads the directories at the start of the dump (extractdirs).
func (r *restorer) readDirs() error {
	for {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		h, err := r.rd.Next()
		if err != nil {
			return err
		}
		if h == nil || h.Mode&ondisk.IFMT != ondisk.IFDIR {
			r.next = h
			return nil
		}
		if h.Size > 1<<31 {
			return fmt.Errorf("%w: directory inode %d: size %d", ErrFormat, h.Inumber, h.Size)
		}
		c := &collector{limit: int64(h.Size)}
		ea, err := r.rd.ReadFile(c)
		if err != nil {
			return err
		}
		hc := *h
		r.dirs[h.Inumber] = &dirNode{Entries: r.parseDir(h.Inumber, c.b, int(h.Size)), Attr: attrOf(&hc, ea)}
	}
}

// parseDir decodes a dumped directory's entries, "." and ".." left out.
func (r *restorer) parseDir(ino uint32, b []byte, size int) []dirEntry {
	// holes in a directory read as empty chunks: only what was dumped
	// is parsed
	b = b[:min(len(b), size)]
	var out []dirEntry
	for off := 0; off < len(b); off += ondisk.DirBlkSize {
		chunk := b[off:min(off+ondisk.DirBlkSize, len(b))]
		err := ondisk.DirChunkEntries(chunk, func(_ int, d ondisk.Direct) bool {
			if d.Ino == 0 || d.Type == ondisk.DTWht {
				return true
			}
			name := string(d.Name)
			if name == "." || name == ".." {
				return true
			}
			if uint32(d.Ino) < rootIno || uint32(d.Ino) >= r.rd.Maxino {
				r.warn(fmt.Errorf("corrupted directory, inumber %d: entry %q names inode %d (%d to %d); skipped", ino, name, d.Ino, rootIno, r.rd.Maxino-1))
				return true
			}
			out = append(out, dirEntry{Name: name, Ino: uint32(d.Ino)})
			return true
		})
		if err != nil {
			r.warn(fmt.Errorf("corrupted directory, inumber %d: block at %d: %w; the rest of the block is skipped", ino, off, err))
		}
	}
	return out
}

// list is -t.
func (r *restorer) list() error {
	t := walkTree(r.dirs, func(uint32) bool { return true }, r.warn)
	w := r.opts.List
	if w == nil {
		w = io.Discard
	}
	return r.eachNamed(t, func(start int, end int) error {
		for _, it := range t.order[start:end] {
			if !r.rd.InoDumped(it.ino) {
				continue
			}
			if it.dir {
				r.res.Dirs++
			} else {
				r.res.Files++
			}
			if r.opts.Verbose != nil {
				kind := "leaf"
				if it.dir {
					kind = "dir "
				}
				fmt.Fprint(w, kind)
			}
			if _, err := fmt.Fprintf(w, "%10d\t%s\n", it.ino, dotPath(it.path)); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachNamed calls fn with the range of t.order each name of Names covers
// (all of it when there are none). A name not in the dump is a warning,
// and, if no name at all was found, ErrNotOnDump.
func (r *restorer) eachNamed(t *tree, fn func(start, end int) error) error {
	names := r.opts.Names
	if len(names) == 0 {
		names = []string{"."}
	}
	found := 0
	for _, n := range names {
		rel := canon(n)
		start, ok := t.byPath[rel]
		if !ok {
			r.warn(fmt.Errorf("%s: %w", dotPath(rel), ErrNotOnDump))
			continue
		}
		found++
		end := start + 1
		if t.order[start].dir && !r.opts.NoDescend {
			prefix := rel + "/"
			if rel == "" {
				prefix = ""
			}
			for end < len(t.order) && (prefix == "" || len(t.order[end].path) > len(prefix) && t.order[end].path[:len(prefix)] == prefix) {
				end++
			}
		}
		if err := fn(start, end); err != nil {
			return err
		}
	}
	if found == 0 {
		return fmt.Errorf("%w: none of the names given is in the dump", ErrNotOnDump)
	}
	return nil
}

// plan is what to make on the host.
type plan struct {
	t       *tree
	mkdirs  []uint32            // directories to make, parents first
	dirSet  map[uint32]bool     // directories whose attributes are set at the end
	extract map[uint32][]string // dumped files to extract, under these names
	kept    map[uint32][]string // files of the previous restore, under their new names
	keptSrc map[uint32]string   // where a kept file is linked aside
}

// extract is -x.
func (r *restorer) extract() error {
	r.verbose("Initialize symbol table.\n")
	t := walkTree(r.dirs, r.rd.InoDumped, r.warn)
	x := newExtraction(t)
	err := r.eachNamed(t, func(start, end int) error {
		for _, it := range t.order[start:end] {
			x.add(it)
		}
		return nil
	})
	if err != nil && x.empty() {
		return err
	}
	return r.apply(x.p)
}

// extraction builds the plan of -x and of -i's extract: the names
// chosen, and the directories leading to them.
type extraction struct {
	t    *tree
	p    *plan
	seen map[uint32]bool
}

func newExtraction(t *tree) *extraction {
	return &extraction{t: t, seen: map[uint32]bool{},
		p: &plan{t: t, dirSet: map[uint32]bool{}, extract: map[uint32][]string{}}}
}

func (x *extraction) empty() bool { return len(x.p.extract) == 0 && len(x.p.mkdirs) == 0 }

func (x *extraction) addDir(ino uint32) {
	if !x.seen[ino] {
		x.seen[ino] = true
		if ino != rootIno {
			x.p.mkdirs = append(x.p.mkdirs, ino)
			x.p.dirSet[ino] = true
		}
	}
}

// add chooses one name of the tree.
func (x *extraction) add(it treeItem) {
	var chain []uint32
	for d := path.Dir(it.path); d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if ino, ok := x.t.lookup(d); ok {
			chain = append(chain, ino)
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		x.addDir(chain[i])
	}
	if it.dir {
		x.addDir(it.ino)
		return
	}
	if !slices.Contains(x.p.extract[it.ino], it.path) {
		x.p.extract[it.ino] = append(x.p.extract[it.ino], it.path)
	}
}

// rebuild is -r.
func (r *restorer) rebuild() error {
	vol := &r.rd.Volume
	var old *symtab
	if vol.Ddate > 0 {
		r.verbose("Begin incremental restore\n")
		r.verbose("Initialize symbol table.\n")
		var err error
		if old, err = r.readSymtab(); err != nil {
			return err
		}
		if old.DumpDate != vol.Ddate {
			what := "too high"
			if old.DumpDate < vol.Ddate {
				what = "too low"
			}
			return fmt.Errorf("%w: Incremental tape %s: this level %d dump is relative to a dump of %s, the last one restored here is of %s",
				ErrIncremental, what, vol.Level, Ctime(headerTimeAt(vol.Ddate)), Ctime(headerTimeAt(old.DumpDate)))
		}
	} else {
		r.verbose("Begin level 0 restore\n")
		r.verbose("Initialize symbol table.\n")
	}
	used, dumped := r.rd.InoUsed, r.rd.InoDumped

	// The new tree: dumped directories, and the old ones still in use
	// that the dump did not carry.
	dirs := map[uint32]*dirNode{}
	var oldTree *tree
	oldFiles := map[uint32]bool{}
	if old != nil {
		oldTree = walkTree(old.Dirs, func(uint32) bool { return true }, r.warn)
		for ino := range oldTree.files {
			oldFiles[ino] = true
		}
		for ino, d := range old.Dirs {
			if _, placed := oldTree.dirPath[ino]; placed && used(ino) && !dumped(ino) {
				dirs[ino] = d
			}
		}
	}
	for ino, d := range r.dirs {
		dirs[ino] = d
	}
	if dirs[rootIno] == nil {
		return fmt.Errorf("%w: the dump holds no root directory (inode %d)", ErrFormat, rootIno)
	}
	keptFile := func(ino uint32) bool { return oldFiles[ino] && used(ino) && !dumped(ino) }
	r.verbose("Calculate extraction list.\n")
	t := walkTree(dirs, func(ino uint32) bool { return dumped(ino) || keptFile(ino) }, r.warn)
	p := &plan{t: t, dirSet: map[uint32]bool{}, extract: map[uint32][]string{}, kept: map[uint32][]string{}, keptSrc: map[uint32]string{}}
	for _, ino := range t.dirOrder {
		p.dirSet[ino] = true
		if ino != rootIno {
			p.mkdirs = append(p.mkdirs, ino)
		}
	}
	for ino, names := range t.files {
		if dumped(ino) {
			p.extract[ino] = names
		} else {
			p.kept[ino] = names
		}
	}

	if old != nil && !r.opts.NoWrite {
		if err := r.clearOld(oldTree, p); err != nil {
			return err
		}
	}
	if err := r.apply(p); err != nil {
		return err
	}
	if r.opts.NoWrite {
		return nil
	}
	r.verbose("Check pointing the restore\n")
	if err := r.writeSymtab(&symtab{Magic: symtabMagic, DumpDate: vol.Date, Level: vol.Level, Dirs: pruned(t)}); err != nil {
		return err
	}
	// The symbol table is a new name in the root: give the root its
	// dumped times back.
	a := t.dirs[rootIno].Attr
	a.EA = nil
	return r.setAttrs("", &a)
}

// headerTimeAt is a dump date as a time.
func headerTimeAt(sec int64) time.Time { return time.Unix(sec, 0) }

// pruned is the tree's directories with only the entries that were placed,
// for the symbol table.
func pruned(t *tree) map[uint32]*dirNode {
	out := make(map[uint32]*dirNode, len(t.dirPath))
	for ino, p := range t.dirPath {
		d := t.dirs[ino]
		nd := &dirNode{Attr: d.Attr}
		for _, e := range d.Entries {
			cp := path.Join(p, e.Name)
			if dp, ok := t.dirPath[e.Ino]; ok && dp == cp {
				nd.Entries = append(nd.Entries, e)
			} else if _, ok := t.files[e.Ino]; ok {
				nd.Entries = append(nd.Entries, e)
			}
		}
		out[ino] = nd
	}
	return out
}

// tmpDir is where an incremental -r keeps the files it keeps while their
// names are remade.
func (r *restorer) tmpDir() string { return "RSTTMP" + strconv.Itoa(os.Getpid()) }

// clearOld links the files to keep aside and removes the old tree's names
// (removeoldleaves, removeoldnodes).
func (r *restorer) clearOld(old *tree, p *plan) error {
	tmp := r.tmpDir()
	if err := r.tg.mkdir(tmp); err != nil {
		return err
	}
	for ino := range p.kept {
		names := old.files[ino]
		if len(names) == 0 {
			continue
		}
		dst := path.Join(tmp, strconv.FormatUint(uint64(ino), 10))
		if err := r.tg.link(names[0], dst); err != nil {
			r.warn(fmt.Errorf("%s (inode %d): cannot keep it from the previous restore: %w", dotPath(names[0]), ino, err))
			continue
		}
		p.keptSrc[ino] = dst
	}
	r.verbose("Remove old nodes (directories).\n")
	for _, names := range old.files {
		for _, n := range names {
			if err := r.tg.remove(n); err != nil {
				r.warn(err)
			}
		}
	}
	for i := len(old.dirOrder) - 1; i >= 0; i-- {
		ino := old.dirOrder[i]
		if ino == rootIno {
			continue
		}
		if err := r.tg.remove(old.dirPath[ino]); err != nil {
			r.warn(fmt.Errorf("%w; the old directory is kept and reused", err))
		}
	}
	return nil
}

// apply makes the plan's directories, gives kept files their names,
// extracts the dumped files from the rest of the dump and sets the
// directories' attributes.
func (r *restorer) apply(p *plan) error {
	t := p.t
	if !r.opts.NoWrite {
		for _, ino := range p.mkdirs {
			r.verbose("Make node %s\n", dotPath(t.dirPath[ino]))
			if err := r.tg.mkdir(t.dirPath[ino]); err != nil {
				return err
			}
			r.res.Dirs++
		}
		for ino, names := range p.kept {
			src := p.keptSrc[ino]
			if src == "" {
				r.warn(fmt.Errorf("%s (inode %d): not on this dump and not restored before; restore the earlier levels first", dotPath(names[0]), ino))
				continue
			}
			for _, n := range names {
				if err := r.link(src, n); err != nil {
					return err
				}
			}
			r.res.Kept++
		}
	} else {
		r.res.Dirs += len(p.mkdirs)
	}
	r.verbose("Extract new leaves.\n")
	err := r.extractFiles(p)
	// The directories get their attributes even after a damaged dump, so
	// what was restored is complete as far as it goes.
	r.verbose("Set directory mode, owner, and times.\n")
	r.setDirAttrs(p)
	if p.keptSrc != nil && !r.opts.NoWrite {
		// only links to the kept files, made by clearOld
		if rerr := r.tg.removeAll(r.tmpDir()); rerr != nil {
			r.warn(rerr)
		}
	}
	return err
}

// link gives the file at src the name rel too.
func (r *restorer) link(src, rel string) error { return r.tg.link(src, rel) }

// extractFiles reads pass IV's files and makes the planned ones.
func (r *restorer) extractFiles(p *plan) error {
	seen := map[uint32]bool{}
	h := r.next
	for h != nil {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		names := p.extract[h.Inumber]
		switch {
		case h.Mode&ondisk.IFMT == ondisk.IFDIR:
			r.warn(fmt.Errorf("inode %d: a directory after the files (not where a dump puts them); skipped", h.Inumber))
			if err := r.rd.SkipFile(); err != nil {
				return err
			}
		case len(names) == 0 || seen[h.Inumber]:
			if err := r.rd.SkipFile(); err != nil {
				return err
			}
		default:
			seen[h.Inumber] = true
			if err := r.extractFile(h, names); err != nil {
				return err
			}
		}
		var err error
		if h, err = r.rd.Next(); err != nil {
			return err
		}
	}
	for ino, names := range p.extract {
		if !seen[ino] {
			r.warn(fmt.Errorf("%s: (inode %d) not found on tape", dotPath(names[0]), ino))
		}
	}
	return nil
}

// extractFile is extractfile: one file under its first name, hard links
// for the others, then its attributes.
func (r *restorer) extractFile(h *Header, names []string) error {
	hc := *h
	h = &hc
	first := names[0]
	r.verbose("extract file %s\n", dotPath(names[0]))
	if r.opts.NoWrite {
		return r.rd.SkipFile()
	}
	var ea []byte
	var err error
	attrsSet := false
	switch h.Mode & ondisk.IFMT {
	case ondisk.IFREG:
		ea, err = r.regular(first, h)
		attrsSet = true
	case ondisk.IFLNK:
		c := &collector{limit: 1 << 16}
		if ea, err = r.rd.ReadFile(c); err != nil {
			return err
		}
		target := string(c.b[:min(len(c.b), int(min(h.Size, 1<<16)))])
		if err := r.tg.symlink(target, first); err != nil {
			r.warn(err) // a target the host refuses (too long, say) stops nothing else
			return nil
		}
	case ondisk.IFCHR, ondisk.IFBLK, ondisk.IFIFO:
		if ea, err = r.rd.ReadFile(nil); err != nil {
			return err
		}
		if err := r.tg.mknod(first, h); err != nil {
			r.warn(err)
			return nil
		}
	case ondisk.IFSOCK:
		r.verbose("skipped socket %s\n", dotPath(names[0]))
		return r.rd.SkipFile()
	default:
		r.warn(fmt.Errorf("%s: unknown file mode 0%o; skipped", dotPath(names[0]), h.Mode))
		return r.rd.SkipFile()
	}
	if err != nil {
		return err
	}
	r.res.Files++
	for _, n := range names[1:] {
		if err := r.link(first, n); err != nil {
			return err
		}
		r.res.Links++
	}
	if attrsSet {
		return nil
	}
	a := attrOf(h, ea)
	return r.setAttrs(first, &a)
}

// regular writes a regular file's data, holes left as holes.
func (r *restorer) regular(p string, h *Header) ([]byte, error) {
	f, err := r.tg.create(p)
	if err != nil {
		return nil, err
	}
	ea, err := r.rd.ReadFile(f)
	var a *fileAttr
	if err == nil {
		at := attrOf(h, ea)
		a = &at
	}
	if ferr := f.finish(int64(h.Size), a, r.owners, r.warn); err == nil {
		err = ferr
	}
	r.res.Bytes += f.written()
	return ea, err
}

// setDirAttrs is setdirmodes: deepest directories first, so that setting
// a directory's times is not undone by changes inside it.
func (r *restorer) setDirAttrs(p *plan) {
	if r.opts.NoWrite {
		return
	}
	t := p.t
	for i := len(t.dirOrder) - 1; i >= 0; i-- {
		ino := t.dirOrder[i]
		if !p.dirSet[ino] {
			continue
		}
		if err := r.setAttrs(t.dirPath[ino], &t.dirs[ino].Attr); err != nil {
			r.warn(err)
		}
	}
}

func (r *restorer) readSymtab() (*symtab, error) {
	p := r.tg.name(r.opts.Symtab)
	b, err := r.tg.readFile(r.opts.Symtab)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot open symbol table file %s: %w; an incremental restore (-r) needs the one the restore of the previous level left", ErrSymtab, p, err)
	}
	var st symtab
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil || st.Magic != symtabMagic {
		if err == nil {
			err = errors.New("not a symbol table of ufs2 restore")
		}
		return nil, fmt.Errorf("%w: cannot read symbol table file %s: %w", ErrSymtab, p, err)
	}
	if st.Dirs == nil {
		st.Dirs = map[uint32]*dirNode{}
	}
	return &st, nil
}

func (r *restorer) writeSymtab(st *symtab) error {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(st); err != nil {
		return fmt.Errorf("%w: encoding: %w", ErrSymtab, err)
	}
	if err := r.tg.writeFile(r.opts.Symtab, b.Bytes()); err != nil {
		return fmt.Errorf("%w: writing %s: %w", ErrSymtab, r.tg.name(r.opts.Symtab), err)
	}
	return nil
}
