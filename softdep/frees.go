package softdep

import "github.com/ufs2/ufs2/ondisk"

// Deferred frees: blocks and inodes given back once nothing on disk can
// reach them.

// deferFree queues a free of blocks (already counted pending) waiting for
// deps. Preconditions: d.mu.
func (d *Deps) deferFree(ino ondisk.Ino, blocks []Extent, deps []Dep) {
	f := &freeWork{ino: ino, blocks: blocks, deps: deps}
	f.seq = d.nextSeq()
	for _, x := range blocks {
		f.sectors += ondisk.Btodb(x.Size)
	}
	d.frees = append(d.frees, f)
	d.live[f.seq] = liveEntry{b: &f.base}
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
