package ufs

import (
	"container/list"
	"hash/maphash"
	"sync"

	"github.com/ufs2/ufs2/ondisk"
)

// Dirhash: the in-memory index of a large directory (FreeBSD's
// ufs_dirhash, the UFS2 paper's "dirhash"). It maps each name to the
// offset of its entry and keeps, for each DIRBLKSIZ chunk, the free space
// in it (what compaction would give), in a max-tree so that the first
// chunk with room for a new entry is found in O(log n). Like FreeBSD's, it
// keys offsets by a hash of the name and checks the name in the entry it
// finds, which keeps the index small and its probes cheap. With it, lookup,
// create and remove cost about the same in a directory of 100,000 entries
// as in one of 100: no linear scan.
//
// An index is built lazily, the first time a directory at least
// dirhashMinSize bytes long is searched, and kept in step with every
// change of the directory (updateChunk after each chunk is rewritten).
// Indexes live with their Inode in the inode cache and are dropped with
// it, and also, least recently used first, when all indexes together hold
// more than Options.DirhashMaxEntries names. Any inconsistency found
// (a hashed offset whose entry has another name) drops the index; the
// next search rebuilds it.

// dirhashMinSize is vfs.ufs.dirhash_minsize's default: directories
// smaller than this (five chunks) are searched linearly.
const dirhashMinSize = 5 * ondisk.DirBlkSize

type dirhash struct {
	owner *Inode
	seed  maphash.Seed
	// byHash maps the hash of a name to the offset of its entry; a name
	// whose hash another name already holds goes to over instead.
	byHash map[uint64]int64
	over   map[string]int64
	free   []int32 // free bytes in each chunk
	tree   []int32 // max-tree over free: leaves at [width, 2*width)
	width  int
	// Guarded by FS.dirhashes.mu.
	elem    *list.Element // on FS.dirhashes.l
	counted int           // names counted in FS.dirhashes.entries
}

// dirhashList is the LRU list of all indexes, bounding their memory.
type dirhashList struct {
	// mu protects l, entries and the elem field of every dirhash.
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
		if d.Ino == 0 {
			free += int32(d.Reclen)
		} else {
			free += int32(d.Reclen) - int32(ondisk.DirectSize(int(d.Namlen)))
		}
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

func (dh *dirhash) hash(name []byte) uint64 { return maphash.Bytes(dh.seed, name) }

// size is the number of names indexed.
func (dh *dirhash) size() int { return len(dh.byHash) + len(dh.over) }

// candidates returns the offsets where name may be: the one its hash
// maps to, and its own in the overflow.
func (dh *dirhash) candidates(name string) (first int64, ok bool, over int64, okOver bool) {
	first, ok = dh.byHash[maphash.String(dh.seed, name)]
	if len(dh.over) > 0 {
		over, okOver = dh.over[name]
	}
	return
}

func (dh *dirhash) add(name []byte, off int64) {
	h := dh.hash(name)
	if _, taken := dh.byHash[h]; taken {
		dh.over[string(name)] = off
		return
	}
	dh.byHash[h] = off
}

// remove drops name, whose entry is at off. A name of the same hash
// waiting in the overflow takes its place.
func (dh *dirhash) remove(name []byte, off int64) {
	h := dh.hash(name)
	if cur, ok := dh.byHash[h]; ok && cur == off {
		delete(dh.byHash, h)
		for n, o := range dh.over {
			if maphash.String(dh.seed, n) == h {
				delete(dh.over, n)
				dh.byHash[h] = o
				break
			}
		}
		return
	}
	if cur, ok := dh.over[string(name)]; ok && cur == off {
		delete(dh.over, string(name))
	}
}

// updateChunk brings the index in step with chunk c, whose bytes were
// before and are now after (before nil: a new chunk).
func (dh *dirhash) updateChunk(c int, before, after []byte) error {
	base := int64(c) * ondisk.DirBlkSize
	if before != nil {
		err := ondisk.DirChunkEntries(before, func(o int, d ondisk.Direct) bool {
			if d.Ino != 0 {
				dh.remove(d.Name, base+int64(o))
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	err := ondisk.DirChunkEntries(after, func(o int, d ondisk.Direct) bool {
		if d.Ino != 0 {
			dh.add(d.Name, base+int64(o))
		}
		return true
	})
	if err != nil {
		return err
	}
	free, err := chunkFree(after)
	if err != nil {
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
	if int64(ip.din.Size) < dirhashMinSize {
		if dirhashOf(ip) != nil { // the directory shrank
			fs.dropDirhash(ip)
		}
		return nil
	}
	ip.dhmu.Lock()
	dh := ip.dh
	if dh == nil {
		dh = fs.buildDirhash(ip)
		ip.dh = dh
	}
	ip.dhmu.Unlock()
	if dh == nil {
		return nil
	}
	fs.dirhashes.touch(fs, dh)
	return dh
}

// buildDirhash scans the directory. Preconditions: ip.mu and ip.dhmu held.
func (fs *FS) buildDirhash(ip *Inode) *dirhash {
	nchunks := int(int64(ip.din.Size) / ondisk.DirBlkSize)
	dh := &dirhash{owner: ip, seed: maphash.MakeSeed(), byHash: make(map[uint64]int64, nchunks*8), over: map[string]int64{}}
	dh.resize(nchunks)
	bsize := int64(fs.sb.Bsize)
	for lbn := ondisk.Lbn(0); int64(lbn)*bsize < int64(ip.din.Size); lbn++ {
		b, err := fs.fileBlock(ip, lbn)
		if err != nil || b == nil {
			if b != nil {
				fs.cache.Release(b)
			}
			return nil
		}
		b.RLock()
		data := b.Data()
		n := min(int64(len(data)), int64(ip.din.Size)-int64(lbn)*bsize)
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
	} else {
		dl.l.MoveToFront(dh.elem)
	}
	dl.entries += dh.size() - dh.counted
	dh.counted = dh.size()
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
		if ip.dh != nil {
			dl.mu.Lock()
			if ip.dh.elem == nil {
				ip.dh = nil
			}
			dl.mu.Unlock()
		}
		ip.dhmu.Unlock()
	}
}

// dropDirhash forgets ip's index.
func (fs *FS) dropDirhash(ip *Inode) {
	ip.dhmu.Lock()
	dh := ip.dh
	ip.dh = nil
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
func dirhashOf(ip *Inode) *dirhash {
	ip.dhmu.Lock()
	defer ip.dhmu.Unlock()
	return ip.dh
}
