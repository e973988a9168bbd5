package softdep

import (
	"slices"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
)

// inodeState is what soft updates know of one inode.
type inodeState struct {
	ino    ondisk.Ino
	off    int64 // the inode block's disk offset
	within int   // the inode's offset in it

	ver         uint64 // bumped by every UpdateInode
	durableVer  uint64 // version of the last durable write that was not zeroed
	durableSize uint64 // di_size that write carried

	newCg   *cgDep       // a new inode: its bit in the group must be durable first
	allocs  []*allocItem // pointers in the inode (di_db, di_ib) not yet durable
	inBlock []*allocItem // pointers in its indirect blocks not yet durable
	ext     *extItem     // the newest extended attribute area change
	pending int          // removals of its names not yet durable
	notify  bool         // tell the Host when pending reaches 0
	parent  *inodeState  // a directory's parent, whose ".." link this one's freeing releases
	// entryRems are the removals of entries of this directory not yet
	// known to count on disk (EntriesGone).
	entryRems []*dirRem
	refs      int // items that read durableSize or hold parent
}

// inode returns the state of inode ino, making it. Preconditions: d.mu.
func (d *Deps) inode(ino ondisk.Ino) *inodeState {
	if st := d.inodes[ino]; st != nil {
		return st
	}
	sb := d.sb
	st := &inodeState{ino: ino, off: sb.FragOffset(sb.InoToFsba(ino)), within: sb.InoToFsbo(ino) * ondisk.DinodeSize}
	d.inodes[ino] = st
	bd := d.buf(st.off)
	bd.inodes = append(bd.inodes, st)
	return st
}

// idle reports whether st holds nothing: every version durable, nothing
// waiting. Preconditions: d.mu.
func (st *inodeState) idle() bool {
	st.compact()
	return st.durableVer >= st.ver && st.newCg == nil && len(st.allocs) == 0 && len(st.inBlock) == 0 &&
		(st.ext == nil || st.ext.finished()) && st.pending == 0 && !st.notify && st.refs == 0 && st.parent == nil
}

// compact drops finished items. Preconditions: d.mu.
func (st *inodeState) compact() {
	st.allocs = slices.DeleteFunc(st.allocs, func(a *allocItem) bool { return a.finished() })
	st.inBlock = slices.DeleteFunc(st.inBlock, func(a *allocItem) bool { return a.finished() })
}

// UpdateInode encodes din (with its check-hash) as inode ino into b, the
// inode's block, and records the new version. Call it with b's exclusive
// lock held; the caller marks b dirty.
func (d *Deps) UpdateInode(b *bcache.Buf, within int, ino ondisk.Ino, din *ondisk.Dinode) error {
	if err := din.EncodeWithHash(d.sb, b.Data()[within:within+ondisk.DinodeSize]); err != nil {
		return err
	}
	d.mu.Lock()
	st := d.inode(ino)
	st.ver++

	d.mu.Unlock()
	return nil
}

// NewInode records that inode ino was just allocated, its group's bit set
// at version cgVer of the group (see CgPushed): until that is durable the
// inode is written zeroed. Call it before the inode's first UpdateInode.
func (d *Deps) NewInode(ino ondisk.Ino, cgVer uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inode(ino)
	st.newCg = &cgDep{c: d.sb.InoToCg(ino), ver: cgVer}
}

// Unlinked is asked when inode ino has no links and no references: it
// returns true when the engine may free it now, or false when removals of
// its names are not durable yet; then Host.Unlinked(ino) is called once
// they are (and the engine asks again).
func (d *Deps) Unlinked(ino ondisk.Ino) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inodes[ino]
	if st == nil || st.pending == 0 {
		return true
	}
	st.notify = true
	return false
}

// DotdotGone records that parent's link count was lowered for the ".."
// of child, a directory removed or replaced: on disk the link stays until
// child's freeing is durable.
func (d *Deps) DotdotGone(parent, child ondisk.Ino) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.inode(parent)
	p.pending++
	c := d.inode(child)
	if c.parent != nil {
		d.release(c.parent)
	}
	c.parent = p
}

