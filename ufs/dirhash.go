package ufs

import (
	"container/list"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/ufs2/ufs2/ondisk"
)

// Dirhash: the in-memory index of a large directory (FreeBSD's
// ufs_dirhash, the UFS2 paper's "dirhash"). It maps each name to the
// offset of its entry and keeps, for each DIRBLKSIZ chunk, the free space
// in it (what compaction would give), in a max-tree so that the first
// chunk with room for a new entry is found in O(log n). With it, lookup,
// create and remove cost about the same in a directory of 100,000 entries
// as in one of 100: no linear scan.
//
// The name index is, like FreeBSD's, an open-addressed table of entry
// offsets probed linearly from a hash of the name; the name itself is
// checked in the entry found, which keeps the index small. Each slot is
// one word: the entry's offset and 32 more bits of the name's hash, so
// that a probe reads the directory only at an entry whose hash matches
// (almost always the one wanted) and a lookup of an absent name reads it
// not at all. Removed names leave tombstones until the table is rebuilt.
//
// An index also caches where the directory's blocks past the direct ones
// are on disk (dirblocks.go), so that reaching a block does not go
// through the indirect blocks each time.
//
// An index is built lazily, the first time a directory at least
// dirhashMinSize bytes long is searched, and kept in step with every
// change of the directory (updateChunk after each chunk is rewritten).
// Indexes live with their Inode in the inode cache and are dropped with
// it, and also, least recently used first, when all indexes together hold
// more than Options.DirhashMaxEntries names and cached block addresses.
// Any inconsistency found (a hashed offset whose entry is not a used
// entry) drops the index; the next search rebuilds it.

// dirhashMinSize is vfs.ufs.dirhash_minsize's default: directories
// smaller than this (five chunks) are searched linearly.
const dirhashMinSize = 5 * ondisk.DirBlkSize

// dirhashMaxSize: offsets must fit a slot's 32 bits in units of 4 bytes
// (entries are 4-byte aligned), with room for the block (at most
// MAXBSIZE, 64 KiB) a directory may grow by between two searches; larger
// directories are scanned.
const dirhashMaxSize = (1<<32 - slotFirst - 1<<16) * 4

// A slot's low 32 bits: slotEmpty, slotDead (a tombstone) or the entry's
// offset / 4 + slotFirst. The high 32 bits are the name's hash tag.
const (
	slotEmpty = 0
	slotDead  = 1
	slotFirst = 2
)

type dirhash struct {
	owner *Inode
	seed  maphash.Seed
	// slots is the name table (a power of two long), used the names in
	// it and dead its tombstones.
	slots      []uint64
	used, dead int
	free       []int32 // free bytes in each chunk
	tree       []int32 // max-tree over free: leaves at [width, 2*width)
	width      int
	// blocks caches the disk addresses of the directory's blocks from
	// NDADDR on (dirblocks.go): an immutable slice, replaced as a whole.
	blocks atomic.Pointer[[]ondisk.Frag]
	// Guarded by FS.dirhashes.mu.
	elem    *list.Element // on FS.dirhashes.l
	counted int           // entries counted in FS.dirhashes.entries
}

// dirhashList is the LRU list of all indexes, bounding their memory.
type dirhashList struct {
	// mu protects l, entries and the elem and counted fields of every
	// dirhash.
	mu      sync.Mutex
	l       *list.List
	entries int
	max     int
}

func (dl *dirhashList) init(max int) {
	dl.l = list.New()
	dl.max = max
	if dl.max <= 0 {
		dl.max = DefaultDirhashMaxEntries
	}
}

// chunkFree returns the free bytes of a chunk: the space compaction
// would collect (each used entry's record length beyond what its name
// needs, and all of an unused entry's).
func chunkFree(chunk []byte) (int32, error) {
	var free int32
	err := ondisk.DirChunkEntries(chunk, func(_ int, d ondisk.Direct) bool {
		free += int32(d.Reclen) - int32(entryUsed(d))
		return true
	})
	return free, err
}

