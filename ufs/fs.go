package ufs

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Options says how Open treats the filesystem.
type Options struct {
	// ReadOnly opens the filesystem without ever writing to the device.
	// A filesystem that WriteRefusal refuses is opened read-only anyway.
	ReadOnly bool
	// Force opens read-write a filesystem that WriteRefusal refuses only
	// because it needs fsck (FS_NEEDSFSCK, or not clean without soft
	// updates), as FreeBSD's mount -f does. It stays marked as it was:
	// FS_UNCLEAN (and FS_NEEDSFSCK) make Close leave fs_clean 0, so fsck
	// still runs before the next ordinary read-write open. The refusals
	// for features this code does not maintain and for a truncated
	// device stand.
	Force bool
	// SnapshotAdmin opens read-write a filesystem refused only because it
	// holds snapshots, for deleting them (DeleteSnapshot): every other
	// write is refused while a snapshot remains.
	SnapshotAdmin bool
	// Logger receives warnings and debug messages; nil discards them.
	Logger *slog.Logger
	// CacheBytes bounds the buffer cache's clean buffers; 0 means
	// bcache.DefaultMaxBytes.
	CacheBytes int64
	// MaxInodes bounds the unreferenced inodes kept in the inode cache;
	// 0 means DefaultMaxInodes.
	MaxInodes int

	// Async skips the synchronous writes that order metadata updates on
	// disk (FreeBSD's mount -o async): faster, but a crash can leave
	// anything behind. Ignored when Order is set.
	Async bool
	// Order replaces the engine's write ordering (see WriteOrder); nil
	// means soft updates on a filesystem with FS_DOSOFTDEP, else
	// FreeBSD's synchronous ordering, or none under Async.
	Order WriteOrder
	// NoSoftUpdates runs a filesystem with FS_DOSOFTDEP with the
	// synchronous ordering instead of soft updates (FS_DOSOFTDEP is then
	// cleared on disk while it is open, as for filesystems without soft
	// updates).
	NoSoftUpdates bool
	// SyncInterval is how often soft updates' syncer writes and flushes
	// what is dirty; 0 means every second (softdep.DefaultInterval), a
	// negative value no syncer at all (writes happen at Sync, Fsync,
	// Close and when MaxDirtyBytes is passed: for tests that want
	// runs to repeat exactly).
	SyncInterval time.Duration
	// UseReserve lets allocations take the last fs_minfree percent of
	// the data area, as FreeBSD lets root do.
	UseReserve bool
	// Now gives the time stamps of changes; time.Now when nil.
	Now func() time.Time
	// MaxDirtyBytes bounds the dirty bytes held in the buffer cache: past
	// it an operation flushes the cache before returning. 0 means
	// DefaultMaxDirtyBytes.
	MaxDirtyBytes int64
	// DirhashMaxEntries bounds the names held by all directory hash
	// indexes together; 0 means DefaultDirhashMaxEntries.
	DirhashMaxEntries int
}

// Defaults of Options.
const (
	DefaultMaxDirtyBytes     = 64 << 20
	DefaultDirhashMaxEntries = 1 << 20
)

// DefaultMaxInodes is the inode cache size when Options.MaxInodes is 0.
const DefaultMaxInodes = 8192

