package softdep

import (
	"encoding/binary"
	"slices"

	"github.com/ufs2/ufs2/ondisk"
)

// SlotKind says where a block pointer is.
type SlotKind uint8

// Kinds of slot.
const (
	SlotDirect   SlotKind = iota // di_db[Index] of inode Ino
	SlotIndirect                 // di_ib[Index] of inode Ino
	SlotInBlock                  // pointer Index of indirect block Block, of inode Ino
)

// Slot is one block pointer.
type Slot struct {
	Ino   ondisk.Ino
	Kind  SlotKind
	Index int
	Block ondisk.Frag // SlotInBlock: the indirect block holding the pointer
}

// indirInfo follows a new indirect block until one pointer in it is
// durable.
type indirInfo struct {
	p            ondisk.Frag
	durableChild bool
}

// allocItem is a block pointer set to a newly allocated block (or a
// fragment tail grown or moved).
type allocItem struct {
	base
	slot  Slot
	owner *inodeState
	newp  ondisk.Frag
	nsize int
	oldp  ondisk.Frag // the value on disk until this one is: 0, or a fragment
	osize int
	init  *marker    // the new block's contents written
	cg    cgDep      // its group with the allocation
	cover int64      // SlotInBlock: the inode's size on disk must exceed this (-1: none)
	child *indirInfo // a new indirect block: one pointer in it durable first
	// minVer is the first version of the inode that holds newp (a
	// pointer in the inode) or counts the block in di_blocks (a pointer
	// in an indirect block: that version must be durable first, or
	// fsck_ffs would find di_blocks too low).
	minVer uint64
	// after are extents the old value held, freed once this is durable.
	after []Extent
	// A replaced indirect tree (ReplaceTree): more deps (the other new
	// blocks), the blocks of the tree on disk, and the size the inode
	// is written with while this is rolled back.
	extra      []Dep
	diskTree   []Extent
	sizeBefore int64 // -1: none
	// replacedBy is the item that took over the slot when this one was
	// cancelled before reaching the disk (a tail moved again, a tree
	// replaced again): what waited for this pointer waits for that one.
	replacedBy *allocItem
}

// done reports whether the pointer is durable, or cancelled with nothing
// taking its place (its block freed).
func (it *allocItem) done(*Deps) bool {
	for it.st == cancelled && it.replacedBy != nil {
		it = it.replacedBy
	}
	return it.finished()
}

// order sorts an inode's pointers: direct ones by index, then indirect.
func (it *allocItem) order() int {
	if it.slot.Kind == SlotDirect {
		return it.slot.Index
	}
	return ondisk.NDaddr + it.slot.Index
}

// ready reports whether it may be written as it is. Preconditions: d.mu.
func (d *Deps) ready(it *allocItem) bool {
	if it.init != nil && !it.init.finished() {
		return false
	}
	if !it.cg.done(d) {
		return false
	}
	if it.slot.Kind == SlotInBlock && it.owner.durableVer < it.minVer {
		return false
	}
	if it.cover >= 0 && int64(it.owner.durableSize) <= it.cover {
		return false
	}
	if it.child != nil && !it.child.durableChild {
		return false
	}
	return d.allDone(it.extra)
}

// Frees is what a change gives back: Now, extents the caller frees at
// once (nothing on disk reaches them); Deferred, DEV_BSIZE sectors the
// caller adds to fs_pendingblocks (freed later by a round, which takes
// them off again).
type Frees struct {
	Now      []Extent
	Deferred int64
}

// split cuts extent e into the parts inside and outside the extents of r
// (all within one block).
func split(e Extent, r []Extent, fsize int64) (in, out []Extent) {
	// Walk fragment by fragment: extents here span one block at most.
	var cur *Extent
	var curIn bool
	flush := func() {
		if cur != nil {
			if curIn {
				in = append(in, *cur)
			} else {
				out = append(out, *cur)
			}
			cur = nil
		}
	}
	n := (e.Size + fsize - 1) / fsize
	for i := int64(0); i < n; i++ {
		f := e.P + ondisk.Frag(i)
		inside := false
		for _, x := range r {
			if x.P <= f && int64(f-x.P) < (x.Size+fsize-1)/fsize {
				inside = true
				break
			}
		}
		if cur != nil && inside == curIn {
			cur.Size += fsize
			continue
		}
		flush()
		cur = &Extent{P: f, Size: fsize}
		curIn = inside
	}
	flush()
	return in, out
}