func (dh *dirhash) setFree(c int, v int32) {
	dh.free[c] = v
	i := c + dh.width
	dh.tree[i] = v
	for i > 1 {
		i /= 2
		dh.tree[i] = max(dh.tree[2*i], dh.tree[2*i+1])
	}
}

// resize makes room for n chunks (n may shrink the count).
func (dh *dirhash) resize(n int) {
	if n > dh.width {
		w := max(dh.width, 16)
		for w < n {
			w *= 2
		}
		old := dh.free
		dh.width = w
		dh.tree = make([]int32, 2*w)
		dh.free = make([]int32, 0, w)
		dh.free = append(dh.free, old...)
		for c, v := range old {
			dh.tree[w+c] = v
		}
		for i := w - 1; i >= 1; i-- {
			dh.tree[i] = max(dh.tree[2*i], dh.tree[2*i+1])
		}
	}
	for len(dh.free) > n {
		c := len(dh.free) - 1
		dh.setFree(c, 0)
		dh.free = dh.free[:c]
	}
	for len(dh.free) < n {
		dh.free = append(dh.free, 0)
	}
}

// firstFree is the first chunk with at least need free bytes, or -1
// (ufsdirhash_findfree's block search).
func (dh *dirhash) firstFree(need int32) int {
	if dh.width == 0 || dh.tree[1] < need {
		return -1
	}
	i := 1
	for i < dh.width {
		if dh.tree[2*i] >= need {
			i = 2 * i
		} else {
			i = 2*i + 1
		}
	}
	c := i - dh.width
	if c >= len(dh.free) {
		return -1
	}
	return c
}

// endUseful is the end of the last chunk holding a used entry
// (ufsdirhash_enduseful).
func (dh *dirhash) endUseful() int64 {
	c := len(dh.free) - 1
	for c >= 0 && dh.free[c] == ondisk.DirBlkSize {
		c--
	}
	return int64(c+1) * ondisk.DirBlkSize
}

// tag is the part of a name's hash kept in its slot (its high 32 bits);
// the probe for the name starts at the tag's low bits.
func (dh *dirhash) tag(name []byte) uint32 { return uint32(maphash.Bytes(dh.seed, name) >> 32) }

func (dh *dirhash) tagString(name string) uint32 {
	return uint32(maphash.String(dh.seed, name) >> 32)
}

// size is the number of names indexed.
func (dh *dirhash) size() int { return dh.used }

// cost is what the index counts against Options.DirhashMaxEntries: its
// names and its cached block addresses.
func (dh *dirhash) cost() int {
	n := dh.used
	if b := dh.blocks.Load(); b != nil {
		n += len(*b)
	}
	return n
}

// probe walks the slots holding tag t: start it with pos = the tag, and
// each call returns the next offset there, or -1 at the end of the probe
// sequence.
func (dh *dirhash) probe(t uint32, pos *uint64) int64 {
	mask := uint64(len(dh.slots) - 1)
	if mask+1 == 0 {
		return -1
	}
	for i := *pos & mask; ; i = (i + 1) & mask {
		s := dh.slots[i]
		switch low := uint32(s); {
		case low == slotEmpty:
			*pos = i
			return -1
		case low != slotDead && uint32(s>>32) == t:
			*pos = i + 1
			return int64(low-slotFirst) * 4
		}
	}
}

// add indexes name, whose entry is at off.
func (dh *dirhash) add(name []byte, off int64) {
	if (dh.used+dh.dead+1)*4 > len(dh.slots)*3 {
		dh.rehash(dh.used + 1)
	}
	dh.insert(uint64(dh.tag(name))<<32 | uint64(off/4+slotFirst))
}

// insert puts slot value v in the first free slot of its probe sequence.
func (dh *dirhash) insert(v uint64) {
	mask := uint64(len(dh.slots) - 1)
	for i := (v >> 32) & mask; ; i = (i + 1) & mask {
		switch uint32(dh.slots[i]) {
		case slotDead:
			dh.dead--
			fallthrough
		case slotEmpty:
			dh.slots[i] = v
			dh.used++
			return
		}
	}
}

