package softdep

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
)

// BeforeWrite implements bcache.Hooks: it returns b's contents with every
// change not yet safe rolled back (a copy) and captures the changes that
// go as they are.
func (d *Deps) BeforeWrite(b *bcache.Buf) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Writes++
	off, size := b.Off(), b.Size()
	data := b.Data()
	rec := &writeRec{}
	var out []byte
	if c, ok := d.cgOff[off]; ok && size == int(d.sb.Cgsize) {
		cs := d.cgState(c)
		if d.rollCg(c, cs, data, &out) {
			// Not the group as it is: no version of it becomes durable.
			rec.rolled = true
		} else {
			rec.cg, rec.cgVer = cs, cs.pushed
		}
	}
	if bd := d.bufs[off]; bd != nil {
		keep := bd.markers[:0]
		for _, m := range bd.markers {
			switch {
			case m.finished():
				continue
			case m.st == pending && m.size <= size:
				m.st = writing
				rec.markers = append(rec.markers, m)
			}
			keep = append(keep, m)
		}
		clear(bd.markers[len(keep):])
		bd.markers = keep
		if size == int(d.sb.Bsize) {
			for _, st := range bd.inodes {
				d.rollInode(st, data, &out, rec)
			}
			d.rollIndirect(bd, data, &out, rec)
		}
		d.rollDir(bd, data, &out, rec)
	}
	d.inflight[b] = rec
	if out != nil {
		return out
	}
	return data
}

// AfterWrite implements bcache.Hooks: the captured changes are written
// (durable after the next flush), or back to pending if the write failed.
// A write with something rolled back leaves the buffer dirty.
func (d *Deps) AfterWrite(b *bcache.Buf, err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := d.inflight[b]
	delete(d.inflight, b)
	if rec == nil {
		return false
	}
	if !d.finishWrite(rec, err) {
		return true
	}
	if rec.rolled {
		d.stats.RolledBack++
	}
	return rec.rolled
}

// syncDevice flushes the device and marks what became durable. It does
// not run frees, so it may be called with the allocator's lock held.
func (d *Deps) syncDevice() error {
	d.mu.Lock()
	g := d.flushGen
	d.flushGen++
	d.mu.Unlock()
	if err := d.dev.Sync(); err != nil {
		return errorf("syncing the device: %w", err)
	}
	d.mu.Lock()
	d.stats.Flushes++
	d.markDurable(g)
	d.progress()
	d.mu.Unlock()
	return nil
}

// markDurable makes durable every write completed before flush number g
// began. Preconditions: d.mu.
func (d *Deps) markDurable(g uint64) {
	keep := d.written[:0]
	for _, rec := range d.written {
		if rec.gen > g {
			keep = append(keep, rec)
			continue
		}
		for _, m := range rec.markers {
			if m.st == written {
				m.st = durable
				d.dropMarker(m)
			}
		}
		for _, it := range rec.allocs {
			if it.st != written {
				continue
			}
			if it.slot.Kind == SlotInBlock {
				if info := d.indirs[it.slot.Block]; info != nil {
					info.durableChild = true
				}
			}
			if it.child != nil {
				delete(d.indirs, it.newp)
			}
			if len(it.after) > 0 {
				d.deferFree(it.slot.Ino, it.after, nil)
				it.after = nil
			}
			d.finishItem(it, durable)
		}
		for _, e := range rec.exts {
			if e.st != written {
				continue
			}
			e.st = durable
			delete(d.live, e.seq)
			if len(e.after) > 0 {
				d.deferFree(e.owner.ino, e.after, nil)
				e.after = nil
			}
		}
		for _, a := range rec.adds {
			if a.st != written {
				continue
			}
			a.st = durable
			if d.allDone(a.visible) {
				delete(d.live, a.seq)
			} else {
				d.addsVisible = append(d.addsVisible, a)
			}
			if r := a.oldRem; r != nil {
				r.st = durable
			}
		}
		for _, r := range rec.rems {
			if r.st == written {
				r.st = durable
			}
		}
		for _, iw := range rec.inodes {
			if !iw.zeroed && iw.ver >= iw.st.durableVer {
				iw.st.durableVer = iw.ver
				iw.st.durableSize = iw.size
			}
		}
		if rec.cg != nil && rec.cgVer > rec.cg.durable {
			rec.cg.durable = rec.cgVer
		}
	}
	clear(d.written[len(keep):])
	d.written = keep
}