// diskValue is what the slot may hold on disk while it is pending.
func (it *allocItem) diskValue() []Extent {
	if it.oldp == 0 {
		return nil
	}
	return []Extent{{it.oldp, int64(it.osize)}}
}

// newItem makes an item for a pointer and hangs it where it lives.
// Preconditions: d.mu.
func (d *Deps) newItem(s Slot, p ondisk.Frag, size int, cgVer uint64, cover int64) *allocItem {
	sb := d.sb
	owner := d.inode(s.Ino)
	it := &allocItem{base: base{seq: d.nextSeq()}, slot: s, owner: owner, newp: p, nsize: size,
		cg: cgDep{c: sb.Dtog(p), ver: cgVer}, cover: cover, sizeBefore: -1}
	it.init = d.newMarker(sb.FragOffset(p), size)
	owner.refs++
	it.minVer = owner.ver + 1
	if s.Kind == SlotInBlock {
		bd := d.buf(sb.FragOffset(s.Block))
		bd.allocs = append(bd.allocs, it)
		owner.inBlock = append(owner.inBlock, it)
	} else {
		owner.allocs = append(owner.allocs, it)
	}
	d.bySlot[s] = it
	d.byBlock[p] = it
	d.live[it.seq] = liveEntry{b: &it.base, fsync: true, item: it}
	return it
}

// finishItem ends an item (durable or cancelled). Preconditions: d.mu.
func (d *Deps) finishItem(it *allocItem, st state) {
	if it.finished() {
		return
	}
	it.st = st
	delete(d.live, it.seq)
	if d.bySlot[it.slot] == it {
		delete(d.bySlot, it.slot)
	}
	if d.byBlock[it.newp] == it {
		delete(d.byBlock, it.newp)
	}
	it.owner.refs--
	if st == cancelled && it.init != nil && !it.init.finished() {
		it.init.st = cancelled
	}
}

// NewBlock records that slot s now points at size bytes at p, just
// allocated (for logical block lbn; for a slot in an indirect block the
// caller holds that block's exclusive lock and has stored the pointer).
// cgVer is the version of p's group holding the allocation. indirect says
// p is a new indirect block. For a slot in an indirect block, cover is
// the file offset the inode's size on disk must pass first (the first byte
// of the data the pointer leads to); -1 for none.
func (d *Deps) NewBlock(s Slot, p ondisk.Frag, size int, cgVer uint64, indirect bool, cover int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s.Kind != SlotInBlock {
		cover = -1
	}
	it := d.newItem(s, p, size, cgVer, cover)
	if indirect {
		info := &indirInfo{p: p}
		d.indirs[p] = info
		it.child = info
	}
}

// MoveBlock records that the fragment tail in slot s grew from osize
// bytes at old to nsize bytes at n (the same place when n == old), its
// new fragments allocated at group version cgVer. The fragments of old no
// longer used are given back: at once those never on disk (Frees.Now),
// later the others. Directory entries recorded in old's block follow it
// to n.
func (d *Deps) MoveBlock(s Slot, old ondisk.Frag, osize int, n ondisk.Frag, nsize int, cgVer uint64) Frees {
	d.mu.Lock()
	defer d.mu.Unlock()
	sb := d.sb
	var fr Frees
	prev := d.bySlot[s]
	oldp, oldsize := old, osize
	var after []Extent
	if prev != nil && prev.st == pending {
		// The disk still has what prev would have replaced.
		oldp, oldsize = prev.oldp, prev.osize
		after = prev.after
		prev.after = nil
		d.finishItem(prev, cancelled)
	}
	it := d.newItem(s, n, nsize, cgVer, -1)
	if prev != nil && prev.st == cancelled {
		prev.replacedBy = it
	}
	it.oldp, it.osize = oldp, oldsize
	it.after = after
	if n != old {
		in, out := split(Extent{old, int64(osize)}, it.diskValue(), int64(sb.Fsize))
		fr.Now = out
		it.after = append(it.after, in...)
		for _, e := range in {
			fr.Deferred += ondisk.Btodb(e.Size)
		}
		d.moveDirItems(sb.FragOffset(old), sb.FragOffset(n), it)
	}
	return fr
}