// FreeInode records that inode ino (of the given mode) was freed: its
// zeroed dinode was just written into its block (UpdateInode). It returns
// true when the engine may give the inode back to the allocator at once
// (it never reached the disk); otherwise the inode is counted pending
// (Host.AddPending is the caller's: one inode) and freed once the zeroed
// inode is durable.
func (d *Deps) FreeInode(ino ondisk.Ino, mode uint16) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inode(ino)
	parent := st.parent
	st.parent = nil
	if st.newCg != nil && !st.everWrittenLocked(d) {
		// Only ever written zeroed: nothing on disk names it.
		st.newCg = nil
		if parent != nil {
			d.release(parent)
		}
		return true
	}
	f := &freeWork{ino: ino, inode: true, mode: mode, deps: []Dep{inoDep{st, st.ver}}, parent: parent}
	f.seq = d.nextSeq()
	d.frees = append(d.frees, f)
	d.live[f.seq] = liveEntry{b: &f.base}
	return false
}

// everWrittenLocked reports whether a write that was not zeroed began for
// st. A new inode's newCg is cleared by the first such write.
func (st *inodeState) everWrittenLocked(*Deps) bool { return st.newCg == nil }

// release drops one pending removal of st. Preconditions: d.mu.
func (d *Deps) release(st *inodeState) {
	if st.pending > 0 {
		st.pending--
	}
	if st.pending == 0 && st.notify {
		st.notify = false
		d.callbacks = append(d.callbacks, st.ino)
	}
}

