package alloc

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

var (
	seedFlag = flag.Uint64("alloc.seed", 20240601, "seed of the random model test")
	opsFlag  = flag.Int("alloc.ops", 4000, "operations per geometry in the random model test")
)

// model is what the allocator must agree with: which fragments and
// inodes are in use, and in what pieces.
type model struct {
	t      *testing.T
	sb     *ondisk.Superblock
	fs     *testFS
	owned  []bool                // per fragment
	exts   map[ondisk.Frag]int   // extent start -> fragments
	inodes map[ondisk.Ino]uint16 // inode -> mode
	dirs   []ondisk.Ino
	used   int64 // fragments in extents
	meta   []bool

	start ondisk.CsumTotal
}

func newModel(t *testing.T, fs *testFS) *model {
	sb := fs.sb
	m := &model{t: t, sb: sb, fs: fs, owned: make([]bool, sb.Size), meta: make([]bool, sb.Size),
		exts: map[ondisk.Frag]int{}, inodes: map[ondisk.Ino]uint16{}, dirs: []ondisk.Ino{ondisk.RootIno}}
	// Mark what is not free at the start (metadata, the boot area) so
	// allocations there are caught.
	for c, cg := range fs.groups.cgs {
		base := sb.Cgbase(ondisk.Cg(c))
		for f := int64(0); f < int64(cg.Ndblk); f++ {
			if !cg.FragFree(f) {
				m.meta[int64(base)+f] = true
			}
		}
	}
	m.start = sb.Cstotal
	return m
}

func (m *model) take(b ondisk.Frag, n int64, what string) {
	m.t.Helper()
	frag := int64(m.sb.Frag)
	if b <= 0 || int64(b)+n > m.sb.Size || int64(m.sb.Fragnum(b))+n > frag {
		m.t.Fatalf("%s: %d fragments at %d: outside the filesystem or across a block", what, n, b)
	}
	for f := int64(b); f < int64(b)+n; f++ {
		if m.meta[f] {
			m.t.Fatalf("%s: fragment %d is metadata", what, f)
		}
		if m.owned[f] {
			m.t.Fatalf("%s: fragment %d handed out twice", what, f)
		}
		m.owned[f] = true
	}
	m.used += n
}

func (m *model) give(b ondisk.Frag, n int64) {
	for f := int64(b); f < int64(b)+n; f++ {
		m.owned[f] = false
	}
	m.used -= n
}

// longestRun is the longest run of fragments free in the model within
// one block, up to a whole block.
func (m *model) longestRun() int64 {
	frag := int64(m.sb.Frag)
	best := int64(0)
	for b := int64(0); b+frag <= m.sb.Size; b += frag {
		run := int64(0)
		for f := b; f < b+frag; f++ {
			if m.owned[f] || m.meta[f] {
				run = 0
				continue
			}
			run++
			best = max(best, run)
		}
		if best == frag {
			break
		}
	}
	// The partial block at the end of the last group.
	return best
}

func (m *model) randomExt(rng *rand.Rand) (ondisk.Frag, int, bool) {
	if len(m.exts) == 0 {
		return 0, 0, false
	}
	k := rng.IntN(len(m.exts))
	for b, n := range m.exts {
		if k == 0 {
			return b, n, true
		}
		k--
	}
	return 0, 0, false
}

func (m *model) randomInode(rng *rand.Rand) (ondisk.Ino, uint16, bool) {
	if len(m.inodes) == 0 {
		return 0, 0, false
	}
	k := rng.IntN(len(m.inodes))
	for i, mode := range m.inodes {
		if k == 0 {
			return i, mode, true
		}
		k--
	}
	return 0, 0, false
}

