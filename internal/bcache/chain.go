package bcache

// Chain returns hooks that call each of hs in order: CopyOnWrite of each
// (the first error cancels the write; the hooks after it are not called),
// BeforeWrite of each, AfterWrite of each (the buffer stays dirty when any
// says so). At most one of them may roll back, returning a copy from
// BeforeWrite; the chain writes that copy. The order is the engine's:
// copy-on-write (snapshots) before soft updates, so that a snapshot copies
// what is on the device before anything overwrites it.
func Chain(hs ...Hooks) Hooks {
	var keep []Hooks
	for _, h := range hs {
		if h == nil {
			continue
		}
		if _, nop := h.(NopHooks); nop {
			continue
		}
		keep = append(keep, h)
	}
	switch len(keep) {
	case 0:
		return NopHooks{}
	case 1:
		return keep[0]
	}
	return chain(keep)
}

type chain []Hooks

func (c chain) CopyOnWrite(b *Buf) error {
	for _, h := range c {
		if err := h.CopyOnWrite(b); err != nil {
			return err
		}
	}
	return nil
}

func (c chain) BeforeWrite(b *Buf) []byte {
	out := b.data
	for _, h := range c {
		if p := h.BeforeWrite(b); len(p) > 0 && &p[0] != &b.data[0] {
			out = p
		}
	}
	return out
}

func (c chain) AfterWrite(b *Buf, err error) bool {
	keep := false
	for _, h := range c {
		if h.AfterWrite(b, err) {
			keep = true
		}
	}
	return keep
}
