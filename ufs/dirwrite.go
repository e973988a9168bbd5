package ufs

import (
	"encoding/binary"
	"fmt"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
)

// Directory changes: FreeBSD's ufs_lookup (its CREATE and DELETE
// searches), ufs_direnter, ufs_dirremove, ufs_dirrewrite and
// ufs_dirempty. A directory is a sequence of DIRBLKSIZ (512-byte) chunks;
// no entry crosses a chunk. A new entry goes into the first chunk with
// room, the entries before it in the chunk squeezed together (compacted)
// when no single entry has the room in its tail; without room anywhere the
// directory grows by one chunk (a fragment-sized growth while it is under
// NDADDR blocks). A removed entry's space is absorbed by the entry before
// it, or, for the first entry of a chunk, its d_ino is set to 0.

// dirSlot is what a search for a name finds: the entry if it exists, and
// where an entry of that name would go.
type dirSlot struct {
	found bool
	ino   ondisk.Ino
	dtype uint8
	off   int64 // offset of the entry found
	// The entries to compact for a new entry: slotSize bytes from
	// slotOff, inside one chunk. slotOff -1: add a chunk at the end.
	slotOff, slotSize int64
	// endOff is ufs_lookup's i_endoff: once the new entry is in, the
	// directory may be cut to endOff (0 or not below the size: leave it).
	endOff int64
}

// entryUsed is DIRSIZ of an entry in use; 0 for an unused one.
func entryUsed(d ondisk.Direct) int64 {
	if d.Ino == 0 {
		return 0
	}
	return int64(ondisk.DirectSize(int(d.Namlen)))
}

// dirSearch looks name up in directory dp and, with wantSlot, finds where a
// new entry of that name would go. Large directories go through their
// dirhash. Preconditions: dp.mu held (exclusively when wantSlot).
func (fs *FS) dirSearch(dp *Inode, name string, wantSlot bool) (dirSlot, error) {
	if dh := fs.dirhashFor(dp); dh != nil {
		s, ok, err := fs.dirSearchHashed(dp, dh, name, wantSlot)
		if ok || err != nil {
			return s, err
		}
		fs.log.Warn("dirhash disagrees with the directory; rebuilding", "ino", dp.ino)
		fs.dropDirhash(dp)
	}
	return fs.dirSearchLinear(dp, name, wantSlot)
}

// chunkAt returns the buffer of the block holding byte off of directory
// dp and off's position in it. The caller Releases the buffer.
func (fs *FS) chunkAt(dp *Inode, off int64) (*bcache.Buf, int, error) {
	lbn := fs.sb.Lblkno(off)
	b, err := fs.fileBlock(dp, lbn)
	if err != nil {
		return nil, 0, err
	}
	if b == nil {
		return nil, 0, corruptf("directory %d: block %d is a hole", dp.ino, lbn)
	}
	return b, int(fs.sb.Blkoff(off)), nil
}

// dirSearchHashed is dirSearch through the index; ok false means the index
// disagrees with the directory.
func (fs *FS) dirSearchHashed(dp *Inode, dh *dirhash, name string, wantSlot bool) (dirSlot, bool, error) {
	s := dirSlot{slotOff: -1}
	t := dh.tagString(name)
	at := uint64(t)
	for off := dh.probe(t, &at); off >= 0; off = dh.probe(t, &at) {
		// The entry there holds name, or another name of the same
		// hash tag (then name is further on, or absent).
		ino, dtype, match, valid, err := fs.hashedEntry(dp, off, name)
		if err != nil || !valid {
			return s, false, err
		}
		if match {
			s.found, s.ino, s.dtype, s.off = true, ino, dtype, off
			return s, true, nil
		}
	}
	if !wantSlot {
		return s, true, nil
	}
	need := int64(ondisk.DirectSize(len(name)))
	s.endOff = int64(dp.din.Size)
	c := dh.firstFree(int32(need))
	if c < 0 {
		return s, true, nil
	}
	off := int64(c) * ondisk.DirBlkSize
	b, pos, err := fs.chunkAt(dp, off)
	if err != nil {
		return s, false, err
	}
	b.RLock()
	chunk := b.Data()[pos : pos+ondisk.DirBlkSize]
	// ufsdirhash_findfree: from the first entry with free space, take
	// entries until they hold enough.
	i := 0
	var bad bool
	for i < ondisk.DirBlkSize {
		d, err := ondisk.DecodeDirect(chunk[i:])
		if err != nil {
			bad = true
			break
		}
		if d.Ino == 0 || int64(d.Reclen) > entryUsed(d) {
			break
		}
		i += int(d.Reclen)
	}
	start, free := i, int64(0)
	for !bad && i < ondisk.DirBlkSize && free < need {
		d, err := ondisk.DecodeDirect(chunk[i:])
		if err != nil {
			bad = true
			break
		}
		free += int64(d.Reclen) - entryUsed(d)
		i += int(d.Reclen)
	}
	b.RUnlock()
	fs.cache.Release(b)
	if bad || free < need {
		return s, false, nil
	}
	s.slotOff, s.slotSize = off+int64(start), int64(i-start)
	end := max(dh.endUseful(), s.slotOff+s.slotSize)
	s.endOff = roundUp(end, ondisk.DirBlkSize)
	return s, true, nil
}

