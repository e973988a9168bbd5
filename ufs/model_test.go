package ufs

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

var (
	modelSeed = flag.Uint64("ufs.seed", 1, "seed of TestModel (0: a random one; the seed used is printed)")
	modelOps  = flag.Int("ufs.ops", 2500, "operations TestModel runs per geometry")
)

// fakeClock is the time source of the model test: the test sets the time
// of each operation, so that the model knows every time stamp.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type xkey struct {
	ns   uint8
	name string
}

// mnode is the model of one inode.
type mnode struct {
	ino                 ondisk.Ino
	mode                uint16
	uid, gid            uint32
	nlink               int
	flags               uint32
	rdev                uint64
	data                *sparseFile       // regular files
	target              string            // symlinks
	entries             map[string]*mnode // directories
	parent              *mnode            // directories
	xattrs              map[xkey][]byte
	atime, mtime, ctime nsTime
	btime               nsTime
	refs                int // Ref held by the test
}

func (n *mnode) isDir() bool { return n.mode&ondisk.IFMT == ondisk.IFDIR }

// model is the expected state of the filesystem.
type model struct {
	t      *testing.T
	rng    *rand.Rand
	fs     *FS
	root   *mnode
	nodes  map[ondisk.Ino]*mnode
	now    nsTime
	clock  *fakeClock
	counts map[string]int // operations run, by kind and outcome
}

func (m *model) tick() {
	m.now.nsec += 1 + int32(m.rng.IntN(1000))
	if m.now.nsec >= 1e9 {
		m.now.sec++
		m.now.nsec -= 1e9
	}
	m.clock.set(time.Unix(m.now.sec, int64(m.now.nsec)))
}

// dirs lists the model's directories; files its non-directories.
func (m *model) all() (dirs, others []*mnode) {
	var walk func(d *mnode)
	walk = func(d *mnode) {
		dirs = append(dirs, d)
		names := sortedNames(d)
		for _, name := range names {
			c := d.entries[name]
			if c.isDir() {
				walk(c)
			} else if !contains(others, c) {
				others = append(others, c)
			}
		}
	}
	walk(m.root)
	return dirs, others
}

func contains(list []*mnode, n *mnode) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

