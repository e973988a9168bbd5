package ufs

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Opening the write half, and what every write checks first (writable) or
// reports through (corrupt). The rest of it: groups.go (the cylinder groups
// the allocator works on), superblock_write.go, sync.go (Sync, Fsync,
// Close), statfs.go, release.go (every free), bmap.go (extents).

// openWrite sets up the write half of an FS opened read-write: the
// allocator over the cylinder groups, the write ordering, and the
// superblock marked not clean on disk (fs_clean 0), written and synced
// before Open returns, as ffs_mountfs does. FS_UNCLEAN records that the
// filesystem was already unclean when opened, so that Close leaves it
// unclean.
func (fs *FS) openWrite(opts Options) error {
	fs.opts = opts
	fs.now = opts.Now
	if fs.now == nil {
		fs.now = time.Now
	}
	fs.dirtyLimit = opts.MaxDirtyBytes
	if fs.dirtyLimit <= 0 {
		fs.dirtyLimit = DefaultMaxDirtyBytes
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return fmt.Errorf("seeding generation numbers: %w", err)
	}
	fs.rnd = rand.New(rand.NewChaCha8(seed))
	useSoftdep := fs.sb.Flags&ondisk.FSDoSoftdep != 0 && opts.Order == nil && !opts.Async && !opts.NoSoftUpdates
	switch {
	case opts.Order != nil:
		fs.order = opts.Order
	case opts.Async, useSoftdep:
		fs.order = AsyncOrder{}
	default:
		fs.order = SyncOrder{Cache: fs.cache}
	}
	fs.groups = &cgGroups{fs: fs, cgs: map[ondisk.Cg]*ondisk.CylGroup{}, dirty: map[ondisk.Cg]bool{},
		vers: make([]atomic.Uint64, fs.sb.Ncg)}
	aopts := alloc.Options{
		Logger:        fs.log,
		NeedsFsck:     fs.markNeedsFsck,
		Now:           fs.now,
		Rand:          fs.rand32,
		DeferFragFree: true,
	}
	if useSoftdep {
		fs.sd = softdep.New(fs.sb, fs.cache, fs.dev, softdepHost{fs}, softdep.Options{Logger: fs.log, Interval: opts.SyncInterval})
		aopts.Pending = pendingHelper{fs.sd}
	}
	// The cache's write hooks, in their order: the snapshot's
	// copy-on-write before soft updates' rollbacks.
	if fs.sd != nil {
		fs.cache.SetHooks(bcache.Chain(cowHooks{fs: fs}, fs.sd))
	} else {
		fs.cache.SetHooks(bcache.Chain(cowHooks{fs: fs}))
	}
	a, err := alloc.New(fs.sb, fs.cs, fs.groups, aopts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	fs.alloc = a

	sb := fs.sb
	if !useSoftdep {
		// FS_DOSOFTDEP promises FreeBSD that after a crash only the
		// inconsistencies soft updates allow can be found, so that it
		// may mount at once and check in the background. This engine's
		// ordering without soft updates does not keep that promise (the
		// maps reach the disk only at Sync), so the flag is off on disk
		// while the filesystem is open and comes back with a clean
		// Close: after a crash FreeBSD (and WriteRefusal) ask for a full
		// fsck first.
		fs.softdep = sb.Flags & ondisk.FSDoSoftdep
		sb.Flags &^= ondisk.FSDoSoftdep
	}
	sb.Flags &^= ondisk.FSUnclean
	if sb.Clean == 0 {
		sb.Flags |= ondisk.FSUnclean
		fs.log.Warn("filesystem was not properly unmounted", "dev", fs.dev.Name())
	}
	if sb.Pendingblocks != 0 || sb.Pendinginodes != 0 {
		fs.log.Warn("pending frees left by the last mount dropped", "blocks", sb.Pendingblocks, "inodes", sb.Pendinginodes)
		sb.Pendingblocks, sb.Pendinginodes = 0, 0
	}
	sb.Clean = 0
	sb.Mtime = fs.now().Unix()
	if err := fs.writeSuperblock(); err != nil {
		return err
	}
	if snapshotCount(sb) == 1 {
		if err := fs.loadSnapshot(); err != nil {
			return err
		}
	}
	if fs.sd != nil && opts.SyncInterval >= 0 {
		fs.sd.Start()
	}
	return nil
}

// markNeedsFsck records corruption found while running: FS_NEEDSFSCK is
// set in the superblock (written at the next sync) so that Close leaves
// the filesystem unclean.
func (fs *FS) markNeedsFsck(err error) {
	fs.log.Error("filesystem needs fsck", "err", err)
	if fs.alloc == nil {
		return
	}
	fs.alloc.Locked(func(sb *ondisk.Superblock, _ []ondisk.Csum) { sb.Flags |= ondisk.FSNeedsFsck })
}

// corrupt marks the filesystem as needing fsck and returns err; the write
// half passes every ErrCorrupt it finds through it.
func (fs *FS) corrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		fs.markNeedsFsck(err)
	}
	return err
}

// rand32 is a random non-zero 32-bit number (generation numbers, dirpref).
func (fs *FS) rand32() uint32 {
	fs.rndMu.Lock()
	defer fs.rndMu.Unlock()
	for {
		if v := fs.rnd.Uint32(); v != 0 {
			return v
		}
	}
}

// writable fails unless the filesystem is open read-write.
func (fs *FS) writable() error {
	if err := fs.checkOpen(); err != nil {
		return err
	}
	if fs.ro {
		return ErrReadOnly
	}
	if fs.frozen.Load() {
		return fmt.Errorf("%w: it now holds a snapshot, which this version cannot keep frozen while writing", ErrReadOnly)
	}
	return nil
}