func roundUp(x, y int64) int64 { return (x + y - 1) / y * y }

// hashedEntry reads the entry at byte off of directory dp, where the
// index says name may be. valid is false when there is no used entry
// there (the index is wrong, which is not an error of the directory);
// match says the entry is named name, and then ino and dtype are its.
func (fs *FS) hashedEntry(dp *Inode, off int64, name string) (ino ondisk.Ino, dtype uint8, match, valid bool, err error) {
	b, pos, err := fs.chunkAt(dp, off)
	if err != nil {
		return 0, 0, false, false, err
	}
	defer fs.cache.Release(b)
	b.RLock()
	defer b.RUnlock()
	chunkEnd := (pos/ondisk.DirBlkSize + 1) * ondisk.DirBlkSize
	if chunkEnd > len(b.Data()) {
		return 0, 0, false, false, nil
	}
	d, err := ondisk.DecodeDirect(b.Data()[pos:chunkEnd])
	if err != nil || d.Ino == 0 || d.Ino >= fs.maxIno {
		return 0, 0, false, false, nil
	}
	return d.Ino, d.Type, string(d.Name) == name, true, nil
}

// dirSearchLinear is ufs_lookup's scan: the name, and (wantSlot) the first
// place with room: a single entry whose tail holds the new entry (FOUND),
// or entries of one chunk whose free space adds up to it (COMPACT).
func (fs *FS) dirSearchLinear(dp *Inode, name string, wantSlot bool) (dirSlot, error) {
	const (
		slotNone = iota
		slotCompact
		slotFound
	)
	s := dirSlot{slotOff: -1}
	status := slotNone
	if !wantSlot {
		status = slotFound // no slot search
	}
	need := int64(ondisk.DirectSize(len(name)))
	var slotFree, endUseful int64
	size := int64(dp.din.Size)
	bsize := int64(fs.sb.Bsize)
	for lbn := ondisk.Lbn(0); int64(lbn)*bsize < size; lbn++ {
		b, err := fs.fileBlock(dp, lbn)
		if err != nil {
			return s, err
		}
		if b == nil {
			return s, corruptf("directory %d: block %d is a hole", dp.ino, lbn)
		}
		base := int64(lbn) * bsize
		b.RLock()
		data := b.Data()
		n := min(int64(len(data)), size-base)
		var bad error
		for co := int64(0); co+ondisk.DirBlkSize <= n && !s.found && bad == nil; co += ondisk.DirBlkSize {
			if status == slotNone {
				s.slotOff, slotFree = -1, 0
			}
			cbase := base + co
			chunk := data[co : co+ondisk.DirBlkSize]
			// The entries one after the other (DirChunkEntries without
			// its callback: this loop is most of a lookup in a small
			// directory).
			for o := 0; o < len(chunk); {
				d, err := ondisk.DecodeDirect(chunk[o:])
				if err != nil {
					bad = corruptf("directory %d: chunk at offset %d: at offset %d: %v", dp.ino, cbase, o, err)
					break
				}
				off := cbase + int64(o)
				o += int(d.Reclen)
				if d.Ino >= fs.maxIno {
					bad = corruptf("directory %d: entry %q at offset %d names inode %d, past the last (%d)", dp.ino, d.Name, off, d.Ino, fs.maxIno-1)
					break
				}
				if status != slotFound {
					if free := int64(d.Reclen) - entryUsed(d); free > 0 {
						switch {
						case free >= need:
							status, s.slotOff, s.slotSize = slotFound, off, int64(d.Reclen)
						case status == slotNone:
							slotFree += free
							if s.slotOff == -1 {
								s.slotOff = off
							}
							if slotFree >= need {
								status, s.slotSize = slotCompact, off+int64(d.Reclen)-s.slotOff
							}
						}
					}
				}
				if d.Ino != 0 {
					endUseful = off + int64(d.Reclen)
					if string(d.Name) == name {
						s.found, s.ino, s.dtype, s.off = true, d.Ino, d.Type, off
						break
					}
				}
			}
		}
		b.RUnlock()
		fs.cache.Release(b)
		if bad != nil {
			return s, bad
		}
		if s.found {
			return s, nil
		}
	}
	if !wantSlot {
		return s, nil
	}
	if status == slotNone {
		s.slotOff, s.slotSize = -1, 0
		s.endOff = size
		return s, nil
	}
	endUseful = max(endUseful, s.slotOff+s.slotSize)
	s.endOff = roundUp(endUseful, ondisk.DirBlkSize)
	return s, nil
}

