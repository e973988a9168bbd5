package tools

// The offline namespace verbs: mkdir, rm, mv, ln, chmod and chown on an
// unmounted UFS2 filesystem, each a thin layer of path handling over the
// engine's vnode operations.

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// MkdirOptions tunes Mkdir.
type MkdirOptions struct {
	// Parents makes missing parent directories and accepts an existing
	// directory (mkdir -p).
	Parents bool
	// Mode is the new directory's permission bits (07777).
	Mode uint16
	// ParentMode is the permission bits of parents made by Parents.
	ParentMode uint16
	// UID owns the new directories. Their group is the parent
	// directory's, as BSD always does.
	UID uint32
}

// Mkdir makes directory p. Without Parents, p's parent must exist and p
// must not (ufs.ErrExist).
func Mkdir(fsys *ufs.FS, p string, opts MkdirOptions) (ondisk.Ino, error) {
	p = cleanPath(p)
	if opts.Parents {
		ino, err := fsys.NameiFollow(p)
		if err == nil {
			st, err := fsys.Stat(ino)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", p, err)
			}
			if !st.IsDir() {
				return 0, fmt.Errorf("%s: %w", p, ufs.ErrExist)
			}
			return ino, nil
		}
		if !errors.Is(err, ufs.ErrNotFound) {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		if dir := path.Dir(p); dir != p {
			popts := opts
			popts.Mode = opts.ParentMode
			if _, err := Mkdir(fsys, dir, popts); err != nil {
				return 0, err
			}
		}
	}
	parent, name, err := parentOf(fsys, p)
	if err != nil {
		return 0, err
	}
	pst, err := fsys.Stat(parent)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path.Dir(p), err)
	}
	ino, err := fsys.Mkdir(parent, name, opts.Mode&0o7777, opts.UID, pst.GID)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return ino, nil
}

// RemoveOptions tunes Remove.
type RemoveOptions struct {
	Recursive bool // remove directories and their contents (rm -r)
	Force     bool // a missing path is not an error (rm -f)
}

// ErrRefused is returned for a removal rm(1) refuses: the root directory,
// or a path whose last component is "." or "..". The error's text after
// it is rm's message ("\"/\" may not be removed").
var ErrRefused = errors.New("tools: refusing to remove")

