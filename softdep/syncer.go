package softdep

import "time"

// The syncer: a round every interval, sooner when kicked.

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
