package ufs

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ufs2/ufs2/ondisk"
)

// Taking a snapshot of a filesystem nothing else writes (an unmounted
// image), in the form FreeBSD's ffs_snapshot leaves, so that its fsck_ffs
// and kernel accept it:
//
//   - /.snap/NAME, a regular file flagged SF_SNAPSHOT, owner root, group
//     operator, mode 0440 (mksnap_ffs), of numblks+1 blocks: logical block
//     k stands for filesystem block k, and block numblks holds the list of
//     the logical blocks the snapshot has copies of.
//   - Copies of the superblock block (with the superblock as it was, marked
//     clean, without this snapshot in fs_snapinum), the summary blocks, every
//     cylinder group block, the direct blocks 0 to 11, and the block holding
//     the snapshot's own inode; every indirect block the file needs.
//   - BLK_NOCOPY for every block free when the snapshot was taken; 0 ("not
//     copied yet") for the others.
//   - In the copies, the snapshot itself is expunged: its inode is an empty
//     file and its blocks are free in the copied maps and summaries, so that
//     the frozen image is a consistent filesystem of its own.
//
// From then on every write copies what the snapshot still needs first
// (snapshot_cow.go).

// snapGroup is the operator group's id (FreeBSD's /etc/group).
const snapGroup = 5

// CreateSnapshot takes a snapshot called name in /.snap (made if missing,
// 0775 root:operator as newfs makes it). The FS must be the only writer of
// the filesystem while it runs (an unmounted image); writes go on after it,
// with copy-on-write.
func (fs *FS) CreateSnapshot(name string) (Snapshot, error) {
	if err := fs.writable(); err != nil {
		return Snapshot{}, err
	}
	if n := snapshotCount(fs.sb); n > 0 {
		return Snapshot{}, plainError(ErrInvalid, fmt.Sprintf("the filesystem already holds %d snapshot(s); this version keeps one per filesystem: delete it first (ufs2 snapshot delete)", n))
	}
	if name == "" || name == "." || name == ".." || len(name) > ondisk.MaxNameLen || slices.Contains([]byte(name), '/') {
		return Snapshot{}, plainError(ErrInvalid, fmt.Sprintf("snapshot name %q: give a plain file name", name))
	}
	dir, err := fs.Lookup(fs.Root(), ".snap")
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return Snapshot{}, err
		}
		if dir, err = fs.Mkdir(fs.Root(), ".snap", 0o775, 0, snapGroup); err != nil {
			return Snapshot{}, noSpaceFor(fmt.Errorf("making /.snap: %w", err))
		}
	}
	ino, err := fs.Create(dir, name, 0o440, 0, snapGroup)
	if err != nil {
		return Snapshot{}, noSpaceFor(fmt.Errorf("/.snap/%s: %w", name, err))
	}
	if err := fs.buildSnapshot(ino); err != nil {
		err = noSpaceFor(err)
		// What was allocated leaks (fsck reclaims it); the file, still
		// a plain empty one, goes.
		fs.log.Error("taking a snapshot failed", "name", name, "err", err)
		if uerr := fs.Unlink(dir, name); uerr != nil {
			fs.log.Error("removing the unfinished snapshot file", "name", name, "err", uerr)
		}
		return Snapshot{}, fmt.Errorf("taking snapshot %s: %w", name, err)
	}
	if err := fs.loadSnapshot(); err != nil { // copy-on-write from now on
		return Snapshot{}, err
	}
	st, err := fs.Stat(ino)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Ino: ino, Name: name, Size: int64(st.Size), Time: st.Birthtime.Unix()}, nil
}

