package ufs

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// Inode is an in-core inode: the decoded ondisk.Dinode of one file, shared
// by everyone using that inode number while it is in the inode cache.
type Inode struct {
	fs  *FS
	ino ondisk.Ino

	// mu protects din. Readers hold it shared for the whole of an
	// operation (a read through the block map sees one version of the
	// pointers); the write half holds it exclusively while it changes the
	// inode and its blocks. Several inode locks are taken in ascending
	// inode number.
	mu  sync.RWMutex
	din ondisk.Dinode

	// opens counts the references the mount layer holds (Ref/Unref): an
	// inode whose link count drops to zero is freed only when opens is
	// zero. Guarded by mu.
	opens int

	// pendingSectors and pendingInode are what soft updates count in
	// fs_pendingblocks and fs_pendinginodes for an inode with no links
	// left whose freeing waits for its names' removals to be durable
	// (FreeBSD's IN_SPACECOUNTED): statfs shows the space free at once.
	// Guarded by mu.
	pendingSectors int64
	pendingInode   bool

	// gone is set when the inode is freed: the object has left the inode
	// cache and every operation on it fails with ErrNotFound. A new
	// allocation of the same number gets a new object.
	gone atomic.Bool

	// dh is the directory's hash index (dirhash.go), nil when it has
	// none. It is set and cleared under dhmu, which serialises building
	// it; it may be read without dhmu. The index's contents change only
	// under mu held exclusively (its block cache, dirblocks.go, also
	// grows under mu shared); readers holding mu shared may use it
	// concurrently.
	dhmu sync.Mutex
	dh   atomic.Pointer[dirhash]

	// Guarded by FS.imu.
	refs  int
	elem  *list.Element // on FS.ilru when refs == 0
	dirty bool          // unused by the write half, which copies din into its block at each change
}

// inodeList is the LRU list of unreferenced cached inodes.
type inodeList struct{ l *list.List }

func (il *inodeList) init() { il.l = list.New() }

// Ino is the inode number.
func (ip *Inode) Ino() ondisk.Ino { return ip.ino }

// Dinode returns a copy of the on-disk inode.
func (ip *Inode) Dinode() ondisk.Dinode {
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	return ip.din
}

// Release drops the reference OpenInode gave.
func (ip *Inode) Release() { ip.fs.iput(ip) }

// OpenInode returns the in-core inode ino, reading it if it is not cached.
// The caller must Release it. An unallocated inode gives ErrNotFound; an
// inode number out of range gives ErrInvalid.
func (fs *FS) OpenInode(ino ondisk.Ino) (*Inode, error) {
	if err := fs.checkOpen(); err != nil {
		return nil, err
	}
	return fs.iget(ino)
}

func (fs *FS) iget(ino ondisk.Ino) (*Inode, error) {
	if ino < ondisk.RootIno || ino >= fs.maxIno {
		return nil, fmt.Errorf("%w: inode %d out of range [2, %d)", ErrInvalid, ino, fs.maxIno)
	}
	fs.imu.Lock()
	if ip, ok := fs.icache[ino]; ok {
		fs.irefLocked(ip)
		fs.imu.Unlock()
		return ip, nil
	}
	fs.imu.Unlock()

	ip := &Inode{fs: fs, ino: ino}
	if err := fs.loadInode(ip); err != nil {
		return nil, err
	}
	fs.imu.Lock()
	defer fs.imu.Unlock()
	if other, ok := fs.icache[ino]; ok {
		// Another goroutine loaded it meanwhile: keep one identity.
		fs.irefLocked(other)
		return other, nil
	}
	ip.refs = 1
	fs.icache[ino] = ip
	return ip, nil
}

// irefLocked takes a reference on a cached inode.
// Preconditions: fs.imu held.
func (fs *FS) irefLocked(ip *Inode) {
	ip.refs++
	if ip.elem != nil {
		fs.ilru.l.Remove(ip.elem)
		ip.elem = nil
	}
}

func (fs *FS) iput(ip *Inode) {
	fs.imu.Lock()
	defer fs.imu.Unlock()
	if ip.refs <= 0 {
		fs.log.Error("ufs: release of unreferenced inode", "ino", ip.ino)
		return
	}
	ip.refs--
	if ip.refs > 0 {
		return
	}
	if ip.gone.Load() || fs.icache[ip.ino] != ip {
		// Freed and detached from the cache (see detach).
		return
	}
	ip.elem = fs.ilru.l.PushFront(ip)
	for fs.ilru.l.Len() > fs.maxInodes {
		e := fs.ilru.l.Back()
		old := e.Value.(*Inode)
		if old.dirty {
			// The write half writes dirty inodes back before they may
			// leave the cache; keep it (move it out of the way).
			fs.ilru.l.MoveToFront(e)
			break
		}
		fs.ilru.l.Remove(e)
		old.elem = nil
		delete(fs.icache, old.ino)
		fs.dropDirhash(old)
	}
}

// inodeBlock returns the disk byte offset and size of the block holding
// inode ino and the inode's byte offset inside it.
func (fs *FS) inodeBlock(ino ondisk.Ino) (off int64, size int, within int) {
	sb := fs.sb
	return sb.FragOffset(sb.InoToFsba(ino)), int(sb.Bsize), sb.InoToFsbo(ino) * ondisk.DinodeSize
}

