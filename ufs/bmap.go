package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// The block map. A file's logical blocks 0..11 are in di_db; then come
// NINDIR blocks under the single indirect block di_ib[0], NINDIR² under the
// double indirect di_ib[1] and NINDIR³ under the triple di_ib[2]. Every
// pointer is a 64-bit fragment address; 0 is a hole (reads as zeros). All
// blocks are full blocks except the last block of a file smaller than
// NDADDR blocks, which holds only the fragments its tail needs (sblksize).

// Extent is a run of a file's allocated data, contiguous in the file and on
// disk.
type Extent struct {
	Off  int64       // byte offset in the file (a multiple of the block size)
	Len  int64       // bytes of file data (the last extent stops at the file size)
	Addr ondisk.Frag // disk address of the first byte, in fragments
}

// blkSize is the allocated size of logical block lbn of a file of the given
// size: sblksize.
func (fs *FS) blkSize(size uint64, lbn ondisk.Lbn) int64 {
	return fs.sb.Sblksize(int64(size), lbn)
}

// checkDataPtr checks a data block pointer for lbn, whose allocated size is
// blen bytes.
func (fs *FS) checkDataPtr(ino ondisk.Ino, lbn ondisk.Lbn, p ondisk.Frag, blen int64) error {
	nfrags := fs.sb.Numfrags(fs.sb.Fragroundup(blen))
	if !fs.validRange(p, nfrags) || int64(fs.sb.Fragnum(p))+nfrags > int64(fs.sb.Frag) {
		return corruptf("inode %d: block %d: pointer %d (%d fragments) is outside the data area", ino, lbn, p, nfrags)
	}
	return nil
}

// Bmap returns the disk address of logical block lbn of inode ino, or 0 for
// a hole.
func (fs *FS) Bmap(ino ondisk.Ino, lbn ondisk.Lbn) (ondisk.Frag, error) {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return 0, err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	return fs.bmap(ip, lbn)
}

// bmap is Bmap on an inode whose lock the caller holds. A block of an
// indexed directory past the direct blocks comes from the index's block
// cache (dirblocks.go); otherwise bmapUncached maps it.
func (fs *FS) bmap(ip *Inode, lbn ondisk.Lbn) (ondisk.Frag, error) {
	if lbn >= ondisk.NDaddr {
		if dh := ip.dh.Load(); dh != nil && int64(lbn) < int64((ip.din.Size+uint64(fs.sb.Bsize)-1)>>uint(fs.sb.Bshift)) {
			if p, ok, err := fs.dirBlock(ip, dh, lbn); ok || err != nil {
				return p, err
			}
		}
	}
	return fs.bmapUncached(ip, lbn)
}

// bmapUncached follows the indirect blocks down to lbn reading one pointer
// from each, without copying them out. Preconditions: ip.mu held.
func (fs *FS) bmapUncached(ip *Inode, lbn ondisk.Lbn) (ondisk.Frag, error) {
	if lbn < 0 {
		return 0, fmt.Errorf("%w: inode %d: negative block %d", ErrInvalid, ip.ino, lbn)
	}
	sb := fs.sb
	size := ip.din.Size
	if int64(lbn) >= int64((size+uint64(sb.Bsize)-1)>>uint(sb.Bshift)) {
		return 0, nil
	}
	if lbn < ondisk.NDaddr {
		p := ip.din.Db[lbn]
		if p == 0 {
			return 0, nil
		}
		return p, fs.checkDataPtr(ip.ino, lbn, p, fs.blkSize(size, lbn))
	}
	level, idx, err := fs.indirPath(lbn)
	if err != nil {
		return 0, nil // past the largest file: a hole
	}
	p := ip.din.Ib[level]
	for depth := 0; depth <= level; depth++ {
		if p == 0 {
			return 0, nil
		}
		if !fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0 {
			return 0, corruptf("inode %d: level-%d indirect block on the path to block %d: pointer %d is outside the data area", ip.ino, level-depth+1, lbn, p)
		}
		b, err := fs.cache.Get(sb.FragOffset(p), int(sb.Bsize))
		if err != nil {
			return 0, fmt.Errorf("inode %d: indirect block %d: %w", ip.ino, p, err)
		}
		b.RLock()
		p = ondisk.IndirPtr(b.Data(), idx[depth])
		b.RUnlock()
		fs.cache.Release(b)
	}
	if p == 0 {
		return 0, nil
	}
	return p, fs.checkDataPtr(ip.ino, lbn, p, int64(sb.Bsize))
}

