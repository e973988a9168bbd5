package alloc

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/ufs2/ufs2/ondisk"
)

// AllocInode is ffs_valloc: it allocates an inode of the given mode (only
// the type bits matter) for a new entry of directory parent. A directory
// goes where ffs_dirpref says; anything else goes near its parent: the
// parent's group, the first free inode after cg_irotor, then other groups
// by rehash. It neither reads nor writes the inode itself: the caller sets
// its generation number, birth time and the rest (inode blocks initialised
// here already carry random generation numbers).
func (a *Allocator) AllocInode(parent ondisk.Ino, mode uint16) (ondisk.Ino, error) {
	for attempt := 0; ; attempt++ {
		a.mu.Lock()
		ino, err := a.allocInodeLocked(parent, mode)
		a.mu.Unlock()
		if errors.Is(err, ErrNoInodes) && attempt == 0 && a.opts.Pending != nil {
			a.opts.Pending.Help(Inodes)
			continue
		}
		if errors.Is(err, ErrNoInodes) {
			a.log.Info("out of inodes", "op", "alloc inode", "ino", parent)
		}
		return ino, a.report(err)
	}
}

// Preconditions: a.mu held.
func (a *Allocator) allocInodeLocked(parent ondisk.Ino, mode uint16) (ondisk.Ino, error) {
	sb := a.sb
	if sb.Cstotal.Nifree <= 0 {
		return 0, ErrNoInodes
	}
	isDir := mode&ondisk.IFMT == ondisk.IFDIR
	ipref := uint64(parent)
	if isDir {
		ipref = uint64(a.dirpref(parent))
	}
	if ipref >= uint64(sb.Ncg)*uint64(sb.Ipg) {
		ipref = 0
	}
	c := ondisk.Cg(ipref / uint64(sb.Ipg))
	// Count directories made in a row in a group with no file between.
	if isDir {
		if a.contigdirs[c] < 255 {
			a.contigdirs[c]++
		}
	} else if a.contigdirs[c] > 0 {
		a.contigdirs[c]--
	}
	v, ok, err := a.hashalloc(c, int64(ipref), &request{kind: reqInode, mode: mode})
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNoInodes
	}
	return ondisk.Ino(v), nil
}

// dirpref is ffs_dirpref: the first inode of the group a new directory
// under parent should go to. Preconditions: a.mu held.
//
// A directory in the root spreads out: from a random group, the one with
// the fewest directories among those with at least the average free inodes
// and free blocks. Deeper directories stay with their parent, searching
// forward from the parent's group (wrapping to group 0), for a group
// without too many directories (average + fs_ipg/16), with at least three
// quarters of the average free inodes and blocks, and where fewer than
// maxcontigdirs directories were made in a row; maxcontigdirs leaves room
// for each directory's files (fs_avgfilesize * fs_avgfpdir bytes, or the
// space directories really use when that is more). Failing that, any group
// with the average free inodes.
func (a *Allocator) dirpref(parent ondisk.Ino) ondisk.Ino {
	sb := a.sb
	ncg := ondisk.Cg(sb.Ncg)
	ipg := sb.Ipg
	avgifree := sb.Cstotal.Nifree / int64(ncg)
	avgbfree := sb.Cstotal.Nbfree / int64(ncg)
	avgndir := sb.Cstotal.Ndir / int64(ncg)
	cs := a.csums
	inoOf := func(c ondisk.Cg) ondisk.Ino { return ondisk.Ino(uint64(ipg) * uint64(c)) }

	if parent == ondisk.RootIno {
		prefcg := ondisk.Cg(a.rand() % uint32(ncg))
		mincg, minndir := prefcg, int64(ipg)
		pick := func(c ondisk.Cg) {
			if int64(cs[c].Ndir) < minndir && int64(cs[c].Nifree) >= avgifree && int64(cs[c].Nbfree) >= avgbfree {
				mincg, minndir = c, int64(cs[c].Ndir)
			}
		}
		for c := prefcg; c < ncg; c++ {
			pick(c)
		}
		for c := ondisk.Cg(0); c < prefcg; c++ {
			pick(c)
		}
		return inoOf(mincg)
	}

	maxndir := min(avgndir+int64(ipg)/16, int64(ipg))
	minifree := max(avgifree-avgifree/4, 1)
	minbfree := max(avgbfree-avgbfree/4, 1)
	cgsize := int64(sb.Fsize) * int64(sb.Fpg)
	dirsize := int64(sb.Avgfilesize) * int64(sb.Avgfpdir)
	if avgndir > 0 {
		if cur := (cgsize - avgbfree*int64(sb.Bsize)) / avgndir; dirsize < cur {
			dirsize = cur
		}
	}
	var maxcontigdirs int64
	if dirsize > 0 {
		maxcontigdirs = min(avgbfree*int64(sb.Bsize)/dirsize, 255)
	}
	if sb.Avgfpdir > 0 {
		maxcontigdirs = min(maxcontigdirs, int64(ipg/sb.Avgfpdir))
	}
	if maxcontigdirs == 0 {
		maxcontigdirs = 1
	}

	prefcg := sb.InoToCg(parent)
	if prefcg >= ncg {
		prefcg = 0
	}
	fits := func(c ondisk.Cg) bool {
		return int64(cs[c].Ndir) < maxndir && int64(cs[c].Nifree) >= minifree &&
			int64(cs[c].Nbfree) >= minbfree && int64(a.contigdirs[c]) < maxcontigdirs
	}
	for c := prefcg; c < ncg; c++ {
		if fits(c) {
			return inoOf(c)
		}
	}
	for c := ondisk.Cg(0); c < prefcg; c++ {
		if fits(c) {
			return inoOf(c)
		}
	}
	// Short of space: any group with the average free inodes.
	for c := prefcg; c < ncg; c++ {
		if int64(cs[c].Nifree) >= avgifree {
			return inoOf(c)
		}
	}
	c := ondisk.Cg(0)
	for ; c < prefcg; c++ {
		if int64(cs[c].Nifree) >= avgifree {
			break
		}
	}
	return inoOf(c)
}