// direntHeader reads the fixed part of the entry at b without checking
// it; a header cut short by the end of b reads as zeros (d_reclen 0,
// which the callers reject).
func direntHeader(b []byte) (ino ondisk.Ino, reclen int, namlen int) {
	if len(b) < 8 {
		return 0, 0, 0
	}
	return ondisk.Ino(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint16(b[4:])), int(b[7])
}

func setReclen(b []byte, n int) { binary.LittleEndian.PutUint16(b[4:], uint16(n)) }

// compactInsert is ufs_direnter's compaction: inside chunk, the entries
// in [start, start+size) are moved to the front of that range, each cut
// to the bytes it needs, and nd goes into the free space collected after
// them. It fails when the range does not hold enough free space.
func compactInsert(chunk []byte, start, size int, nd *ondisk.Direct) error {
	end := start + size
	if start < 0 || end > len(chunk) || size <= 0 {
		return fmt.Errorf("slot [%d,%d) outside the chunk", start, end)
	}
	ino, reclen, namlen := direntHeader(chunk[start:])
	used := func(ino ondisk.Ino, namlen int) int {
		if ino == 0 {
			return 0
		}
		return ondisk.DirectSize(namlen)
	}
	dsize := used(ino, namlen)
	free := reclen - dsize
	pos := start
	for loc := start + reclen; loc < end; {
		nino, nreclen, nnamlen := direntHeader(chunk[loc:])
		if nreclen <= 0 || loc+nreclen > end {
			return fmt.Errorf("entry at %d has d_reclen %d", loc, nreclen)
		}
		if dsize > 0 {
			setReclen(chunk[pos:], dsize)
		}
		pos += dsize
		from := loc
		loc += nreclen
		if nino == 0 {
			free += nreclen
			dsize = 0
			continue
		}
		dsize = used(nino, nnamlen)
		free += nreclen - dsize
		copy(chunk[pos:pos+dsize], chunk[from:from+dsize])
	}
	need := ondisk.DirectSize(len(nd.Name))
	if free < need {
		return fmt.Errorf("slot of %d bytes has %d free, %d needed", size, free, need)
	}
	if dsize > 0 {
		setReclen(chunk[pos:], dsize)
		pos += dsize
	}
	nd.Reclen = uint16(free)
	return nd.Encode(chunk[pos:])
}