// buildSnapshot makes empty regular file ino the snapshot, in the order
// that leaves a crash at any point with leaks only: the blocks allocated
// and their contents written and flushed, then the inode, then the
// superblock listing it.
func (fs *FS) buildSnapshot(ino ondisk.Ino) error {
	if err := fs.Sync(); err != nil {
		return err
	}
	sb := fs.sb
	bsize := int64(sb.Bsize)
	frag := int64(sb.Frag)
	numblks := (sb.Size + frag - 1) / frag
	nindir := int64(sb.Nindir)

	ip, err := fs.OpenInode(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	ip.mu.Lock()
	defer ip.mu.Unlock()

	// Every block the snapshot holds, allocated now: the copies (by the
	// logical block they copy) and the indirect blocks.
	copies := map[int64]ondisk.Frag{}
	var mine []ondisk.Frag
	alloc := func(lbn int64) (ondisk.Frag, error) {
		p, err := fs.alloc.AllocBlock(hint(ip), ondisk.Lbn(max(lbn, 0)), 0, int(bsize), true)
		if err != nil {
			return 0, allocErr(err)
		}
		mine = append(mine, p)
		return p, nil
	}
	want := []int64{sb.Sblockloc / bsize, int64(ondisk.Lbn(sb.Fragstoblks(int64(sb.InoToFsba(ino)))))}
	cs0 := sb.Fragstoblks(int64(sb.Csaddr))
	for i := int64(0); i < (int64(sb.Cssize)+bsize-1)/bsize; i++ {
		want = append(want, cs0+i)
	}
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		want = append(want, sb.Fragstoblks(int64(sb.Cgtod(c))))
	}
	for _, lbn := range want {
		if _, ok := copies[lbn]; !ok {
			if copies[lbn], err = alloc(lbn); err != nil {
				return err
			}
		}
	}
	// The indirect tree for logical blocks NDADDR to numblks (the list).
	var ib [ondisk.NIaddr]ondisk.Frag
	type indir struct {
		p    ondisk.Frag
		ptrs []ondisk.Frag
	}
	var indirs []*indir
	newIndir := func() (*indir, error) {
		p, err := alloc(-1)
		if err != nil {
			return nil, err
		}
		x := &indir{p: p, ptrs: make([]ondisk.Frag, nindir)}
		indirs = append(indirs, x)
		return x, nil
	}
	// level1[i] maps logical blocks NDADDR + i*nindir on; built through
	// the single, double and triple indirect blocks as FreeBSD lays them.
	var level1 []*indir
	{
		last := numblks // the list block is the last logical block
		span := nindir
		base := int64(ondisk.NDaddr)
		for level := 0; level < ondisk.NIaddr && base <= last; level++ {
			var build func(depth int, first int64) (*indir, error)
			build = func(depth int, first int64) (*indir, error) {
				x, err := newIndir()
				if err != nil {
					return nil, err
				}
				if depth == 0 {
					level1 = append(level1, x)
					return x, nil
				}
				per := int64(1)
				for range depth {
					per *= nindir
				}
				for i := int64(0); i < nindir && first+i*per <= last; i++ {
					child, err := build(depth-1, first+i*per)
					if err != nil {
						return nil, err
					}
					x.ptrs[i] = child.p
				}
				return x, nil
			}
			top, err := build(level, base)
			if err != nil {
				return err
			}
			ib[level] = top.p
			base += span
			span *= nindir
		}
	}
	// The list block.
	if copies[numblks], err = alloc(numblks); err != nil {
		return err
	}
	// The maps as they are now, with the snapshot's blocks in use: pushed
	// into their buffers and read from there.
	cgs, err := fs.currentCgs()
	if err != nil {
		return err
	}
	// BLK_NOCOPY for the blocks free now (cgaccount), the last block of
	// the filesystem excepted as FreeBSD does. Then the direct blocks not
	// free are copied too (FreeBSD: so that a copy-on-write into them
	// never has to write the snapshot's inode).
	ptrAt := func(lbn int64) *ondisk.Frag {
		if lbn < ondisk.NDaddr {
			return &ip.din.Db[lbn]
		}
		i := lbn - ondisk.NDaddr
		return &level1[i/nindir].ptrs[i%nindir]
	}
	var db [ondisk.NDaddr]ondisk.Frag
	ip.din.Db = db
	for c, cg := range cgs {
		base := int64(sb.Cgbase(ondisk.Cg(c))) / frag
		n := int64(sb.Fpg) / frag
		if base+n >= numblks {
			n = numblks - base - 1
		}
		for h := int64(0); h < n; h++ {
			if cg.IsBlock(h) {
				*ptrAt(base + h) = ondisk.BlkNoCopy
			}
		}
	}
	for lbn := int64(0); lbn < ondisk.NDaddr; lbn++ {
		if _, ok := copies[lbn]; !ok && *ptrAt(lbn) == 0 {
			if copies[lbn], err = alloc(lbn); err != nil {
				return err
			}
		}
	}
	for lbn, p := range copies {
		*ptrAt(lbn) = p
	}
	// The maps again, now with every block of the snapshot in use, for
	// the copies.
	if cgs, err = fs.currentCgs(); err != nil {
		return err
	}

	// The copies' contents: the blocks as they are, then the snapshot
	// expunged from them.
	data := map[int64][]byte{}
	for lbn := range copies {
		if lbn == numblks {
			continue
		}
		b, err := fs.readBlock(ondisk.Frag(lbn*frag), bsize)
		if err != nil {
			return err
		}
		data[lbn] = b
	}
	var cs []ondisk.Csum
	var copySB ondisk.Superblock
	fs.alloc.Locked(func(s *ondisk.Superblock, c []ondisk.Csum) {
		copySB = *s
		cs = slices.Clone(c)
	})
	for _, p := range mine {
		c := sb.Dtog(p)
		cg := cgs[c]
		h := int64(p-sb.Cgbase(c)) / frag
		cg.SetBlock(h, true)
		cg.ClusterAcct(h, 1)
		cg.Cs.Nbfree++
		cs[c].Nbfree++
		copySB.Cstotal.Nbfree++
	}
	for c, cg := range cgs {
		cg.Sync()
		lbn := sb.Fragstoblks(int64(sb.Cgtod(ondisk.Cg(c))))
		b := data[lbn]
		clear(b)
		copy(b, cg.B)
	}
	sum := summaryBytes(sb, cs)
	for i := int64(0); i*bsize < int64(len(sum)); i++ {
		copy(data[cs0+i], sum[i*bsize:])
	}
	if copySB.Flags&(ondisk.FSUnclean|ondisk.FSNeedsFsck) == 0 {
		copySB.Clean = 1
	}
	copySB.Fmod = 0
	sbBlk := data[sb.Sblockloc/bsize]
	copy(sbBlk[sb.Blkoff(sb.Sblockloc):], copySB.EncodeWithHash())
	inoLbn := sb.Fragstoblks(int64(sb.InoToFsba(ino)))
	iblk := data[inoLbn]
	at := sb.InoToFsbo(ino) * ondisk.DinodeSize
	me, err := ondisk.DecodeDinode(iblk[at : at+ondisk.DinodeSize])
	if err != nil {
		return fs.corrupt(fmt.Errorf("%w: snapshot inode %d: %w", ErrCorrupt, ino, err))
	}
	me.Size, me.Blocks = 0, 0
	me.Flags &^= ondisk.SFSnapshot
	me.Db, me.Ib = [ondisk.NDaddr]ondisk.Frag{}, [ondisk.NIaddr]ondisk.Frag{}
	if err := me.EncodeWithHash(sb, iblk[at:]); err != nil {
		return err
	}
	// The list of copied logical blocks, ascending, its length first
	// (counting itself).
	var list []int64
	for lbn := range copies {
		list = append(list, lbn)
	}
	slices.Sort(list)
	lb := make([]byte, bsize)
	ondisk.SetIndirPtr(lb, 0, ondisk.Frag(len(list)+1))
	for i, lbn := range list {
		if (i+2)*8 > len(lb) {
			return fmt.Errorf("%w: the snapshot's block list does not fit one block", ErrInvalid)
		}
		ondisk.SetIndirPtr(lb, i+1, ondisk.Frag(lbn))
	}
	data[numblks] = lb

	// Write the blocks, then the inode, then the superblock.
	for lbn, b := range data {
		if err := fs.putNewBlock(copies[lbn], b); err != nil {
			return err
		}
	}
	for _, x := range indirs {
		b := make([]byte, bsize)
		for i, q := range x.ptrs {
			ondisk.SetIndirPtr(b, i, q)
		}
		if err := fs.putNewBlock(x.p, b); err != nil {
			return err
		}
	}
	if err := fs.cache.Flush(); err != nil {
		return err
	}
	ip.din.Ib = ib
	ip.din.Size = uint64((numblks + 1) * bsize)
	ip.din.Blocks = uint64(len(mine)) * btodb(bsize)
	ip.din.Flags |= ondisk.SFSnapshot
	fs.stamp().setMC(&ip.din)
	if err := fs.iupdate(ip, orderDelayed); err != nil {
		return err
	}
	ip.mu.Unlock()
	err = fs.Sync()
	ip.mu.Lock()
	if err != nil {
		return err
	}
	fs.alloc.Locked(func(s *ondisk.Superblock, _ []ondisk.Csum) {
		s.Snapinum[0] = uint32(ino)
	})
	if err := fs.writeSuperblock(); err != nil {
		return err
	}
	return nil
}

