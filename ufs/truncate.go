package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Truncation: FreeBSD's ffs_truncate and ffs_indirtrunc.
//
// Shrinking first settles the new last block (its bytes past the new end
// zeroed, its buffer cut to the fragments it keeps), then plans every block
// to free by reading the indirect blocks, then writes the inode with its
// new size and pointers (PointerCleared), then the indirect blocks that
// keep some pointers, and only then frees the blocks. A crash at any point
// leaves blocks marked in use that nothing points at, which fsck reclaims;
// never a pointer to a free block.

// extent is a run of fragments to free.
type extent struct {
	p    ondisk.Frag
	size int64
}

// truncPlan collects what a truncation frees and which indirect blocks it
// rewrites.
type truncPlan struct {
	frees []extent // cut off by pointers cleared in the inode
	// indirFrees are cut off by pointers cleared in the indirect blocks
	// of rewrites.
	indirFrees []extent
	rewrites   []extent // indirect block p keeps pointers [0, size); the rest are cleared
	released   uint64   // DEV_BSIZE sectors
}

func (pl *truncPlan) free(p ondisk.Frag, size int64, viaIndir bool) {
	if viaIndir {
		pl.indirFrees = append(pl.indirFrees, extent{p, size})
	} else {
		pl.frees = append(pl.frees, extent{p, size})
	}
	pl.released += btodb(size)
}

// planIndir plans the truncation of the subtree under indirect block p of
// the given level (0 single), whose first data block is base and whose
// pointers each cover per data blocks. Data blocks up to last are kept;
// whole says that none are (the block p itself is then freed by the
// caller). viaIndir says the pointer to p is cleared in an indirect block
// that stays.
func (fs *FS) planIndir(ip *Inode, pl *truncPlan, p ondisk.Frag, level int, base, per, last ondisk.Lbn, whole, viaIndir bool) error {
	sb := fs.sb
	if !fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0 {
		return corruptf("inode %d: level-%d indirect block for blocks from %d: pointer %d is outside the data area", ip.ino, level+1, base, p)
	}
	nindir := int(sb.NINDIR())
	ptrs, err := fs.readPointers(p, 0, nindir)
	if err != nil {
		return fmt.Errorf("inode %d: %w", ip.ino, err)
	}
	bsize := int64(sb.Bsize)
	via := viaIndir || !whole // children cut off here: by clearing p's pointers
	freeChild := func(i int) error {
		q := ptrs[i]
		if q == 0 {
			return nil
		}
		cbase := base + ondisk.Lbn(i)*per
		if level == 0 {
			if err := fs.checkDataPtr(ip.ino, cbase, q, bsize); err != nil {
				return err
			}
			pl.free(q, bsize, via)
			return nil
		}
		if err := fs.planIndir(ip, pl, q, level-1, cbase, per/ondisk.Lbn(nindir), last, true, via); err != nil {
			return err
		}
		pl.free(q, bsize, via)
		return nil
	}
	keep := -1
	if !whole {
		keep = int((last - base) / per)
	}
	cleared := false
	for i := keep + 1; i < nindir; i++ {
		if ptrs[i] != 0 {
			cleared = true
		}
		if err := freeChild(i); err != nil {
			return err
		}
	}
	if whole {
		return nil
	}
	if level > 0 && ptrs[keep] != 0 {
		if err := fs.planIndir(ip, pl, ptrs[keep], level-1, base+ondisk.Lbn(keep)*per, per/ondisk.Lbn(nindir), last, false, viaIndir); err != nil {
			return err
		}
	}
	if cleared {
		pl.rewrites = append(pl.rewrites, extent{p, int64(keep + 1)})
	}
	return nil
}

