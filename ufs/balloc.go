package ufs

import (
	"fmt"
	"sync"

	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Block allocation for a file's data: FreeBSD's ffs_balloc_ufs2.
//
// Buffers: a block's cached buffer is keyed by its disk offset and its
// allocated size (sblksize at the file's size). When a fragment block
// grows in place or moves, its contents move to a buffer under the new key
// and the old one is invalidated, so that no two buffers ever cover the
// same allocated extent; a freed extent's buffer is invalidated too
// (forget). The read half relies on this when it reads file data from the
// device unless the cache holds a buffer under the current key.

// bapPool holds scratch pointer arrays for alloc.BlkPref, which looks at
// the pointer before the one being allocated in an indirect block.
var bapPool = sync.Pool{New: func() any { return new([]ondisk.Frag) }}

// btodb is btodb(): bytes to DEV_BSIZE sectors, the unit of di_blocks.
func btodb(n int64) uint64 { return uint64(ondisk.Btodb(n)) }

// hint is the allocator's view of ip.
func hint(ip *Inode) alloc.InodeHint { return alloc.Hint(ip.ino, &ip.din) }

// indirPath gives, for data block lbn >= NDADDR, the level of the indirect
// block at its top (0 single, 1 double, 2 triple: di_ib[level]) and the
// index to follow in each indirect block from the top down (level+1 of
// them). Blocks past the triple indirect range give ErrTooBig.
func (fs *FS) indirPath(lbn ondisk.Lbn) (level int, idx [ondisk.NIaddr]int, err error) {
	nindir := fs.sb.NINDIR()
	rel := int64(lbn) - ondisk.NDaddr
	span := int64(1)
	for level = 0; level < ondisk.NIaddr; level++ {
		span *= nindir
		if rel < span {
			per := span / nindir
			for d := 0; d <= level; d++ {
				idx[d] = int(rel / per)
				rel %= per
				per /= max(nindir, 1)
				if per == 0 {
					per = 1
				}
			}
			return level, idx, nil
		}
		rel -= span
	}
	return 0, idx, fmt.Errorf("%w: block %d is past the triple indirect range", ErrTooBig, lbn)
}

// moveBlock moves the contents of the osize bytes at old (a file's block,
// read through the cache) into a buffer for nsize bytes at nw, zero after
// osize, marked dirty; the old buffer is dropped. The caller has read old
// into data already.
func (fs *FS) moveBlock(data []byte, old ondisk.Frag, osize int64, nw ondisk.Frag, nsize int64) error {
	fs.forget(old, osize)
	b, err := fs.newBuf(nw, nsize)
	if err != nil {
		return err
	}
	defer fs.cache.Release(b)
	b.Lock()
	copy(b.Data(), data)
	err = fs.cache.MarkDirty(b)
	b.Unlock()
	return err
}

// readBlock returns a copy of the size bytes at p, through the cache.
func (fs *FS) readBlock(p ondisk.Frag, size int64) ([]byte, error) {
	b, err := fs.cache.Get(fs.sb.FragOffset(p), int(size))
	if err != nil {
		return nil, err
	}
	defer fs.cache.Release(b)
	out := make([]byte, size)
	b.RLock()
	copy(out, b.Data())
	b.RUnlock()
	return out, nil
}

// reallocFrag is the ffs_realloccg step of balloc: the osize-byte fragment
// block *ptr (logical block lbn of ip's data, or of its extended attribute
// area when ext) grows to nsize bytes, in place when the fragments after
// it are free, else moved; its contents follow it and di_blocks grows.
// bap is the pointer array *ptr is in (di_db or di_extb).
// Preconditions: ip.mu held exclusively.
func (fs *FS) reallocFrag(ip *Inode, lbn ondisk.Lbn, ptr *ondisk.Frag, bap []ondisk.Frag, osize, nsize int64) error {
	data, err := fs.readBlock(*ptr, osize)
	if err != nil {
		return fmt.Errorf("inode %d: block %d: %w", ip.ino, lbn, err)
	}
	h := hint(ip)
	pref := fs.alloc.BlkPref(h, lbn, int(lbn), bap)
	bno, moved, err := fs.alloc.ReallocFrag(h, lbn, *ptr, pref, int(osize), int(nsize), fs.opts.UseReserve)
	if err != nil {
		return fs.corrupt(fmt.Errorf("inode %d: block %d: %w", ip.ino, lbn, allocErr(err)))
	}
	if fs.sd != nil {
		// Soft updates free the old fragments once the new pointer is
		// durable (at once those that never reached the disk).
		slot := softdep.Slot{Ino: ip.ino, Kind: softdep.SlotDirect, Index: int(lbn)}
		fs.forget(*ptr, osize) // before soft updates may free it (release.go)
		fr := fs.sd.MoveBlock(slot, *ptr, int(osize), bno, int(nsize), fs.blkVer(bno))
		if err := fs.moveBlock(data, *ptr, osize, bno, nsize); err != nil {
			return err
		}
		if err := fs.freeExtents(ip.ino, fr); err != nil {
			return err
		}
		*ptr = bno
		ip.din.Blocks += btodb(nsize) - btodb(osize)
		return nil
	}
	if err := fs.moveBlock(data, *ptr, osize, bno, nsize); err != nil {
		return err
	}
	if moved {
		// DeferFragFree: the old fragments were kept until their
		// buffer was dropped, so nobody can get them with stale data.
		if err := fs.freeNow(ip.ino, *ptr, osize); err != nil {
			return err
		}
	}
	*ptr = bno
	ip.din.Blocks += btodb(nsize) - btodb(osize)
	return nil
}

// balloc is ffs_balloc_ufs2 for ip's data: it makes sure the block holding
// the n bytes at off (which stay inside one block) is allocated with room
// for them, the file's fragment tail extended to a full block first when
// the bytes lie in a later block. It returns the block's address and
// allocated size after the call and whether it was just allocated (its
// contents are then undefined: the caller writes or zeroes them). The
// caller sets di_size afterwards and writes the inode.
// Preconditions: ip.mu held exclusively.
func (fs *FS) balloc(ip *Inode, off int64, n int64) (addr ondisk.Frag, size int64, fresh bool, err error) {
	sb := fs.sb
	bsize := int64(sb.Bsize)
	lbn := sb.Lblkno(off)
	need := sb.Blkoff(off) + n
	if need > bsize || off < 0 {
		return 0, 0, false, fmt.Errorf("%w: balloc of %d bytes at %d", ErrInvalid, n, off)
	}
	d := &ip.din
	fsize := int64(d.Size)

	// A fragment tail must become a full block before the file grows
	// past it.
	if last := sb.Lblkno(fsize); last < ondisk.NDaddr && last < lbn && d.Db[last] != 0 {
		if osize := fs.blkSize(d.Size, last); osize < bsize && osize > 0 {
			if err := fs.reallocFrag(ip, last, &d.Db[last], d.Db[:], osize, bsize); err != nil {
				return 0, 0, false, err
			}
			d.Size = uint64(sb.Lblktosize(last + 1))
			fsize = int64(d.Size)
		}
	}

	if lbn < ondisk.NDaddr {
		nb := d.Db[lbn]
		if nb != 0 && fsize >= sb.Lblktosize(lbn+1) {
			return nb, bsize, false, nil
		}
		if nb != 0 {
			osize := sb.Fragroundup(sb.Blkoff(fsize))
			nsize := sb.Fragroundup(need)
			if nsize <= osize {
				return nb, osize, false, nil
			}
			if err := fs.reallocFrag(ip, lbn, &d.Db[lbn], d.Db[:], osize, nsize); err != nil {
				return 0, 0, false, err
			}
			return d.Db[lbn], nsize, false, nil
		}
		nsize := bsize
		if fsize < sb.Lblktosize(lbn+1) {
			nsize = sb.Fragroundup(need)
		}
		h := hint(ip)
		pref := fs.alloc.BlkPref(h, lbn, int(lbn), d.Db[:])
		nb, err := fs.alloc.AllocBlock(h, lbn, pref, int(nsize), fs.opts.UseReserve)
		if err != nil {
			return 0, 0, false, fs.corrupt(fmt.Errorf("inode %d: block %d: %w", ip.ino, lbn, allocErr(err)))
		}
		d.Db[lbn] = nb
		d.Blocks += btodb(nsize)
		if fs.sd != nil {
			fs.sd.NewBlock(softdep.Slot{Ino: ip.ino, Kind: softdep.SlotDirect, Index: int(lbn)}, nb, int(nsize), fs.blkVer(nb), false, -1)
		}
		return nb, nsize, true, nil
	}
	nb, fresh, err := fs.ballocIndir(ip, lbn)
	return nb, bsize, fresh, err
}

// ballocIndir is balloc for a block under the indirect blocks: it walks
// from di_ib down, allocating missing indirect blocks (each written before
// the pointer to it: BlockInitialised) and then the data block. When an
// allocation fails part way, the indirect blocks allocated by this call
// are unhooked and freed again.
func (fs *FS) ballocIndir(ip *Inode, lbn ondisk.Lbn) (ondisk.Frag, bool, error) {
	sb := fs.sb
	bsize := int64(sb.Bsize)
	frag := ondisk.Frag(sb.Frag)
	level, idx, err := fs.indirPath(lbn)
	if err != nil {
		return 0, false, err
	}
	d := &ip.din
	var newIndirs []ondisk.Frag
	// Where the pointer to the first indirect block allocated here lives:
	// in the inode (unwindAddr 0) or in indirect block unwindAddr.
	unwindAddr, unwindIdx := ondisk.Frag(-1), 0
	fail := func(err error) (ondisk.Frag, bool, error) {
		if len(newIndirs) > 0 {
			if uerr := fs.unwindIndirs(ip, level, unwindAddr, unwindIdx, newIndirs); uerr != nil {
				fs.log.Error("unwinding indirect blocks", "ino", ip.ino, "err", uerr)
			}
		}
		return 0, false, err
	}
	// A new indirect block gets a zeroed buffer, written before the
	// pointer to it (BlockInitialised) without soft updates; with them the
	// buffer is made after softdep records the pointer, so that its first
	// write counts as the block's initialisation.
	initIndir := func(nb ondisk.Frag) error {
		b, err := fs.newBuf(nb, bsize)
		if err != nil {
			return err
		}
		defer fs.cache.Release(b)
		b.Lock()
		err = fs.cache.MarkDirty(b)
		b.Unlock()
		if err == nil {
			err = fs.order.BlockInitialised(ip.ino, b)
		}
		return err
	}
	allocIndir := func(pref ondisk.Frag) (ondisk.Frag, error) {
		nb, err := fs.alloc.AllocBlock(hint(ip), lbn, pref, int(bsize), fs.opts.UseReserve)
		if err != nil {
			return 0, fs.corrupt(fmt.Errorf("inode %d: indirect block for block %d: %w", ip.ino, lbn, allocErr(err)))
		}
		d.Blocks += btodb(bsize)
		newIndirs = append(newIndirs, nb)
		if fs.sd != nil {
			return nb, nil
		}
		return nb, initIndir(nb)
	}
	// cover is where the data block lies in the file: a pointer leading
	// to it from an indirect block waits for the inode's size on disk to
	// pass it (soft updates).
	cover := int64(lbn) * bsize

	var pref ondisk.Frag
	parent := d.Ib[level]
	if parent == 0 {
		pref = fs.alloc.BlkPref(hint(ip), lbn, -(level + 1), nil)
		nb, err := allocIndir(pref)
		if err != nil {
			return fail(err)
		}
		pref = nb + frag
		d.Ib[level] = nb
		unwindAddr = 0
		parent = nb
		if fs.sd != nil {
			fs.sd.NewBlock(softdep.Slot{Ino: ip.ino, Kind: softdep.SlotIndirect, Index: level}, nb, int(bsize), fs.blkVer(nb), true, -1)
			if err := initIndir(nb); err != nil {
				return fail(err)
			}
		}
	}
	for depth := 0; ; depth++ {
		if !fs.validRange(parent, int64(sb.Frag)) || sb.Fragnum(parent) != 0 {
			return fail(fs.corrupt(corruptf("inode %d: indirect block %d on the path to block %d is outside the data area", ip.ino, parent, lbn)))
		}
		b, err := fs.cache.Get(sb.FragOffset(parent), int(bsize))
		if err != nil {
			return fail(fmt.Errorf("inode %d: indirect block %d: %w", ip.ino, parent, err))
		}
		b.RLock()
		child := ondisk.IndirPtr(b.Data(), idx[depth])
		var prev ondisk.Frag
		if idx[depth] > 0 {
			prev = ondisk.IndirPtr(b.Data(), idx[depth]-1)
		}
		b.RUnlock()
		if depth == level {
			if child != 0 {
				fs.cache.Release(b)
				if err := fs.checkDataPtr(ip.ino, lbn, child, bsize); err != nil {
					return fail(fs.corrupt(err))
				}
				return child, false, nil
			}
			if pref == 0 || (int64(lbn) > ondisk.NDaddr && sb.Metaspace != 0) {
				bp := bapPool.Get().(*[]ondisk.Frag)
				if len(*bp) < idx[depth]+1 {
					*bp = make([]ondisk.Frag, sb.NINDIR())
				}
				bap := (*bp)[:idx[depth]+1]
				if idx[depth] > 0 {
					bap[idx[depth]-1] = prev
				}
				pref = fs.alloc.BlkPref(hint(ip), lbn, idx[depth], bap)
				bapPool.Put(bp)
			}
			nb, err := fs.alloc.AllocBlock(hint(ip), lbn, pref, int(bsize), fs.opts.UseReserve)
			if err != nil {
				fs.cache.Release(b)
				return fail(fs.corrupt(fmt.Errorf("inode %d: block %d: %w", ip.ino, lbn, allocErr(err))))
			}
			d.Blocks += btodb(bsize)
			fs.dirBlocksChanged(ip, lbn)
			b.Lock()
			ondisk.SetIndirPtr(b.Data(), idx[depth], nb)
			if err := fs.cache.MarkDirty(b); err != nil {
				// Undone like every other failure here: the pointer,
				// the data block, and the indirect blocks made above.
				ondisk.SetIndirPtr(b.Data(), idx[depth], 0)
				b.Unlock()
				fs.cache.Release(b)
				d.Blocks -= btodb(bsize)
				if ferr := fs.freeNow(ip.ino, nb, bsize); ferr != nil {
					fs.log.Error("returning a data block", "ino", ip.ino, "err", ferr)
				}
				return fail(err)
			}
			if fs.sd != nil {
				fs.sd.NewBlock(softdep.Slot{Ino: ip.ino, Kind: softdep.SlotInBlock, Index: idx[depth], Block: parent}, nb, int(bsize), fs.blkVer(nb), false, cover)
			}
			b.Unlock()
			fs.cache.Release(b)
			return nb, true, nil
		}
		if child == 0 {
			if pref == 0 {
				pref = fs.alloc.BlkPref(hint(ip), lbn, depth-level, nil)
			}
			nb, err := allocIndir(pref)
			if err != nil {
				fs.cache.Release(b)
				return fail(err)
			}
			pref = nb + frag
			b.Lock()
			ondisk.SetIndirPtr(b.Data(), idx[depth], nb)
			err = fs.cache.MarkDirty(b)
			if fs.sd != nil {
				fs.sd.NewBlock(softdep.Slot{Ino: ip.ino, Kind: softdep.SlotInBlock, Index: idx[depth], Block: parent}, nb, int(bsize), fs.blkVer(nb), true, cover)
			}
			b.Unlock()
			if unwindAddr < 0 {
				unwindAddr, unwindIdx = parent, idx[depth]
			}
			if err == nil && fs.sd != nil {
				err = initIndir(nb)
			}
			if err != nil {
				fs.cache.Release(b)
				return fail(err)
			}
			child = nb
		}
		fs.cache.Release(b)
		parent = child
	}
}

// unwindIndirs undoes the indirect blocks a failed ballocIndir allocated:
// the pointer to the first of them is cleared and written, then all are
// freed.
func (fs *FS) unwindIndirs(ip *Inode, level int, addr ondisk.Frag, i int, blocks []ondisk.Frag) error {
	fs.dirBlocksChanged(ip, 0)
	if fs.sd != nil {
		return fs.unwindIndirsSoftdep(ip, level, addr, i, blocks)
	}
	if addr == 0 {
		ip.din.Ib[level] = 0
		if err := fs.iupdate(ip, orderPointerCleared); err != nil {
			return err
		}
	} else if addr > 0 {
		b, err := fs.cache.Get(fs.sb.FragOffset(addr), int(fs.sb.Bsize))
		if err != nil {
			return err
		}
		b.Lock()
		ondisk.SetIndirPtr(b.Data(), i, 0)
		err = fs.cache.MarkDirty(b)
		b.Unlock()
		if err == nil {
			err = fs.order.PointerCleared(ip.ino, b)
		}
		fs.cache.Release(b)
		if err != nil {
			return err
		}
	}
	var first error
	for _, p := range blocks {
		ip.din.Blocks -= btodb(int64(fs.sb.Bsize))
		if err := fs.freeNow(ip.ino, p, int64(fs.sb.Bsize)); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// unwindIndirsSoftdep is unwindIndirs under soft updates: the pointer to
// the first new indirect block is cleared, and the blocks are freed once
// that is durable (at once if it never reached the disk).
func (fs *FS) unwindIndirsSoftdep(ip *Inode, level int, addr ondisk.Frag, i int, blocks []ondisk.Frag) error {
	var clear softdep.Dep
	if addr == 0 {
		ip.din.Ib[level] = 0
		if err := fs.iupdate(ip, orderPointerCleared); err != nil {
			return err
		}
		clear = fs.sd.InodeWritten(ip.ino)
	} else if addr > 0 {
		b, err := fs.cache.Get(fs.sb.FragOffset(addr), int(fs.sb.Bsize))
		if err != nil {
			return err
		}
		b.Lock()
		ondisk.SetIndirPtr(b.Data(), i, 0)
		err = fs.cache.MarkDirty(b)
		if err == nil {
			clear = fs.sd.Marker(b) // under the lock: before any write of it
		}
		b.Unlock()
		fs.cache.Release(b)
		if err != nil {
			return err
		}
	}
	exts := make([]extent, len(blocks))
	for j, p := range blocks {
		ip.din.Blocks -= btodb(int64(fs.sb.Bsize))
		exts[j] = extent{p, int64(fs.sb.Bsize)}
	}
	if clear == nil {
		clear = fs.sd.InodeWritten(ip.ino)
	}
	return fs.release(ip.ino, exts, clear)
}

// newBuf returns a zero-filled buffer for a newly allocated extent.
func (fs *FS) newBuf(p ondisk.Frag, size int64) (*bcache.Buf, error) {
	b, err := fs.cache.GetNoRead(fs.sb.FragOffset(p), int(size))
	if err != nil {
		return nil, err
	}
	b.Lock()
	clear(b.Data())
	b.Unlock()
	return b, nil
}
