package softdep

import (
	"encoding/binary"
	"slices"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
)

// Entry describes a directory entry just added or changed.
type Entry struct {
	Dir     ondisk.Ino // the directory
	Name    string
	Ino     ondisk.Ino // what the entry names now
	Type    uint8      // its d_type
	Old     ondisk.Ino // what it named before (0: a new entry)
	OldType uint8
	// Mkdir: Ino is a new directory, whose first block must be durable
	// before the entry. (For any entry naming a directory, Dir's inode
	// as it is now, with the link for the named directory's "..", is
	// durable first.)
	Mkdir bool
	// NewChunk: the entry is in a chunk past Dir's size, which the
	// caller raises in its next UpdateInode of Dir: the entry counts as
	// durable only once that inode write is.
	NewChunk bool
	// Paired: the entry is written only together with a removal from
	// the same block recorded later (DirRemove with this entry's Dep):
	// a rename inside one directory block, which must reach the disk in
	// one write. The caller makes sure Ino is durable first (Wait of
	// InodeWritten), so that nothing else holds the pair back.
	Paired bool
}

// dirAdd is a directory entry naming an inode whose inode is not yet
// safe to name.
type dirAdd struct {
	base
	off    int64 // the directory block's buffer
	name   string
	ino    ondisk.Ino
	typ    uint8
	old    ondisk.Ino
	oldTyp uint8
	deps   []Dep // before it is written as it is
	// visible: before it is in the directory on disk (the pointer to
	// its block, the directory's size over its chunk), once written.
	visible []Dep
	oldRem  *dirRem // the removal of old, done when this is durable
	paired  bool    // waits for its paired removal (Entry.Paired)
}

// done reports whether the entry is in the directory on disk (or was
// cancelled).
func (a *dirAdd) done(d *Deps) bool {
	return a.st == cancelled || a.st == durable && d.allDone(a.visible)
}

// dirRem is the removal of a name of target: target's link count on disk
// drops once it is durable and after is done.
type dirRem struct {
	base
	off    int64
	target *inodeState
	after  []Dep
	viaAdd bool // removed by a change of the entry (dirAdd.oldRem)
}

// DirAdd records entry e, just put into directory block b (whose
// exclusive lock the caller holds). The returned Dep is satisfied once the
// entry is durable.
func (d *Deps) DirAdd(b *bcache.Buf, e Entry) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	off := b.Off()
	bd := d.buf(off)
	a := &dirAdd{base: base{seq: d.nextSeq()}, off: off, name: e.Name, ino: e.Ino, typ: e.Type, old: e.Old, oldTyp: e.OldType, paired: e.Paired}
	merged := false
	for _, p := range bd.adds {
		if p.st == pending && p.name == e.Name && p.ino == e.Old {
			// The entry changes again before its last change reached
			// the disk: the disk still has what that one replaced.
			a.old, a.oldTyp, a.oldRem = p.old, p.oldTyp, p.oldRem
			p.oldRem = nil
			p.st = cancelled
			delete(d.live, p.seq)
			merged = true
			break
		}
	}
	if !merged && e.Old != 0 {
		r := &dirRem{base: base{seq: d.nextSeq()}, off: off, target: d.inode(e.Old), viaAdd: true}
		r.target.pending++
		a.oldRem = r
		d.remsLive = append(d.remsLive, r)
		d.live[r.seq] = liveEntry{b: &r.base}
	}
	target := d.inode(e.Ino)
	a.deps = []Dep{inoDep{target, target.ver}}
	ds := d.inode(e.Dir)
	if e.NewChunk {
		// The version the caller writes next; counted now, so that the
		// directory's state is not forgotten before it.
		ds.ver++
		a.visible = append(a.visible, inoDep{ds, ds.ver})
	}
	// On disk the entry is in the directory only once the pointer to
	// its block is.
	a.visible = append(a.visible, d.blockDeps(ds, off)...)
	if a.oldRem != nil && !merged {
		a.oldRem.after = append(a.oldRem.after, d.blockDeps(ds, off)...)
	}
	if e.Type == ondisk.DTDir && e.Name != "." && e.Name != ".." {
		// A directory named here has (or will have, and fsck makes it
		// so) ".." naming Dir: Dir's link count for it first.
		parent := d.inode(e.Dir)
		a.deps = append(a.deps, inoDep{parent, parent.ver})
	}
	if e.Mkdir {
		for _, it := range target.allocs {
			if !it.finished() {
				a.deps = append(a.deps, it)
			}
		}
	}
	bd.adds = append(bd.adds, a)
	d.live[a.seq] = liveEntry{b: &a.base, fsync: true, add: a}
	return a
}

