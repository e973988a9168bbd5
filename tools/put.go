package tools

// put: copy host files into an unmounted UFS2 filesystem.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// PutOptions tunes Put.
type PutOptions struct {
	// Warn, if set, receives each non-fatal problem as it happens (an
	// extended attribute with no FreeBSD namespace, or one the filesystem
	// refused); they are also in PutResult.Warnings.
	Warn func(error)
	// UseReserve says fsys was opened with ufs.Options.UseReserve: the
	// space check counts the minfree reserve as free.
	UseReserve bool
}

// ErrPutNoSpace is Put's refusal to start a copy the filesystem has no
// room for (a *SpaceError says how much).
var ErrPutNoSpace = errors.New("not enough free space for the copy")

// SpaceError is Put's refusal before copying: what the host tree needs
// (TreeUsage, an upper estimate) against what the filesystem has free.
type SpaceError struct {
	Src                    string
	NeedBytes, FreeBytes   int64
	NeedInodes, FreeInodes int64
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("%s needs about %s and %s; the filesystem has %s and %s free",
		e.Src, byteSize(e.NeedBytes), inodes(e.NeedInodes), byteSize(e.FreeBytes), inodes(e.FreeInodes))
}

func (e *SpaceError) Unwrap() error { return ErrPutNoSpace }

// inodes is "1 inode" or "N inodes".
func inodes(n int64) string {
	if n == 1 {
		return "1 inode"
	}
	return fmt.Sprintf("%d inodes", n)
}

// byteSize is n bytes in KiB, MiB, GiB or TiB with one decimal.
func byteSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// PutResult counts what Put made.
type PutResult = newfs.CopyResult

// ErrPutHost wraps host-side failures of Put (a source that cannot be
// read); it is newfs.ErrHost, where the copying is done.
var ErrPutHost = newfs.ErrHost

// Put copies the host file or tree src (a final symlink is copied as a
// symlink) to dst in fsys, the mirror of Get:
//
// If dst is an existing directory and src is a directory, the contents of
// src go into dst and dst takes src's attributes (so "put dir /" makes the
// root a copy of dir); if dst is an existing directory and src is not, the
// copy is dst/<base of src>; otherwise dst is created in its parent
// directory, which must exist, replacing a non-directory of that name.
//
// What is preserved, and how existing names are treated, is newfs.Copier's
// (it does the copying for newfs --from too): contents with holes and
// all-zero blocks left as holes, permission bits with setuid, setgid and
// sticky, owners, atime and mtime to the nanosecond, symlinks, hard links
// within src, device nodes, fifos, sockets, and extended attributes (Linux
// user.* as FreeBSD's user namespace, trusted.* as the system namespace).
//
// Before copying anything, Put estimates what src needs (EstimateTree)
// and refuses with a *SpaceError if the free blocks or inodes fall short,
// counting the blocks of a file that the copy replaces as free. Once
// started it stops at the first error and when ctx is done; what it
// copied until then stays (PutResult says what that is).
func Put(ctx context.Context, fsys *ufs.FS, src, dst string, opts PutOptions) (PutResult, error) {
	c := newfs.NewCopier(fsys, newfs.CopyOptions{Warn: opts.Warn})
	fi, err := os.Lstat(src)
	if err != nil {
		return c.Result(), fmt.Errorf("%w: %w", ErrPutHost, err)
	}
	dst = cleanPath(dst)
	if err := checkSpace(fsys, src, fi, dst, opts.UseReserve); err != nil {
		return c.Result(), err
	}
	if ino, err := fsys.NameiFollow(dst); err == nil {
		st, err := fsys.Stat(ino)
		if err != nil {
			return c.Result(), fmt.Errorf("%s: %w", dst, err)
		}
		if st.IsDir() {
			if fi.IsDir() {
				err = c.Fill(ctx, src, ino, dst)
				return c.Result(), err
			}
			_, err = c.Entry(ctx, src, ino, dst, filepath.Base(src))
			return c.Result(), err
		}
	} else if !errors.Is(err, ufs.ErrNotFound) {
		return c.Result(), fmt.Errorf("%s: %w", dst, err)
	}
	parent, name, err := parentOf(fsys, dst)
	if err != nil {
		return c.Result(), err
	}
	_, err = c.Entry(ctx, src, parent, path.Dir(dst), name)
	return c.Result(), err
}

// checkSpace refuses a copy of src (fi) to dst that fsys cannot hold.
func checkSpace(fsys *ufs.FS, src string, fi os.FileInfo, dst string, useReserve bool) error {
	sb := fsys.Superblock()
	u, err := EstimateTree(src, int64(sb.Bsize), int64(sb.Fsize))
	if err != nil {
		return err
	}
	st := fsys.Statfs()
	freeFrags, freeInodes := int64(st.Bfree), int64(st.Ffree)
	if !useReserve {
		freeFrags = max(st.Bavail, 0)
	}
	// A file that the copy replaces gives its blocks back first.
	target := dst
	if ino, err := fsys.NameiFollow(dst); err == nil {
		if dstSt, err := fsys.Stat(ino); err == nil && dstSt.IsDir() && !fi.IsDir() {
			target = path.Join(dst, filepath.Base(src))
		}
	}
	if ino, err := fsys.Namei(target); err == nil {
		if old, err := fsys.Stat(ino); err == nil && !old.IsDir() && old.Nlink == 1 {
			freeFrags += int64(old.Blocks) * 512 / int64(sb.Fsize)
			freeInodes++
		}
	}
	u.Frags++ // the entry in dst's parent may take it a new fragment
	if u.Frags <= freeFrags && u.Inodes <= freeInodes {
		return nil
	}
	return &SpaceError{Src: src,
		NeedBytes: u.Frags * int64(sb.Fsize), FreeBytes: freeFrags * int64(sb.Fsize),
		NeedInodes: u.Inodes, FreeInodes: freeInodes,
	}
}

// cleanPath makes p absolute and clean ("a/b/" is "/a/b").
func cleanPath(p string) string { return path.Clean("/" + p) }

// parentOf resolves the directory holding the last component of the clean
// path p and returns it with that component. The root has no parent
// (ErrInvalid).
func parentOf(fsys *ufs.FS, p string) (ondisk.Ino, string, error) {
	if p == "/" {
		return 0, "", fmt.Errorf("/: %w: the root directory has no name in a parent", ufs.ErrInvalid)
	}
	dir, name := path.Split(p)
	ino, err := fsys.NameiFollow(dir)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", path.Clean(dir), err)
	}
	return ino, name, nil
}