// rehash rebuilds the table for n names, dropping the tombstones.
func (dh *dirhash) rehash(n int) {
	size := 16
	if n > 4 {
		size = max(size, 1<<bits.Len(uint(n*2-1))) // at most half full
	}
	old := dh.slots
	dh.slots = make([]uint64, size)
	dh.used, dh.dead = 0, 0
	for _, v := range old {
		if uint32(v) >= slotFirst {
			dh.insert(v)
		}
	}
}

// remove drops name, whose entry is at off.
func (dh *dirhash) remove(name []byte, off int64) {
	mask := uint64(len(dh.slots) - 1)
	if mask+1 == 0 {
		return
	}
	v := uint64(dh.tag(name))<<32 | uint64(off/4+slotFirst)
	for i := (v >> 32) & mask; ; i = (i + 1) & mask {
		switch s := dh.slots[i]; {
		case uint32(s) == slotEmpty:
			return
		case s == v:
			dh.used--
			if uint32(dh.slots[(i+1)&mask]) != slotEmpty {
				dh.slots[i] = slotDead
				dh.dead++
				return
			}
			// The end of a probe sequence: this slot and the
			// tombstones before it become empty.
			dh.slots[i] = slotEmpty
			for j := (i - 1) & mask; uint32(dh.slots[j]) == slotDead; j = (j - 1) & mask {
				dh.slots[j] = slotEmpty
				dh.dead--
			}
			if len(dh.slots) > 64 && dh.used*8 < len(dh.slots) {
				dh.rehash(dh.used)
			}
			return
		}
	}
}

// updateChunk brings the index in step with chunk c, whose bytes were
// before and are now after (before nil: a new chunk). Only the names that
// moved, went or came are touched: an entry at the same offset with the
// same name in both stays as it is.
func (dh *dirhash) updateChunk(c int, before, after []byte) error {
	base := int64(c) * ondisk.DirBlkSize
	var free int32
	// bd is the next used entry of before, at bo; past the last, bo is
	// beyond every offset.
	const done = math.MaxInt
	bo := 0
	var bd ondisk.Direct
	nextBefore := func() error {
		for bo < len(before) {
			d, err := ondisk.DecodeDirect(before[bo:])
			if err != nil {
				return err
			}
			if d.Ino != 0 {
				bd = d
				return nil
			}
			bo += int(d.Reclen)
		}
		bo = done
		return nil
	}
	if err := nextBefore(); err != nil {
		return err
	}
	// dropBefore removes the entries of before ahead of offset o.
	dropBefore := func(o int) error {
		for bo < o {
			dh.remove(bd.Name, base+int64(bo))
			bo += int(bd.Reclen)
			if err := nextBefore(); err != nil {
				return err
			}
		}
		return nil
	}
	for ao := 0; ao < len(after); {
		d, err := ondisk.DecodeDirect(after[ao:])
		if err != nil {
			return err
		}
		free += int32(d.Reclen) - int32(entryUsed(d))
		if d.Ino != 0 {
			if err := dropBefore(ao); err != nil {
				return err
			}
			if bo == ao && string(bd.Name) == string(d.Name) {
				bo += int(bd.Reclen)
				if err := nextBefore(); err != nil {
					return err
				}
			} else {
				dh.add(d.Name, base+int64(ao))
			}
		}
		ao += int(d.Reclen)
	}
	if err := dropBefore(done); err != nil {
		return err
	}
	if c >= len(dh.free) {
		dh.resize(c + 1)
	}
	dh.setFree(c, free)
	return nil
}

// dirhashFor returns ip's index, building it if the directory is large
// enough; nil when it is small or cannot be indexed (the caller then
// scans). Preconditions: ip.mu held (shared or exclusive).
func (fs *FS) dirhashFor(ip *Inode) *dirhash {
	if int64(ip.din.Size) < dirhashMinSize || int64(ip.din.Size) >= dirhashMaxSize {
		if dirhashOf(ip) != nil { // the directory shrank
			fs.dropDirhash(ip)
		}
		return nil
	}
	dh := ip.dh.Load()
	if dh == nil {
		ip.dhmu.Lock()
		if dh = ip.dh.Load(); dh == nil {
			dh = fs.buildDirhash(ip)
			ip.dh.Store(dh)
		}
		ip.dhmu.Unlock()
		if dh == nil {
			return nil
		}
	}
	fs.dirhashes.touch(fs, dh)
	return dh
}

