package dump

// restore -C: compare the dump with the tree in the host directory.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
)

// ErrDiffers: -C found differences (each was reported through Warn).
var ErrDiffers = errors.New("restore: some files differ from the dump")

// compare is -C: every name of the dump (or of Names) against the same
// path under Dir: type, permission bits, owner, size, mtime to the
// nanosecond, contents, symlink target, device number and extended
// attributes. Directories are compared for type, mode and owner.
func (r *restorer) compare() error {
	t := walkTree(r.dirs, r.rd.InoDumped, r.warn)
	want := map[uint32][]string{}
	diffs := 0
	differ := func(rel, format string, args ...any) {
		diffs++
		r.warn(fmt.Errorf("%s: %s", dotPath(rel), fmt.Sprintf(format, args...)))
	}
	err := r.eachNamed(t, func(start, end int) error {
		for _, it := range t.order[start:end] {
			if it.dir {
				a := &t.dirs[it.ino].Attr
				r.compareMeta(it.path, a, differ, false)
				r.res.Dirs++
				continue
			}
			want[it.ino] = append(want[it.ino], it.path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for h := r.next; h != nil; {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		names := want[h.Inumber]
		if len(names) == 0 || h.Mode&ondisk.IFMT == ondisk.IFDIR {
			if err := r.rd.SkipFile(); err != nil {
				return err
			}
		} else {
			delete(want, h.Inumber)
			if err := r.compareFile(h, names, differ); err != nil {
				return err
			}
			r.res.Files++
		}
		var err error
		if h, err = r.rd.Next(); err != nil {
			return err
		}
	}
	for ino, names := range want {
		r.warn(fmt.Errorf("%s: (inode %d) not found on tape", dotPath(names[0]), ino))
	}
	if diffs > 0 {
		return fmt.Errorf("%w: %d differences", ErrDiffers, diffs)
	}
	return nil
}

// compareMeta compares the type, mode, owner and (for non-directories)
// mtime of the host path rel with a.
func (r *restorer) compareMeta(rel string, a *fileAttr, differ func(string, string, ...any), times bool) (*unix.Stat_t, bool) {
	p := r.tg.name(rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		differ(rel, "missing on the host (%v)", err)
		return nil, false
	}
	if uint32(st.Mode)&unix.S_IFMT != uint32(a.Mode&ondisk.IFMT) {
		differ(rel, "type 0%o on the host, 0%o in the dump", st.Mode&unix.S_IFMT, a.Mode&ondisk.IFMT)
		return nil, false
	}
	if a.Mode&ondisk.IFMT != ondisk.IFLNK && st.Mode&0o7777 != uint32(a.Mode&0o7777) {
		differ(rel, "mode %04o on the host, %04o in the dump", st.Mode&0o7777, a.Mode&0o7777)
	}
	if r.owners && (st.Uid != a.UID || st.Gid != a.GID) {
		differ(rel, "owner %d:%d on the host, %d:%d in the dump", st.Uid, st.Gid, a.UID, a.GID)
	}
	if times && (st.Mtim.Sec != a.Mtime || st.Mtim.Nsec != int64(a.Mtimensec)) {
		differ(rel, "mtime %d.%09d on the host, %d.%09d in the dump", st.Mtim.Sec, st.Mtim.Nsec, a.Mtime, a.Mtimensec)
	}
	return &st, true
}

// compareFile compares one file of the dump with each of its names.
func (r *restorer) compareFile(h *Header, names []string, differ func(string, string, ...any)) error {
	hc := *h
	h = &hc
	rel := names[0]
	var ea []byte
	var err error
	a := attrOf(h, nil)
	st, ok := r.compareMeta(rel, &a, differ, h.Mode&ondisk.IFMT != ondisk.IFLNK)
	if !ok {
		return r.rd.SkipFile()
	}
	for _, n := range names[1:] {
		var lst unix.Stat_t
		if err := unix.Lstat(r.tg.name(n), &lst); err != nil || lst.Ino != st.Ino || lst.Dev != st.Dev {
			differ(n, "not a hard link of %s on the host", dotPath(rel))
		}
	}
	p := r.tg.name(rel)
	switch h.Mode & ondisk.IFMT {
	case ondisk.IFREG:
		if st.Size != int64(h.Size) {
			differ(rel, "size %d on the host, %d in the dump", st.Size, h.Size)
			return r.rd.SkipFile()
		}
		f, oerr := os.Open(p)
		if oerr != nil {
			differ(rel, "cannot be read on the host: %v", oerr)
			return r.rd.SkipFile()
		}
		c := &contentCmp{f: f, bad: -1}
		ea, err = r.rd.ReadFile(c)
		if err == nil && c.bad < 0 {
			c.checkZeros(c.next, int64(h.Size))
		}
		f.Close()
		if c.bad >= 0 {
			differ(rel, "contents differ at byte %d", c.bad)
		}
	case ondisk.IFLNK:
		col := &collector{limit: 1 << 16}
		if ea, err = r.rd.ReadFile(col); err != nil {
			return err
		}
		target := string(col.b[:min(len(col.b), int(min(h.Size, 1<<16)))])
		if got, lerr := os.Readlink(p); lerr != nil || got != target {
			differ(rel, "symlink to %q on the host, to %q in the dump", got, target)
		}
	case ondisk.IFCHR, ondisk.IFBLK:
		if ea, err = r.rd.ReadFile(nil); err == nil && st.Rdev != hostDev(h) {
			differ(rel, "device %d:%d on the host, %d:%d in the dump", unix.Major(st.Rdev), unix.Minor(st.Rdev), unix.Major(hostDev(h)), unix.Minor(hostDev(h)))
		}
	default:
		ea, err = r.rd.ReadFile(nil)
	}
	if err != nil {
		return err
	}
	if w, g := dumpXattrs(ea), hostXattrs(p); w != g {
		differ(rel, "extended attributes [%s] on the host, [%s] in the dump", g, w)
	}
	return nil
}

// contentCmp compares the data records of a file with the host file;
// the holes between them must read as zeros.
type contentCmp struct {
	f    *os.File
	next int64 // the first byte not yet compared
	bad  int64
	buf  []byte
}

func (c *contentCmp) Data(off int64, b []byte) error {
	if c.bad >= 0 {
		return nil
	}
	c.checkZeros(c.next, off)
	if c.bad >= 0 {
		return nil
	}
	if cap(c.buf) < len(b) {
		c.buf = make([]byte, len(b))
	}
	got := c.buf[:len(b)]
	n, _ := c.f.ReadAt(got, off)
	if n < len(b) || !bytes.Equal(got, b) {
		for i := range b {
			if i >= n || got[i] != b[i] {
				c.bad = off + int64(i)
				break
			}
		}
	}
	c.next = off + int64(len(b))
	return nil
}

// checkZeros checks that the host file reads zeros in [from, to).
func (c *contentCmp) checkZeros(from, to int64) {
	buf := make([]byte, 64<<10)
	for off := from; off < to && c.bad < 0; {
		n := int(min(int64(len(buf)), to-off))
		m, err := c.f.ReadAt(buf[:n], off)
		if m < n && !errors.Is(err, io.EOF) {
			c.bad = off + int64(m)
			return
		}
		for i, x := range buf[:m] {
			if x != 0 {
				c.bad = off + int64(i)
				return
			}
		}
		off += int64(n)
	}
}

// dumpXattrs is a file's attributes as sorted "name=value" text, in Linux
// names.
func dumpXattrs(ea []byte) string {
	xs, _ := ParseXattrs(ea)
	var out []string
	for _, x := range xs {
		if n, ok := hostXattrName(x.Namespace, x.Name); ok {
			out = append(out, n+"="+string(x.Value))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// hostXattrs is a host path's user.* and trusted.* attributes the same
// way.
func hostXattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return ""
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "trusted.") {
			v := make([]byte, 64<<10)
			if m, err := unix.Lgetxattr(p, name, v); err == nil {
				out = append(out, name+"="+string(v[:m]))
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
