package ufs

import (
	"fmt"
	"sync/atomic"

	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/ondisk"
)

// Cylinder groups for the allocator: decoded once, cached, pushed back into
// their buffers (alloc.Groups).

// maxCachedCgs bounds the decoded cylinder groups kept between syncs; past
// it, groups with no unwritten change are dropped at the next sync.
const maxCachedCgs = 1024

// cgGroups implements alloc.Groups. The allocator works on private
// decoded copies of the cylinder group blocks; pushCgs encodes the changed
// ones (CylGroup.Sync, which also computes cg_ckhash) into their buffers
// in the cache, inside alloc.Locked, so that a group is never written
// while the allocator changes it.
type cgGroups struct {
	fs *FS
	// Guarded by the Allocator's mutex: every Groups method runs under
	// it, and pushCgs runs inside alloc.Locked.
	cgs   map[ondisk.Cg]*ondisk.CylGroup
	dirty map[ondisk.Cg]bool
	// vers counts the changes to each group (Dirty), read without the
	// Allocator's mutex: soft updates wait for a group's buffer holding
	// at least the version an allocation saw (cgVer).
	vers []atomic.Uint64
}

var _ alloc.Groups = (*cgGroups)(nil)

func (g *cgGroups) cgKey(c ondisk.Cg) (int64, int) {
	sb := g.fs.sb
	return sb.FragOffset(sb.Cgtod(c)), int(sb.Cgsize)
}

// Cg reads and checks group c the first time it is asked for.
func (g *cgGroups) Cg(c ondisk.Cg) (*ondisk.CylGroup, error) {
	if cg := g.cgs[c]; cg != nil {
		return cg, nil
	}
	if uint64(c) >= uint64(g.fs.sb.Ncg) {
		return nil, fmt.Errorf("%w: cylinder group %d does not exist", ErrInvalid, c)
	}
	off, size := g.cgKey(c)
	b, err := g.fs.cache.Get(off, size)
	if err != nil {
		return nil, fmt.Errorf("cylinder group %d: %w", c, err)
	}
	raw := make([]byte, size)
	b.RLock()
	copy(raw, b.Data())
	b.RUnlock()
	g.fs.cache.Release(b)
	cg, err := ondisk.DecodeCg(g.fs.sb, c, raw)
	if err != nil {
		return nil, corruptf("cylinder group %d: %v", c, err)
	}
	if err := cg.VerifyHash(); err != nil {
		return nil, corruptf("cylinder group %d: %v", c, err)
	}
	g.cgs[c] = cg
	return cg, nil
}

// Dirty records that group c changed.
func (g *cgGroups) Dirty(c ondisk.Cg) {
	g.dirty[c] = true
	if int(c) < len(g.vers) {
		g.vers[c].Add(1)
	}
}

// InitInodeBlock writes a block of zeroed inodes, each with a random
// non-zero generation number, synchronously: the group that claims them
// (cg_initediblk) is written later, so the inodes are on disk first.
func (g *cgGroups) InitInodeBlock(c ondisk.Cg, frag ondisk.Frag, first ondisk.Ino, n int) error {
	fs := g.fs
	if n*ondisk.DinodeSize > int(fs.sb.Bsize) {
		return fmt.Errorf("%w: %d inodes do not fit in a block", ErrInvalid, n)
	}
	b, err := fs.cache.GetNoRead(fs.sb.FragOffset(frag), int(fs.sb.Bsize))
	if err != nil {
		return err
	}
	defer fs.cache.Release(b)
	b.Lock()
	data := b.Data()
	clear(data)
	for i := range n {
		d := ondisk.Dinode{Gen: fs.rand32()}
		if err := d.EncodeWithHash(fs.sb, data[i*ondisk.DinodeSize:]); err != nil {
			b.Unlock()
			return err
		}
	}
	if fs.sd != nil {
		// Soft updates write the group at any time: until the inodes
		// are durable it is written without claiming them. (Recorded
		// before the buffer can be written.)
		fs.sd.InodesInitialised(c, uint32(first)%fs.sb.Ipg, b)
	}
	err = fs.cache.MarkDirty(b)
	b.Unlock()
	if err != nil {
		return err
	}
	return fs.cache.FlushBuf(b)
}

// pushCgs encodes every changed group into its cache buffer (dirty, to
// be written by the next flush) and forgets clean groups when too many
// are held. Preconditions: inside alloc.Locked.
func (g *cgGroups) pushCgs() error {
	var first error
	for c := range g.dirty {
		cg := g.cgs[c]
		delete(g.dirty, c)
		if cg == nil {
			continue
		}
		// As ffs_bufwrite, the old time field follows cg_time.
		cg.OldTime = int32(cg.Time)
		cg.Sync()
		off, size := g.cgKey(c)
		b, err := g.fs.cache.GetNoRead(off, size)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("cylinder group %d: %w", c, err)
			}
			g.dirty[c] = true
			continue
		}
		b.Lock()
		copy(b.Data(), cg.B)
		err = g.fs.cache.MarkDirty(b)
		if g.fs.sd != nil && int(c) < len(g.vers) {
			g.fs.sd.CgPushed(c, g.vers[c].Load())
		}
		b.Unlock()
		g.fs.cache.Release(b)
		if err != nil && first == nil {
			first = err
		}
	}
	if len(g.cgs) > maxCachedCgs {
		for c := range g.cgs {
			if !g.dirty[c] {
				delete(g.cgs, c)
			}
		}
	}
	return first
}
