package fsck

import "github.com/ufs2/ufs2/ondisk"

// Giving back the blocks of a cleared inode one by one (freeblock) is
// exact only for an inode whose blocks pass 1 marked in full. Pass 1 stops
// walking an inode with too many bad or duplicate blocks; the rest of its
// pointers were never marked, and may name blocks other files own. Such
// an inode's blocks are not given back one by one: they stay marked in
// use, and pass 5 starts from a block map rebuilt from the inodes that
// remain (remapBlocks), the map the next run's pass 1 will find.

// partlyMarked records that pass 1 stopped walking ino's blocks, and, as
// fsck_ffs does, that a second run is wanted.
func (c *checker) partlyMarked(ino ondisk.Ino) {
	if c.partial == nil {
		c.partial = map[ondisk.Ino]bool{}
	}
	c.partial[ino] = true
	c.rerun = true
}

// giveBackBlocks frees the data blocks of dp (inode d.number) and, with
// ext, its extended attribute blocks, unless pass 1 marked them only in
// part, or found any block claimed twice: then the block map is rebuilt
// before pass 5 instead. A block claimed twice may be an indirect block
// of one inode and a directory or indirect block of another, rewritten
// since pass 1 read it: walked now, it names blocks pass 1 never marked
// for this inode (metadata among them), and giving those back one by one
// would free blocks in use.
func (c *checker) giveBackBlocks(dp *ondisk.Dinode, d *desc, data, ext bool) error {
	if c.partial[d.number] || len(c.dupOrder) > 0 {
		c.remap = true
		return nil
	}
	d.fn = c.freeblock
	if data {
		if _, err := c.ckinode(dp, d); err != nil {
			return err
		}
	}
	if ext {
		c.walkExtattrBlocks(dp, d)
	}
	return nil
}

// remapBlocks rebuilds the block map, and the count of fragments in use,
// from the metadata areas and the blocks of every inode still in use,
// walked as pass 1 walks them.
func (c *checker) remapBlocks() error {
	clear(c.bmap)
	c.markMetadata()
	c.nBlks = 0
	mark := func(d *desc) int {
		res := keepOn
		blk := d.blkno
		if d.typ == typeSnap && (blk == ondisk.BlkNoCopy || blk == ondisk.BlkSnap) {
			return keepOn
		}
		anyout := c.chkrange(blk, d.numfrags)
		for n := d.numfrags; n > 0; n, blk = n-1, blk+1 {
			switch {
			case anyout && c.chkrange(blk, 1):
				res = skip
			case !c.testbmap(blk):
				c.setbmap(blk)
				c.nBlks++
			}
		}
		return res
	}
	sb := c.sb
	for g := 0; g < int(sb.Ncg); g++ {
		if err := c.checkStop(); err != nil {
			return err
		}
		base := ondisk.Ino(uint32(g) * sb.Ipg)
		for i := range c.ist[g] {
			ino := base + ondisk.Ino(i)
			if ino < ondisk.RootIno || c.ist[g][i].state == ustate || c.ist[g][i].state == 0 {
				continue
			}
			dp, err := c.ginode(ino)
			if err != nil {
				return err
			}
			d := &desc{typ: c.ist[g][i].idtype(), number: ino, fn: mark}
			if _, err := c.ckinode(dp, d); err != nil {
				return err
			}
			c.walkExtattrBlocks(dp, d)
		}
	}
	c.remap = false
	return nil
}