// rollInode computes what inode st looks like in a write of its block
// (data, the buffer's contents): the changes not yet safe rolled back
// into *out (a copy made on demand), the items written as they are
// captured into rec. Preconditions: d.mu; the block's shared lock held by
// the writer.
func (d *Deps) rollInode(st *inodeState, data []byte, out *[]byte, rec *writeRec) {
	sb := d.sb
	raw := data[st.within : st.within+ondisk.DinodeSize]
	v := st.ver
	var din ondisk.Dinode
	if err := din.Decode(raw); err != nil {
		d.log.Error("softdep: undecodable inode in its block", "ino", st.ino, "err", err)
		return
	}
	copyOut := func() []byte {
		if *out == nil {
			*out = append([]byte(nil), data...)
		}
		return *out
	}
	if st.newCg != nil {
		if !st.newCg.done(d) {
			// The group does not say it is allocated yet: on disk it
			// stays a free inode.
			zero := ondisk.Dinode{Gen: din.Gen}
			if err := zero.EncodeWithHash(sb, copyOut()[st.within:st.within+ondisk.DinodeSize]); err != nil {
				d.log.Error("softdep: encoding a zeroed inode", "ino", st.ino, "err", err)
			}
			rec.rolled = true
			rec.inodes = append(rec.inodes, inoWrite{st: st, ver: v, zeroed: true})
			return
		}
		st.newCg = nil
	}
	st.compact()
	changed := false
	bsize := int64(sb.Bsize)

	// Pointers: ready ones go as they are, the others roll back.
	var take, roll []*allocItem
	for _, it := range st.allocs {
		if it.st != pending || it.minVer > v {
			continue
		}
		// A pointer cleared or changed again in memory is not in this
		// write: its item waits to be cancelled or replaced.
		cur := din.Db[min(it.slot.Index, ondisk.NDaddr-1)]
		if it.slot.Kind == SlotIndirect {
			cur = din.Ib[min(it.slot.Index, ondisk.NIaddr-1)]
		}
		if cur != it.newp {
			continue
		}
		if d.ready(it) {
			take = append(take, it)
		} else {
			roll = append(roll, it)
		}
	}
	if din.IsDir() && slices.ContainsFunc(roll, func(it *allocItem) bool { return it.slot.Kind == SlotDirect }) {
		// A directory may have no hole: with a direct block rolled
		// back, its indirect blocks (past that block) wait too.
		for _, it := range take {
			if it.slot.Kind == SlotIndirect {
				roll = append(roll, it)
			}
		}
		take = slices.DeleteFunc(take, func(it *allocItem) bool { return it.slot.Kind == SlotIndirect })
	}
	if len(roll) > 0 {
		changed = true
		slices.SortFunc(roll, func(a, b *allocItem) int { return a.order() - b.order() })
		// Indirect pointers first: a replaced tree takes the size back
		// to what it was (sizeBefore), which the rules for the direct
		// pointers then see.
		for _, it := range roll {
			if it.slot.Kind == SlotIndirect {
				din.Ib[it.slot.Index] = it.oldp
				if it.sizeBefore >= 0 && int64(din.Size) > it.sizeBefore {
					din.Size = uint64(it.sizeBefore)
				}
			}
		}
		var last *allocItem // the highest direct pointer rolled back
		cut := -1           // a direct pointer rolled back to a fragment
		for _, it := range roll {
			if it.slot.Kind != SlotDirect {
				continue
			}
			i := it.slot.Index
			din.Db[i] = it.oldp
			last = it
			if it.osize != 0 && int64(it.osize) != bsize {
				// The file on disk ends in that fragment.
				din.Size = uint64(int64(i)*bsize + int64(it.osize))
				for j := i + 1; j < ondisk.NDaddr; j++ {
					din.Db[j] = 0
				}
				din.Ib = [ondisk.NIaddr]ondisk.Frag{}
				cut = i
				break
			}
		}
		if cut < 0 && last != nil && int64(din.Size) <= int64(last.slot.Index+1)*bsize {
			i := last.slot.Index
			for i >= 0 && din.Db[i] == 0 {
				i--
			}
			din.Size = uint64(int64(i+1) * bsize)
		}
		if cut >= 0 {
			// Pointers cleared by the cut are not written either.
			take = slices.DeleteFunc(take, func(it *allocItem) bool {
				return it.slot.Kind == SlotIndirect || it.slot.Index > cut
			})
		}
	}
	for _, it := range take {
		it.st = writing
		rec.allocs = append(rec.allocs, it)
	}

	// The extended attribute area.
	if e := st.ext; e != nil && e.st == pending && e.minVer <= v {
		if d.allDone(e.deps) {
			e.st = writing
			rec.exts = append(rec.exts, e)
		} else {
			din.Extb = e.oldb
			din.Extsize = e.oldsize
			din.Blocks += e.oldSectors
			changed = true
		}
	}

	// Links whose removal is not durable yet still count.
	if din.Mode != 0 {
		n := int(din.Nlink) + st.pending
		if din.IsDir() && din.Nlink <= 0 {
			n++ // "." of a removed directory still allocated
		}
		if n != int(din.Nlink) {
			din.Nlink = int16(min(n, 1<<15-1))
			changed = true
		}
	}
	if changed {
		if err := din.EncodeWithHash(sb, copyOut()[st.within:st.within+ondisk.DinodeSize]); err != nil {
			d.log.Error("softdep: encoding a rolled-back inode", "ino", st.ino, "err", err)
		}
		rec.rolled = true
	}
	rec.inodes = append(rec.inodes, inoWrite{st: st, ver: v, size: din.Size})
}

// gcInodes forgets the states of idle inodes. Preconditions: d.mu.
func (d *Deps) gcInodes() {
	for ino, st := range d.inodes {
		if !st.idle() {
			continue
		}
		delete(d.inodes, ino)
		if bd := d.bufs[st.off]; bd != nil {
			bd.inodes = slices.DeleteFunc(bd.inodes, func(x *inodeState) bool { return x == st })
			if bd.empty() {
				delete(d.bufs, st.off)
			}
		}
	}
}