// truncate is ffs_truncate on ip's data: the file becomes length bytes
// long, growing with its last block allocated (holes before it stay
// holes) or shrinking with exactly the blocks and fragments the new size
// no longer needs freed; di_blocks follows. It sets mtime and ctime to now.
// Preconditions: ip.mu held exclusively; ip is a regular file, a
// directory or a slow symlink.
func (fs *FS) truncate(ip *Inode, length uint64, now nsTime) error {
	sb := fs.sb
	d := &ip.din
	if length > sb.Maxfilesize && sb.Maxfilesize != 0 {
		return fmt.Errorf("%w: inode %d: size %d past the maximum %d", ErrTooBig, ip.ino, length, sb.Maxfilesize)
	}
	if d.Type() == ondisk.IFLNK && fs.isFastLink(d) {
		if length != 0 {
			return fmt.Errorf("%w: inode %d: partial truncation of a symlink", ErrInvalid, ip.ino)
		}
		var empty ondisk.Dinode
		d.Db, d.Ib = empty.Db, empty.Ib
		d.Size = 0
		now.setMC(d)
		return fs.iupdate(ip, orderDelayed)
	}
	osize := d.Size
	bsize := int64(sb.Bsize)
	switch {
	case length == osize:
		now.setMC(d)
		return fs.iupdate(ip, orderDelayed)
	case length > osize:
		addr, size, fresh, err := fs.balloc(ip, int64(length)-1, 1)
		if err != nil {
			fs.iupdate(ip, orderDelayed) // balloc may have extended the tail
			return err
		}
		if fresh {
			if err := fs.zeroBlock(addr, size); err != nil {
				return err
			}
		}
		d.Size = length
		now.setMC(d)
		return fs.iupdate(ip, orderDelayed)
	}

	// Shrinking. The new last block first: allocated (a hole there would
	// leave the file ending in a hole, which fsck_ffs shortens), its
	// bytes past the end zeroed, its buffer cut to the fragments it keeps.
	if length > 0 {
		lbn := sb.Lblkno(int64(length) - 1)
		addr, size, fresh, err := fs.balloc(ip, int64(length)-1, 1)
		if err != nil {
			return err
		}
		if fresh {
			if err := fs.zeroBlock(addr, size); err != nil {
				return err
			}
		}
		if off := sb.Blkoff(int64(length)); off != 0 {
			nsize := sb.Sblksize(int64(length), lbn)
			data, err := fs.readBlock(addr, size)
			if err != nil {
				return fmt.Errorf("inode %d: block %d: %w", ip.ino, lbn, err)
			}
			clear(data[off:])
			if err := fs.moveBlock(data[:nsize], addr, size, addr, nsize); err != nil {
				return err
			}
		}
	}

	var pl truncPlan
	lastblock := sb.Lblkno(int64(length)+bsize-1) - 1
	fs.dirBlocksChanged(ip, lastblock)
	nindir := ondisk.Lbn(sb.NINDIR())
	// Indirect blocks.
	base, span := ondisk.Lbn(ondisk.NDaddr), ondisk.Lbn(1)
	var newIb [ondisk.NIaddr]ondisk.Frag
	for level := 0; level < ondisk.NIaddr; level++ {
		span *= nindir
		p := d.Ib[level]
		newIb[level] = p
		if p != 0 {
			switch {
			case lastblock < base:
				if err := fs.planIndir(ip, &pl, p, level, base, span/nindir, lastblock, true, false); err != nil {
					return fs.corrupt(err)
				}
				pl.free(p, bsize, false)
				newIb[level] = 0
			case lastblock < base+span-1:
				if err := fs.planIndir(ip, &pl, p, level, base, span/nindir, lastblock, false, false); err != nil {
					return fs.corrupt(err)
				}
			}
		}
		base += span
	}
	// Direct blocks past the new last one, and the fragments the last
	// one gives back.
	var newDb [ondisk.NDaddr]ondisk.Frag
	for i := range ondisk.NDaddr {
		p := d.Db[i]
		newDb[i] = p
		if p == 0 || ondisk.Lbn(i) < lastblock {
			continue
		}
		oldspace := sb.Sblksize(int64(osize), ondisk.Lbn(i))
		if err := fs.checkDataPtr(ip.ino, ondisk.Lbn(i), p, oldspace); err != nil {
			return fs.corrupt(err)
		}
		if ondisk.Lbn(i) > lastblock {
			pl.free(p, oldspace, false)
			newDb[i] = 0
			continue
		}
		newspace := sb.Sblksize(int64(length), ondisk.Lbn(i))
		if newspace < oldspace {
			pl.free(p+ondisk.Frag(sb.Numfrags(newspace)), oldspace-newspace, false)
		}
	}
	if pl.released > d.Blocks {
		return fs.corrupt(corruptf("inode %d: truncation frees %d sectors but di_blocks is %d", ip.ino, pl.released, d.Blocks))
	}
	if fs.sd != nil {
		return fs.truncateSoftdep(ip, &pl, newDb, newIb, length, now)
	}
	d.Db, d.Ib = newDb, newIb
	d.Size = length
	d.Blocks -= pl.released
	now.setMC(d)
	if err := fs.iupdate(ip, orderPointerCleared); err != nil {
		return err
	}
	for _, rw := range pl.rewrites {
		if err := fs.clearPointers(ip, rw.p, int(rw.size)); err != nil {
			return err
		}
	}
	return fs.freeAllNow(ip.ino, append(pl.frees, pl.indirFrees...))
}