// FS is an open UFS2 filesystem. It owns the device, the buffer cache, the
// in-core superblock and the inode cache; nothing is global. All methods
// are safe for concurrent use.
//
// Lock order (outer to inner), extending the project's: FS.syncMu →
// FS.renameMu → Inode.mu (in ascending inode number when several are
// held; a newly allocated inode, unreachable until its entry is written,
// may be locked out of order) → the Allocator's mutex (alloc.Locked and
// every allocator call) → FS.imu (the inode cache map) → Inode.dhmu →
// FS.dirhashes.mu (the dirhash LRU list) → the buffer cache's locks
// (Buf.mu, then the cache's own). FS.imu and FS.dirhashes.mu are never
// held across I/O; the Allocator's mutex is, when a cylinder group is read
// or an inode block initialised. See the package documentation.
type FS struct {
	res   residents // files whose data past a barrier lives elsewhere (residency.go)
	dev   blockdev.Device
	cache *bcache.Cache
	log   *slog.Logger

	// sb is the in-core superblock: as read, with the fs_flags and
	// fs_metackhash corrections of prepareSuperblock applied. The read
	// half never changes it; the write half will guard its counters with
	// a summary lock declared here.
	sb    *ondisk.Superblock
	sbLoc int64 // byte offset the superblock was found at

	// cs is the cylinder-group summary array (fs_csp), read from
	// fs_csaddr. The write half guards it with the summary lock.
	cs []ondisk.Csum

	ro bool
	// frozen: the filesystem holds more snapshots than copy-on-write keeps
	// (opened with SnapshotAdmin): nothing but deletions may write it.
	frozen atomic.Bool
	// cow is the copy-on-write state of the snapshot, nil without one
	// (snapshot_cow.go).
	cow      atomic.Pointer[snapCOW]
	roReason string // why a read-write open became read-only; "" if asked for
	roFsck   bool   // ... and only because the filesystem needs fsck (Options.Force overrides)
	maxIno   ondisk.Ino
	closed   atomic.Bool

	// imu protects icache, ilru and the refs, elem and dirty fields of
	// every Inode. Never held across I/O.
	imu       sync.Mutex
	icache    map[ondisk.Ino]*Inode
	ilru      inodeList
	maxInodes int

	// The write half (nil or zero when read-only; see write.go).
	opts       Options
	now        func() time.Time
	alloc      *alloc.Allocator
	groups     *cgGroups
	order      WriteOrder
	dirtyLimit int64
	// sd is soft updates (softdep.go), nil without them.
	sd *softdep.Deps
	// softdep is FS_DOSOFTDEP as found at open when the filesystem runs
	// without soft updates: cleared on disk while open (see openWrite)
	// and restored by a clean Close.
	softdep int32
	// syncMu serialises Sync, Close and the writing of the summaries and
	// the superblock.
	syncMu sync.Mutex
	// renameMu is held by every rename that moves a directory to another
	// parent (or exchanges one), so that the ancestry checked by
	// checkPath cannot change meanwhile (FreeBSD's rename lock).
	renameMu sync.Mutex
	// rnd gives generation numbers; guarded by rndMu.
	rndMu sync.Mutex
	rnd   *rand.Rand

	dirhashes dirhashList
}

// Open reads the superblock and the cylinder-group summaries of dev and
// returns the filesystem. On success the FS owns dev: Close closes it. On
// failure dev is left open.
//
// Errors: ErrUFS1 for a UFS1 filesystem, ErrNotUFS2 when no UFS2 superblock
// is found, ErrCorrupt (with the reason) for a damaged superblock or summary
// area, or the device's I/O error.
func Open(dev blockdev.Device, opts Options) (*FS, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sb, loc, err := findSuperblock(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dev.Name(), err)
	}
	prepareSuperblock(sb)

	fs := &FS{
		dev:       dev,
		log:       log,
		sb:        sb,
		sbLoc:     loc,
		maxIno:    ondisk.Ino(uint64(sb.Ncg) * uint64(sb.Ipg)),
		icache:    make(map[ondisk.Ino]*Inode),
		maxInodes: opts.MaxInodes,
	}
	if uint64(sb.Ncg)*uint64(sb.Ipg) > 1<<32-1 {
		return nil, fmt.Errorf("%s: %w: superblock: fs_ncg %d * fs_ipg %d inodes do not fit in 32 bits", dev.Name(), ErrCorrupt, sb.Ncg, sb.Ipg)
	}
	if fs.maxInodes <= 0 {
		fs.maxInodes = DefaultMaxInodes
	}
	fs.ilru.init()

	fs.ro = opts.ReadOnly || dev.ReadOnly()
	if !fs.ro {
		why, fsckOnly := writeRefusalFor(sb, dev.Size(), opts.SnapshotAdmin)
		switch {
		case why == "":
		case fsckOnly && opts.Force:
			log.Warn("opening read-write although the filesystem needs fsck (forced); it stays marked not clean",
				"dev", dev.Name(), "reason", why)
		default:
			fs.ro = true
			fs.roReason = why
			fs.roFsck = fsckOnly
			log.Warn("opening read-only", "dev", dev.Name(), "reason", why)
		}
		if !fs.ro && snapshotCount(sb) > 1 {
			fs.frozen.Store(true) // SnapshotAdmin: deletions only
		}
	}
	fs.cache = bcache.New(dev, bcache.Options{MaxBytes: opts.CacheBytes, ReadOnly: fs.ro, Logger: log})
	fs.dirhashes.init(opts.DirhashMaxEntries)

	if err := fs.readSummary(); err != nil {
		return nil, fmt.Errorf("%s: %w", dev.Name(), err)
	}
	if !fs.ro {
		if err := fs.openWrite(opts); err != nil {
			return nil, fmt.Errorf("%s: %w", dev.Name(), err)
		}
	}
	log.Debug("opened", "dev", dev.Name(), "sblock", loc, "bsize", sb.Bsize, "fsize", sb.Fsize,
		"ncg", sb.Ncg, "readonly", fs.ro)
	return fs, nil
}