// nodealloccg is ffs_nodealloccg: the preferred inode of group c if free,
// else the first free one from cg_irotor on (wrapping). When the inode is
// within one block of cg_initediblk, the next block of inodes is
// initialised first, one block at a time. Preconditions: a.mu held.
func (a *Allocator) nodealloccg(c ondisk.Cg, ipref int64, mode uint16) (ondisk.Ino, bool, error) {
	sb := a.sb
	if a.csums[c].Nifree == 0 {
		return 0, false, nil
	}
	cg, err := a.getCg(c)
	if err != nil {
		return 0, false, err
	}
	ipg := int64(sb.Ipg)
	inopb := int64(sb.Inopb)
	for {
		if cg.Cs.Nifree == 0 {
			return 0, false, nil
		}
		found := false
		if ipref != 0 {
			ipref %= ipg
			found = !cg.InodeUsed(ipref)
		}
		if !found {
			i, ok := a.inodeSearch(cg)
			if !ok {
				return 0, false, corruptf(c, "cg_cs.cs_nifree is %d but the inode map is full", cg.Cs.Nifree)
			}
			ipref = i
		}
		if ipref+inopb > int64(cg.Initediblk) && cg.Initediblk < cg.Niblk {
			old := cg.Initediblk
			first := ondisk.Ino(uint64(c)*uint64(ipg) + uint64(old))
			if err := a.groups.InitInodeBlock(c, sb.InoToFsba(first), first, int(inopb)); err != nil {
				return 0, false, fmt.Errorf("alloc: cg %d: initialising inodes %d-%d: %w", c, first, int64(first)+inopb-1, err)
			}
			cg.Initediblk = old + uint32(inopb)
			a.touch(c, cg)
			continue
		}
		break
	}
	cg.Irotor = uint32(ipref)
	cg.SetInodeUsed(ipref, true)
	a.addNifree(c, cg, -1)
	if mode&ondisk.IFMT == ondisk.IFDIR {
		a.addNdir(c, cg, 1)
	}
	a.touch(c, cg)
	return ondisk.Ino(uint64(c)*uint64(ipg) + uint64(ipref)), true, nil
}

// inodeSearch finds the first free inode of cg from cg_irotor's byte on,
// then from the start up to that byte.
func (a *Allocator) inodeSearch(cg *ondisk.CylGroup) (int64, bool) {
	ipg := int64(a.sb.Ipg)
	nbytes := howmany(ipg, 8)
	m := cg.B[int64(cg.Iusedoff) : int64(cg.Iusedoff)+nbytes]
	irotor := int64(cg.Irotor)
	if irotor >= ipg {
		irotor = 0
	}
	start := irotor / 8
	scan := func(from, to int64) (int64, bool) {
		for i := from; i < to; i++ {
			if m[i] != 0xff {
				ino := i*8 + int64(bits.TrailingZeros8(^m[i]))
				if ino < ipg {
					return ino, true
				}
			}
		}
		return 0, false
	}
	if i, ok := scan(start, nbytes); ok {
		return i, true
	}
	return scan(0, start+1)
}

// FreeInode is ffs_freefile: inode ino, of the given mode (only the type
// bits matter), goes back to the free map. Freeing a free inode, or one of
// the reserved inodes 0 and 1, is ErrCorrupt and changes nothing.
func (a *Allocator) FreeInode(ino ondisk.Ino, mode uint16) error {
	if err := a.checkIno("free inode", ino); err != nil {
		return err
	}
	a.mu.Lock()
	err := a.freeInodeLocked(ino, mode)
	a.mu.Unlock()
	return a.report(err)
}

// Preconditions: a.mu held.
func (a *Allocator) freeInodeLocked(ino ondisk.Ino, mode uint16) error {
	sb := a.sb
	c := sb.InoToCg(ino)
	if ino < ondisk.RootIno {
		return corruptf(c, "freeing reserved inode %d", ino)
	}
	cg, err := a.getCg(c)
	if err != nil {
		return err
	}
	cgino := int64(uint32(ino) % sb.Ipg)
	if !cg.InodeUsed(cgino) {
		return corruptf(c, "freeing free inode %d", ino)
	}
	isDir := mode&ondisk.IFMT == ondisk.IFDIR
	if isDir && (cg.Cs.Ndir <= 0 || a.csums[c].Ndir <= 0) {
		return corruptf(c, "freeing directory inode %d but the group counts no directories", ino)
	}
	cg.SetInodeUsed(cgino, false)
	if cgino < int64(cg.Irotor) {
		cg.Irotor = uint32(cgino)
	}
	a.addNifree(c, cg, 1)
	if isDir {
		a.addNdir(c, cg, -1)
	}
	a.touch(c, cg)
	return nil
}