// walk calls fn for each allocated data block of ip with from <= lbn < to,
// in order, skipping holes (whole missing indirect subtrees at once). It
// stops when fn returns false. Every pointer is range-checked; indirect
// blocks are read through the cache. The caller holds ip.mu.
func (fs *FS) walk(ip *Inode, from, to ondisk.Lbn, fn func(lbn ondisk.Lbn, p ondisk.Frag) bool) error {
	if from < 0 {
		from = 0
	}
	size := ip.din.Size
	if t := ondisk.Lbn((size + uint64(fs.sb.Bsize) - 1) >> uint(fs.sb.Bshift)); to > t {
		to = t
	}
	if from >= to {
		return nil
	}
	w := walker{fs: fs, ip: ip, from: from, to: to, fn: fn}
	for lbn := from; lbn < ondisk.NDaddr && lbn < to; lbn++ {
		p := ip.din.Db[lbn]
		if p == 0 {
			continue
		}
		if err := fs.checkDataPtr(ip.ino, lbn, p, fs.blkSize(size, lbn)); err != nil {
			return err
		}
		if !fn(lbn, p) {
			return nil
		}
	}
	base := ondisk.Lbn(ondisk.NDaddr)
	span := ondisk.Lbn(1)
	nindir := ondisk.Lbn(fs.sb.Nindir)
	for level := 0; level < ondisk.NIaddr; level++ {
		span *= nindir // data blocks under di_ib[level]
		if base >= to {
			return nil
		}
		if base+span > from {
			cont, err := w.indir(ip.din.Ib[level], level, base, span/nindir)
			if err != nil || !cont {
				return err
			}
		}
		base += span
	}
	return nil
}

type walker struct {
	fs       *FS
	ip       *Inode
	from, to ondisk.Lbn
	fn       func(ondisk.Lbn, ondisk.Frag) bool
}

// indir visits indirect block p of the given level (0 single, 1 double, 2
// triple) whose first data block is base and whose pointers each cover
// per data blocks. It returns false when the walk must stop.
func (w *walker) indir(p ondisk.Frag, level int, base, per ondisk.Lbn) (bool, error) {
	if p == 0 {
		return true, nil
	}
	fs := w.fs
	if !fs.validRange(p, int64(fs.sb.Frag)) || fs.sb.Fragnum(p) != 0 {
		return false, corruptf("inode %d: level-%d indirect block for blocks from %d: pointer %d is outside the data area", w.ip.ino, level+1, base, p)
	}
	nindir := ondisk.Lbn(fs.sb.Nindir)
	first := ondisk.Lbn(0)
	if w.from > base {
		first = (w.from - base) / per
	}
	last := (w.to - 1 - base) / per // inclusive
	if last >= nindir {
		last = nindir - 1
	}
	if first > last {
		return true, nil
	}
	ptrs, err := fs.readPointers(p, int(first), int(last+1))
	if err != nil {
		return false, fmt.Errorf("inode %d: %w", w.ip.ino, err)
	}
	for i, q := range ptrs {
		lbn := base + (first+ondisk.Lbn(i))*per
		if q == 0 {
			continue
		}
		if level == 0 {
			if err := fs.checkDataPtr(w.ip.ino, lbn, q, int64(fs.sb.Bsize)); err != nil {
				return false, err
			}
			if !w.fn(lbn, q) {
				return false, nil
			}
			continue
		}
		cont, err := w.indir(q, level-1, lbn, per/nindir)
		if err != nil || !cont {
			return cont, err
		}
	}
	return true, nil
}

// readPointers returns pointers [i, j) of the indirect block at p, copied
// out of the cache so that no buffer lock is held while the caller walks on.
func (fs *FS) readPointers(p ondisk.Frag, i, j int) ([]ondisk.Frag, error) {
	b, err := fs.cache.Get(fs.sb.FragOffset(p), int(fs.sb.Bsize))
	if err != nil {
		return nil, fmt.Errorf("indirect block %d: %w", p, err)
	}
	defer fs.cache.Release(b)
	b.RLock()
	defer b.RUnlock()
	data := b.Data()
	out := make([]ondisk.Frag, j-i)
	for k := range out {
		out[k] = ondisk.IndirPtr(data, i+k)
	}
	return out, nil
}

// Extents calls fn for each run of allocated data of inode ino that ends
// after byte from, in file order, merging blocks contiguous in the file
// and on disk. What lies between extents (and after the last, up to the
// file size) is a hole. It stops when fn returns false.
func (fs *FS) Extents(ino ondisk.Ino, from int64, fn func(Extent) bool) error {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if t := ip.din.Type(); t != ondisk.IFREG && t != ondisk.IFDIR && !(t == ondisk.IFLNK && !fs.isFastLink(&ip.din)) {
		return nil
	}
	return fs.extents(ip, from, -1, fn)
}

