package tools

// ls: list files of an unmounted UFS2 filesystem, like ls(1).

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"time"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// ListOptions selects what List prints.
type ListOptions struct {
	Long      bool // ls -l: mode, links, owner, group, size, mtime, name (-> target)
	Recursive bool // ls -R: every directory below, each under a "path:" header
}

// List writes the entries of the file or directory p of fsys to w, sorted
// by name, "." and ".." left out. With Long each line is
//
//	-rwsr-xr-x  2 1001 1001      1234 2024-01-02 15:04 name -> target
//
// (owner and group numeric; mtime in UTC; the size column of a device
// holds "major, minor" in FreeBSD's encoding). p itself is listed when it
// is not a directory. Symlinks are not followed.
func List(fsys *ufs.FS, p string, opts ListOptions, w io.Writer) error {
	bw := bufio.NewWriter(w)
	err := list(fsys, p, opts, bw)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

func list(fsys *ufs.FS, p string, opts ListOptions, w *bufio.Writer) error {
	ino, st, err := lstatPath(fsys, p)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return writeEntry(fsys, w, path.Base(p), st, opts)
	}
	return listDir(fsys, p, ino, opts, w, true, false, map[ondisk.Ino]string{})
}

func lstatPath(fsys *ufs.FS, p string) (ondisk.Ino, ufs.Stat, error) {
	ino, err := fsys.Namei(p)
	if err != nil {
		return 0, ufs.Stat{}, fmt.Errorf("%s: %w", p, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return 0, ufs.Stat{}, fmt.Errorf("%s: %w", p, err)
	}
	return ino, st, nil
}

// ListPaths is List of several paths, printed as ls(1) prints several
// operands: those that are not directories first, sorted, as List prints
// them, then each directory sorted, under a "PATH:" header, the
// directories separated by blank lines. A path that cannot be looked up is
// handed to bad (ls's "No such file or directory" on stderr) and left
// out; ListPaths returns only errors of writing and of listing.
func ListPaths(fsys *ufs.FS, paths []string, opts ListOptions, w io.Writer, bad func(error)) error {
	if len(paths) == 1 {
		return List(fsys, paths[0], opts, w)
	}
	type operand struct {
		p   string
		ino ondisk.Ino
		st  ufs.Stat
	}
	var files, dirs []operand
	for _, p := range paths {
		ino, st, err := lstatPath(fsys, p)
		switch {
		case err != nil:
			bad(err)
		case st.IsDir():
			dirs = append(dirs, operand{p, ino, st})
		default:
			files = append(files, operand{p, ino, st})
		}
	}
	byPath := func(a, b operand) int { return cmp.Compare(a.p, b.p) }
	slices.SortStableFunc(files, byPath)
	slices.SortStableFunc(dirs, byPath)
	bw := bufio.NewWriter(w)
	var err error
	for _, f := range files {
		if err = writeEntry(fsys, bw, f.p, f.st, opts); err != nil {
			break
		}
	}
	for i, d := range dirs {
		if err != nil {
			break
		}
		err = listDir(fsys, d.p, d.ino, opts, bw, i == 0 && len(files) == 0, true, map[ondisk.Ino]string{})
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

type lsEntry struct {
	name string
	st   ufs.Stat
}

// listDir lists directory p (inode ino). The "p:" header goes before it
// with -R or header, after a blank line unless first. seen holds the
// directories listed so far, by the path they were listed at.
func listDir(fsys *ufs.FS, p string, ino ondisk.Ino, opts ListOptions, w *bufio.Writer, first, header bool, seen map[ondisk.Ino]string) error {
	if at, ok := seen[ino]; ok {
		return fmt.Errorf("%s: %w: the directory %s again (a directory cycle)", p, ufs.ErrCorrupt, at)
	}
	seen[ino] = p
	var ents []lsEntry
	var ierr error
	err := fsys.ReadDir(ino, func(e ufs.Dirent) bool {
		if e.Name == "." || e.Name == ".." {
			return true
		}
		st, err := fsys.Stat(e.Ino)
		if err != nil {
			ierr = fmt.Errorf("%s: %w", path.Join(p, e.Name), err)
			return false
		}
		ents = append(ents, lsEntry{e.Name, st})
		return true
	})
	if ierr != nil {
		return ierr // names the entry
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	slices.SortFunc(ents, func(a, b lsEntry) int { return cmp.Compare(a.name, b.name) })
	if opts.Recursive || header {
		if !first {
			w.WriteString("\n")
		}
		fmt.Fprintf(w, "%s:\n", p)
	}
	if opts.Long {
		var blocks uint64
		for _, e := range ents {
			blocks += e.st.Blocks
		}
		fmt.Fprintf(w, "total %d\n", blocks/2) // in KiB, as ls -k
	}
	for _, e := range ents {
		if err := writeEntry(fsys, w, e.name, e.st, opts); err != nil {
			return err
		}
	}
	if opts.Recursive {
		for _, e := range ents {
			if e.st.IsDir() {
				if err := listDir(fsys, path.Join(p, e.name), e.st.Ino, opts, w, false, false, seen); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func writeEntry(fsys *ufs.FS, w *bufio.Writer, name string, st ufs.Stat, opts ListOptions) error {
	if !opts.Long {
		fmt.Fprintln(w, name)
		return nil
	}
	size := fmt.Sprint(st.Size)
	if t := st.Type(); t == ondisk.IFCHR || t == ondisk.IFBLK {
		major, minor := FreeBSDDevParts(st.Rdev)
		size = fmt.Sprintf("%d, %d", major, minor)
	}
	fmt.Fprintf(w, "%s %2d %d %d %9s %s %s", ModeString(st.Mode), st.Nlink, st.UID, st.GID, size,
		st.Mtime.UTC().Format(time.DateOnly+" 15:04"), name)
	if st.Type() == ondisk.IFLNK {
		target, err := fsys.Readlink(st.Ino)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(w, " -> %s", target)
	}
	w.WriteString("\n")
	return nil
}

// ModeString renders di_mode as ls -l does: the type letter, then rwx
// triplets with s/S for setuid and setgid and t/T for sticky.
func ModeString(mode uint16) string {
	var b [10]byte
	switch mode & ondisk.IFMT {
	case ondisk.IFDIR:
		b[0] = 'd'
	case ondisk.IFLNK:
		b[0] = 'l'
	case ondisk.IFCHR:
		b[0] = 'c'
	case ondisk.IFBLK:
		b[0] = 'b'
	case ondisk.IFIFO:
		b[0] = 'p'
	case ondisk.IFSOCK:
		b[0] = 's'
	case ondisk.IFWHT:
		b[0] = 'w'
	case ondisk.IFREG:
		b[0] = '-'
	default:
		b[0] = '?'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		} else {
			b[1+i] = '-'
		}
	}
	special := func(idx int, bit uint16, set, unset byte) {
		if mode&bit == 0 {
			return
		}
		if b[idx] == 'x' {
			b[idx] = set
		} else {
			b[idx] = unset
		}
	}
	special(3, ondisk.ISUID, 's', 'S')
	special(6, ondisk.ISGID, 's', 'S')
	special(9, ondisk.ISVTX, 't', 'T')
	return string(b[:])
}

// FreeBSDDevParts splits a FreeBSD dev_t (as di_rdev holds it) into major
// and minor numbers (sys/types.h major() and minor()).
func FreeBSDDevParts(dev uint64) (major, minor uint32) {
	major = uint32((dev>>32)&0xffffff00) | uint32((dev>>8)&0xff)
	minor = uint32((dev>>24)&0xff00) | uint32(dev&0xffff00ff)
	return major, minor
}