// clearPointers zeroes the pointers from index from on in indirect block
// p and writes it (PointerCleared).
func (fs *FS) clearPointers(ip *Inode, p ondisk.Frag, from int) error {
	b, err := fs.cache.Get(fs.sb.FragOffset(p), int(fs.sb.Bsize))
	if err != nil {
		return fmt.Errorf("inode %d: indirect block %d: %w", ip.ino, p, err)
	}
	defer fs.cache.Release(b)
	b.Lock()
	clear(b.Data()[from*8:])
	err = fs.cache.MarkDirty(b)
	b.Unlock()
	if err != nil {
		return err
	}
	return fs.order.PointerCleared(ip.ino, b)
}

// zeroBlock gives a newly allocated extent a zero-filled dirty buffer.
func (fs *FS) zeroBlock(p ondisk.Frag, size int64) error {
	b, err := fs.newBuf(p, size)
	if err != nil {
		return err
	}
	defer fs.cache.Release(b)
	b.Lock()
	err = fs.cache.MarkDirty(b)
	b.Unlock()
	return err
}

// truncateSoftdep ends a shrinking truncate under soft updates. The
// indirect blocks that keep some pointers are cleared first and written
// durably, with the pointer to the new last block, before the inode with
// its new size and pointers: a pointer on disk past the size is a
// partially truncated inode to fsck_ffs, and so is an indirect block left
// past the size by its trimming of a size past the last block (it trims to
// the last block on disk, so an indirect block on disk must hold one). The
// blocks cut off are freed once the writes clearing their pointers are
// durable (at once those whose pointers never reached the disk).
func (fs *FS) truncateSoftdep(ip *Inode, pl *truncPlan, newDb [ondisk.NDaddr]ondisk.Frag, newIb [ondisk.NIaddr]ondisk.Frag, length uint64, now nsTime) error {
	d := &ip.din
	var fr1 softdep.Frees
	if len(pl.rewrites) > 0 {
		// The pointer to the new last block (balloc'd above) first,
		// and the inode counting it: then the indirect blocks on disk
		// keep it while the pointers after it are cleared.
		if err := fs.iupdate(ip, orderDelayed); err != nil {
			return err
		}
		if err := fs.sd.Wait(fs.sd.BlocksWritten(ip.ino)); err != nil {
			return fmt.Errorf("inode %d: writing its block pointers: %w", ip.ino, err)
		}
		var bufs []*bcache.Buf
		defer func() {
			for _, b := range bufs {
				fs.cache.Release(b)
			}
		}()
		var marks []softdep.Dep
		for _, rw := range pl.rewrites {
			b, err := fs.cache.Get(fs.sb.FragOffset(rw.p), int(fs.sb.Bsize))
			if err != nil {
				return fmt.Errorf("inode %d: indirect block %d: %w", ip.ino, rw.p, err)
			}
			bufs = append(bufs, b)
			b.Lock()
			clear(b.Data()[rw.size*8:])
			err = fs.cache.MarkDirty(b)
			if err == nil {
				marks = append(marks, fs.sd.Marker(b)) // before any write of it
			}
			b.Unlock()
			if err != nil {
				return err
			}
		}
		fr1 = fs.handOver(ip.ino, pl.indirFrees, marks)
		if err := fs.sd.Wait(marks...); err != nil {
			return fmt.Errorf("inode %d: writing cleared indirect blocks: %w", ip.ino, err)
		}
	}
	d.Db, d.Ib = newDb, newIb
	d.Size = length
	d.Blocks -= pl.released
	now.setMC(d)
	if err := fs.iupdate(ip, orderPointerCleared); err != nil {
		return err
	}
	fr2 := fs.handOver(ip.ino, pl.frees, []softdep.Dep{fs.sd.InodeWritten(ip.ino)})
	err := fs.freeExtents(ip.ino, fr1)
	if err2 := fs.freeExtents(ip.ino, fr2); err == nil {
		err = err2
	}
	return err
}
