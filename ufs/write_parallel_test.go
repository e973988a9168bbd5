package ufs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// TestParallel runs a mixed workload from several goroutines at once:
// each works in its own directory (create, write, truncate, link, unlink,
// mkdir, rmdir, setattr, xattrs) while others move directories between two
// shared parents (rename with its cycle check), exchange entries, read
// and sync. Only the errors those races can cause are accepted; at the
// end (and after a remount) checkFS must find the filesystem sound. Run
// it with -race.
func TestParallel(t *testing.T) {
	for _, g := range []testGeom{geomMid, geomSmallSU} {
		t.Run(g.name, func(t *testing.T) { testParallel(t, g) })
	}
}

func testParallel(t *testing.T, g testGeom) {
	m := newMemFS(t, g, Options{CacheBytes: 1 << 20, MaxDirtyBytes: 512 << 10, MaxInodes: 64})
	fsys := m.fs
	root := fsys.Root()
	p1 := mustIno(t)(fsys.Mkdir(root, "p1", 0o755, 0, 0))
	p2 := mustIno(t)(fsys.Mkdir(root, "p2", 0o755, 0, 0))
	for i := range 6 {
		d := mustIno(t)(fsys.Mkdir(p1, "m"+itoa(i), 0o755, 0, 0))
		mustIno(t)(fsys.Mkdir(d, "inner", 0o755, 0, 0))
	}
	const workers = 4
	const steps = 250
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	report := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
	}
	expected := func(err error, ok ...error) bool {
		if err == nil {
			return true
		}
		for _, e := range ok {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			home, err := fsys.Mkdir(root, "w"+itoa(w), 0o755, 0, 0)
			if err != nil {
				report("worker %d: mkdir: %v", w, err)
				return
			}
			for range steps {
				name := "n" + itoa(rng.IntN(12))
				var err error
				switch rng.IntN(10) {
				case 0, 1:
					var ino ondisk.Ino
					ino, err = fsys.Create(home, name, 0o644, 0, 0)
					if err == nil {
						_, err = fsys.WriteAt(ino, make([]byte, rng.IntN(40000)), rng.Int64N(100000))
					}
				case 2:
					if ino, lerr := fsys.Lookup(home, name); lerr == nil {
						_, err = fsys.WriteAt(ino, []byte("data"), rng.Int64N(1<<22))
						if errors.Is(err, ErrIsDir) || errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
				case 3:
					if ino, lerr := fsys.Lookup(home, name); lerr == nil {
						err = fsys.Truncate(ino, uint64(rng.IntN(50000)))
						if errors.Is(err, ErrIsDir) || errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
				case 4:
					err = fsys.Unlink(home, name)
				case 5:
					_, err = fsys.Mkdir(home, name, 0o755, 0, 0)
				case 6:
					err = fsys.Rmdir(home, name)
				case 7:
					err = fsys.Rename(home, name, home, "n"+itoa(rng.IntN(12)), RenameFlags{})
				case 8:
					if ino, lerr := fsys.Lookup(home, name); lerr == nil {
						err = fsys.SetXattr(ino, ondisk.ExtattrNamespaceUser, "a", make([]byte, rng.IntN(3000)), XattrFlags{})
						if errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
				case 9:
					if ino, lerr := fsys.Lookup(home, name); lerr == nil {
						mode := uint16(rng.IntN(0o777))
						_, err = fsys.Setattr(ino, SetAttr{Mode: &mode, MtimeNow: true})
						if errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
				}
				if !expected(err, ErrNotFound, ErrExist, ErrNotEmpty, ErrNotDir, ErrIsDir) {
					report("worker %d: %v", w, err)
					return
				}
			}
		}()
	}
	// Movers: directories go back and forth between p1 and p2, into each
	// other, and get exchanged.
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			parents := []ondisk.Ino{p1, p2}
			for range steps {
				from, to := parents[rng.IntN(2)], parents[rng.IntN(2)]
				name := "m" + itoa(rng.IntN(6))
				var err error
				switch rng.IntN(4) {
				case 0:
					err = fsys.Rename(from, name, to, "m"+itoa(rng.IntN(6)), RenameFlags{Exchange: true})
				case 1:
					// Into a sibling: legal unless it is below name.
					if sib, lerr := fsys.Lookup(to, "m"+itoa(rng.IntN(6))); lerr == nil {
						err = fsys.Rename(from, name, sib, name, RenameFlags{NoReplace: true})
						if errors.Is(err, ErrNotDir) {
							err = nil
						}
					}
				default:
					err = fsys.Rename(from, name, to, name, RenameFlags{})
				}
				if !expected(err, ErrNotFound, ErrExist, ErrNotEmpty, ErrInvalid) {
					report("mover %d: %v", w, err)
					return
				}
			}
		}()
	}
	// A reader and a syncer.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range steps {
			for _, d := range []ondisk.Ino{p1, p2, root} {
				err := fsys.ReadDir(d, func(e Dirent) bool {
					fsys.Stat(e.Ino)
					return true
				})
				if err != nil {
					report("reader: %v", err)
					return
				}
			}
			if i%50 == 0 {
				if err := fsys.Sync(); err != nil {
					report("sync: %v", err)
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Under soft updates the frees of removed files are still on their
	// way: Sync finishes them.
	must(t, fsys.Sync())
	checkFS(t, fsys)
	m.reopen()
	checkFS(t, m.fs)
}