// DirRemove records that the entry name naming ino was removed from
// directory block b (whose exclusive lock the caller holds; the caller
// lowers ino's link count in memory). pair, when not nil, is the Dep of
// an entry recorded with Entry.Paired in the same block, written together
// with this removal. The returned Dep is satisfied once the removal
// counts on disk.
func (d *Deps) DirRemove(b *bcache.Buf, dir ondisk.Ino, name string, ino ondisk.Ino, pair Dep) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	off := b.Off()
	bd := d.buf(off)
	ds := d.inode(dir)
	if a, ok := pair.(*dirAdd); ok {
		// The removal is in every write of the block from here on:
		// the entry may go with it.
		a.paired = false
	}
	for _, p := range bd.adds {
		if p.st == pending && p.name == name && p.ino == ino {
			// It never reached the disk: nothing to remove there but
			// what it replaced, which goes with the block's next write.
			p.st = cancelled
			delete(d.live, p.seq)
			if r := p.oldRem; r != nil {
				p.oldRem = nil
				r.viaAdd = false
				r.off = off
				bd.rems = append(bd.rems, r)
				ds.entryRems = append(ds.entryRems, r)
				return r
			}
			return p // cancelled: done
		}
	}
	st := d.inode(ino)
	st.pending++
	// Until the pointer to the block is durable the disk may show the
	// entry in the block it came from (a fragment tail moved).
	r := &dirRem{base: base{seq: d.nextSeq()}, off: off, target: st, after: d.blockDeps(ds, off)}
	bd.rems = append(bd.rems, r)
	ds.entryRems = append(ds.entryRems, r)
	d.remsLive = append(d.remsLive, r)
	d.live[r.seq] = liveEntry{b: &r.base}
	return r
}

// done reports whether the removal counts on disk.
func (r *dirRem) done(d *Deps) bool {
	return r.st == cancelled || r.st == durable && d.allDone(r.after)
}

// EntriesGone returns a Dep satisfied once every removal of an entry of
// directory dir recorded so far counts on disk: before a directory's own
// name goes, so that a crash never leaves a directory nothing names with
// entries still in it.
func (d *Deps) EntriesGone(dir ondisk.Ino) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inode(dir)
	st.entryRems = slices.DeleteFunc(st.entryRems, func(r *dirRem) bool { return r.done(d) })
	deps := make(allDeps, len(st.entryRems))
	for i, r := range st.entryRems {
		deps[i] = r
	}
	return deps
}

// NamesWritten returns a Dep satisfied once every entry naming inode ino
// recorded so far is durable: before a directory moves out of a
// directory, so that the ".." it leaves behind on disk never names a
// directory nothing names (fsck would not clear it in the same run).
func (d *Deps) NamesWritten(ino ondisk.Ino) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	var deps allDeps
	for _, bd := range d.bufs {
		for _, a := range bd.adds {
			if a.ino == ino && !a.done(d) {
				deps = append(deps, a)
			}
		}
	}
	return deps
}

// LinksGone returns a Dep satisfied once every removal of a reference to
// inode ino recorded so far (an entry naming it, or the ".." of a
// directory that moved away from it) counts on disk: before a directory
// is removed, so that no ".." on disk names a directory nothing names.
func (d *Deps) LinksGone(ino ondisk.Ino) Dep {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inodes[ino]
	var deps allDeps
	if st == nil {
		return deps
	}
	for _, r := range d.remsLive {
		if r.target == st && !r.done(d) {
			deps = append(deps, r)
		}
	}
	return deps
}

// hold keeps a link of an inode on disk until deps are durable.
type hold struct {
	st   *inodeState
	deps []Dep
}

// HoldLink keeps one more link of inode ino on disk than its link count
// in memory says until every dep in until is durable (the engine lowered
// it in memory for changes those make durable).
func (d *Deps) HoldLink(ino ondisk.Ino, until ...Dep) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.inode(ino)
	st.pending++
	h := &hold{st: st, deps: until}
	d.holds = append(d.holds, h)
}

// Pairable reports whether an entry recorded with Entry.Paired is in the
// directory on disk as soon as its block is written (the pointer to the
// block and the size over its chunk are durable), so that a removal
// written with it cannot show first. When not, the caller unpairs it and
// waits for it instead.
func (d *Deps) Pairable(dep Dep) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := dep.(*dirAdd)
	return ok && d.allDone(a.visible)
}

// Unpair releases an entry recorded with Entry.Paired whose removal will
// not come (the rename failed half way): it is written on its own.
func (d *Deps) Unpair(dep Dep) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := dep.(*dirAdd); ok {
		a.paired = false
	}
}

// blockDeps returns the pointers of directory ds to the block whose
// buffer is at off that are not durable yet (a new block, a fragment tail
// grown or moved, a new indirect tree holding it). Preconditions: d.mu.
func (d *Deps) blockDeps(ds *inodeState, off int64) []Dep {
	ds.compact()
	var deps []Dep
	for _, list := range [][]*allocItem{ds.allocs, ds.inBlock} {
		for _, it := range list {
			if d.sb.FragOffset(it.newp) == off {
				deps = append(deps, it)
				continue
			}
			for _, x := range it.extra {
				if m, ok := x.(*marker); ok && m.off == off {
					deps = append(deps, it)
					break
				}
			}
		}
	}
	return deps
}