// putNewBlock writes contents b of a block just allocated, through the
// cache (dirty; the caller flushes).
func (fs *FS) putNewBlock(p ondisk.Frag, b []byte) error {
	nb, err := fs.newBuf(p, int64(len(b)))
	if err != nil {
		return err
	}
	defer fs.cache.Release(nb)
	nb.Lock()
	copy(nb.Data(), b)
	err = fs.cache.MarkDirty(nb)
	nb.Unlock()
	return err
}

// currentCgs returns decoded copies of the cylinder groups as the allocator
// has them now (pushed into their buffers, read from there).
func (fs *FS) currentCgs() ([]*ondisk.CylGroup, error) {
	sb := fs.sb
	var perr error
	fs.alloc.Locked(func(*ondisk.Superblock, []ondisk.Csum) { perr = fs.groups.pushCgs() })
	if perr != nil {
		return nil, perr
	}
	cgs := make([]*ondisk.CylGroup, sb.Ncg)
	for c := range cgs {
		raw, err := fs.readBlock(sb.Cgtod(ondisk.Cg(c)), int64(sb.Cgsize))
		if err != nil {
			return nil, err
		}
		if cgs[c], err = ondisk.DecodeCg(sb, ondisk.Cg(c), raw); err != nil {
			return nil, fs.corrupt(fmt.Errorf("%w: cylinder group %d: %w", ErrCorrupt, c, err))
		}
	}
	return cgs, nil
}

