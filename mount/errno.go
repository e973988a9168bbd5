package mount

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ufs"
)

// errnoTable maps the engine's sentinel errors to what the kernel is told.
// It is the one place where engine errors become errno (ARCHITECTURE.md); the
// first entry matching under errors.Is wins. Nothing maps to ENOSYS: the
// kernel would remember it for the whole connection and stop sending that
// operation.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
}{
	// Corruption first: an error that also wraps another sentinel is
	// still corruption, reported as EIO and logged.
	{ufs.ErrCorrupt, syscall.EIO},
	{ufs.ErrClosed, syscall.EIO},
	{ufs.ErrFetch, syscall.EIO},
	{ufs.ErrNotFound, syscall.ENOENT},
	{ufs.ErrNotDir, syscall.ENOTDIR},
	{ufs.ErrIsDir, syscall.EISDIR},
	{ufs.ErrNotSymlink, syscall.EINVAL},
	{ufs.ErrLoop, syscall.ELOOP},
	{ufs.ErrNameTooLong, syscall.ENAMETOOLONG},
	{ufs.ErrReadOnly, syscall.EROFS},
	{ufs.ErrNoAttr, syscall.ENODATA},
	{ufs.ErrInvalid, syscall.EINVAL},
	{ufs.ErrNoData, syscall.ENXIO},
	{ufs.ErrExist, syscall.EEXIST},
	{ufs.ErrNotEmpty, syscall.ENOTEMPTY},
	{ufs.ErrTooManyLinks, syscall.EMLINK},
	{ufs.ErrPerm, syscall.EPERM},
	{ufs.ErrXattrSpace, syscall.ENOSPC},
	{ufs.ErrNoSpace, syscall.ENOSPC},
	{ufs.ErrTooBig, syscall.EFBIG},
	{ufs.ErrNotSupported, syscall.EOPNOTSUPP},
	{ufs.ErrNotUFS2, syscall.EINVAL},
	{ufs.ErrUFS1, syscall.EINVAL},
	{blockdev.ErrReadOnly, syscall.EROFS},
	{blockdev.ErrOutOfRange, syscall.EIO},
	{context.Canceled, syscall.EINTR},
	{context.DeadlineExceeded, syscall.EINTR},
}

// Errno returns the errno for an engine error: 0 for nil, the table's
// entry for a sentinel, the errno itself for a wrapped syscall.Errno
// (device I/O errors), and EIO for anything else.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, e := range errnoTable {
		if errors.Is(err, e.err) {
			return e.errno
		}
	}
	var en syscall.Errno
	if errors.As(err, &en) && en != 0 && en != syscall.ENOSYS {
		return en
	}
	return syscall.EIO
}

// errno is Errno that also logs the failures the user cannot see from
// the errno alone: corruption and I/O errors.
func (m *mountFS) errno(op string, ino uint64, err error) syscall.Errno {
	en := Errno(err)
	if en == syscall.EIO {
		m.log.LogAttrs(context.Background(), slog.LevelError, "operation failed", slog.String("op", op),
			slog.Uint64("ino", ino), slog.String("err", err.Error()))
	}
	return en
}
