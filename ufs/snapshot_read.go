package ufs

import (
	"fmt"
	"strings"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// Reading snapshots (FreeBSD's form, sys/ufs/ffs/ffs_snapshot.c): a
// snapshot is a regular file flagged SF_SNAPSHOT and listed in
// fs_snapinum, as large as the filesystem; read through readSnapshot it is
// the filesystem's image as it was when the snapshot was taken. Writing a
// filesystem that holds one keeps it so (snapshot_cow.go); WriteRefusal
// refuses read-write a filesystem holding more than one.

// Snapshot is one snapshot of the filesystem.
type Snapshot struct {
	Ino  ondisk.Ino
	Name string // its name in /.snap, "" if it has none there
	Size int64  // bytes: the filesystem's size when it was taken
	Time int64  // its birth time, Unix seconds
	// Blocks is the snapshot file's di_blocks (512-byte sectors).
	Blocks uint64
}

// Snapshots lists the snapshots fs_snapinum names, with their names in
// /.snap when they have one there.
func (fs *FS) Snapshots() ([]Snapshot, error) {
	names := map[ondisk.Ino]string{}
	if dir, err := fs.Namei("/.snap"); err == nil {
		if err := fs.ReadDirAt(dir, 0, func(e Dirent) bool {
			names[e.Ino] = e.Name
			return true
		}); err != nil {
			return nil, err
		}
	}
	var out []Snapshot
	for _, n := range fs.sb.Snapinum {
		if n == 0 {
			continue
		}
		ino := ondisk.Ino(n)
		st, err := fs.Stat(ino)
		if err != nil {
			return nil, fmt.Errorf("snapshot inode %d (fs_snapinum): %w", ino, err)
		}
		if st.Flags&ondisk.SFSnapshot == 0 {
			return nil, fs.corrupt(corruptf("fs_snapinum lists inode %d, which is not a snapshot (flags 0x%x)", ino, st.Flags))
		}
		out = append(out, Snapshot{Ino: ino, Name: names[ino], Size: int64(st.Size), Time: st.Birthtime.Unix(), Blocks: st.Blocks})
	}
	return out, nil
}

// SnapshotByName finds the snapshot called name (its name in /.snap, or
// the path given from the root).
func (fs *FS) SnapshotByName(name string) (Snapshot, error) {
	snaps, err := fs.Snapshots()
	if err != nil {
		return Snapshot{}, err
	}
	var have []string
	for _, s := range snaps {
		if s.Name == name || "/.snap/"+s.Name == name {
			return s, nil
		}
		have = append(have, s.Name)
	}
	if len(have) == 0 {
		return Snapshot{}, plainError(ErrNotFound, fmt.Sprintf("no snapshot %q: the filesystem has no snapshots", name))
	}
	return Snapshot{}, plainError(ErrNotFound, fmt.Sprintf("no snapshot %q (there are: %s)", name, strings.Join(have, ", ")))
}

// SnapshotDevice returns snapshot s as a read-only device: the frozen
// image, which Open reads as a filesystem (ufs, fsck, dumpfs all take it).
func (fs *FS) SnapshotDevice(s Snapshot) blockdev.Device {
	return &snapDev{fs: fs, s: s, name: fmt.Sprintf("%s (snapshot %s)", fs.dev.Name(), s.Name)}
}

type snapDev struct {
	fs   *FS
	s    Snapshot
	name string
}

func (d *snapDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.s.Size {
		return 0, fmt.Errorf("%w: %d bytes at %d of a %d-byte snapshot", blockdev.ErrOutOfRange, len(p), off, d.s.Size)
	}
	return d.fs.ReadAt(d.s.Ino, p, off)
}

func (d *snapDev) WriteAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("%w: %s", blockdev.ErrReadOnly, d.name)
}

func (d *snapDev) Size() int64    { return d.s.Size }
func (d *snapDev) Sync() error    { return nil }
func (d *snapDev) Close() error   { return nil }
func (d *snapDev) ReadOnly() bool { return true }
func (d *snapDev) Name() string   { return d.name }