// moveDirItems moves the entries recorded in the block at from to the
// block at to, which the pointer item it (not yet durable) makes the
// directory's: removals there count on disk only once it is durable.
// Preconditions: d.mu.
func (d *Deps) moveDirItems(from, to int64, it *allocItem) {
	bd := d.bufs[from]
	if bd == nil || (len(bd.adds) == 0 && len(bd.rems) == 0) {
		return
	}
	nb := d.buf(to)
	for _, a := range bd.adds {
		if a.done(d) {
			continue
		}
		// In the directory on disk once the new pointer is.
		a.off = to
		a.visible = append(a.visible, it)
		if a.oldRem != nil {
			a.oldRem.after = append(a.oldRem.after, it)
		}
		nb.adds = append(nb.adds, a)
	}
	for _, r := range bd.rems {
		if r.st != pending {
			continue
		}
		r.off = to
		r.after = append(r.after, it)
		nb.rems = append(nb.rems, r)
	}
	bd.adds = slices.DeleteFunc(bd.adds, func(a *dirAdd) bool { return a.off == to || a.done(d) })
	bd.rems = slices.DeleteFunc(bd.rems, func(r *dirRem) bool { return r.off == to || r.finished() })
	if bd.empty() {
		delete(d.bufs, from)
	}
}

// dropBuffer forgets what was recorded in the buffer at off, a block
// being freed: entries never written vanish with it, and removals (and
// the entries a change replaced) count as done once clear is durable.
// Preconditions: d.mu.
func (d *Deps) dropBuffer(off int64, clear []Dep) {
	bd := d.bufs[off]
	if bd == nil {
		return
	}
	gone := func(r *dirRem) {
		r.viaAdd = false
		r.st = durable
		r.after = append(r.after, clear...)
	}
	for _, a := range bd.adds {
		if a.st != pending {
			// Written: gone with the block, nothing left to wait for.
			a.visible = nil
			continue
		}
		a.st = cancelled
		delete(d.live, a.seq)
		if a.oldRem != nil {
			gone(a.oldRem)
			a.oldRem = nil
		}
	}
	for _, r := range bd.rems {
		if r.st == pending {
			gone(r)
		}
	}
	for _, m := range bd.markers {
		if m.st == pending {
			m.st = cancelled
		}
	}
	bd.adds, bd.rems, bd.markers = nil, nil, nil
	if bd.empty() {
		delete(d.bufs, off)
	}
}

// rollDir rolls back, in a write of directory block bd's buffer, the
// entries not yet safe and captures the rest. Preconditions: d.mu.
func (d *Deps) rollDir(bd *bufDeps, data []byte, out *[]byte, rec *writeRec) {
	bd.adds = slices.DeleteFunc(bd.adds, func(a *dirAdd) bool { return a.done(d) })
	bd.rems = slices.DeleteFunc(bd.rems, func(r *dirRem) bool { return r.st != pending && r.st != writing && r.st != written })
	for _, r := range bd.rems {
		if r.st == pending && !r.viaAdd {
			r.st = writing
			rec.rems = append(rec.rems, r)
		}
	}
	var undo map[string]*dirAdd
	for _, a := range bd.adds {
		if a.st != pending {
			continue
		}
		if !a.paired && d.allDone(a.deps) {
			a.st = writing
			rec.adds = append(rec.adds, a)
			continue
		}
		if undo == nil {
			undo = map[string]*dirAdd{}
		}
		undo[a.name] = a
	}
	if len(undo) == 0 {
		return
	}
	rec.rolled = true
	if *out == nil {
		*out = append([]byte(nil), data...)
	}
	buf := *out
	for c := 0; c+ondisk.DirBlkSize <= len(buf); c += ondisk.DirBlkSize {
		for pos := c; pos+8 <= c+ondisk.DirBlkSize; {
			ino := ondisk.Ino(binary.LittleEndian.Uint32(buf[pos:]))
			reclen := int(binary.LittleEndian.Uint16(buf[pos+4:]))
			namlen := int(buf[pos+7])
			if reclen < 8 || pos+reclen > c+ondisk.DirBlkSize || pos+8+namlen > c+ondisk.DirBlkSize {
				break
			}
			if ino != 0 {
				if a := undo[string(buf[pos+8:pos+8+namlen])]; a != nil && a.ino == ino {
					binary.LittleEndian.PutUint32(buf[pos:], uint32(a.old))
					buf[pos+6] = a.oldTyp
				}
			}
			pos += reclen
		}
	}
}