// buildDirhash scans the directory. Preconditions: ip.mu and ip.dhmu held.
func (fs *FS) buildDirhash(ip *Inode) *dirhash {
	size := int64(ip.din.Size)
	nchunks := int(size / ondisk.DirBlkSize)
	bsize := int64(fs.sb.Bsize)
	nblocks := ondisk.Lbn((size + bsize - 1) / bsize)
	addrs := make([]ondisk.Frag, 0, nblocks)
	if err := fs.walk(ip, 0, nblocks, func(lbn ondisk.Lbn, p ondisk.Frag) bool {
		if lbn != ondisk.Lbn(len(addrs)) {
			return false // a hole: left to the scan to report
		}
		addrs = append(addrs, p)
		return true
	}); err != nil || ondisk.Lbn(len(addrs)) != nblocks {
		return nil
	}
	dh := &dirhash{owner: ip, seed: maphash.MakeSeed()}
	dh.rehash(nchunks * 4)
	dh.resize(nchunks)
	for lbn, p := range addrs {
		b, err := fs.cache.Get(fs.sb.FragOffset(p), int(fs.blkSize(ip.din.Size, ondisk.Lbn(lbn))))
		if err != nil {
			return nil
		}
		b.RLock()
		data := b.Data()
		n := min(int64(len(data)), size-int64(lbn)*bsize)
		var bad bool
		for o := int64(0); o+ondisk.DirBlkSize <= n; o += ondisk.DirBlkSize {
			c := int((int64(lbn)*bsize + o) / ondisk.DirBlkSize)
			if err := dh.updateChunk(c, nil, data[o:o+ondisk.DirBlkSize]); err != nil {
				bad = true
				break
			}
		}
		b.RUnlock()
		fs.cache.Release(b)
		if bad {
			return nil
		}
	}
	if len(addrs) > ondisk.NDaddr {
		tail := addrs[ondisk.NDaddr:len(addrs):len(addrs)]
		dh.blocks.Store(&tail)
	}
	return dh
}

// touch moves dh to the front of the LRU list, adding it if new, and
// drops the least recently used indexes past the budget. The caller holds
// dh.owner.mu, so the index does not change meanwhile.
func (dl *dirhashList) touch(fs *FS, dh *dirhash) {
	var victims []*Inode
	dl.mu.Lock()
	if dh.elem == nil {
		dh.elem = dl.l.PushFront(dh)
	} else if dl.l.Front() != dh.elem {
		dl.l.MoveToFront(dh.elem)
	}
	cost := dh.cost()
	dl.entries += cost - dh.counted
	dh.counted = cost
	for dl.entries > dl.max && dl.l.Len() > 1 {
		e := dl.l.Back()
		v := e.Value.(*dirhash)
		if v == dh {
			break
		}
		dl.l.Remove(e)
		v.elem = nil
		dl.entries -= v.counted
		v.counted = 0
		victims = append(victims, v.owner)
	}
	dl.mu.Unlock()
	for _, ip := range victims {
		ip.dhmu.Lock()
		if dh := ip.dh.Load(); dh != nil {
			dl.mu.Lock()
			if dh.elem == nil {
				ip.dh.Store(nil)
			}
			dl.mu.Unlock()
		}
		ip.dhmu.Unlock()
	}
}

// dropDirhash forgets ip's index.
func (fs *FS) dropDirhash(ip *Inode) {
	ip.dhmu.Lock()
	dh := ip.dh.Swap(nil)
	ip.dhmu.Unlock()
	if dh == nil {
		return
	}
	dl := &fs.dirhashes
	dl.mu.Lock()
	if dh.elem != nil {
		dl.l.Remove(dh.elem)
		dh.elem = nil
		dl.entries -= dh.counted
		dh.counted = 0
	}
	dl.mu.Unlock()
}

// dirhashOf returns ip's index if it has one, without building it.
func dirhashOf(ip *Inode) *dirhash { return ip.dh.Load() }