// ReplaceTree records that di_ib[s.Index] of inode s.Ino switches from the
// indirect tree whose blocks along one path are old (old[0] the top, or
// none) to a new tree whose blocks fresh (fresh[0] the top) hold copies of
// the old ones plus one more pointer: a directory growing past its direct
// blocks, whose size and pointers must reach the disk in the same inode
// write (a pointer past the size, or a size past a missing block, is
// damage to fsck_ffs). Until every fresh block and its group are durable
// the inode is written with the old top and sizeBefore. The old blocks are
// freed once the new top is durable, at once those never on disk; their
// buffers are dropped before the call, as for FreeBlocks.
func (d *Deps) ReplaceTree(s Slot, old []Extent, fresh []Fresh, sizeBefore int64) Frees {
	d.mu.Lock()
	defer d.mu.Unlock()
	sb := d.sb
	prev := d.bySlot[s]
	top := fresh[0]
	var oldp ondisk.Frag
	var osize int
	var disk []Extent
	var after []Extent
	if prev != nil && prev.st == pending {
		oldp, osize, disk, after = prev.oldp, prev.osize, prev.diskTree, prev.after
		if prev.sizeBefore >= 0 {
			sizeBefore = min(sizeBefore, prev.sizeBefore)
		}
		prev.after = nil
		d.finishItem(prev, cancelled)
	} else if len(old) > 0 {
		oldp, osize, disk = old[0].P, int(old[0].Size), old
	}
	it := d.newItem(s, top.P, top.Size, top.CgVer, -1)
	if prev != nil && prev.st == cancelled {
		prev.replacedBy = it
	}
	it.oldp, it.osize, it.diskTree, it.after = oldp, osize, disk, after
	it.sizeBefore = sizeBefore
	for _, f := range fresh[1:] {
		m := d.newMarker(sb.FragOffset(f.P), f.Size)
		it.extra = append(it.extra, m, cgDep{c: sb.Dtog(f.P), ver: f.CgVer})
	}
	var fr Frees
	for _, e := range old {
		in, out := split(e, disk, int64(sb.Fsize))
		fr.Now = append(fr.Now, out...)
		it.after = append(it.after, in...)
		for _, x := range in {
			fr.Deferred += ondisk.Btodb(x.Size)
		}
	}
	return fr
}

