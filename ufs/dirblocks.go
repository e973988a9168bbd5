package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// The block cache of an indexed directory. Past its NDADDR direct blocks,
// every access to a directory block would map the logical block through
// the indirect blocks: a buffer-cache lookup and a pointer decode per
// level. A directory with a dirhash keeps instead, in the index, the disk
// addresses of its blocks from NDADDR on (dirhash.blocks), filled by
// walking the indirect blocks once and extended the same way when the
// directory grows past the blocks cached.
//
// The cache holds only pointers that were checked (checkDataPtr), for a
// prefix of the blocks below the directory's size with no hole in it, so
// that bmap reports a hole or a bad pointer as it would without the cache.
// It is an immutable slice replaced as a whole: readers holding the
// directory's lock shared extend it, each publishing a complete copy,
// while everything that changes a data pointer of the directory holds the
// lock exclusively and cuts the cache at the first logical block it
// changes (dirBlocksChanged). Today only truncate changes pointers the
// cache can hold; ballocIndir (which fills holes), growDirSoftdep (which
// copies the indirect blocks on the path, keeping every data pointer) and
// unwindIndirs (which drops indirect blocks with nothing under them) call
// it as well, so that the rule stays "every change of a data pointer
// cuts the cache" for code added later. Direct blocks are read from the
// inode and not cached. Its memory (one address per block) counts against
// Options.DirhashMaxEntries with the index's names and goes with the
// index.

// dirBlock returns the disk address of block lbn (at least NDADDR, inside
// the directory's size) of directory ip from dh's block cache, extending
// the cache to the end of the directory when lbn is past it. ok is false
// when lbn is not cached (a hole before it or at it): the caller then
// maps it the slow way. Preconditions: ip.mu held; dh is ip's index.
func (fs *FS) dirBlock(ip *Inode, dh *dirhash, lbn ondisk.Lbn) (p ondisk.Frag, ok bool, err error) {
	i := int(lbn - ondisk.NDaddr)
	var cur []ondisk.Frag
	if bp := dh.blocks.Load(); bp != nil {
		cur = *bp
		if i < len(cur) {
			return cur[i], true, nil
		}
	}
	bsize := int64(fs.sb.Bsize)
	nblocks := ondisk.Lbn((int64(ip.din.Size) + bsize - 1) / bsize)
	from := ondisk.Lbn(ondisk.NDaddr + len(cur))
	if lbn >= nblocks || from >= nblocks {
		return 0, false, nil
	}
	ext := make([]ondisk.Frag, len(cur), int(nblocks-ondisk.NDaddr))
	copy(ext, cur)
	err = fs.walk(ip, from, nblocks, func(l ondisk.Lbn, q ondisk.Frag) bool {
		if l != ondisk.Lbn(ondisk.NDaddr+len(ext)) {
			return false // a hole: not cached
		}
		ext = append(ext, q)
		return true
	})
	if err != nil {
		return 0, false, err
	}
	if len(ext) > len(cur) {
		ext = ext[:len(ext):len(ext)]
		dh.blocks.Store(&ext)
	}
	if i < len(ext) {
		return ext[i], true, nil
	}
	return 0, false, nil
}

// dirBlocksChanged drops the cached addresses of ip's blocks from lbn on:
// a pointer to one of them is about to change or has changed.
// Preconditions: ip.mu held exclusively.
func (fs *FS) dirBlocksChanged(ip *Inode, lbn ondisk.Lbn) {
	dh := ip.dh.Load()
	if dh == nil {
		return
	}
	i := max(int(lbn-ondisk.NDaddr), 0)
	bp := dh.blocks.Load()
	if bp == nil || i >= len(*bp) {
		return
	}
	if i == 0 {
		dh.blocks.Store(nil)
		return
	}
	kept := (*bp)[:i:i]
	dh.blocks.Store(&kept)
}

// checkDirBlocks compares ip's block cache with the block map read from
// the indirect blocks, for tests. Preconditions: ip.mu held.
func (fs *FS) checkDirBlocks(ip *Inode) error {
	dh := ip.dh.Load()
	if dh == nil {
		return nil
	}
	bp := dh.blocks.Load()
	if bp == nil {
		return nil
	}
	for i, p := range *bp {
		lbn := ondisk.Lbn(ondisk.NDaddr + i)
		want, err := fs.bmapUncached(ip, lbn)
		if err != nil {
			return err
		}
		if p != want {
			return fmt.Errorf("directory %d: block %d cached at %d, the block map says %d", ip.ino, lbn, p, want)
		}
	}
	return nil
}