// finishWrite ends the write of what rec holds: with err the items go
// back to pending (to be written again), otherwise they are written in the
// current flush epoch, durable after the next flush. It reports whether
// the write succeeded. Preconditions: d.mu.
func (d *Deps) finishWrite(rec *writeRec, err error) bool {
	if err != nil {
		rec.each(func(x *base) {
			if x.st == writing {
				x.st = pending
			}
		})
		return false
	}
	rec.gen = d.flushGen
	rec.each(func(x *base) {
		if x.st == writing {
			x.st = written
			x.gen = rec.gen
		}
	})
	d.written = append(d.written, rec)
	return true
}

// dropMarker forgets durable marker m in its buffer's record, and the
// record when nothing else is in it: a data block's record would
// otherwise stay until the block is freed. Preconditions: d.mu.
func (d *Deps) dropMarker(m *marker) {
	bd := d.bufs[m.off]
	if bd == nil {
		return
	}
	bd.markers = slices.DeleteFunc(bd.markers, func(x *marker) bool { return x == m })
	if bd.empty() {
		delete(d.bufs, m.off)
	}
}

// deferFree queues a free of blocks (already counted pending) waiting for
// deps. Preconditions: d.mu.
func (d *Deps) deferFree(ino ondisk.Ino, blocks []Extent, deps []Dep) {
	f := &freeWork{ino: ino, blocks: blocks, deps: deps}
	f.seq = d.nextSeq()
	for _, x := range blocks {
		f.sectors += sectors(x.Size)
	}
	d.frees = append(d.frees, f)
	d.live[f.seq] = liveEntry{b: &f.base}
}

// progress applies the removals that became durable and ends the holds
// whose deps are. Preconditions: d.mu.
func (d *Deps) progress() {
	hk := d.holds[:0]
	for _, h := range d.holds {
		if d.allDone(h.deps) {
			d.release(h.st)
			continue
		}
		hk = append(hk, h)
	}
	clear(d.holds[len(hk):])
	d.holds = hk
	keep := d.remsLive[:0]
	for _, r := range d.remsLive {
		switch {
		case r.st == cancelled:
			continue
		case r.st == durable && d.allDone(r.after):
			delete(d.live, r.seq)
			d.release(r.target)
			continue
		}
		keep = append(keep, r)
	}
	clear(d.remsLive[len(keep):])
	d.remsLive = keep
	ak := d.addsVisible[:0]
	for _, a := range d.addsVisible {
		if a.done(d) {
			delete(d.live, a.seq)
			continue
		}
		ak = append(ak, a)
	}
	clear(d.addsVisible[len(ak):])
	d.addsVisible = ak
}

// takeFrees removes and returns the frees whose dependencies are durable.
// Preconditions: d.mu.
func (d *Deps) takeFrees() []*freeWork {
	var ready []*freeWork
	keep := d.frees[:0]
	for _, f := range d.frees {
		if d.allDone(f.deps) {
			ready = append(ready, f)
			f.st = durable
			delete(d.live, f.seq)
			if f.parent != nil {
				d.release(f.parent)
				f.parent = nil
			}
			continue
		}
		keep = append(keep, f)
	}
	clear(d.frees[len(keep):])
	d.frees = keep
	return ready
}

// runFrees gives back what the ready frees held. It returns how many
// blocks and inodes it freed.
func (d *Deps) runFrees() (blocks, inodes int, err error) {
	d.mu.Lock()
	ready := d.takeFrees()
	d.mu.Unlock()
	for _, f := range ready {
		for _, x := range f.blocks {
			if ferr := d.host.FreeBlock(x.P, int(x.Size), f.ino); ferr != nil && err == nil {
				err = ferr
			}
			blocks++
		}
		var ni int32
		if f.inode {
			if ferr := d.host.FreeInode(f.ino, f.mode); ferr != nil && err == nil {
				err = ferr
			}
			inodes++
			ni = 1
		}
		d.host.AddPending(-f.sectors, -ni)
	}
	d.mu.Lock()
	d.stats.FreedLater += int64(blocks + inodes)
	d.mu.Unlock()
	return blocks, inodes, err
}