// findSuperblock runs ondisk.FindSuperblock and turns its errors into this
// package's. A check-hash mismatch is accepted when fs_flags lacks
// FS_METACKHASH: FreeBSD then treats fs_metackhash as 0 before verifying,
// so the stale hash an older kernel left behind is not checked.
func findSuperblock(dev blockdev.Device) (*ondisk.Superblock, int64, error) {
	sb, loc, err := ondisk.FindSuperblock(dev)
	switch {
	case err == nil:
		return sb, loc, nil
	case errors.Is(err, ondisk.ErrCheckHash) && sb != nil:
		if sb.Flags&ondisk.FSMetackhash == 0 {
			return sb, loc, nil
		}
		return nil, 0, fmt.Errorf("%w: superblock at byte %d fails its check-hash: %w", ErrCorrupt, loc, err)
	case errors.Is(err, ondisk.ErrUFS1):
		return nil, 0, ErrUFS1
	case errors.Is(err, ondisk.ErrNotFound), errors.Is(err, ondisk.ErrBadMagic):
		return nil, 0, ErrNotUFS2
	case errors.Is(err, ondisk.ErrCorrupt), errors.Is(err, ondisk.ErrShort):
		return nil, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil, 0, err
}

// prepareSuperblock applies FreeBSD's rules for a superblock just read:
// check-hashes are off unless fs_flags has FS_METACKHASH (a kernel without
// them may have run on the filesystem and left them stale), and fs_flags
// bits outside FS_SUPPORTED are cleared.
func prepareSuperblock(sb *ondisk.Superblock) {
	if sb.Flags&ondisk.FSMetackhash == 0 {
		sb.Metackhash = 0
	}
	// Check-hashes this code does not maintain (CK_INDIR, CK_DIR and
	// unknown bits) are dropped, as FreeBSD's kernel drops them when it
	// reads the superblock: the next superblock written says so, and
	// fsck_ffs or a kernel that does maintain them recomputes them.
	sb.Metackhash &= ondisk.CKSupported
	sb.Flags &= ondisk.FSSupported
}

// WriteRefusal is the one rule deciding whether this code may write a
// filesystem: it returns why not, or "" if it may. The reasons are
// features this code does not maintain, so writing would leave them stale
// or wrong, and states FreeBSD also refuses to mount read-write. (Check-
// hashes this code does not compute, CK_INDIR and CK_DIR, are no reason:
// prepareSuperblock clears them from fs_metackhash as FreeBSD does.)
//
//   - FS_SUJ: a soft-updates journal (writes would bypass it);
//   - FS_GJOURNAL: gjournal;
//   - FS_NEEDSFSCK, or not clean (fs_clean 0) without soft updates: run
//     fsck first;
//   - a device smaller than the filesystem (a truncated image).
//
// sb must have been through prepareSuperblock.
func WriteRefusal(sb *ondisk.Superblock, devSize int64) string {
	why, _ := writeRefusal(sb, devSize)
	return why
}

// writeRefusal is WriteRefusal, and whether every reason is one that fsck
// removes (FS_NEEDSFSCK, or not clean without soft updates): those
// Options.Force overrides, as FreeBSD's mount -f does.
func writeRefusal(sb *ondisk.Superblock, devSize int64) (why string, fsckOnly bool) {
	return writeRefusalFor(sb, devSize, false)
}

// writeRefusalFor is writeRefusal, leaving out the snapshots when
// snapshotAdmin (Options.SnapshotAdmin).
func writeRefusalFor(sb *ondisk.Superblock, devSize int64, snapshotAdmin bool) (why string, fsckOnly bool) {
	var reasons []string
	fsckOnly = true
	other := func(r string) {
		reasons = append(reasons, r)
		fsckOnly = false
	}
	if sb.Flags&ondisk.FSSuj != 0 {
		other("it has a soft-updates journal (FS_SUJ), which this program does not maintain; disable it with tunefs -j disable on FreeBSD")
	}
	if sb.Flags&ondisk.FSGjournal != 0 {
		other("it uses gjournal (FS_GJOURNAL), which this program does not maintain")
	}
	if n := snapshotCount(sb); n > 1 && !snapshotAdmin {
		// Every write must copy the old contents into the snapshots
		// first; this version does that for one.
		other(fmt.Sprintf("it holds %d snapshots (fs_snapinum), and this version keeps only one frozen while writing; mount it read-only, or remove all but one on FreeBSD first", n))
	}
	if sb.Flags&ondisk.FSNeedsFsck != 0 {
		reasons = append(reasons, "it is marked as needing fsck (FS_NEEDSFSCK); run fsck")
	} else if sb.Clean == 0 && sb.Flags&ondisk.FSDoSoftdep == 0 {
		reasons = append(reasons, "it was not cleanly unmounted and has no soft updates; run fsck")
	}
	if need := sb.FragOffset(ondisk.Frag(sb.Size)); devSize < need {
		other(fmt.Sprintf("the device has %d bytes but the filesystem needs %d (truncated image?)", devSize, need))
	}
	if len(reasons) == 0 {
		return "", false
	}
	return strings.Join(reasons, "; "), fsckOnly
}

// readSummary reads the cylinder-group summary area (fs_cssize bytes at
// fs_csaddr) into fs.cs.
func (fs *FS) readSummary() error {
	sb := fs.sb
	size := sb.Fragroundup(int64(sb.Cssize))
	if !fs.validRange(sb.Csaddr, sb.Numfrags(size)) {
		return corruptf("superblock: summary area fs_csaddr %d (%d bytes) is outside the filesystem", sb.Csaddr, size)
	}
	buf := make([]byte, size)
	if err := blockdev.ReadFull(fs.dev, buf, sb.FragOffset(sb.Csaddr)); err != nil {
		return fmt.Errorf("summary area at fragment %d: %w", sb.Csaddr, err)
	}
	fs.cs = make([]ondisk.Csum, sb.Ncg)
	for i := range fs.cs {
		c, err := ondisk.DecodeCsum(buf[i*ondisk.CsumSize:])
		if err != nil {
			return corruptf("summary of cylinder group %d: %v", i, err)
		}
		fs.cs[i] = c
	}
	return nil
}

// Superblock returns a copy of the in-core superblock.
func (fs *FS) Superblock() ondisk.Superblock {
	if fs.alloc == nil {
		return *fs.sb
	}
	var c ondisk.Superblock
	fs.alloc.Locked(func(sb *ondisk.Superblock, _ []ondisk.Csum) { c = *sb })
	return c
}

// SetMountPoint records dir as fs_fsmnt, where the filesystem was last
// mounted, as FreeBSD's ffs_mount does (truncated to MAXMNTLEN-1 bytes);
// the next superblock write takes it to the disk. Read-only: nothing.
func (fs *FS) SetMountPoint(dir string) {
	if fs.ro || fs.alloc == nil {
		return
	}
	fs.alloc.Locked(func(sb *ondisk.Superblock, _ []ondisk.Csum) {
		sb.Fsmnt = [ondisk.MaxMntLen]byte{}
		copy(sb.Fsmnt[:ondisk.MaxMntLen-1], dir)
	})
}

// SuperblockLocation is the byte offset the superblock was read from.
func (fs *FS) SuperblockLocation() int64 { return fs.sbLoc }

// Summary returns a copy of the per-cylinder-group summaries.
func (fs *FS) Summary() []ondisk.Csum {
	if fs.alloc == nil {
		return append([]ondisk.Csum(nil), fs.cs...)
	}
	var c []ondisk.Csum
	fs.alloc.Locked(func(_ *ondisk.Superblock, cs []ondisk.Csum) { c = append(c, cs...) })
	return c
}

// ReadOnly reports whether the filesystem is open read-only.
func (fs *FS) ReadOnly() bool { return fs.ro }

// ReadOnlyReason says why a read-write Open became read-only (see
// WriteRefusal), or "".
func (fs *FS) ReadOnlyReason() string { return fs.roReason }

// NeedsFsck reports whether a read-write open came up read-only only
// because the filesystem needs fsck: Options.Force would have opened it
// read-write.
func (fs *FS) NeedsFsck() bool { return fs.roFsck }

// Root is the root directory's inode number.
func (fs *FS) Root() ondisk.Ino { return ondisk.RootIno }

// MaxIno is one more than the largest inode number (fs_ncg * fs_ipg).
func (fs *FS) MaxIno() ondisk.Ino { return fs.maxIno }

// Device is the device the filesystem is on.
func (fs *FS) Device() blockdev.Device { return fs.dev }

// Cache is the filesystem's buffer cache (for the layers that register
// hooks on it).
func (fs *FS) Cache() *bcache.Cache { return fs.cache }

// Close ends the use of the filesystem. Read-write, it frees the inodes
// that were unlinked while referenced (Ref), writes every dirty buffer,
// the cylinder groups, the summaries and the superblock, marked clean
// (fs_clean 1) unless it was opened unclean or needs fsck; then it closes
// the device. The FS must not be used afterwards; a second Close gives
// ErrClosed.
func (fs *FS) Close() error {
	fs.syncMu.Lock()
	defer fs.syncMu.Unlock()
	if fs.closed.Load() {
		return ErrClosed
	}
	var first error
	if !fs.ro {
		first = fs.closeWrite()
	}
	fs.closed.Store(true)
	if err := fs.dev.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// validRange reports whether cnt fragments at blk lie inside the
// filesystem and outside the metadata at the start of a cylinder group
// (superblock copy, cylinder group block, inode blocks), as fsck_ffs's
// chkrange checks.
func (fs *FS) validRange(blk ondisk.Frag, cnt int64) bool {
	sb := fs.sb
	if blk <= 0 || cnt <= 0 || int64(blk) > sb.Size || cnt > sb.Size-int64(blk) {
		return false
	}
	c := sb.Dtog(blk)
	end := blk + ondisk.Frag(cnt)
	if blk < sb.Cgdmin(c) {
		return end <= sb.Cgsblock(c)
	}
	return end <= sb.Cgbase(c+1)
}

func (fs *FS) checkOpen() error {
	if fs.closed.Load() {
		return ErrClosed
	}
	return nil
}

// snapshotCount is the number of snapshots fs_snapinum lists.
func snapshotCount(sb *ondisk.Superblock) int {
	n := 0
	for _, ino := range sb.Snapinum {
		if ino != 0 {
			n++
		}
	}
	return n
}