// direnter is ufs_direnter: it adds name → ino (of type dtype) to
// directory dp at the place s (from dirSearch) says, writes the directory
// block (EntryAdded), and cuts the directory to s.endOff when that is
// below its size (not under soft updates). It sets dp's mtime and ctime.
// mkdir says ino is a directory just made; paired, that the entry is to
// reach the disk with a removal from the same block (softdep's
// Entry.Paired). Under soft updates it returns what is durable once the
// entry is (nil without them).
// Preconditions: dp.mu held exclusively; name is not in dp.
func (fs *FS) direnter(dp *Inode, s dirSlot, name string, ino ondisk.Ino, dtype uint8, mkdir, paired bool, now nsTime) (softdep.Dep, error) {
	nd := ondisk.Direct{Ino: ino, Type: dtype, Name: []byte(name)}
	dh := dirhashOf(dp)
	var added softdep.Dep
	entry := softdep.Entry{Dir: dp.ino, Name: name, Ino: ino, Type: dtype, Mkdir: mkdir, Paired: paired}
	if s.slotOff < 0 {
		// A new chunk at the end.
		off := roundUp(int64(dp.din.Size), ondisk.DirBlkSize)
		lbn := fs.sb.Lblkno(off)
		var oldAddr ondisk.Frag
		var oldSize int64
		if fs.sd != nil && int64(dp.din.Size) > fs.sb.Lblktosize(lbn) {
			a, err := fs.bmap(dp, lbn)
			if err != nil {
				return nil, err
			}
			oldAddr, oldSize = a, fs.blkSize(dp.din.Size, lbn)
		}
		var addr ondisk.Frag
		var size int64
		var fresh bool
		var err error
		if fs.sd != nil && lbn >= ondisk.NDaddr && oldAddr == 0 {
			// Past the direct blocks: a new tree, switched to with
			// the size in one inode write.
			addr, size, fresh = 0, int64(fs.sb.Bsize), true
			addr, err = fs.growDirSoftdep(dp, lbn)
		} else {
			addr, size, fresh, err = fs.balloc(dp, off, ondisk.DirBlkSize)
		}
		if err != nil {
			if uerr := fs.iupdate(dp, orderDelayed); uerr != nil {
				fs.log.Error("writing directory inode", "ino", dp.ino, "err", uerr)
			}
			return nil, err
		}
		var b *bcache.Buf
		if fresh {
			b, err = fs.newBuf(addr, size)
		} else {
			b, err = fs.cache.Get(fs.sb.FragOffset(addr), int(size))
		}
		if err != nil {
			return nil, err
		}
		defer fs.cache.Release(b)
		pos := int(fs.sb.Blkoff(off))
		b.Lock()
		chunk := b.Data()[pos : pos+ondisk.DirBlkSize]
		// Soft updates: a chunk of a block the directory had already
		// that was not a valid chunk may be zeros on disk too: the block
		// is written durably before the size grows over it. (A new
		// block, or a tail grown or moved, is written before the pointer
		// to it.)
		syncFirst := fs.sd != nil && !fresh && addr == oldAddr && size == oldSize && !chunkValid(chunk)
		clear(chunk)
		nd.Reclen = ondisk.DirBlkSize
		err = nd.Encode(chunk)
		if err == nil && fs.sd != nil {
			// The rest of the block holds valid empty chunks, so that
			// later growth into them needs no ordering.
			dirEmptyChunks(b.Data(), pos+ondisk.DirBlkSize)
		}
		if err == nil {
			err = fs.cache.MarkDirty(b)
		}
		if err == nil && fs.sd != nil {
			// The iupdate below raises the size over the chunk.
			entry.NewChunk = true
			added = fs.sd.DirAdd(b, entry)
		}
		var after []byte
		if dh != nil {
			after = append([]byte(nil), chunk...)
		}
		b.Unlock()
		if err != nil {
			return nil, err
		}
		if syncFirst {
			if err := fs.syncBuffers(b); err != nil {
				// Still write the inode: softdep counts on it.
				if uerr := fs.iupdate(dp, orderDelayed); uerr != nil {
					fs.log.Error("writing directory inode", "ino", dp.ino, "err", uerr)
				}
				return nil, err
			}
		}
		dp.din.Size = uint64(off + ondisk.DirBlkSize)
		now.setMC(&dp.din)
		if err := fs.order.EntryAdded(dp.ino, b); err != nil {
			return nil, err
		}
		if dh != nil {
			if err := dh.updateChunk(int(off/ondisk.DirBlkSize), nil, after); err != nil {
				fs.dropDirhash(dp)
			}
		}
		// The directory's new size and block must be on disk with
		// the entry (ufs_direnter's synchronous ffs_update).
		return added, fs.iupdate(dp, orderInodeBeforeEnt)
	}

	b, pos, err := fs.chunkAt(dp, s.slotOff)
	if err != nil {
		return nil, err
	}
	defer fs.cache.Release(b)
	cstart := pos / ondisk.DirBlkSize * ondisk.DirBlkSize
	b.Lock()
	chunk := b.Data()[cstart : cstart+ondisk.DirBlkSize]
	var before []byte
	if dh != nil {
		before = append([]byte(nil), chunk...)
	}
	err = compactInsert(chunk, pos-cstart, int(s.slotSize), &nd)
	if err == nil {
		err = fs.cache.MarkDirty(b)
		if err == nil && fs.sd != nil {
			added = fs.sd.DirAdd(b, entry)
		}
	} else {
		if before != nil {
			copy(chunk, before)
		}
		err = fs.corrupt(corruptf("directory %d: adding %q at offset %d: %v", dp.ino, name, s.slotOff, err))
	}
	var after []byte
	if dh != nil && err == nil {
		after = append([]byte(nil), chunk...)
	}
	b.Unlock()
	if err != nil {
		return nil, err
	}
	now.setMC(&dp.din)
	if err := fs.order.EntryAdded(dp.ino, b); err != nil {
		return nil, err
	}
	if dh != nil {
		if err := dh.updateChunk(int(s.slotOff/ondisk.DirBlkSize), before, after); err != nil {
			fs.dropDirhash(dp)
		}
	}
	if s.endOff > 0 && s.endOff < int64(dp.din.Size) && fs.sd == nil {
		// Trailing chunks with nothing in them go (ufs_direnter's
		// UFS_TRUNCATE to i_endoff). Not under soft updates: a
		// truncation inside a block would need ordering of its own, and
		// the empty chunks are harmless.
		if err := fs.truncate(dp, uint64(s.endOff), now); err != nil {
			return nil, err
		}
		if dh := dirhashOf(dp); dh != nil {
			dh.resize(int(s.endOff / ondisk.DirBlkSize))
		}
		return added, nil
	}
	return added, fs.iupdate(dp, orderDelayed)
}