// Round writes every changed cylinder group and every dirty buffer,
// flushes the device, and frees what became free.
func (d *Deps) Round() error {
	d.roundMu.Lock()
	defer d.roundMu.Unlock()
	_, _, err := d.round()
	return err
}

// round is Round with roundMu held; it returns what it freed.
func (d *Deps) round() (blocks, inodes int, err error) {
	var errs []error
	if perr := d.host.PushGroups(); perr != nil {
		errs = append(errs, perr)
	}
	if werr := d.cache.WriteDirty(); werr != nil {
		errs = append(errs, werr)
	}
	if serr := d.syncDevice(); serr != nil {
		errs = append(errs, serr)
	}
	blocks, inodes, ferr := d.runFrees()
	if ferr != nil {
		errs = append(errs, ferr)
	}
	d.mu.Lock()
	d.stats.Rounds++
	d.gcInodes()
	d.mu.Unlock()
	return blocks, inodes, errors.Join(errs...)
}

// RunCallbacks tells the Host of the inodes whose removals became durable
// (Host.Unlinked). Those it could not handle now stay for the next call.
// It returns how many it handled.
func (d *Deps) RunCallbacks() int {
	d.cbMu.Lock()
	defer d.cbMu.Unlock()
	d.mu.Lock()
	cbs := d.callbacks
	d.callbacks = nil
	d.mu.Unlock()
	var busy []ondisk.Ino
	for _, ino := range cbs {
		if !d.host.Unlinked(ino) {
			busy = append(busy, ino)
		}
	}
	d.mu.Lock()
	d.stats.Callback += int64(len(cbs) - len(busy))
	d.callbacks = append(d.callbacks, busy...)
	d.mu.Unlock()
	return len(cbs) - len(busy)
}

// waitFor runs rounds until left (counted under d.mu) is 0, at least
// one round when force. Rounds that bring left down are progress; after
// MaxRounds rounds in a row without any, it fails with ErrStuck. A round
// without progress is usually waiting for an operation still going on in
// another goroutine (its inode updated, its buffers locked), so such
// rounds are spaced out a little to let it finish: a stuck wait ends
// after about a second and a half, not a busy loop of flushes.
func (d *Deps) waitFor(what string, force bool, left func() int) error {
	last := -1
	stall := 0
	for i := 0; ; i++ {
		d.mu.Lock()
		n := left()
		d.mu.Unlock()
		if n == 0 && (!force || i > 0) {
			return nil
		}
		if last >= 0 && n >= last {
			stall++
		} else {
			stall = 0
		}
		last = n
		if stall >= d.opts.MaxRounds {
			d.mu.Lock()
			why := d.describeLive()
			d.mu.Unlock()
			return fmt.Errorf("%w: %s after %d rounds, the last %d without progress (%s)", ErrStuck, what, i, stall, why)
		}
		if stall > 2 {
			time.Sleep(min(time.Duration(stall)*time.Millisecond, stallPause))
		}
		if err := d.Round(); err != nil {
			return err
		}
	}
}

// stallPause is the longest pause between two rounds of a wait that is
// not progressing.
const stallPause = 25 * time.Millisecond

// describeLive says what the oldest unfinished items wait for, for the
// ErrStuck message. Preconditions: d.mu.
func (d *Deps) describeLive() string {
	var parts []string
	n := 0
	for _, e := range d.live {
		if n >= 6 {
			break
		}
		if e.b.finished() {
			continue
		}
		n++
		parts = append(parts, d.describeItem(e))
	}
	return fmt.Sprintf("%d unfinished, %d frees: %s", len(d.live), len(d.frees), strings.Join(parts, "; "))
}