// Remove removes p, not following a final symlink. A directory needs
// Recursive (ufs.ErrIsDir otherwise), which removes everything below it
// first, depth first; Remove stops at the first failure or when ctx is
// done.
func Remove(ctx context.Context, fsys *ufs.FS, p string, opts RemoveOptions) error {
	if b := path.Base(p); b == "." || b == ".." {
		return fmt.Errorf("%w: \".\" and \"..\" may not be removed", ErrRefused)
	}
	p = cleanPath(p)
	if p == "/" {
		return fmt.Errorf("%w: \"/\" may not be removed", ErrRefused)
	}
	parent, name, err := parentOf(fsys, p)
	if err != nil {
		if opts.Force && errors.Is(err, ufs.ErrNotFound) {
			return nil
		}
		return err
	}
	ino, err := fsys.Lookup(parent, name)
	if err != nil {
		if opts.Force && errors.Is(err, ufs.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("%s: %w", p, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !st.IsDir() {
		if err := fsys.Unlink(parent, name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	}
	if !opts.Recursive {
		return fmt.Errorf("%s: %w", p, ufs.ErrIsDir)
	}
	return removeTree(ctx, fsys, parent, name, ino, p, map[ondisk.Ino]string{})
}

// removeTree empties directory ino (name in parent, at path p) and
// removes it.
func removeTree(ctx context.Context, fsys *ufs.FS, parent ondisk.Ino, name string, ino ondisk.Ino, p string, seen map[ondisk.Ino]string) error {
	if at, ok := seen[ino]; ok {
		return fmt.Errorf("%s: %w: the directory %s again (a directory cycle)", p, ufs.ErrCorrupt, at)
	}
	seen[ino] = p
	kids, err := children(fsys, ino, p)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := ctx.Err(); err != nil {
			return err
		}
		cp := path.Join(p, k.name)
		st, err := fsys.Stat(k.ino)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		if st.IsDir() {
			err = removeTree(ctx, fsys, ino, k.name, k.ino, cp, seen)
		} else if err = fsys.Unlink(ino, k.name); err != nil {
			err = fmt.Errorf("%s: %w", cp, err)
		}
		if err != nil {
			return err
		}
	}
	if err := fsys.Rmdir(parent, name); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

type child struct {
	name string
	ino  ondisk.Ino
}

// children lists directory ino (at path p) less "." and "..".
func children(fsys *ufs.FS, ino ondisk.Ino, p string) ([]child, error) {
	var kids []child
	err := fsys.ReadDir(ino, func(e ufs.Dirent) bool {
		if e.Name != "." && e.Name != ".." {
			kids = append(kids, child{e.Name, e.Ino})
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return kids, nil
}

// intoDir resolves the destination of mv and ln: if dst (followed) is an
// existing directory, the new name is dst/<base of src> in it; otherwise
// dst's parent and last component.
func intoDir(fsys *ufs.FS, src, dst string) (dir ondisk.Ino, name, at string, err error) {
	dst = cleanPath(dst)
	if ino, err := fsys.NameiFollow(dst); err == nil {
		st, err := fsys.Stat(ino)
		if err != nil {
			return 0, "", "", fmt.Errorf("%s: %w", dst, err)
		}
		if st.IsDir() {
			base := path.Base(cleanPath(src))
			if base == "/" {
				base = path.Base(src)
			}
			return ino, base, path.Join(dst, base), nil
		}
	} else if !errors.Is(err, ufs.ErrNotFound) {
		return 0, "", "", fmt.Errorf("%s: %w", dst, err)
	}
	dir, name, err = parentOf(fsys, dst)
	return dir, name, dst, err
}

// Rename moves src to dst as mv(1) does: into dst when dst is an existing
// directory, else to the name dst, replacing a file there or an empty
// directory (when src is one) by the engine's POSIX rename rules.
func Rename(fsys *ufs.FS, src, dst string) error {
	src = cleanPath(src)
	if src == "/" {
		return fmt.Errorf("/: %w: the root directory cannot be moved", ufs.ErrInvalid)
	}
	odir, oname, err := parentOf(fsys, src)
	if err != nil {
		return err
	}
	if _, err := fsys.Lookup(odir, oname); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	ndir, nname, at, err := intoDir(fsys, src, dst)
	if err != nil {
		return err
	}
	if strings.HasPrefix(at, src+"/") {
		return fmt.Errorf("%s to %s: %w: a directory cannot move below itself", src, at, ufs.ErrInvalid)
	}
	if err := fsys.Rename(odir, oname, ndir, nname, ufs.RenameFlags{}); err != nil {
		return fmt.Errorf("%s to %s: %w", src, at, err)
	}
	return nil
}

// Link makes dst a new hard link to src (not following a final symlink of
// src: the link itself gets the new name); into dst when dst is an
// existing directory. An existing dst gives ufs.ErrExist; a directory src
// gives ufs.ErrIsDir, as FreeBSD's ln reports it (link(2) says EPERM).
func Link(fsys *ufs.FS, src, dst string) error {
	src = cleanPath(src)
	ino, err := fsys.Namei(src)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if st, err := fsys.Stat(ino); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	} else if st.IsDir() {
		return fmt.Errorf("%s: %w", src, ufs.ErrIsDir) // as FreeBSD ln says
	}
	dir, name, at, err := intoDir(fsys, src, dst)
	if err != nil {
		return err
	}
	if err := fsys.Link(ino, dir, name); err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	return nil
}

// Symlink makes dst a symbolic link holding target (which need not
// exist); into dst when dst is an existing directory, as ln -s does. The
// link is owned by uid and the group of its directory.
func Symlink(fsys *ufs.FS, target, dst string, uid uint32) error {
	if target == "" {
		return fmt.Errorf("%w: empty symbolic link target", ufs.ErrInvalid)
	}
	dir, name, at, err := intoDir(fsys, target, dst)
	if err != nil {
		return err
	}
	dst2, err := fsys.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", path.Dir(at), err)
	}
	if _, err := fsys.Symlink(dir, name, target, uid, dst2.GID); err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	return nil
}

// WalkFunc is called by Walk for each inode with its path and attributes.
type WalkFunc func(p string, st ufs.Stat) error

// Walk calls fn for p (following a final symlink unless noFollow) and, if
// it is a directory and recursive, for everything below it, parents before
// their contents; symlinks below p are passed to fn, never followed.
func Walk(ctx context.Context, fsys *ufs.FS, p string, recursive, noFollow bool, fn WalkFunc) error {
	p = cleanPath(p)
	var ino ondisk.Ino
	var err error
	if noFollow {
		ino, err = fsys.Namei(p)
	} else {
		ino, err = fsys.NameiFollow(p)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return walk(ctx, fsys, ino, p, recursive, fn, map[ondisk.Ino]string{})
}

func walk(ctx context.Context, fsys *ufs.FS, ino ondisk.Ino, p string, recursive bool, fn WalkFunc, seen map[ondisk.Ino]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := fn(p, st); err != nil {
		return err
	}
	if !recursive || !st.IsDir() {
		return nil
	}
	if at, ok := seen[ino]; ok {
		return fmt.Errorf("%s: %w: the directory %s again (a directory cycle)", p, ufs.ErrCorrupt, at)
	}
	seen[ino] = p
	kids, err := children(fsys, ino, p)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := walk(ctx, fsys, k.ino, path.Join(p, k.name), true, fn, seen); err != nil {
			return err
		}
	}
	return nil
}

// Chmod changes the mode of p (following a final symlink) and, with
// recursive, of everything below it except symlinks (whose mode means
// nothing), as chmod -R does.
func Chmod(ctx context.Context, fsys *ufs.FS, p string, m Mode, recursive bool) error {
	return Walk(ctx, fsys, p, recursive, false, func(q string, st ufs.Stat) error {
		if st.Type() == ondisk.IFLNK {
			return nil
		}
		mode := m.Apply(st.Perm(), st.IsDir())
		if mode == st.Perm() {
			return nil
		}
		if _, err := fsys.Setattr(st.Ino, ufs.SetAttr{Mode: &mode}); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		return nil
	})
}

// Chown sets the owner (uid, if not nil) and group (gid, if not nil) of p
// and, with recursive, of everything below it. A final symlink of p is
// followed unless noFollow (chown -h); symlinks below p are changed
// themselves, never followed (chown -R's default).
func Chown(ctx context.Context, fsys *ufs.FS, p string, uid, gid *uint32, recursive, noFollow bool) error {
	return Walk(ctx, fsys, p, recursive, noFollow, func(q string, st ufs.Stat) error {
		if (uid == nil || *uid == st.UID) && (gid == nil || *gid == st.GID) {
			return nil
		}
		if _, err := fsys.Setattr(st.Ino, ufs.SetAttr{UID: uid, GID: gid}); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		return nil
	})
}