// dirremove is ufs_dirremove: the entry at off of directory dp goes, its
// space absorbed by the entry before it in its chunk, or, when it is the
// first of its chunk, its d_ino set to 0. pair is a paired entry of the
// same block written with this removal (soft updates), or nil. The block is written
// (EntryRemoved) before this returns, so that the caller may then lower
// the link count of the inode it named. It sets dp's mtime and ctime.
// Preconditions: dp.mu held exclusively.
func (fs *FS) dirremove(dp *Inode, off int64, now nsTime, pair softdep.Dep) error {
	_, err := fs.dirremoveDep(dp, off, now, pair)
	return err
}

// dirremoveDep is dirremove that also returns, under soft updates, what is
// durable once the removal counts on disk.
func (fs *FS) dirremoveDep(dp *Inode, off int64, now nsTime, pair softdep.Dep) (removed softdep.Dep, _ error) {
	b, pos, err := fs.chunkAt(dp, off)
	if err != nil {
		return nil, err
	}
	defer fs.cache.Release(b)
	cstart := pos / ondisk.DirBlkSize * ondisk.DirBlkSize
	dh := dirhashOf(dp)
	b.Lock()
	chunk := b.Data()[cstart : cstart+ondisk.DirBlkSize]
	var before []byte
	if dh != nil {
		before = append([]byte(nil), chunk...)
	}
	target := pos - cstart
	prev, at := -1, 0
	var derr error
	for at < target {
		d, err := ondisk.DecodeDirect(chunk[at:])
		if err != nil {
			derr = err
			break
		}
		prev = at
		at += int(d.Reclen)
	}
	if derr == nil && at != target {
		derr = fmt.Errorf("no entry starts at offset %d", off)
	}
	var d ondisk.Direct
	if derr == nil {
		d, derr = ondisk.DecodeDirect(chunk[at:])
	}
	if derr == nil {
		name, gone := string(d.Name), d.Ino
		if prev < 0 {
			binary.LittleEndian.PutUint32(chunk[at:], 0)
		} else {
			_, preclen, _ := direntHeader(chunk[prev:])
			setReclen(chunk[prev:], preclen+int(d.Reclen))
		}
		derr = fs.cache.MarkDirty(b)
		if derr == nil && fs.sd != nil && gone != 0 {
			removed = fs.sd.DirRemove(b, dp.ino, name, gone, pair)
		}
	} else {
		derr = fs.corrupt(corruptf("directory %d: removing the entry at offset %d: %v", dp.ino, off, derr))
	}
	var after []byte
	if dh != nil && derr == nil {
		after = append([]byte(nil), chunk...)
	}
	b.Unlock()
	if derr != nil {
		return nil, derr
	}
	now.setMC(&dp.din)
	if err := fs.order.EntryRemoved(dp.ino, b); err != nil {
		return nil, err
	}
	if dh != nil {
		if err := dh.updateChunk(int(off/ondisk.DirBlkSize), before, after); err != nil {
			fs.dropDirhash(dp)
		}
	}
	return removed, fs.iupdate(dp, orderDelayed)
}