func sortedNames(d *mnode) []string {
	names := make([]string, 0, len(d.entries))
	for name := range d.entries {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (m *model) pick(list []*mnode) *mnode { return list[m.rng.IntN(len(list))] }

// name picks a name: mostly from a few short ones, so that names collide,
// sometimes a long one, so that directories grow past a chunk.
func (m *model) name() string {
	if m.rng.IntN(5) == 0 {
		return strings.Repeat(string(rune('k'+m.rng.IntN(4))), 20+m.rng.IntN(230))
	}
	return string(rune('a' + m.rng.IntN(8)))
}

// entryIn picks an existing entry name of d, or a fresh name.
func (m *model) entryIn(d *mnode) string {
	if len(d.entries) > 0 && m.rng.IntN(3) > 0 {
		names := sortedNames(d)
		return names[m.rng.IntN(len(names))]
	}
	return m.name()
}

func (m *model) check(op string, err, want error) bool {
	m.t.Helper()
	outcome := "ok"
	if want != nil {
		outcome = "err"
	}
	m.counts[op+" "+outcome]++
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		m.t.Fatalf("%s: error %v, model expects %v", op, err, want)
	}
	return err == nil
}

func (m *model) newNode(ino ondisk.Ino, mode uint16, uid, gid uint32) *mnode {
	n := &mnode{ino: ino, mode: mode, uid: uid, gid: gid, nlink: 1, xattrs: map[xkey][]byte{},
		atime: m.now, mtime: m.now, ctime: m.now, btime: m.now}
	m.nodes[ino] = n
	return n
}

func (m *model) touchMC(n *mnode) { n.mtime, n.ctime = m.now, m.now }

const flagsImmApp = flagImmutable | flagAppend

// opCreate makes a file, special file, symlink or directory.
func (m *model) opCreate(dirs []*mnode) {
	d := m.pick(dirs)
	name := m.name()
	uid, gid := uint32(m.rng.IntN(3)), uint32(m.rng.IntN(3))
	kind := m.rng.IntN(10)
	var want error
	switch {
	case d.entries[name] != nil:
		want = ErrExist
	case d.flags&flagImmutable != 0:
		want = ErrPerm
	}
	var ino ondisk.Ino
	var err error
	var mode uint16
	var target string
	var rdev uint64
	switch {
	case kind < 4:
		mode = ondisk.IFREG | uint16(m.rng.IntN(0o1000))
		ino, err = m.fs.Create(d.ino, name, mode, uid, gid)
	case kind < 7:
		mode = ondisk.IFDIR | uint16(m.rng.IntN(0o1000))
		ino, err = m.fs.Mkdir(d.ino, name, mode, uid, gid)
	case kind < 9:
		mode = ondisk.IFLNK | 0o777
		target = strings.Repeat("t/", 120)[:1+m.rng.IntN(200)]
		ino, err = m.fs.Symlink(d.ino, name, target, uid, gid)
	default:
		types := []uint16{ondisk.IFIFO, ondisk.IFSOCK, ondisk.IFCHR, ondisk.IFBLK}
		mode = types[m.rng.IntN(4)] | 0o640
		if t := mode & ondisk.IFMT; t == ondisk.IFCHR || t == ondisk.IFBLK {
			rdev = uint64(m.rng.Uint32())
		}
		ino, err = m.fs.Mknod(d.ino, name, mode, uid, gid, rdev)
	}
	if !m.check("create", err, want) {
		return
	}
	n := m.newNode(ino, mode, uid, gid)
	n.rdev, n.target = rdev, target
	switch mode & ondisk.IFMT {
	case ondisk.IFREG:
		n.data = newSparseFile()
	case ondisk.IFDIR:
		n.entries = map[string]*mnode{}
		n.parent = d
		n.nlink = 2
		d.nlink++
		d.ctime = m.now
	}
	d.entries[name] = n
	m.touchMC(d)
}

func (m *model) opWrite(files []*mnode) {
	f := m.pick(files)
	if f.data == nil {
		return
	}
	bsize := int64(m.fs.sb.Bsize)
	var off int64
	switch m.rng.IntN(4) {
	case 0:
		off = f.data.size
	case 1:
		off = randomOffset(m.rng, bsize, m.fs.sb.NINDIR())
	default:
		off = m.rng.Int64N(16 * bsize)
	}
	p := make([]byte, 1+m.rng.IntN(int(2*bsize)))
	for i := range p {
		p[i] = byte(m.rng.IntN(256))
	}
	var want error
	switch {
	case f.flags&flagImmutable != 0:
		want = ErrPerm
	case f.flags&flagAppend != 0 && off != f.data.size:
		want = ErrPerm
	}
	n, err := m.fs.WriteAt(f.ino, p, off)
	if !m.check("write", err, want) {
		return
	}
	if n != len(p) {
		m.t.Fatalf("WriteAt wrote %d of %d", n, len(p))
	}
	f.data.write(p, off)
	m.touchMC(f)
}

func (m *model) opTruncate(files []*mnode) {
	f := m.pick(files)
	if f.data == nil {
		return
	}
	bsize := int64(m.fs.sb.Bsize)
	var size int64
	switch m.rng.IntN(3) {
	case 0:
		size = m.rng.Int64N(f.data.size + 1)
	case 1:
		size = m.rng.Int64N(14 * bsize)
	default:
		size = randomOffset(m.rng, bsize, m.fs.sb.NINDIR())
	}
	var want error
	if f.flags&flagsImmApp != 0 {
		want = ErrPerm
	}
	if m.rng.IntN(2) == 0 {
		sz := uint64(size)
		_, err := m.fs.Setattr(f.ino, SetAttr{Size: &sz})
		if !m.check("setattr-size", err, want) {
			return
		}
	} else if !m.check("truncate", m.fs.Truncate(f.ino, uint64(size)), want) {
		return
	}
	f.data.truncate(size)
	m.touchMC(f)
}

// unlinkModel drops one link of n from d.
func (m *model) dropLink(d *mnode, name string) {
	n := d.entries[name]
	delete(d.entries, name)
	n.nlink--
	if n.isDir() {
		n.nlink--
		d.nlink--
	}
	if n.nlink <= 0 && n.refs == 0 {
		delete(m.nodes, n.ino)
	}
}

func (m *model) opUnlink(dirs []*mnode) {
	d := m.pick(dirs)
	name := m.entryIn(d)
	n := d.entries[name]
	var want error
	switch {
	case n == nil:
		want = ErrNotFound
	case n.isDir():
		want = ErrIsDir
	case n.flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || d.flags&flagAppend != 0:
		want = ErrPerm
	}
	if !m.check("unlink", m.fs.Unlink(d.ino, name), want) {
		return
	}
	m.touchMC(d)
	n.ctime = m.now
	m.dropLink(d, name)
}

func (m *model) opRmdir(dirs []*mnode) {
	d := m.pick(dirs)
	name := m.entryIn(d)
	n := d.entries[name]
	var want error
	switch {
	case n == nil:
		want = ErrNotFound
	case !n.isDir():
		want = ErrNotDir
	case n.flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || d.flags&flagAppend != 0:
		want = ErrPerm
	case len(n.entries) > 0:
		want = ErrNotEmpty
	}
	if !m.check("rmdir", m.fs.Rmdir(d.ino, name), want) {
		return
	}
	m.touchMC(d)
	m.dropLink(d, name)
}

func (m *model) opLink(dirs, others []*mnode) {
	if len(others) == 0 {
		return
	}
	n := m.pick(others)
	d := m.pick(dirs)
	name := m.name()
	var want error
	switch {
	case d.entries[name] != nil:
		want = ErrExist
	case d.flags&flagImmutable != 0:
		want = ErrPerm
	case n.flags&flagsImmApp != 0:
		want = ErrPerm
	}
	if !m.check("link", m.fs.Link(n.ino, d.ino, name), want) {
		return
	}
	d.entries[name] = n
	n.nlink++
	n.ctime = m.now
	m.touchMC(d)
}

// isAncestor reports whether a is d or above it.
func isAncestor(a, d *mnode) bool {
	for ; ; d = d.parent {
		if d == a {
			return true
		}
		if d.parent == nil || d.parent == d {
			return false
		}
	}
}

func (m *model) opRename(dirs []*mnode) {
	fd, td := m.pick(dirs), m.pick(dirs)
	oname, nname := m.entryIn(fd), m.entryIn(td)
	var flags RenameFlags
	switch m.rng.IntN(8) {
	case 0:
		flags.NoReplace = true
	case 1:
		flags.Exchange = true
	}
	f, t := fd.entries[oname], td.entries[nname]
	want := m.renameWant(fd, f, td, t, flags)
	err := m.fs.Rename(fd.ino, oname, td.ino, nname, flags)
	if !m.check(fmt.Sprintf("rename%+v", flags), err, want) {
		return
	}
	if f == t {
		return
	}
	if flags.Exchange {
		fd.entries[oname], td.entries[nname] = t, f
		f.ctime, t.ctime = m.now, m.now
		m.touchMC(fd)
		m.touchMC(td)
		if fd != td {
			if f.isDir() {
				f.parent = td
				m.touchMC(f)
			}
			if t.isDir() {
				t.parent = fd
				m.touchMC(t)
			}
			if f.isDir() != t.isDir() {
				gain, lose := td, fd
				if t.isDir() {
					gain, lose = fd, td
				}
				gain.nlink++
				lose.nlink--
			}
		}
		return
	}
	if t != nil {
		t.ctime = m.now
		m.dropLink(td, nname)
	}
	delete(fd.entries, oname)
	td.entries[nname] = f
	f.ctime = m.now
	m.touchMC(fd)
	m.touchMC(td)
	if f.isDir() && fd != td {
		f.parent = td
		m.touchMC(f)
		fd.nlink--
		td.nlink++
	}
}

func (m *model) renameWant(fd, f, td, t *mnode, flags RenameFlags) error {
	if f == nil {
		return ErrNotFound
	}
	moves := fd != td && (f.isDir() || flags.Exchange && t != nil && t.isDir())
	if moves {
		if f.isDir() && isAncestor(f, td) {
			return ErrInvalid
		}
		if flags.Exchange && t != nil && t.isDir() && isAncestor(t, fd) {
			return ErrInvalid
		}
	}
	if flags.Exchange {
		switch {
		case t == nil:
			return ErrNotFound
		case f == t:
			return nil
		case f.flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || t.flags&(flagNoUnlink|flagImmutable|flagAppend) != 0:
			return ErrPerm
		case (fd.flags|td.flags)&(flagAppend|flagImmutable) != 0:
			return ErrPerm
		}
		return nil
	}
	switch {
	case t != nil && flags.NoReplace:
		return ErrExist
	case f == t:
		return nil
	case t != nil && (t.flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || td.flags&flagAppend != 0):
		return ErrPerm
	case f.flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || fd.flags&flagAppend != 0:
		return ErrPerm
	case td.flags&flagImmutable != 0 || fd.flags&flagImmutable != 0:
		return ErrPerm
	case t != nil && t.isDir() && !f.isDir():
		return ErrIsDir
	case t != nil && !t.isDir() && f.isDir():
		return ErrNotDir
	case t != nil && t.isDir() && len(t.entries) > 0:
		return ErrNotEmpty
	}
	return nil
}

func (m *model) opSetattr(all []*mnode) {
	n := m.pick(all)
	var a SetAttr
	var want error
	flagsOnly := false
	switch m.rng.IntN(6) {
	case 0:
		mode := uint16(m.rng.IntN(0o10000))
		a.Mode = &mode
	case 1:
		uid, gid := uint32(m.rng.IntN(5)), uint32(m.rng.IntN(5))
		a.UID = &uid
		if m.rng.IntN(2) == 0 {
			a.GID = &gid
		}
	case 2:
		at := time.Unix(m.rng.Int64N(2e9), m.rng.Int64N(1e9))
		mt := time.Unix(m.rng.Int64N(2e9), m.rng.Int64N(1e9))
		a.Atime, a.Mtime = &at, &mt
	case 3:
		a.AtimeNow, a.MtimeNow = m.rng.IntN(2) == 0, true
	case 4, 5:
		// Mostly harmless flags; now and then one that locks the file,
		// cleared again later by another setattr.
		var f uint32
		switch m.rng.IntN(8) {
		case 0:
			f = ondisk.UFImmutable
		case 1:
			f = ondisk.SFAppend
		case 2:
			f = ondisk.UFNounlink
		case 3, 4:
			f = ondisk.UFNodump | ondisk.UFArchive
		}
		a.Flags = &f
		flagsOnly = true
	}
	if !flagsOnly && n.flags&flagsImmApp != 0 {
		want = ErrPerm
	}
	st, err := m.fs.Setattr(n.ino, a)
	if !m.check("setattr", err, want) {
		return
	}
	n.ctime = m.now
	switch {
	case a.Mode != nil:
		n.mode = n.mode&ondisk.IFMT | *a.Mode&^ondisk.IFMT
	case a.UID != nil:
		n.uid = *a.UID
		if a.GID != nil {
			n.gid = *a.GID
		}
	case a.Atime != nil:
		n.atime, n.mtime = toNs(*a.Atime), toNs(*a.Mtime)
		if n.mtime.before(n.btime.sec, n.btime.nsec) {
			n.btime = n.mtime
		}
	case a.MtimeNow:
		n.mtime = m.now
		if a.AtimeNow {
			n.atime = m.now
		}
	case a.Flags != nil:
		n.flags = *a.Flags
	}
	m.compareStat(n, st, "setattr")
}

func (m *model) opXattr(all []*mnode) {
	n := m.pick(all)
	if t := n.mode & ondisk.IFMT; t == ondisk.IFCHR || t == ondisk.IFBLK {
		return
	}
	ns := uint8(ondisk.ExtattrNamespaceUser)
	if m.rng.IntN(4) == 0 {
		ns = ondisk.ExtattrNamespaceSystem
	}
	name := fmt.Sprintf("attr%d", m.rng.IntN(6))
	k := xkey{ns, name}
	_, exists := n.xattrs[k]
	var want error
	if n.flags&flagsImmApp != 0 {
		want = ErrPerm
	}
	if m.rng.IntN(3) == 0 {
		if want == nil && !exists {
			want = ErrNoAttr
		}
		if !m.check("removexattr", m.fs.RemoveXattr(n.ino, ns, name), want) {
			return
		}
		delete(n.xattrs, k)
		n.ctime = m.now
		return
	}
	size := m.rng.IntN(200)
	if m.rng.IntN(8) == 0 {
		size = m.rng.IntN(int(m.fs.sb.Bsize) + 100)
	}
	val := make([]byte, size)
	for i := range val {
		val[i] = byte(m.rng.IntN(256))
	}
	var xf XattrFlags
	switch m.rng.IntN(4) {
	case 0:
		xf.Create = true
		if want == nil && exists {
			want = ErrExist
		}
	case 1:
		xf.Replace = true
		if want == nil && !exists {
			want = ErrNoAttr
		}
	}
	if want == nil {
		total := 0
		for k2, v := range n.xattrs {
			if k2 != k {
				total += ondisk.ExtattrBaseLength(len(k2.name)) + (len(v)+7)&^7
			}
		}
		total += ondisk.ExtattrBaseLength(len(name)) + (len(val)+7)&^7
		if total > ondisk.NXaddr*int(m.fs.sb.Bsize) {
			want = ErrXattrSpace
		}
	}
	if !m.check("setxattr", m.fs.SetXattr(n.ino, ns, name, val, xf), want) {
		return
	}
	n.xattrs[k] = val
	n.ctime = m.now
}

// opOrphan opens a file (Ref), unlinks its last name, uses it, and drops
// the reference: the blocks go then, not before.
func (m *model) opOrphan(dirs []*mnode) {
	d := m.pick(dirs)
	name := "orphan"
	if d.entries[name] != nil || d.flags&flagsImmApp != 0 {
		return
	}
	ino, err := m.fs.Create(d.ino, name, 0o600, 0, 0)
	if !m.check("orphan-create", err, nil) {
		return
	}
	must(m.t, m.fs.Ref(ino))
	m.tick()
	must(m.t, m.fs.Unlink(d.ino, name))
	m.touchMC(d)
	p := bytes.Repeat([]byte{7}, int(m.fs.sb.Bsize)*3+5)
	if _, err := m.fs.WriteAt(ino, p, 100); err != nil {
		m.t.Fatalf("write to unlinked open file: %v", err)
	}
	got := make([]byte, len(p))
	if _, err := m.fs.ReadAt(ino, got, 100); err != nil || !bytes.Equal(got, p) {
		m.t.Fatalf("read of unlinked open file: %v", err)
	}
	m.fs.Unref(ino)
	if _, err := m.fs.Stat(ino); !errors.Is(err, ErrNotFound) {
		m.t.Fatalf("Stat of freed orphan %d: %v", ino, err)
	}
	m.counts["orphan"]++
}

func (m *model) compareStat(n *mnode, st Stat, where string) {
	m.t.Helper()
	want := Stat{Ino: n.ino, Mode: n.mode, Nlink: int16(n.nlink), UID: n.uid, GID: n.gid,
		Atime: time.Unix(n.atime.sec, int64(n.atime.nsec)), Mtime: time.Unix(n.mtime.sec, int64(n.mtime.nsec)),
		Ctime: time.Unix(n.ctime.sec, int64(n.ctime.nsec)), Birthtime: time.Unix(n.btime.sec, int64(n.btime.nsec)),
		Flags: n.flags, Rdev: n.rdev}
	got := st
	got.Size, got.Blocks, got.Blksize, got.Gen, got.Extsize = 0, 0, 0, 0, 0
	if !got.Atime.Equal(want.Atime) || !got.Mtime.Equal(want.Mtime) || !got.Ctime.Equal(want.Ctime) || !got.Birthtime.Equal(want.Birthtime) {
		m.t.Fatalf("%s: inode %d times a %v m %v c %v b %v, model a %v m %v c %v b %v", where, n.ino,
			got.Atime, got.Mtime, got.Ctime, got.Birthtime, want.Atime, want.Mtime, want.Ctime, want.Birthtime)
	}
	got.Atime, got.Mtime, got.Ctime, got.Birthtime = want.Atime, want.Mtime, want.Ctime, want.Birthtime
	if got != want {
		m.t.Fatalf("%s: inode %d: stat %+v, model %+v", where, n.ino, got, want)
	}
	switch {
	case n.data != nil && int64(st.Size) != n.data.size:
		m.t.Fatalf("%s: inode %d: size %d, model %d", where, n.ino, st.Size, n.data.size)
	case n.target != "" && int(st.Size) != len(n.target):
		m.t.Fatalf("%s: symlink %d: size %d, model %d", where, n.ino, st.Size, len(n.target))
	}
}

// compare checks the whole tree against the model.
func (m *model) compare(where string) {
	m.t.Helper()
	seen := map[ondisk.Ino]bool{}
	var walk func(d *mnode, path string)
	walk = func(d *mnode, path string) {
		got := map[string]Dirent{}
		err := m.fs.ReadDir(d.ino, func(e Dirent) bool {
			got[e.Name] = e
			return true
		})
		if err != nil {
			m.t.Fatalf("%s: ReadDir %s: %v", where, path, err)
		}
		if got["."].Ino != d.ino || got[".."].Ino != d.parent.ino {
			m.t.Fatalf("%s: %s: . %d .. %d, want %d %d", where, path, got["."].Ino, got[".."].Ino, d.ino, d.parent.ino)
		}
		delete(got, ".")
		delete(got, "..")
		if len(got) != len(d.entries) {
			m.t.Fatalf("%s: %s has %d entries, model %d", where, path, len(got), len(d.entries))
		}
		for name, n := range d.entries {
			e, ok := got[name]
			if !ok || e.Ino != n.ino || e.Type != ondisk.DTypeFromMode(n.mode) {
				m.t.Fatalf("%s: %s/%.20s: entry %+v, model ino %d mode 0%o", where, path, name, e, n.ino, n.mode)
			}
			if seen[n.ino] {
				continue
			}
			seen[n.ino] = true
			st, err := m.fs.Stat(n.ino)
			if err != nil {
				m.t.Fatalf("%s: Stat %s/%.20s: %v", where, path, name, err)
			}
			m.compareStat(n, st, where+" "+path+"/"+name[:min(len(name), 20)])
			xs, err := m.fs.Xattrs(n.ino)
			if err != nil {
				m.t.Fatalf("%s: Xattrs %d: %v", where, n.ino, err)
			}
			if len(xs) != len(n.xattrs) {
				m.t.Fatalf("%s: inode %d has %d attributes, model %d", where, n.ino, len(xs), len(n.xattrs))
			}
			for _, x := range xs {
				if v, ok := n.xattrs[xkey{x.Namespace, x.Name}]; !ok || !bytes.Equal(v, x.Value) {
					m.t.Fatalf("%s: inode %d: attribute %s.%s differs", where, n.ino, NamespaceName(x.Namespace), x.Name)
				}
			}
			switch {
			case n.data != nil:
				n.data.verify(m.t, m.fs, n.ino, m.rng)
			case n.target != "":
				target, err := m.fs.Readlink(n.ino)
				if err != nil || target != n.target {
					m.t.Fatalf("%s: Readlink %d = %q, %v; model %q", where, n.ino, target, err, n.target)
				}
			case n.isDir():
				walk(n, path+"/"+name[:min(len(name), 20)])
			}
		}
	}
	rst, err := m.fs.Stat(m.root.ino)
	if err != nil {
		m.t.Fatal(err)
	}
	m.compareStat(m.root, rst, where+" /")
	walk(m.root, "")
}

// TestModel runs random sequences of namespace, data, attribute and
// extended attribute operations against an in-memory model, remounting
// now and then; after each remount and at the end it compares the whole
// tree (entries, types, contents, sizes, modes, owners, times, link
// counts, flags, extended attributes) and runs checkFS (block counts,
// maps, summaries). -ufs.seed and -ufs.ops run it longer or replay a
// failure; CI runs the fixed default seed.
func TestModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -ufs.seed=%d -ufs.ops=%d)", seed, seed, *modelOps)
	for gi, g := range []testGeom{geomSmall, geomMid, geomBig, geomSmallSU, geomBigSU} {
		t.Run(g.name, func(t *testing.T) {
			clock := &fakeClock{}
			rng := rand.New(rand.NewPCG(seed, uint64(gi)))
			opts := Options{Now: clock.now, Async: gi == 1}
			switch gi {
			case 0: // a cache small enough to evict all the time
				opts.CacheBytes = 256 << 10
				opts.MaxInodes = 16
			case 2, 4: // frequent background flushes
				opts.MaxDirtyBytes = 256 << 10
			case 3: // soft updates with a cache small enough to evict all the time
				opts.CacheBytes = 256 << 10
				opts.MaxInodes = 16
			}
			mf := newMemFS(t, g, opts)
			m := &model{t: t, rng: rng, fs: mf.fs, clock: clock, nodes: map[ondisk.Ino]*mnode{},
				now: nsTime{sec: 1_700_000_000}, counts: map[string]int{}}
			rootSt, err := mf.fs.Stat(mf.fs.Root())
			must(t, err)
			root := &mnode{ino: mf.fs.Root(), mode: rootSt.Mode, uid: rootSt.UID, gid: rootSt.GID,
				nlink: int(rootSt.Nlink), flags: rootSt.Flags, entries: map[string]*mnode{}, xattrs: map[xkey][]byte{},
				atime: toNs(rootSt.Atime), mtime: toNs(rootSt.Mtime), ctime: toNs(rootSt.Ctime), btime: toNs(rootSt.Birthtime)}
			root.parent = root
			m.root = root
			m.nodes[root.ino] = root
			for i := range *modelOps {
				m.tick()
				dirs, others := m.all()
				all := append(append([]*mnode(nil), dirs...), others...)
				switch r := rng.IntN(100); {
				case r < 22:
					m.opCreate(dirs)
				case r < 36:
					if len(others) > 0 {
						m.opWrite(others)
					}
				case r < 42:
					if len(others) > 0 {
						m.opTruncate(others)
					}
				case r < 50:
					m.opUnlink(dirs)
				case r < 55:
					m.opRmdir(dirs)
				case r < 60:
					m.opLink(dirs, others)
				case r < 72:
					m.opRename(dirs)
				case r < 84:
					m.opSetattr(all)
				case r < 96:
					m.opXattr(all)
				case r < 99:
					m.opOrphan(dirs)
				default:
					if rng.IntN(2) == 0 {
						m.compare(fmt.Sprintf("op %d", i))
					}
				}
				if i%(*modelOps/4+1) == *modelOps/4 {
					mf.reopen()
					m.fs = mf.fs
					m.compare(fmt.Sprintf("after remount at op %d", i))
					checkFS(t, m.fs)
					if t.Failed() {
						t.FailNow()
					}
				}
			}
			mf.reopen()
			m.fs = mf.fs
			m.compare("at the end")
			checkFS(t, m.fs)
			keys := make([]string, 0, len(m.counts))
			for k := range m.counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var sb strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&sb, " %s:%d", k, m.counts[k])
			}
			t.Logf("operations:%s", sb.String())
		})
	}
}
