package softdep

import "github.com/ufs2/ufs2/internal/bcache"

// The buffer cache's write hooks (bcache.Hooks): what a write carries as it
// is and what it rolls back, and what its completion makes written.

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