// loadInode reads and checks ip's dinode.
func (fs *FS) loadInode(ip *Inode) error {
	off, size, within := fs.inodeBlock(ip.ino)
	b, err := fs.cache.Get(off, size)
	if err != nil {
		return fmt.Errorf("inode %d: %w", ip.ino, err)
	}
	defer fs.cache.Release(b)
	b.RLock()
	defer b.RUnlock()
	raw := b.Data()[within : within+ondisk.DinodeSize]
	if err := ondisk.VerifyDinodeHash(fs.sb, raw); err != nil {
		return corruptf("inode %d: %v", ip.ino, err)
	}
	if err := ip.din.Decode(raw); err != nil {
		return corruptf("inode %d: %v", ip.ino, err)
	}
	return fs.checkDinode(ip.ino, &ip.din)
}

// errFree marks an unallocated inode; callers reaching it through a
// directory entry report corruption instead.
var errFree = errors.New("inode not allocated")

// checkDinode applies the checks every inode must pass before it is used.
func (fs *FS) checkDinode(ino ondisk.Ino, d *ondisk.Dinode) error {
	if d.Mode == 0 {
		return fmt.Errorf("%w: inode %d: %w", ErrNotFound, ino, errFree)
	}
	switch d.Type() {
	case ondisk.IFIFO, ondisk.IFCHR, ondisk.IFDIR, ondisk.IFBLK, ondisk.IFREG, ondisk.IFLNK, ondisk.IFSOCK:
	default:
		return corruptf("inode %d: di_mode 0%o has no valid file type", ino, d.Mode)
	}
	if d.Size > fs.sb.Maxfilesize && fs.sb.Maxfilesize != 0 || d.Size > 1<<62 {
		return corruptf("inode %d: di_size %d exceeds the maximum file size %d", ino, d.Size, fs.sb.Maxfilesize)
	}
	if int64(d.Extsize) > ondisk.NXaddr*int64(fs.sb.Bsize) {
		return corruptf("inode %d: di_extsize %d exceeds %d", ino, d.Extsize, ondisk.NXaddr*int64(fs.sb.Bsize))
	}
	if d.IsDir() && d.Size%ondisk.DirBlkSize != 0 {
		return corruptf("inode %d: directory size %d is not a multiple of %d", ino, d.Size, ondisk.DirBlkSize)
	}
	return nil
}

// Stat is the attributes of an inode (getattr).
type Stat struct {
	Ino       ondisk.Ino
	Mode      uint16 // file type and permission bits (di_mode)
	Nlink     int16
	UID, GID  uint32
	Size      uint64
	Blocks    uint64 // 512-byte units allocated, the extended attribute area included (di_blocks)
	Blksize   uint32 // di_blksize, as recorded; may be 0
	Atime     time.Time
	Mtime     time.Time
	Ctime     time.Time
	Birthtime time.Time
	Flags     uint32 // chflags flags (di_flags)
	Gen       uint32 // generation number (di_gen)
	Rdev      uint64 // device number of a block or character device, FreeBSD's encoding
	Extsize   uint32 // bytes of extended attributes
}

// Type is the file type bits of Mode (ondisk.IFREG, ...).
func (s *Stat) Type() uint16 { return s.Mode & ondisk.IFMT }

// IsDir reports whether the inode is a directory.
func (s *Stat) IsDir() bool { return s.Type() == ondisk.IFDIR }

// Perm is the permission bits of Mode, setuid, setgid and sticky included.
func (s *Stat) Perm() uint16 { return s.Mode &^ ondisk.IFMT }

func unixTime(sec int64, nsec int32) time.Time {
	if nsec < 0 || nsec >= 1e9 {
		nsec = 0
	}
	return time.Unix(sec, int64(nsec))
}

func statOf(ino ondisk.Ino, d *ondisk.Dinode) Stat {
	s := Stat{
		Ino: ino, Mode: d.Mode, Nlink: d.Nlink, UID: d.UID, GID: d.GID,
		Size: d.Size, Blocks: d.Blocks, Blksize: d.Blksize,
		Atime:     unixTime(d.Atime, d.Atimensec),
		Mtime:     unixTime(d.Mtime, d.Mtimensec),
		Ctime:     unixTime(d.Ctime, d.Ctimensec),
		Birthtime: unixTime(d.Birthtime, d.Birthnsec),
		Flags:     d.Flags, Gen: d.Gen, Extsize: d.Extsize,
	}
	if t := d.Type(); t == ondisk.IFCHR || t == ondisk.IFBLK {
		s.Rdev = d.Rdev()
	}
	return s
}

// Stat returns the attributes of inode ino.
func (fs *FS) Stat(ino ondisk.Ino) (Stat, error) {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return Stat{}, err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if ip.gone.Load() {
		return Stat{}, fmt.Errorf("%w: inode %d: %w", ErrNotFound, ino, errFree)
	}
	return statOf(ino, &ip.din), nil
}

// entryInode opens the inode a directory entry names; an unallocated or
// out-of-range inode there is corruption of the directory.
func (fs *FS) entryInode(dir ondisk.Ino, name string, ino ondisk.Ino) (*Inode, error) {
	if ino < ondisk.RootIno || ino >= fs.maxIno {
		return nil, corruptf("directory %d: entry %q names inode %d, out of range", dir, name, ino)
	}
	ip, err := fs.iget(ino)
	if errors.Is(err, errFree) {
		return nil, corruptf("directory %d: entry %q names unallocated inode %d", dir, name, ino)
	}
	return ip, err
}
