package softdep

import (
	"fmt"
	"strings"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// Waiting for dependencies: rounds until they are done, and the error that
// says what is stuck when they do not converge.

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
	d.mu.Lock()
	entry := d.roundsBegun
	d.mu.Unlock()
	for i := 0; ; i++ {
		d.mu.Lock()
		n := left()
		// With force, a round begun after the call must have ended: its
		// flush covers what was written before the call around the
		// dependencies (overwrites in place); a shared round begun
		// earlier may not.
		flushed := d.roundsDone > entry
		d.mu.Unlock()
		if n == 0 && (!force || flushed) {
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
		if err := d.shareRound(); err != nil {
			return err
		}
	}
}

// shareRound runs a round, or, when another is already running, waits for
// that one to end instead (group commit: concurrent fsyncs share its device
// flush). A round begun before the caller's change may not carry it, so
// the caller looks again and comes back for a round of its own if needed.
func (d *Deps) shareRound() error {
	d.host.BeforeRound()
	if d.roundMu.TryLock() {
		defer d.roundMu.Unlock()
		_, _, err := d.round()
		return err
	}
	d.roundMu.Lock()
	d.roundMu.Unlock()
	return nil
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
