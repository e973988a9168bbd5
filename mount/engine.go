package mount

import (
	"context"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// Engine is what the FUSE adapter needs of the filesystem engine: calls
// keyed by inode number, errors that match the ufs sentinels. *ufs.FS
// implements it; the interface keeps go-fuse's node API at arm's length so
// that a raw-API adapter (or a fake in tests) could replace it.
type Engine interface {
	Root() ondisk.Ino
	Lookup(dir ondisk.Ino, name string) (ondisk.Ino, error)
	Stat(ino ondisk.Ino) (ufs.Stat, error)
	ReadDirAt(dir ondisk.Ino, off int64, fn func(ufs.Dirent) bool) error
	ReadAt(ino ondisk.Ino, p []byte, off int64) (int, error)
	// WaitResident waits, interruptibly, for data of a file that lives
	// elsewhere (data or shadow migration); ReadAt and the writes wait
	// too, but without the request's context.
	WaitResident(ctx context.Context, ino ondisk.Ino, off, end int64) error
	Readlink(ino ondisk.Ino) (string, error)
	ListXattr(ino ondisk.Ino) ([]ufs.Xattr, error)
	GetXattr(ino ondisk.Ino, ns uint8, name string) ([]byte, error)
	SeekData(ino ondisk.Ino, off int64) (int64, error)
	SeekHole(ino ondisk.Ino, off int64) (int64, error)

	Statfs() ufs.Statfs

	// Superblock and the read-only state serve the mount policy.
	Superblock() ondisk.Superblock
	ReadOnly() bool
	ReadOnlyReason() string

	// Close writes everything dirty, marks the filesystem clean and
	// closes the device.
	Close() error
}

var _ Engine = (*ufs.FS)(nil)