// FreeBlocks records that inode ino no longer points at the extents exts
// (truncation, an indirect block unhooked): the pointers were cleared in
// the inode or in indirect blocks, and clear are the writes that carry
// that to the disk (the inode at its new version, the indirect blocks'
// next writes). It returns what may be freed at once: the blocks whose
// pointers never reached the disk; the others are freed once clear is
// durable (counted in Frees.Deferred). Directory entries recorded in
// freed directory blocks go with them. The caller drops the extents'
// cached buffers first: once this returns, any round may carry out a
// deferred free and the allocator give the block to another file, whose
// new buffer a drop after would throw away, its contents never written.
func (d *Deps) FreeBlocks(ino ondisk.Ino, exts []Extent, clear []Dep) Frees {
	d.mu.Lock()
	var redirty []Extent
	defer func() {
		d.mu.Unlock()
		// A block cut to fewer fragments may have been written at its
		// new size before its marker shrank to that size: write it
		// again, so that the marker is met.
		for _, e := range redirty {
			if b := d.cache.Lookup(d.sb.FragOffset(e.P), int(e.Size)); b != nil {
				if err := d.cache.MarkDirty(b); err != nil {
					d.log.Error("softdep: marking a cut block dirty", "blk", e.P, "err", err)
				}
				d.cache.Release(b)
			}
		}
	}()
	sb := d.sb
	fsize := int64(sb.Fsize)
	var fr Frees
	var later []Extent // freed once clear is durable
	var counted int64  // sectors of later already pending
	for _, e := range exts {
		d.dropBuffer(sb.FragOffset(e.P), clear)
		delete(d.indirs, e.P)
		it := d.itemCovering(e)
		if it == nil {
			later = append(later, e)
			continue
		}
		in, out := split(e, it.diskValue(), fsize)
		fr.Now = append(fr.Now, out...)
		if e.P == it.newp && e.Size >= int64(it.nsize) {
			later = append(later, in...)
			later = append(later, it.after...)
			for _, x := range it.after {
				counted += ondisk.Btodb(x.Size)
			}
			it.after = nil
			d.finishItem(it, cancelled)
			continue
		}
		// A tail cut off a pointer still pending: the rest stays.
		it.nsize = int(int64(e.P-it.newp) * fsize)
		if it.init != nil && it.init.size > it.nsize {
			it.init.size = it.nsize
			redirty = append(redirty, Extent{it.newp, int64(it.nsize)})
		}
		it.after = append(it.after, in...)
		for _, x := range in {
			fr.Deferred += ondisk.Btodb(x.Size)
		}
	}
	if len(later) > 0 {
		var total int64
		for _, x := range later {
			total += ondisk.Btodb(x.Size)
		}
		fr.Deferred += total - counted
		d.deferFree(ino, later, clear)
	}
	return fr
}

// itemCovering finds the pending item whose new block holds the start of
// e. Preconditions: d.mu.
func (d *Deps) itemCovering(e Extent) *allocItem {
	sb := d.sb
	fsize := int64(sb.Fsize)
	for q := e.P; q >= sb.Blknum(e.P) && q >= 0; q-- {
		it := d.byBlock[q]
		if it != nil && it.st == pending && int64(e.P-it.newp)*fsize < int64(it.nsize) {
			return it
		}
	}
	return nil
}

// BlocksWritten returns a Dep satisfied once every block pointer of inode
// ino recorded so far (in the inode or in its indirect blocks) is durable
// or gone.
func (d *Deps) BlocksWritten(ino ondisk.Ino) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inode(ino)
	st.compact()
	var deps allDeps
	for _, it := range st.allocs {
		deps = append(deps, it)
	}
	for _, it := range st.inBlock {
		deps = append(deps, it)
	}
	return deps
}

// allDeps is done when each of its deps is.
type allDeps []Dep

func (a allDeps) done(d *Deps) bool { return d.allDone(a) }

// rollIndirect rolls back, in a write of indirect block bd's buffer, the
// pointers not yet safe and captures the others. Preconditions: d.mu.
func (d *Deps) rollIndirect(bd *bufDeps, data []byte, out *[]byte, rec *writeRec) {
	bd.allocs = slices.DeleteFunc(bd.allocs, func(a *allocItem) bool { return a.finished() })
	for _, it := range bd.allocs {
		if it.st != pending {
			continue
		}
		at := it.slot.Index * 8
		if at+8 > len(data) || ondisk.IndirPtr(data, it.slot.Index) != it.newp {
			// Cleared again in memory: waits to be cancelled.
			continue
		}
		if d.ready(it) {
			it.st = writing
			rec.allocs = append(rec.allocs, it)
			continue
		}
		if *out == nil {
			*out = append([]byte(nil), data...)
		}
		binary.LittleEndian.PutUint64((*out)[at:], uint64(it.oldp))
		rec.rolled = true
	}
}

// extItem is a change of the extended attribute area: the inode's di_extb
// and di_extsize switch together to blocks written before.
type extItem struct {
	base
	owner      *inodeState
	minVer     uint64
	oldb       [ondisk.NXaddr]ondisk.Frag
	oldsize    uint32
	oldSectors uint64
	deps       []Dep
	markers    []*marker
	after      []Extent
}

func (e *extItem) done(*Deps) bool { return e.finished() }