func (m *model) verifyCounts(step int, op string) {
	m.t.Helper()
	st := m.fs.a.Statfs()
	wantFree := int64(m.sb.Blkstofrags(m.start.Nbfree)) + m.start.Nffree - m.used
	ndirs := int64(0)
	for _, mode := range m.inodes {
		if mode&ondisk.IFMT == ondisk.IFDIR {
			ndirs++
		}
	}
	if st.Bfree != wantFree || st.Ffree != m.start.Nifree-int64(len(m.inodes)) || st.Ndir != m.start.Ndir+ndirs {
		m.t.Fatalf("step %d (%s): statfs %+v; model: %d free fragments, %d inodes used, %d directories",
			step, op, st, wantFree, len(m.inodes), ndirs)
	}
}

// Cumulative percentages of: block, inode, realloc, cluster, free block
// (the rest frees inodes).
var (
	fillWeights  = [5]int{60, 72, 82, 87, 95}
	churnWeights = [5]int{30, 38, 46, 49, 88}
)

func TestRandomModel(t *testing.T) {
	seed := *seedFlag
	t.Logf("seed %d (rerun with -alloc.seed=%d, longer with -alloc.ops=N)", seed, seed)
	for gi, g := range geoms {
		t.Run(g.name, func(t *testing.T) {
			runModel(t, g, seed+uint64(gi), *opsFlag)
		})
	}
}