// dirrewrite is ufs_dirrewrite: the entry at off of directory dp names
// ino (of type dtype) instead. The block is written (EntryAdded) before
// this returns. It sets dp's mtime and ctime. Under soft updates it
// returns what is durable once the change is.
// Preconditions: dp.mu held exclusively.
func (fs *FS) dirrewrite(dp *Inode, off int64, ino ondisk.Ino, dtype uint8, paired bool, now nsTime) (softdep.Dep, error) {
	var changed softdep.Dep
	b, pos, err := fs.chunkAt(dp, off)
	if err != nil {
		return nil, err
	}
	defer fs.cache.Release(b)
	cend := (pos/ondisk.DirBlkSize + 1) * ondisk.DirBlkSize
	b.Lock()
	d, err := ondisk.DecodeDirect(b.Data()[pos:cend])
	if err == nil && d.Ino == 0 {
		err = fmt.Errorf("unused entry")
	}
	if err == nil {
		e := softdep.Entry{Dir: dp.ino, Name: string(d.Name), Ino: ino, Type: dtype, Old: d.Ino, OldType: d.Type, Paired: paired}
		binary.LittleEndian.PutUint32(b.Data()[pos:], uint32(ino))
		b.Data()[pos+6] = dtype
		err = fs.cache.MarkDirty(b)
		if err == nil && fs.sd != nil {
			changed = fs.sd.DirAdd(b, e)
		}
	} else {
		err = fs.corrupt(corruptf("directory %d: rewriting the entry at offset %d: %v", dp.ino, off, err))
	}
	b.Unlock()
	if err != nil {
		return nil, err
	}
	now.setMC(&dp.din)
	if err := fs.order.EntryAdded(dp.ino, b); err != nil {
		return nil, err
	}
	return changed, fs.iupdate(dp, orderDelayed)
}

// dirempty is ufs_dirempty: whether directory ip holds nothing but "."
// naming itself and ".." naming parent.
// Preconditions: ip.mu held.
func (fs *FS) dirempty(ip *Inode, parent ondisk.Ino) (bool, error) {
	empty := true
	bsize := int64(fs.sb.Bsize)
	for lbn := ondisk.Lbn(0); int64(lbn)*bsize < int64(ip.din.Size) && empty; lbn++ {
		b, err := fs.fileBlock(ip, lbn)
		if err != nil {
			return false, err
		}
		if b == nil {
			return false, corruptf("directory %d: block %d is a hole", ip.ino, lbn)
		}
		b.RLock()
		_, err = fs.dirBlockEntries(ip, lbn, b.Data(), func(_ int64, d ondisk.Direct) bool {
			switch {
			case string(d.Name) == "." && d.Ino == ip.ino:
			case string(d.Name) == ".." && d.Ino == parent:
			default:
				empty = false
			}
			return empty
		})
		b.RUnlock()
		fs.cache.Release(b)
		if err != nil {
			return false, err
		}
	}
	return empty, nil
}

// dotdotOffset is the offset of the ".." entry in a directory made by
// mkdir: right after "." in the first chunk.
const dotdotOffset = 12

// dirTemplate writes the first chunk of a new directory: "." naming ino
// and ".." naming parent, the second absorbing the rest of the chunk.
func dirTemplate(chunk []byte, ino, parent ondisk.Ino) error {
	clear(chunk)
	dot := ondisk.Direct{Ino: ino, Reclen: dotdotOffset, Type: ondisk.DTDir, Name: []byte(".")}
	dotdot := ondisk.Direct{Ino: parent, Reclen: ondisk.DirBlkSize - dotdotOffset, Type: ondisk.DTDir, Name: []byte("..")}
	if err := dot.Encode(chunk); err != nil {
		return err
	}
	return dotdot.Encode(chunk[dotdotOffset:])
}