// Fresh is a block just allocated for an extended attribute area.
type Fresh struct {
	P     ondisk.Frag
	Size  int
	CgVer uint64
}

// ExtArea records that inode ino's extended attribute area changes from
// oldsize bytes in oldb to newsize bytes in newb, whose blocks fresh were
// just allocated (their buffers hold the new contents). The old blocks
// not kept are given back: at once those never on disk, later the others.
func (d *Deps) ExtArea(ino ondisk.Ino, oldb [ondisk.NXaddr]ondisk.Frag, oldsize uint32, newb [ondisk.NXaddr]ondisk.Frag, newsize uint32, fresh []Fresh) Frees {
	d.mu.Lock()
	defer d.mu.Unlock()
	sb := d.sb
	st := d.inode(ino)
	e := &extItem{base: base{seq: d.nextSeq()}, owner: st, minVer: st.ver + 1, oldb: oldb, oldsize: oldsize}
	for i := range ondisk.NXaddr {
		if oldb[i] != 0 {
			e.oldSectors += uint64(ondisk.Btodb(sb.ExtBlkSize(int64(oldsize), i)))
		}
	}
	if prev := st.ext; prev != nil && prev.st == pending {
		e.oldb, e.oldsize, e.oldSectors = prev.oldb, prev.oldsize, prev.oldSectors
		e.after = prev.after
		prev.after = nil
		prev.st = cancelled
		delete(d.live, prev.seq)
		for _, m := range prev.markers {
			m.st = cancelled
		}
	}
	var disk []Extent
	for i := range ondisk.NXaddr {
		if e.oldb[i] != 0 {
			disk = append(disk, Extent{e.oldb[i], sb.ExtBlkSize(int64(e.oldsize), i)})
		}
	}
	var fr Frees
	for i := range ondisk.NXaddr {
		if oldb[i] == 0 {
			continue
		}
		osz := sb.ExtBlkSize(int64(oldsize), i)
		var gone Extent
		switch nsz := sb.ExtBlkSize(int64(newsize), i); {
		case newb[i] != oldb[i] || nsz == 0:
			gone = Extent{oldb[i], osz}
		case nsz < osz:
			gone = Extent{oldb[i] + ondisk.Frag(sb.Numfrags(nsz)), osz - nsz}
		default:
			continue
		}
		in, out := split(gone, disk, int64(sb.Fsize))
		fr.Now = append(fr.Now, out...)
		e.after = append(e.after, in...)
		for _, x := range in {
			fr.Deferred += ondisk.Btodb(x.Size)
		}
	}
	for _, f := range fresh {
		m := d.newMarker(sb.FragOffset(f.P), f.Size)
		e.markers = append(e.markers, m)
		e.deps = append(e.deps, m, cgDep{c: sb.Dtog(f.P), ver: f.CgVer})
	}
	st.ext = e
	d.live[e.seq] = liveEntry{b: &e.base, fsync: true, ext: e}
	return fr
}

// DataWrite tells soft updates that the caller is about to write size
// bytes at disk offset off straight to the device, not through a cache
// buffer: file data written from the writer's memory. The write counts
// as the write of every block wholly inside the range whose contents a
// pointer waits for (a block just allocated, NewBlock or MoveBlock), as a
// buffer write of it would. The caller must hold the lock of the inode
// the blocks belong to (no other write of them can begin), must have
// dropped their cached buffers, and calls the returned function with the
// write's error once it completed.
func (d *Deps) DataWrite(off int64, size int) (done func(err error)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Writes++
	end := off + int64(size)
	fsize := int64(d.sb.Fsize)
	rec := &writeRec{}
	for at := off - off%fsize; at < end; at += fsize {
		bd := d.bufs[at]
		if bd == nil {
			continue
		}
		for _, m := range bd.markers {
			if m.st == pending && at >= off && at+int64(m.size) <= end {
				m.st = writing
				rec.markers = append(rec.markers, m)
			}
		}
	}
	if len(rec.markers) == 0 {
		return func(error) {}
	}
	return func(err error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.finishWrite(rec, err)
	}
}