func runModel(t *testing.T, g geom, seed uint64, ops int) {
	fs := newFS(t, g, Options{})
	a, sb := fs.a, fs.sb
	m := newModel(t, fs)
	startState := fs.snapshot()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	frag := int64(sb.Frag)
	fsize := int(sb.Fsize)
	nospace, moves, peak := 0, 0, int64(0)
	for step := range ops {
		// Mostly allocation until the filesystem is full, then churn
		// with more frees than allocations.
		w := &fillWeights
		if nospace >= 20 || step > ops*7/10 {
			w = &churnWeights
		}
		root := rng.IntN(4) != 0
		var op string
		switch r := rng.IntN(100); {
		case r < w[0]: // a block or fragments
			n := int64(rng.IntN(int(frag)) + 1)
			if rng.IntN(2) == 0 {
				n = frag
			}
			var pref ondisk.Frag
			switch rng.IntN(4) {
			case 0:
				if b, k, ok := m.randomExt(rng); ok {
					pref = b + ondisk.Frag(k)
				}
			case 1:
				pref = ondisk.Frag(rng.Int64N(sb.Size))
			case 2:
				ino := ondisk.Ino(rng.IntN(int(sb.Ncg * sb.Ipg)))
				pref = a.BlkPref(fileHint(ino), ondisk.Lbn(rng.IntN(5000)), rng.IntN(40), nil)
			}
			op = fmt.Sprintf("alloc %d fragments near %d (root %v)", n, pref, root)
			ino := ondisk.Ino(rng.IntN(int(sb.Ncg * sb.Ipg)))
			b, err := a.AllocBlock(fileHint(ino), 0, pref, int(n)*fsize, root)
			if errors.Is(err, ErrNoSpace) {
				nospace++
				if root && m.longestRun() >= n {
					t.Fatalf("step %d: %s: ErrNoSpace but a run of %d is free", step, op, m.longestRun())
				}
				break
			}
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, op, err)
			}
			m.take(b, n, op)
			m.exts[b] = int(n)
		case r < w[1]: // an inode
			mode := uint16(modeFile)
			if rng.IntN(4) == 0 {
				mode = modeDir
			}
			parent := m.dirs[rng.IntN(len(m.dirs))]
			op = fmt.Sprintf("alloc inode mode %o in %d", mode, parent)
			ino, err := a.AllocInode(parent, mode)
			if errors.Is(err, ErrNoInodes) {
				if sb.Cstotal.Nifree != 0 {
					t.Fatalf("step %d: %s: ErrNoInodes with %d free", step, op, sb.Cstotal.Nifree)
				}
				break
			}
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, op, err)
			}
			if _, dup := m.inodes[ino]; dup || ino < 3 {
				t.Fatalf("step %d: %s: inode %d handed out twice", step, op, ino)
			}
			m.inodes[ino] = mode
			if mode == modeDir {
				m.dirs = append(m.dirs, ino)
			}
		case r < w[2]: // grow a tail
			b, n, ok := m.randomExt(rng)
			if !ok || int64(n) == frag {
				break
			}
			nn := n + 1 + rng.IntN(int(frag)-n)
			op = fmt.Sprintf("realloc %d from %d to %d fragments", b, n, nn)
			nb, moved, err := a.ReallocFrag(fileHint(2), 0, b, 0, n*fsize, nn*fsize, root)
			if errors.Is(err, ErrNoSpace) {
				break
			}
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, op, err)
			}
			delete(m.exts, b)
			if moved {
				moves++
				m.give(b, int64(n))
				m.take(nb, int64(nn), op)
			} else {
				if nb != b {
					t.Fatalf("step %d: %s: not moved but address %d", step, op, nb)
				}
				m.take(b+ondisk.Frag(n), int64(nn-n), op)
			}
			m.exts[nb] = nn
		case r < w[3]: // a cluster
			if sb.Contigsumsize == 0 {
				break
			}
			n := 1 + rng.IntN(int(sb.Contigsumsize))
			op = fmt.Sprintf("alloc cluster of %d", n)
			b, err := a.AllocCluster(fileHint(2), ondisk.Frag(rng.Int64N(sb.Size)), n, root)
			if errors.Is(err, ErrNoSpace) {
				break
			}
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, op, err)
			}
			for i := range int64(n) {
				bb := b + ondisk.Frag(i*frag)
				m.take(bb, frag, op)
				m.exts[bb] = int(frag)
			}
		case r < w[4]: // free an extent
			b, n, ok := m.randomExt(rng)
			if !ok {
				break
			}
			op = fmt.Sprintf("free %d fragments at %d", n, b)
			if err := a.FreeBlock(b, n*fsize, 2); err != nil {
				t.Fatalf("step %d: %s: %v", step, op, err)
			}
			delete(m.exts, b)
			m.give(b, int64(n))
		default: // free an inode
			ino, mode, ok := m.randomInode(rng)
			if !ok {
				break
			}
			op = fmt.Sprintf("free inode %d", ino)
			if err := a.FreeInode(ino, mode); err != nil {
				t.Fatalf("step %d: %s: %v", step, op, err)
			}
			delete(m.inodes, ino)
		}
		m.verifyCounts(step, op)
		peak = max(peak, m.used)
		if step%200 == 0 {
			fs.mustCheck(t)
		}
	}
	t.Logf("%d operations: %d ErrNoSpace, %d fragments moved, peak use %d of %d free fragments",
		ops, nospace, moves, peak, int64(sb.Blkstofrags(m.start.Nbfree))+m.start.Nffree)
	if ops >= 1000 && nospace == 0 {
		t.Error("the filesystem never filled up: the test is too weak")
	}
	fs.mustCheck(t)
	checkDecoded(t, fs)
	if fs.corruptions() != 0 {
		t.Fatal(fs.corrupt)
	}
	// Give everything back: the maps and counts return exactly.
	for b, n := range m.exts {
		if err := a.FreeBlock(b, n*fsize, 2); err != nil {
			t.Fatal(err)
		}
	}
	for ino, mode := range m.inodes {
		if err := a.FreeInode(ino, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := startState.diff(fs.snapshot()); err != nil {
		t.Fatal(err)
	}
}

// checkDecoded encodes every group as the engine would write it, decodes
// the bytes afresh and checks the summaries against those.
func checkDecoded(t *testing.T, fs *testFS) {
	t.Helper()
	fs.a.Locked(func(sb *ondisk.Superblock, csums []ondisk.Csum) {
		g := &memGroups{sb: sb, dirty: map[ondisk.Cg]int{}}
		for c, cg := range fs.groups.cgs {
			cg.Sync()
			b := append([]byte(nil), cg.B...)
			dec, err := ondisk.DecodeCg(sb, ondisk.Cg(c), b)
			if err != nil {
				t.Fatalf("cg %d after allocation: %v", c, err)
			}
			if err := dec.VerifyHash(); err != nil {
				t.Fatal(err)
			}
			g.cgs = append(g.cgs, dec)
		}
		d, err := Check(sb, csums, g)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range d {
			t.Errorf("decoded: %v", x)
		}
	})
}

// TestConcurrent runs allocating and freeing goroutines against one
// Allocator (for the race detector), then frees everything.
func TestConcurrent(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	start := fs.snapshot()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			type ext struct {
				b ondisk.Frag
				n int
			}
			var exts []ext
			var inos []ondisk.Ino
			for range 400 {
				switch rng.IntN(6) {
				case 0, 1:
					n := 1 + rng.IntN(int(sb.Frag))
					b, err := a.AllocBlock(fileHint(ondisk.Ino(uint32(w)*sb.Ipg/2+3)), 0, 0, n*int(sb.Fsize), true)
					if err == nil {
						exts = append(exts, ext{b, n})
					} else if !errors.Is(err, ErrNoSpace) {
						errs <- err
						return
					}
				case 2:
					if len(exts) > 0 && exts[0].n < int(sb.Frag) {
						e := exts[0]
						nb, _, err := a.ReallocFrag(fileHint(2), 0, e.b, 0, e.n*int(sb.Fsize), (e.n+1)*int(sb.Fsize), true)
						if err == nil {
							exts[0] = ext{nb, e.n + 1}
						} else if !errors.Is(err, ErrNoSpace) {
							errs <- err
							return
						}
					}
				case 3:
					ino, err := a.AllocInode(ondisk.RootIno, modeFile)
					if err == nil {
						inos = append(inos, ino)
					}
				case 4:
					if len(exts) > 0 {
						e := exts[len(exts)-1]
						exts = exts[:len(exts)-1]
						if err := a.FreeBlock(e.b, e.n*int(sb.Fsize), 2); err != nil {
							errs <- err
							return
						}
					}
				case 5:
					_ = a.Statfs()
					_ = a.BlkPref(fileHint(2), 20, 3, nil)
				}
			}
			for _, e := range exts {
				if err := a.FreeBlock(e.b, e.n*int(sb.Fsize), 2); err != nil {
					errs <- err
					return
				}
			}
			for _, i := range inos {
				if err := a.FreeInode(i, modeFile); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := start.diff(fs.snapshot()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAllocFreeBlock(b *testing.B) {
	fs := newFS(b, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	ip := fileHint(ondisk.Ino(sb.Ipg + 3))
	pref := sb.Cgdata(1)
	b.ReportAllocs()
	for b.Loop() {
		x, err := a.AllocBlock(ip, 0, pref, int(sb.Bsize), false)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.FreeBlock(x, int(sb.Bsize), ip.Ino); err != nil {
			b.Fatal(err)
		}
		pref = x + ondisk.Frag(sb.Frag)
	}
}

func BenchmarkAllocFreeFragment(b *testing.B) {
	fs := newFS(b, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	ip := fileHint(ondisk.Ino(sb.Ipg + 3))
	// Keep one fragment so that the block stays split and the search
	// goes through the fragment summary.
	keep, err := a.AllocBlock(ip, 0, 0, int(sb.Fsize), false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		x, err := a.AllocBlock(ip, 0, keep, 2*int(sb.Fsize), false)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.FreeBlock(x, 2*int(sb.Fsize), ip.Ino); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.FreeBlock(keep, int(sb.Fsize), ip.Ino); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkAllocFreeInode(b *testing.B) {
	fs := newFS(b, geomSmall, Options{})
	a := fs.a
	b.ReportAllocs()
	for b.Loop() {
		i, err := a.AllocInode(ondisk.RootIno, modeFile)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.FreeInode(i, modeFile); err != nil {
			b.Fatal(err)
		}
	}
}