// extents is Extents on an inode whose lock the caller holds; it looks at
// blocks overlapping [from, to) (to < 0: up to the end of the file).
func (fs *FS) extents(ip *Inode, from, to int64, fn func(Extent) bool) error {
	if from < 0 {
		from = 0
	}
	size := int64(ip.din.Size)
	if to < 0 || to > size {
		to = size
	}
	if from >= to {
		return nil
	}
	bsize := int64(fs.sb.Bsize)
	var cur Extent
	stopped := false
	err := fs.walk(ip, fs.sb.Lblkno(from), fs.sb.Lblkno(to-1)+1, func(lbn ondisk.Lbn, p ondisk.Frag) bool {
		off := int64(lbn) * bsize
		n := min(bsize, size-off)
		if cur.Len > 0 && cur.Off+cur.Len == off && cur.Len%bsize == 0 &&
			cur.Addr+ondisk.Frag(fs.sb.Numfrags(cur.Len)) == p {
			cur.Len += n
			return true
		}
		if cur.Len > 0 && !fn(cur) {
			stopped = true
			return false
		}
		cur = Extent{Off: off, Len: n, Addr: p}
		return true
	})
	if err != nil || stopped {
		return err
	}
	if cur.Len > 0 {
		fn(cur)
	}
	return nil
}

// SeekData returns the first offset at or after off that holds data
// (SEEK_DATA), or ErrNoData if there is none before the end of the file.
func (fs *FS) SeekData(ino ondisk.Ino, off int64) (int64, error) {
	res := int64(-1)
	err := fs.Extents(ino, off, func(e Extent) bool {
		res = max(off, e.Off)
		return false
	})
	if err != nil {
		return 0, err
	}
	if res < 0 {
		return 0, fmt.Errorf("%w: inode %d: no data at or after %d", ErrNoData, ino, off)
	}
	return res, nil
}

// SeekHole returns the first offset at or after off inside a hole
// (SEEK_HOLE); the end of the file counts as a hole. An offset at or past
// the end gives ErrNoData.
func (fs *FS) SeekHole(ino ondisk.Ino, off int64) (int64, error) {
	st, err := fs.Stat(ino)
	if err != nil {
		return 0, err
	}
	if off < 0 || off >= int64(st.Size) {
		return 0, fmt.Errorf("%w: inode %d: offset %d is not before the end (%d)", ErrNoData, ino, off, st.Size)
	}
	pos := off
	err = fs.Extents(ino, off, func(e Extent) bool {
		if e.Off > pos {
			return false
		}
		pos = max(pos, e.Off+e.Len)
		return true
	})
	return pos, err
}

// hasBlocks reports whether d's block pointers point at blocks: not for
// a fast symlink (its target is there) or a device (di_rdev).
func (fs *FS) hasBlocks(d *ondisk.Dinode) bool {
	switch d.Type() {
	case ondisk.IFREG, ondisk.IFDIR:
		return true
	case ondisk.IFLNK:
		return !fs.isFastLink(d)
	}
	return false
}

// forEachExtent calls fn for every extent inode ip holds: its data blocks
// (at their allocated sizes), its indirect blocks and its extended
// attribute blocks. Preconditions: ip.mu held.
func (fs *FS) forEachExtent(ip *Inode, fn func(p ondisk.Frag, size int64)) error {
	d := &ip.din
	sb := fs.sb
	bsize := int64(sb.Bsize)
	for i := range ondisk.NXaddr {
		if p := d.Extb[i]; p != 0 {
			fn(p, fs.sb.ExtBlkSize(int64(d.Extsize), i))
		}
	}
	if !fs.hasBlocks(d) {
		return nil
	}
	for i := range ondisk.NDaddr {
		if p := d.Db[i]; p != 0 {
			fn(p, fs.blkSize(d.Size, ondisk.Lbn(i)))
		}
	}
	var walk func(p ondisk.Frag, level int) error
	walk = func(p ondisk.Frag, level int) error {
		if !fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0 {
			return corruptf("inode %d: indirect block %d is outside the data area", ip.ino, p)
		}
		fn(p, bsize)
		ptrs, err := fs.readPointers(p, 0, int(sb.NINDIR()))
		if err != nil {
			return fmt.Errorf("inode %d: %w", ip.ino, err)
		}
		for _, q := range ptrs {
			switch {
			case q == 0:
			case level == 0:
				fn(q, bsize)
			default:
				if err := walk(q, level-1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for level, p := range d.Ib {
		if p != 0 {
			if err := walk(p, level); err != nil {
				return err
			}
		}
	}
	return nil
}