// DeleteSnapshot removes the snapshot called name, as FreeBSD's
// ffs_snapremove does for the last snapshot: it leaves fs_snapinum, its
// BLK_NOCOPY and BLK_SNAP pointers are cleared and its flag dropped (a
// sparse regular file), and its name is removed, which frees its blocks.
// No other snapshot can need them: this version keeps one at most. The FS
// is opened with Options.SnapshotAdmin (or has just taken the snapshot);
// with no snapshot left, it may be written again.
func (fs *FS) DeleteSnapshot(name string) error {
	if err := fs.checkOpen(); err != nil {
		return err
	}
	if fs.ro {
		return ErrReadOnly
	}
	s, err := fs.SnapshotByName(name)
	if err != nil {
		return err
	}
	dir, err := fs.Lookup(fs.Root(), ".snap")
	if err != nil {
		return fmt.Errorf("/.snap: %w", err)
	}
	return fs.deleteSnapshot(dir, s.Name, s.Ino)
}

// deleteSnapshot is DeleteSnapshot of snapshot ino, named name in
// directory dir (Unlink of a snapshot file comes here too).
func (fs *FS) deleteSnapshot(dir ondisk.Ino, name string, ino ondisk.Ino) error {
	if c := fs.cow.Load(); c != nil {
		// No copy into a snapshot being deleted: wait for one in
		// progress, then stop.
		c.mu.Lock()
		fs.cow.Store(nil)
		c.mu.Unlock()
	}
	if n := snapshotCount(fs.sb); n > 1 {
		return fmt.Errorf("%w: the filesystem holds %d snapshots; this version deletes a snapshot only when it is the only one (delete them on FreeBSD)", ErrInvalid, n)
	}
	// The list first: a crash after it leaves a flagged file fsck accepts.
	fs.alloc.Locked(func(sb *ondisk.Superblock, _ []ondisk.Csum) {
		for i, n := range sb.Snapinum {
			if n == uint32(ino) {
				sb.Snapinum[i] = 0
			}
		}
	})
	if err := fs.writeSuperblock(); err != nil {
		return err
	}
	if err := fs.unsnapshot(ino); err != nil {
		return err
	}
	fs.frozen.Store(snapshotCount(fs.sb) > 1)
	return fs.Unlink(dir, name)
}