// describeItem describes live item e. Preconditions: d.mu.
func (d *Deps) describeItem(e liveEntry) string {
	switch {
	case e.item != nil:
		it := e.item
		init := "none"
		if it.init != nil {
			init = fmt.Sprintf("finished %v, %s", it.init.finished(), d.bufState(it.init.off, it.init.size))
		}
		replaced := ""
		if d.bySlot[it.slot] != it {
			replaced = ", replaced in its slot"
		}
		return fmt.Sprintf("pointer %+v -> %d/%d (state %d%s): init %s; cg %v(durable %d) cover %d/%d child %v extra %v minVer %d; %s",
			it.slot, it.newp, it.nsize, it.st, replaced, init, it.cg.done(d), d.cgState(it.cg.c).durable,
			it.cover, it.owner.durableSize, it.child == nil || it.child.durableChild, d.allDone(it.extra), it.minVer, d.describeInode(it.owner))
	case e.ext != nil:
		x := e.ext
		var ms []string
		for _, m := range x.markers {
			ms = append(ms, fmt.Sprintf("%d/%d state %d %s", m.off, m.size, m.st, d.bufState(m.off, m.size)))
		}
		return fmt.Sprintf("attribute area (state %d, minVer %d): deps done %v, markers %v; %s",
			x.st, x.minVer, d.allDone(x.deps), ms, d.describeInode(x.owner))
	case e.add != nil:
		a := e.add
		return fmt.Sprintf("entry %q -> %d in block at %d (state %d, paired %v, deps done %v)", a.name, a.ino, a.off, a.st, a.paired, d.allDone(a.deps))
	}
	b := e.b
	for _, f := range d.frees {
		if &f.base == b {
			return fmt.Sprintf("free of inode %d blocks %v inode %v: deps done %v", f.ino, f.blocks, f.inode, d.allDone(f.deps))
		}
	}
	for _, r := range d.remsLive {
		if &r.base == b {
			return fmt.Sprintf("removal of a name of inode %d (state %d, via entry change %v, after %v)", r.target.ino, r.st, r.viaAdd, d.allDone(r.after))
		}
	}
	return fmt.Sprintf("item %d state %d", b.seq, b.st)
}

// bufState says whether the buffer at off of size bytes is cached and
// dirty. Preconditions: d.mu (the cache's lock is inner to it).
func (d *Deps) bufState(off int64, size int) string {
	cb := d.cache.Lookup(off, size)
	if cb == nil {
		return "no buffer"
	}
	defer d.cache.Release(cb)
	return fmt.Sprintf("buffer dirty %v", d.cache.Dirty(cb))
}

// describeInode says what inode st's block holds for it now, without
// waiting for the block's lock. Preconditions: d.mu.
func (d *Deps) describeInode(st *inodeState) string {
	if st.newCg != nil {
		cs := d.cgState(st.newCg.c)
		var in []string
		for _, x := range cs.inits {
			in = append(in, fmt.Sprintf("from %d: marker %d/%d state %d", x.from, x.m.off, x.m.size, x.m.st))
		}
		return fmt.Sprintf("new inode %d: group %d wanted at version %d, pushed %d, durable %d, inode blocks %v",
			st.ino, st.newCg.c, st.newCg.ver, cs.pushed, cs.durable, in)
	}
	cb := d.cache.Lookup(st.off, int(d.sb.Bsize))
	if cb == nil {
		return fmt.Sprintf("inode %d (ver %d, durable %d): block not cached", st.ino, st.ver, st.durableVer)
	}
	defer d.cache.Release(cb)
	if !cb.TryRLock() {
		return fmt.Sprintf("inode %d (ver %d, durable %d): block locked", st.ino, st.ver, st.durableVer)
	}
	defer cb.RUnlock()
	var din ondisk.Dinode
	if err := din.Decode(cb.Data()[st.within : st.within+ondisk.DinodeSize]); err != nil {
		return fmt.Sprintf("inode %d: %v", st.ino, err)
	}
	return fmt.Sprintf("inode %d (ver %d, durable %d, dirty %v) in its block: mode %o size %d blocks %d db %v ib %v",
		st.ino, st.ver, st.durableVer, d.cache.Dirty(cb), din.Mode, din.Size, din.Blocks, din.Db, din.Ib)
}

// Wait runs rounds until every dep is durable.
func (d *Deps) Wait(deps ...Dep) error {
	return d.waitFor("waiting", false, func() int {
		n := 0
		for _, x := range deps {
			if !x.done(d) {
				n++
			}
		}
		return n
	})
}

