package ufs

import (
	"errors"
	"fmt"

	"github.com/ufs2/ufs2/alloc"
)

// Sentinel errors. Every error the package returns matches one of them (or
// a blockdev/bcache I/O error) under errors.Is; the mount layer maps them to
// errno in one table.
var (
	// ErrNotUFS2: no UFS2 superblock at any standard location.
	ErrNotUFS2 = errors.New("ufs: not a UFS2 filesystem")
	// ErrUFS1: the filesystem is UFS1, which this project does not support.
	ErrUFS1 = errors.New("ufs: UFS1 is not supported; only UFS2")
	// ErrCorrupt: metadata breaks a rule of the format (a pointer outside
	// the filesystem, a bad directory entry, a check-hash mismatch). The
	// message names the inode or block.
	ErrCorrupt = errors.New("ufs: corrupt filesystem")
	// ErrNotFound: no such file or directory (ENOENT).
	ErrNotFound = errors.New("ufs: no such file or directory")
	// ErrNotDir: a directory was expected (ENOTDIR).
	ErrNotDir = errors.New("ufs: not a directory")
	// ErrIsDir: a non-directory was expected (EISDIR).
	ErrIsDir = errors.New("ufs: is a directory")
	// ErrNotSymlink: Readlink of something else (EINVAL).
	ErrNotSymlink = errors.New("ufs: not a symbolic link")
	// ErrLoop: too many symbolic links in a path (ELOOP).
	ErrLoop = errors.New("ufs: too many levels of symbolic links")
	// ErrNameTooLong: a name longer than 255 bytes or a path longer than
	// 1024 (ENAMETOOLONG).
	ErrNameTooLong = errors.New("ufs: file name too long")
	// ErrReadOnly: a change to a filesystem opened read-only (EROFS).
	ErrReadOnly = errors.New("ufs: read-only filesystem")
	// ErrNoAttr: no such extended attribute (ENOATTR/ENODATA).
	ErrNoAttr = errors.New("ufs: no such extended attribute")
	// ErrInvalid: a bad argument: a negative offset, an inode number out of
	// range (EINVAL).
	ErrInvalid = errors.New("ufs: invalid argument")
	// ErrNoData: SeekData or SeekHole found nothing at or after the offset
	// (ENXIO).
	ErrNoData = errors.New("ufs: no data at or after offset")
	// ErrClosed: the filesystem was closed.
	ErrClosed = errors.New("ufs: filesystem closed")

	// ErrExist: the name already exists (EEXIST).
	ErrExist = errors.New("ufs: file exists")
	// ErrNotEmpty: a directory to remove or replace has entries other
	// than "." and ".." (ENOTEMPTY).
	ErrNotEmpty = errors.New("ufs: directory not empty")
	// ErrTooManyLinks: the link count would pass UFS_LINK_MAX (EMLINK).
	ErrTooManyLinks = errors.New("ufs: too many links")
	// ErrPerm: the operation is forbidden by the file's flags (immutable,
	// append-only, no-unlink, snapshot) or by its type (a hard link to a
	// directory) (EPERM).
	ErrPerm = errors.New("ufs: operation not permitted")
	// ErrFetch: data of a non-resident file could not be brought in from
	// its source (residency.go); the mount reports EIO.
	ErrFetch = errors.New("ufs: non-resident data could not be brought in")
	// ErrNoSpace: no free blocks or inodes (ENOSPC). It wraps
	// alloc.ErrNoSpace.
	ErrNoSpace = fmt.Errorf("ufs: %w", alloc.ErrNoSpace)
	// ErrXattrSpace: the extended attributes would not fit in the
	// inode's extended attribute area (UFS_NXADDR blocks). It wraps
	// ErrNoSpace (ENOSPC).
	ErrXattrSpace = fmt.Errorf("%w: extended attribute area full", ErrNoSpace)
	// ErrTooBig: a write or truncate past the largest file size the
	// filesystem supports (EFBIG).
	ErrTooBig = errors.New("ufs: file too large")
	// ErrNotSupported: the operation does not apply to this kind of file
	// (extended attributes on a device node, unknown flag bits)
	// (EOPNOTSUPP).
	ErrNotSupported = errors.New("ufs: operation not supported")
)

// allocErr turns an error of the allocator into this package's: no space
// becomes ErrNoSpace, a corrupt map ErrCorrupt; the allocator's message
// stays in the chain.
func allocErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, alloc.ErrNoSpace):
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	case errors.Is(err, alloc.ErrCorrupt):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// corruptf returns an error wrapping ErrCorrupt with a location.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
