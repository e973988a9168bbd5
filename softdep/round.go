package softdep

import (
	"errors"
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// Rounds: the unit of progress of soft updates (the rest of its machinery:
// hooks.go, durable.go, frees.go, wait.go, syncer.go).

// Round writes every changed cylinder group and every dirty buffer,
// flushes the device, and frees what became free.
func (d *Deps) Round() error {
	d.host.BeforeRound()
	d.roundMu.Lock()
	defer d.roundMu.Unlock()
	_, _, err := d.round()
	return err
}

// round is Round with roundMu held; it returns what it freed.
func (d *Deps) round() (blocks, inodes int, err error) {
	d.mu.Lock()
	d.roundsBegun++
	me := d.roundsBegun
	d.mu.Unlock()
	flushed := false
	defer func() {
		if flushed {
			d.mu.Lock()
			d.roundsDone = me
			d.mu.Unlock()
		}
	}()
	var errs []error
	if perr := d.host.PushGroups(); perr != nil {
		errs = append(errs, perr)
	}
	werr := d.cache.WriteDirty()
	if werr != nil {
		errs = append(errs, werr)
	}
	if serr := d.syncDevice(); serr != nil {
		errs = append(errs, serr)
	} else {
		flushed = werr == nil
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
