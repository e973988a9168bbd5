package softdep

import "slices"

// Durability: a device flush makes durable every write completed before it
// began; what that satisfies moves on.

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
