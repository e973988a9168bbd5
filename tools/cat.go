package tools

// cat: a file's contents out of an unmounted UFS2 filesystem.

import (
	"errors"
	"fmt"
	"io"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// Cat writes the contents of the regular file p of fsys (a final symlink
// followed, as cat(1) does) to w; holes read as zeros. A directory gives
// ufs.ErrIsDir, another kind of file ufs.ErrInvalid, before anything is
// written.
func Cat(fsys *ufs.FS, p string, w io.Writer) (int64, error) {
	p = cleanPath(p)
	ino, err := fsys.NameiFollow(p)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	switch {
	case st.IsDir():
		return 0, fmt.Errorf("%s: %w", p, ufs.ErrIsDir)
	case st.Type() != ondisk.IFREG:
		return 0, fmt.Errorf("%s: %w: not a regular file", p, ufs.ErrInvalid)
	}
	n, err := io.Copy(tagWrites{w}, io.NewSectionReader(inodeReader{fsys, st}, 0, int64(st.Size)))
	var we writeError
	switch {
	case err == nil:
		return n, nil
	case errors.As(err, &we):
		return n, fmt.Errorf("%w: writing %s: %w", ErrCatOutput, p, we.err)
	}
	return n, fmt.Errorf("%s: %w", p, err)
}

// ErrCatOutput wraps a failure of Cat's writer (a closed pipe, a full
// disk), as opposed to the image's.
var ErrCatOutput = errors.New("tools: output error")

// tagWrites marks its writer's errors as writeError.
type tagWrites struct{ w io.Writer }

func (t tagWrites) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		err = writeError{err}
	}
	return n, err
}

// inodeReader reads one inode as an io.ReaderAt.
type inodeReader struct {
	fs *ufs.FS
	st ufs.Stat
}

func (r inodeReader) ReadAt(p []byte, off int64) (int, error) { return r.fs.ReadAt(r.st.Ino, p, off) }

// writeError is an error of Cat's writer.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