// unsnapshot makes snapshot file ino a plain sparse file: every pointer
// below fs_frag (BLK_NOCOPY, BLK_SNAP) becomes a hole, the flag goes.
func (fs *FS) unsnapshot(ino ondisk.Ino) error {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	ip.mu.Lock()
	defer ip.mu.Unlock()
	sb := fs.sb
	frag := ondisk.Frag(sb.Frag)
	special := func(p ondisk.Frag) bool { return p > 0 && p < frag }
	for i, p := range ip.din.Db {
		if special(p) {
			ip.din.Db[i] = 0
		}
	}
	var walk func(p ondisk.Frag, level int) error
	walk = func(p ondisk.Frag, level int) error {
		if p == 0 {
			return nil
		}
		if !fs.validRange(p, int64(sb.Frag)) || sb.Fragnum(p) != 0 {
			return fs.corrupt(corruptf("snapshot inode %d: indirect block pointer %d is outside the data area", ino, p))
		}
		b, err := fs.cache.Get(sb.FragOffset(p), int(sb.Bsize))
		if err != nil {
			return err
		}
		b.Lock()
		var children []ondisk.Frag
		changed := false
		for i := range int(sb.Nindir) {
			q := ondisk.IndirPtr(b.Data(), i)
			switch {
			case special(q):
				ondisk.SetIndirPtr(b.Data(), i, 0)
				changed = true
			case q != 0 && level > 0:
				children = append(children, q)
			}
		}
		if changed {
			err = fs.cache.MarkDirty(b)
		}
		b.Unlock()
		fs.cache.Release(b)
		if err != nil {
			return err
		}
		for _, q := range children {
			if err := walk(q, level-1); err != nil {
				return err
			}
		}
		return nil
	}
	for level, p := range ip.din.Ib {
		if err := walk(p, level); err != nil {
			return err
		}
	}
	ip.din.Flags &^= ondisk.SFSnapshot
	fs.stamp().setC(&ip.din)
	return fs.iupdate(ip, orderDelayed)
}

// plainError is an error that reads as msg alone and still is sentinel to
// errors.Is (a message for people, without the package's words).
func plainError(sentinel error, msg string) error { return plainErr{msg, sentinel} }

type plainErr struct {
	msg string
	err error
}

func (e plainErr) Error() string { return e.msg }
func (e plainErr) Unwrap() error { return e.err }

// noSpaceFor says a snapshot's ErrNoSpace in one plain sentence.
func noSpaceFor(err error) error {
	if errors.Is(err, ErrNoSpace) {
		return plainError(ErrNoSpace, "no free inode or block left for the snapshot and its copies of the filesystem's maps; free some space first")
	}
	return err
}