// liveUpTo counts the unfinished items numbered at most limit (only
// those an fsync waits for when fsync). A block pointer or an attribute
// area whose inode has not been updated since it was made belongs to an
// operation still going on (its inode's lock is held): not waited for.
// Preconditions: d.mu.
func (d *Deps) liveUpTo(limit uint64, fsync bool) int {
	n := 0
	for seq, e := range d.live {
		if seq > limit || (fsync && !e.fsync) {
			continue
		}
		if e.add != nil && e.add.done(d) || e.add == nil && e.b.finished() {
			continue
		}
		if e.inProgress() {
			continue
		}
		n++
	}
	return n
}

// Fsync runs rounds until inode ino as it is now, the data written so
// far, and every block pointer, attribute area and directory entry made
// so far (so the names leading to ino, and the directories they are in)
// are durable.
func (d *Deps) Fsync(ino ondisk.Ino) error {
	d.mu.Lock()
	limit := d.seq
	dep := inoDep{d.inode(ino), 0}
	dep.ver = dep.st.ver
	d.mu.Unlock()
	return d.waitFor(fmt.Sprintf("fsync of inode %d", ino), true, func() int {
		n := d.liveUpTo(limit, true)
		if !dep.done(d) {
			n++
		}
		return n
	})
}

// Sync runs rounds until every change made so far is durable, removals
// and frees included.
func (d *Deps) Sync() error {
	d.mu.Lock()
	limit := d.seq
	d.mu.Unlock()
	return d.waitFor("sync", true, func() int { return d.liveUpTo(limit, false) })
}

// Drain runs rounds and callbacks until nothing is left: no item, no
// deferred free, no callback and no dirty buffer. For the end of a mount,
// with no other activity.
func (d *Deps) Drain() error {
	for i := 0; ; i++ {
		if err := d.Round(); err != nil {
			return err
		}
		d.RunCallbacks()
		d.mu.Lock()
		idle := len(d.live) == 0 && len(d.frees) == 0 && len(d.callbacks) == 0 && len(d.written) == 0 && len(d.holds) == 0
		d.mu.Unlock()
		if idle && d.cache.DirtyBytes() == 0 {
			return nil
		}
		if i >= d.opts.MaxRounds {
			d.mu.Lock()
			n, nf := len(d.live), len(d.frees)
			d.mu.Unlock()
			return fmt.Errorf("%w: draining: %d items and %d frees left after %d rounds", ErrStuck, n, nf, i)
		}
	}
}

// Help is the allocator's call when it finds no space: it runs rounds
// (and the callbacks that free unlinked files) until one frees something
// or nothing is pending, at most a few.
func (d *Deps) Help() {
	for range 4 {
		d.roundMu.Lock()
		blocks, inodes, err := d.round()
		d.roundMu.Unlock()
		if err != nil {
			d.log.Error("softdep: round for an allocation", "err", err)
			return
		}
		d.RunCallbacks()
		d.mu.Lock()
		idle := len(d.frees) == 0 && len(d.remsLive) == 0 && len(d.callbacks) == 0
		d.mu.Unlock()
		if blocks+inodes > 0 || idle {
			return
		}
	}
}

// Start runs the syncer: a round and the callbacks every
// Options.Interval, or sooner after Kick.
func (d *Deps) Start() {
	d.mu.Lock()
	if d.stop != nil {
		d.mu.Unlock()
		return
	}
	d.stop = make(chan struct{})
	d.kick = make(chan struct{}, 1)
	stop, kick := d.stop, d.kick
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-kick:
			case <-time.After(d.opts.Interval):
			}
			if err := d.Round(); err != nil {
				d.log.Error("softdep: background round", "err", err)
			}
			d.RunCallbacks()
		}
	}()
}

// Kick asks the syncer for a round now.
func (d *Deps) Kick() {
	d.mu.Lock()
	k := d.kick
	d.mu.Unlock()
	if k == nil {
		return
	}
	select {
	case k <- struct{}{}:
	default:
	}
}

// Stop ends the syncer and waits for it.
func (d *Deps) Stop() {
	d.mu.Lock()
	stop := d.stop
	d.stop = nil
	d.kick = nil
	d.mu.Unlock()
	if stop != nil {
		close(stop)
		d.wg.Wait()
	}
}
