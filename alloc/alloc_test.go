package alloc

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

func TestNewFSIsConsistent(t *testing.T) {
	for _, g := range geoms {
		t.Run(g.name, func(t *testing.T) {
			fs := newFS(t, g, Options{})
			st := fs.a.Statfs()
			if st.Bfree <= 0 || st.Ffree <= 0 || st.Files != int64(g.ncg)*int64(g.ipg)-2 {
				t.Fatalf("statfs of a fresh filesystem: %+v", st)
			}
			if st.Reserved != fs.sb.Dsize*int64(g.minfree)/100 || st.Bavail != st.Bfree-st.Reserved {
				t.Fatalf("reserve: %+v", st)
			}
		})
	}
}

func TestNewRejectsBadArguments(t *testing.T) {
	sb := makeSuperblock(t, geomSmall)
	g := &memGroups{sb: sb, dirty: map[ondisk.Cg]int{}}
	if _, err := New(sb, make([]ondisk.Csum, 3), g, Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong csum count: %v", err)
	}
	if _, err := New(nil, nil, g, Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil superblock: %v", err)
	}
	bad := *sb
	bad.Frag = 3
	if _, err := New(&bad, make([]ondisk.Csum, 4), g, Options{}); !errors.Is(err, ondisk.ErrCorrupt) {
		t.Fatalf("bad superblock: %v", err)
	}
}

// TestFillThenFree fills the filesystem with blocks and then fragments
// until it reports no space, frees everything in random order, and
// expects every count and map to be exactly as it was.
func TestFillThenFree(t *testing.T) {
	for _, g := range geoms {
		for _, root := range []bool{true, false} {
			name := g.name + "/user"
			if root {
				name = g.name + "/root"
			}
			t.Run(name, func(t *testing.T) {
				fs := newFS(t, g, Options{})
				start := fs.snapshot()
				bsize, fsize := int(g.bsize), int(g.fsize)
				type ext struct {
					b    ondisk.Frag
					size int
				}
				var got []ext
				ip := fileHint(ondisk.RootIno)
				for _, size := range []int{bsize, fsize} {
					for {
						b, err := fs.a.AllocBlock(ip, 0, 0, size, root)
						if errors.Is(err, ErrNoSpace) {
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, ext{b, size})
					}
				}
				st := fs.a.Statfs()
				if root && (st.Bfree != 0 || st.Nbfree != 0 || st.Nffree != 0) {
					t.Fatalf("root filled the filesystem but statfs says %+v", st)
				}
				if !root {
					if st.Bavail != 0 {
						t.Fatalf("user stopped with %d fragments available beyond the reserve", st.Bavail)
					}
					// Root may still use the reserve.
					b, err := fs.a.AllocBlock(ip, 0, 0, fsize, true)
					if err != nil {
						t.Fatalf("root into the reserve: %v", err)
					}
					got = append(got, ext{b, fsize})
				}
				fs.mustCheck(t)
				rng := rand.New(rand.NewPCG(1, 2))
				rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
				for _, e := range got {
					if err := fs.a.FreeBlock(e.b, e.size, ip.Ino); err != nil {
						t.Fatal(err)
					}
				}
				if err := start.diff(fs.snapshot()); err != nil {
					t.Fatal(err)
				}
				if fs.corruptions() != 0 {
					t.Fatal(fs.corrupt)
				}
			})
		}
	}
}

func TestFragments(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	fsize := int(sb.Fsize)
	ip := fileHint(ondisk.Ino(sb.Ipg + 5)) // group 1: no free fragment runs yet
	frsum := func(c ondisk.Cg) [ondisk.MaxFrag]uint32 { return fs.groups.cgs[c].Frsum }

	// A one-fragment tail with no free runs anywhere splits a block.
	x, err := a.AllocBlock(ip, 0, 0, fsize, false)
	if err != nil {
		t.Fatal(err)
	}
	c := sb.Dtog(x)
	if sb.Fragnum(x) != 0 || frsum(c)[7] != 1 {
		t.Fatalf("tail at %d (fragnum %d), frsum %v", x, sb.Fragnum(x), frsum(c))
	}
	// Grow it in place.
	y, moved, err := a.ReallocFrag(ip, 0, x, 0, fsize, 2*fsize, false)
	if err != nil || moved || y != x {
		t.Fatalf("extend in place: %d %v %v", y, moved, err)
	}
	if frsum(c)[6] != 1 || frsum(c)[7] != 0 {
		t.Fatalf("frsum after extension %v", frsum(c))
	}
	// The next small allocation takes the run right after it.
	z, err := a.AllocBlock(ip, 1, 0, fsize, false)
	if err != nil || z != x+2 {
		t.Fatalf("second tail at %d (want %d): %v", z, x+2, err)
	}
	fs.mustCheck(t)
	// Now x cannot grow in place: it moves, to a whole block under
	// FS_OPTTIME, and its old fragments come back.
	free0 := a.Statfs().Bfree
	w, moved, err := a.ReallocFrag(ip, 0, x, 0, 2*fsize, 3*fsize, false)
	if err != nil || !moved || w == x {
		t.Fatalf("blocked extension: %d %v %v", w, moved, err)
	}
	if sb.Fragnum(w) != 0 {
		t.Fatalf("FS_OPTTIME move went to %d, not a block start", w)
	}
	if got := a.Statfs().Bfree; got != free0-1 {
		t.Fatalf("free fragments %d after the move, want %d", got, free0-1)
	}
	cg := fs.groups.cgs[c]
	if !cg.FragFree(sb.Dtogd(x)) || !cg.FragFree(sb.Dtogd(x)+1) {
		t.Fatal("old fragments not freed")
	}
	// The moved tail grows in place to a whole block.
	if v, moved, err := a.ReallocFrag(ip, 0, w, 0, 3*fsize, int(sb.Bsize), false); err != nil || moved || v != w {
		t.Fatalf("grow to a block: %d %v %v", v, moved, err)
	}
	fs.mustCheck(t)
	for _, e := range []struct {
		b    ondisk.Frag
		size int
	}{{w, int(sb.Bsize)}, {z, fsize}} {
		if err := a.FreeBlock(e.b, e.size, ip.Ino); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFragmentAtBlockEndMoves(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	fsize := int(sb.Fsize)
	ip := fileHint(ondisk.Ino(sb.Ipg + 5)) // group 1: no free fragment runs yet
	blk, err := a.AllocBlock(ip, 0, 0, int(sb.Bsize), false)
	if err != nil {
		t.Fatal(err)
	}
	// Keep only the last fragment of the block.
	if err := a.FreeBlock(blk, int(sb.Bsize), ip.Ino); err != nil {
		t.Fatal(err)
	}
	b1, err := a.AllocBlock(ip, 0, blk, 7*fsize, false)
	if err != nil || b1 != blk {
		t.Fatalf("7 fragments at %d, want %d: %v", b1, blk, err)
	}
	tail, err := a.AllocBlock(ip, 0, blk, fsize, false)
	if err != nil || tail != blk+7 {
		t.Fatalf("tail at %d, want %d: %v", tail, blk+7, err)
	}
	if err := a.FreeBlock(b1, 7*fsize, ip.Ino); err != nil {
		t.Fatal(err)
	}
	// The fragments before it are free but growth never crosses a block.
	n, moved, err := a.ReallocFrag(ip, 0, tail, 0, fsize, 2*fsize, false)
	if err != nil || !moved || n == tail {
		t.Fatalf("tail at a block's end grew in place: %d %v %v", n, moved, err)
	}
	if err := a.FreeBlock(n, 2*fsize, ip.Ino); err != nil {
		t.Fatal(err)
	}
}

func TestOptimSpace(t *testing.T) {
	g := geomSmall
	g.minfree = 5 // FS_OPTSPACE sticks when minfree <= 5
	fs := newFS(t, g, Options{})
	a, sb := fs.a, fs.sb
	sb.Optim = ondisk.FSOptSpace
	fsize := int(sb.Fsize)
	ip := fileHint(ondisk.RootIno)
	x, _ := a.AllocBlock(ip, 0, 0, fsize, false)
	z, _ := a.AllocBlock(ip, 1, 0, fsize, false)
	if z != x+1 {
		t.Fatalf("second fragment at %d, want %d", z, x+1)
	}
	before := a.Statfs()
	n, moved, err := a.ReallocFrag(ip, 0, x, 0, fsize, 3*fsize, false)
	if err != nil || !moved {
		t.Fatalf("%d %v %v", n, moved, err)
	}
	after := a.Statfs()
	// Exactly three fragments taken, one given back, no block split.
	if after.Bfree != before.Bfree-2 || after.Nbfree != before.Nbfree {
		t.Fatalf("FS_OPTSPACE move: before %+v after %+v", before, after)
	}
	if sb.Optim != ondisk.FSOptSpace {
		t.Fatal("optimisation changed")
	}

	// With minfree 2 any fragmentation at all sends TIME to SPACE.
	g.minfree = 2
	fs2 := newFS(t, g, Options{})
	x, _ = fs2.a.AllocBlock(ip, 0, 0, fsize, false)
	if _, err := fs2.a.AllocBlock(ip, 1, 0, fsize, false); err != nil {
		t.Fatal(err)
	}
	if _, moved, err := fs2.a.ReallocFrag(ip, 0, x, 0, fsize, 2*fsize, false); err != nil || !moved {
		t.Fatalf("%v %v", moved, err)
	}
	if fs2.sb.Optim != ondisk.FSOptSpace || !fs2.a.TakeModified() {
		t.Fatalf("fs_optim %d, want FS_OPTSPACE", fs2.sb.Optim)
	}
}

func TestDeferFragFree(t *testing.T) {
	fs := newFS(t, geomSmall, Options{DeferFragFree: true})
	a, sb := fs.a, fs.sb
	fsize := int(sb.Fsize)
	ip := fileHint(ondisk.RootIno)
	x, _ := a.AllocBlock(ip, 0, 0, fsize, false)
	_, _ = a.AllocBlock(ip, 1, 0, fsize, false)
	n, moved, err := a.ReallocFrag(ip, 0, x, 0, fsize, 2*fsize, false)
	if err != nil || !moved {
		t.Fatalf("%d %v %v", n, moved, err)
	}
	if fs.groups.cgs[sb.Dtog(x)].FragFree(sb.Dtogd(x)) {
		t.Fatal("old fragment freed despite DeferFragFree")
	}
	if err := a.FreeBlock(x, fsize, ip.Ino); err != nil {
		t.Fatalf("caller frees the old fragment: %v", err)
	}
}

func TestBadArguments(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	ip := fileHint(ondisk.RootIno)
	fsize := int(sb.Fsize)
	x, _ := a.AllocBlock(ip, 0, 0, fsize, false)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"zero size", func() error { _, err := a.AllocBlock(ip, 0, 0, 0, false); return err }()},
		{"odd size", func() error { _, err := a.AllocBlock(ip, 0, 0, fsize+1, false); return err }()},
		{"too big", func() error { _, err := a.AllocBlock(ip, 0, 0, 2*int(sb.Bsize), false); return err }()},
		{"inode range", func() error { _, err := a.AllocBlock(fileHint(1<<30), 0, 0, fsize, false); return err }()},
		{"shrink", func() error { _, _, err := a.ReallocFrag(ip, 0, x, 0, 2*fsize, fsize, false); return err }()},
		{"no old", func() error { _, _, err := a.ReallocFrag(ip, 0, 0, 0, fsize, 2*fsize, false); return err }()},
		{"cluster too long", func() error { _, err := a.AllocCluster(ip, 0, 17, false); return err }()},
		{"free odd size", a.FreeBlock(x, 3, 2)},
		{"free inode range", a.FreeInode(1<<30, modeFile)},
	} {
		if !errors.Is(tc.err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, tc.err)
		}
	}
	if err := a.FreeBlock(x, fsize, ip.Ino); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptFreesChangeNothing(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	ip := fileHint(ondisk.RootIno)
	bsize, fsize := int(sb.Bsize), int(sb.Fsize)
	blk, _ := a.AllocBlock(ip, 0, 0, bsize, false)
	frag, _ := a.AllocBlock(ip, 0, 0, 2*fsize, false)
	ino, _ := a.AllocInode(ondisk.RootIno, modeFile)
	f3, _ := a.AllocInode(ondisk.Ino(sb.Ipg*3), modeFile) // group 3 has no directories
	if err := a.FreeBlock(blk, bsize, ip.Ino); err != nil {
		t.Fatal(err)
	}
	if err := a.FreeInode(ino, modeFile); err != nil {
		t.Fatal(err)
	}
	before := fs.snapshot()
	cases := []struct {
		name string
		err  error
	}{
		{"block twice", a.FreeBlock(blk, bsize, 2)},
		{"fragment of a free block", a.FreeBlock(blk+1, fsize, 2)},
		{"half-free fragment", a.FreeBlock(frag+1, 2*fsize, 2)},
		{"misaligned block", a.FreeBlock(frag+1, bsize, 2)},
		{"superblock copy", a.FreeBlock(sb.Cgsblock(1), bsize, 2)},
		{"group 0 boot area", a.FreeBlock(ondisk.Frag(sb.Frag), bsize, 2)},
		{"inode blocks", a.FreeBlock(sb.Cgimin(2), bsize, 2)},
		{"summary area", a.FreeBlock(sb.Csaddr, fsize, 2)},
		{"past the end", a.FreeBlock(ondisk.Frag(sb.Size), fsize, 2)},
		{"negative", a.FreeBlock(-8, fsize, 2)},
		{"inode twice", a.FreeInode(ino, modeFile)},
		{"reserved inode", a.FreeInode(1, modeFile)},
		{"file as directory", a.FreeInode(f3, modeDir)},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, tc.err)
		}
	}
	if got := fs.corruptions(); got != len(cases) {
		t.Errorf("NeedsFsck called %d times, want %d", got, len(cases))
	}
	if err := before.diff(fs.snapshot()); err != nil {
		t.Fatalf("a failed free changed the maps: %v", err)
	}
	if err := a.FreeBlock(frag, 2*fsize, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.FreeInode(f3, modeFile); err != nil {
		t.Fatal(err)
	}
}

func TestReallocOfFreeFragmentIsCorrupt(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	sb := fs.sb
	b := sb.Cgdata(1)
	_, _, err := fs.a.ReallocFrag(fileHint(2), 0, b, 0, int(sb.Fsize), 2*int(sb.Fsize), true)
	if !errors.Is(err, ErrCorrupt) || fs.corruptions() != 1 {
		t.Fatalf("%v (%d reports)", err, fs.corruptions())
	}
}

// fakePending holds allocated extents as if their frees were pending;
// Help frees them through the Allocator, without deadlock.
type fakePending struct {
	a      *Allocator
	blocks []ondisk.Frag
	size   int
	inodes []ondisk.Ino
	calls  map[Resource]int
}

func (p *fakePending) Help(r Resource) {
	p.calls[r]++
	switch r {
	case Blocks:
		for _, b := range p.blocks {
			if err := p.a.FreeBlock(b, p.size, 2); err != nil {
				panic(err)
			}
		}
		p.blocks = nil
	case Inodes:
		for _, i := range p.inodes {
			if err := p.a.FreeInode(i, modeFile); err != nil {
				panic(err)
			}
		}
		p.inodes = nil
	}
}

func TestPendingFreeHelps(t *testing.T) {
	p := &fakePending{calls: map[Resource]int{}}
	fs := newFS(t, geomSmall, Options{Pending: p})
	a, sb := fs.a, fs.sb
	p.a, p.size = a, int(sb.Bsize)
	ip := fileHint(ondisk.RootIno)
	var held []ondisk.Frag
	for {
		b, err := a.AllocBlock(ip, 0, 0, int(sb.Bsize), true)
		if err != nil {
			if !errors.Is(err, ErrNoSpace) {
				t.Fatal(err)
			}
			break
		}
		held = append(held, b)
	}
	if p.calls[Blocks] != 1 {
		t.Fatalf("Help called %d times on the first failure", p.calls[Blocks])
	}
	// Give the helper three blocks to free: the next allocation succeeds
	// after one call.
	p.blocks, held = held[:3], held[3:]
	b, err := a.AllocBlock(ip, 0, 0, int(sb.Bsize), true)
	if err != nil || p.calls[Blocks] != 2 {
		t.Fatalf("after help: %v, %d calls", err, p.calls[Blocks])
	}
	held = append(held, b)
	// The same for ReallocFrag: fill the fragments too, then let the
	// helper free one block.
	calls := p.calls[Blocks]
	var frags []ondisk.Frag
	for {
		f, err := a.AllocBlock(ip, 0, 0, int(sb.Fsize), true)
		if err != nil {
			break
		}
		frags = append(frags, f)
	}
	p.blocks, held = held[:1], held[1:]
	if _, moved, err := a.ReallocFrag(ip, 0, frags[0], 0, int(sb.Fsize), 2*int(sb.Fsize), true); err != nil || !moved {
		t.Fatalf("realloc after help: %v %v", moved, err)
	}
	if p.calls[Blocks] != calls+2 { // the AllocBlock loop's failure and the realloc's
		t.Fatalf("Help calls %d, want %d", p.calls[Blocks], calls+2)
	}
	if err := a.FreeBlock(frags[0], int(sb.Fsize), 2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the moved fragment's old place should be free already: %v", err)
	}

	// Inodes.
	var inos []ondisk.Ino
	for {
		i, err := a.AllocInode(ondisk.RootIno, modeFile)
		if err != nil {
			if !errors.Is(err, ErrNoInodes) || !errors.Is(err, ErrNoSpace) {
				t.Fatal(err)
			}
			break
		}
		inos = append(inos, i)
	}
	p.inodes, inos = inos[:2], inos[2:]
	i, err := a.AllocInode(ondisk.RootIno, modeFile)
	if err != nil || p.calls[Inodes] != 2 {
		t.Fatalf("inode after help: %v, %d calls", err, p.calls[Inodes])
	}
	inos = append(inos, i)
	if fs.corruptions() != 1 {
		t.Fatalf("%d corruption reports, want the one deliberate", fs.corruptions())
	}
	fs.corrupt = nil
	for _, i := range inos {
		if err := a.FreeInode(i, modeFile); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range held {
		if err := a.FreeBlock(b, int(sb.Bsize), 2); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range frags[1:] {
		if err := a.FreeBlock(f, int(sb.Fsize), 2); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirectoriesSpread(t *testing.T) {
	g := geomSmall
	g.ncg, g.ipg = 8, 128
	fs := newFS(t, g, Options{})
	a, sb := fs.a, fs.sb
	perCg := map[ondisk.Cg]int{}
	var tops []ondisk.Ino
	for range 16 {
		d, err := a.AllocInode(ondisk.RootIno, modeDir)
		if err != nil {
			t.Fatal(err)
		}
		perCg[sb.InoToCg(d)]++
		tops = append(tops, d)
	}
	if len(perCg) < int(g.ncg)-1 {
		t.Fatalf("16 top-level directories in %d of %d groups: %v", len(perCg), g.ncg, perCg)
	}
	for c, n := range perCg {
		if n > 3 {
			t.Fatalf("group %d got %d of 16 top-level directories: %v", c, n, perCg)
		}
	}
	// A subdirectory stays with its parent when a file was made there
	// since the last directory ...
	parent := tops[5]
	pc := sb.InoToCg(parent)
	for range 4 { // each file undoes one directory of the run (fs_contigdirs)
		f, err := a.AllocInode(parent, modeFile)
		if err != nil || sb.InoToCg(f) != pc {
			t.Fatalf("file in group %d, parent in %d: %v", sb.InoToCg(f), pc, err)
		}
	}
	sub, err := a.AllocInode(parent, modeDir)
	if err != nil || sb.InoToCg(sub) != pc {
		t.Fatalf("subdirectory in group %d, parent in %d: %v", sb.InoToCg(sub), pc, err)
	}
	// ... but a long run of directories with no files moves on.
	moved := false
	for range 300 {
		d, err := a.AllocInode(parent, modeDir)
		if err != nil {
			t.Fatal(err)
		}
		if sb.InoToCg(d) != pc {
			moved = true
			break
		}
	}
	if !moved {
		t.Fatal("300 directories in a row stayed in the parent's group")
	}
}

func TestInodesNearParent(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	dir, err := a.AllocInode(ondisk.RootIno, modeDir)
	if err != nil {
		t.Fatal(err)
	}
	dc := sb.InoToCg(dir)
	var prev ondisk.Ino
	n := int(fs.csums[dc].Nifree)
	for i := range n {
		f, err := a.AllocInode(dir, modeFile)
		if err != nil {
			t.Fatal(err)
		}
		if sb.InoToCg(f) != dc {
			t.Fatalf("file %d went to group %d, directory in %d", i, sb.InoToCg(f), dc)
		}
		if i > 0 && f != prev+1 {
			t.Fatalf("inode %d after %d: not the next one from cg_irotor", f, prev)
		}
		prev = f
	}
	// The group is full: the next goes elsewhere.
	f, err := a.AllocInode(dir, modeFile)
	if err != nil || sb.InoToCg(f) == dc {
		t.Fatalf("overflow inode %d in group %d: %v", f, sb.InoToCg(f), err)
	}
	// Freeing lowers cg_irotor so the hole is reused.
	hole := ondisk.Ino(uint32(dc)*sb.Ipg + 5)
	if err := a.FreeInode(hole, modeFile); err != nil {
		t.Fatal(err)
	}
	if got, err := a.AllocInode(dir, modeFile); err != nil || got != hole {
		t.Fatalf("reused %d, want %d: %v", got, hole, err)
	}
}

func TestLazyInodeInit(t *testing.T) {
	for _, g := range geoms {
		t.Run(g.name, func(t *testing.T) {
			fs := newFS(t, g, Options{})
			a, sb := fs.a, fs.sb
			c := ondisk.Cg(sb.Ncg - 1)
			cg := fs.groups.cgs[c]
			inopb := sb.Inopb
			parent := ondisk.Ino(uint32(c) * sb.Ipg) // any inode of the group
			for i := range sb.Ipg - boolU32(c == 0)*3 {
				before := cg.Initediblk
				ncalls := len(fs.groups.inits)
				ino, err := a.AllocInode(parent, modeFile)
				if err != nil {
					t.Fatal(err)
				}
				idx := uint32(ino) % sb.Ipg
				if sb.InoToCg(ino) != c {
					t.Fatalf("inode %d (#%d) left group %d", ino, i, c)
				}
				after := cg.Initediblk
				calls := fs.groups.inits[ncalls:]
				// One block at a time, only while the inode is within a
				// block of the initialised ones, never past fs_ipg.
				wantCalls := 0
				for b := before; idx+inopb > b && b < sb.Ipg; b += inopb {
					wantCalls++
				}
				if len(calls) != wantCalls || after != before+uint32(wantCalls)*inopb {
					t.Fatalf("inode %d: initediblk %d -> %d with %d calls, want %d", idx, before, after, len(calls), wantCalls)
				}
				for k, call := range calls {
					first := ondisk.Ino(uint32(c)*sb.Ipg + before + uint32(k)*inopb)
					want := initCall{c, sb.InoToFsba(first), first, int(inopb)}
					if call != want {
						t.Fatalf("InitInodeBlock%+v, want %+v", call, want)
					}
				}
				if after > sb.Ipg || after > (idx/inopb+2)*inopb {
					t.Fatalf("initediblk %d for inode %d: more than one block ahead", after, idx)
				}
			}
			if cg.Initediblk != sb.Ipg {
				t.Fatalf("all inodes used but initediblk %d", cg.Initediblk)
			}
		})
	}
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func TestInitInodeBlockErrorChangesNothing(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	c := ondisk.Cg(1)
	parent := ondisk.Ino(uint32(c)*sb.Ipg + sb.Inopb + 1) // needs the third block
	fs.groups.initErr = errors.New("disk on fire")
	before := fs.snapshot()
	if _, err := a.AllocInode(parent, modeFile); !errors.Is(err, fs.groups.initErr) {
		t.Fatalf("%v", err)
	}
	if err := before.diff(fs.snapshot()); err != nil || fs.groups.cgs[c].Initediblk != 2*sb.Inopb {
		t.Fatalf("failed init changed state: %v", err)
	}
	fs.groups.initErr = nil
	ino, err := a.AllocInode(parent, modeFile)
	if err != nil || ino != parent {
		t.Fatalf("%d %v", ino, err)
	}
}

func TestGroupsErrorPropagates(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	boom := errors.New("read error")
	fs.groups.cgErr = boom
	if _, err := fs.a.AllocBlock(fileHint(2), 0, 0, int(fs.sb.Bsize), false); !errors.Is(err, boom) {
		t.Fatalf("AllocBlock: %v", err)
	}
	if _, err := fs.a.AllocInode(2, modeFile); !errors.Is(err, boom) {
		t.Fatalf("AllocInode: %v", err)
	}
	if _, err := fs.a.Check(); !errors.Is(err, boom) {
		t.Fatalf("Check: %v", err)
	}
	fs.groups.cgErr = nil
}

func TestCluster(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	ip := fileHint(ondisk.RootIno)
	frag := ondisk.Frag(sb.Frag)
	pref := sb.Cgdata(2)
	b, err := a.AllocCluster(ip, pref, 16, false)
	if err != nil || sb.Dtog(b) != 2 || b < pref {
		t.Fatalf("cluster at %d (group %d): %v", b, sb.Dtog(b), err)
	}
	cg := fs.groups.cgs[2]
	for i := range ondisk.Frag(16) {
		h := sb.Dtogd(b+i*frag) / int64(frag)
		if !cg.IsFreeBlockClear(h) || cg.ClusterFree(h) {
			t.Fatalf("block %d of the cluster not allocated", i)
		}
	}
	fs.mustCheck(t)
	// Break every run of 4 in group 3 and ask for 4 there: another group
	// answers, and group 3 remembers its largest cluster.
	c3 := fs.groups.cgs[3]
	var taken []ondisk.Frag
	for h := int64(0); h < int64(c3.Nclusterblks); h++ {
		if h%3 == 2 && c3.IsBlock(h) {
			x, err := a.AllocBlock(ip, 0, sb.Cgbase(3)+sb.Blkstofrags(h), int(sb.Bsize), true)
			if err != nil || x != sb.Cgbase(3)+sb.Blkstofrags(h) {
				t.Fatalf("block %d of group 3: %d %v", h, x, err)
			}
			taken = append(taken, x)
		}
	}
	if c3.MaxCluster() >= 4 {
		t.Fatalf("group 3 still has a cluster of %d", c3.MaxCluster())
	}
	// As after mount, fs_maxcluster does not yet know.
	a.Locked(func(*ondisk.Superblock, []ondisk.Csum) { a.maxcluster[3] = 16 })
	b4, err := a.AllocCluster(ip, sb.Cgdata(3), 4, false)
	if err != nil || sb.Dtog(b4) == 3 {
		t.Fatalf("cluster of 4 at %d (group %d): %v", b4, sb.Dtog(b4), err)
	}
	a.Locked(func(*ondisk.Superblock, []ondisk.Csum) {
		if a.maxcluster[3] >= 4 {
			t.Errorf("fs_maxcluster[3] = %d after a failed search", a.maxcluster[3])
		}
	})
	for _, x := range taken {
		if err := a.FreeBlock(x, int(sb.Bsize), 2); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ondisk.Frag(16) {
		if err := a.FreeBlock(b+i*frag, int(sb.Bsize), 2); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ondisk.Frag(4) {
		if err := a.FreeBlock(b4+i*frag, int(sb.Bsize), 2); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBlkPref(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	frag := ondisk.Frag(sb.Frag)
	nindir := ondisk.Lbn(sb.Nindir)
	ino := ondisk.Ino(sb.Ipg*1 + 7) // a file in group 1
	file := InodeHint{Ino: ino, Mode: ondisk.IFREG}
	dir := InodeHint{Ino: ino, Mode: ondisk.IFDIR}
	db := make([]ondisk.Frag, ondisk.NDaddr)
	db[3] = sb.Cgdata(1) + 40
	ind := make([]ondisk.Frag, sb.Nindir)
	ind[9] = sb.Cgdata(2) + 8
	ind[int(sb.Maxbpg)-1] = sb.Cgdata(2) + 16
	withDb := file
	withDb.LastDirect = sb.Cgdata(1) + 96
	withIb := file
	withIb.FirstIndirect = sb.Cgdata(1) + 200
	for _, tc := range []struct {
		name string
		ip   InodeHint
		lbn  ondisk.Lbn
		indx int
		bap  []ondisk.Frag
		want ondisk.Frag
	}{
		{"first block", file, 0, 0, db, sb.Cgdata(1)},
		{"after previous", file, 4, 4, db, db[3] + frag},
		{"hole before", file, 6, 6, db, sb.Cgdata(1)},
		{"directory block", dir, 6, 6, db, cgmeta(sb, 1)},
		{"directory follows itself", dir, 4, 4, db, db[3] + frag},
		{"first indirect after direct", withDb, ondisk.NDaddr, -1, nil, withDb.LastDirect + frag},
		{"first indirect, no direct", file, ondisk.NDaddr, -1, nil, cgmeta(sb, 1)},
		{"double indirect", withDb, ondisk.NDaddr + nindir, -2, nil, cgmeta(sb, 1)},
		{"data after first indirect", withIb, ondisk.NDaddr, 0, ind, withIb.FirstIndirect + frag},
		{"inside a section", file, ondisk.NDaddr + nindir + 10, 10, ind, ind[9] + frag},
		{"new section moves on", file, ondisk.NDaddr + nindir + ondisk.Lbn(sb.Maxbpg), int(sb.Maxbpg), ind, sb.Cgdata(3)},
		{"bad previous pointer", file, 5, 5, []ondisk.Frag{0, 0, 0, 0, ondisk.Frag(sb.Size)}, sb.Cgdata(1)},
	} {
		if got := a.BlkPref(tc.ip, tc.lbn, tc.indx, tc.bap); got != tc.want {
			t.Errorf("%s: BlkPref = %d, want %d", tc.name, got, tc.want)
		}
	}
	if sb.Cgrotor != 3 {
		t.Errorf("fs_cgrotor = %d, want 3", sb.Cgrotor)
	}
	// A section start skips groups with fewer than average free blocks.
	ip := fileHint(ondisk.RootIno)
	var taken []ondisk.Frag
	for fs.csums[3].Nbfree > 0 {
		x, err := a.AllocBlock(ip, 0, sb.Cgdata(3), int(sb.Bsize), true)
		if err != nil {
			t.Fatal(err)
		}
		if sb.Dtog(x) != 3 {
			if err := a.FreeBlock(x, int(sb.Bsize), 2); err != nil {
				t.Fatal(err)
			}
			break
		}
		taken = append(taken, x)
	}
	lbn := ondisk.NDaddr + nindir + ondisk.Lbn(sb.Maxbpg)
	if got := a.BlkPref(file, lbn, int(sb.Maxbpg), ind); got != sb.Cgdata(0) {
		t.Errorf("full group 3: BlkPref = %d (group %d), want group 0's data", got, sb.Dtog(got))
	}
	for _, x := range taken {
		if err := a.FreeBlock(x, int(sb.Bsize), 2); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckFindsDiscrepancies(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a, sb := fs.a, fs.sb
	cg := fs.groups.cgs[1]
	h := sb.Fragstoblks(int64(sb.Cgdata(1) - sb.Cgbase(1)))
	// One fragment of a free block marked used behind the allocator's back.
	cg.SetFragFree(h*int64(sb.Frag)+3, false)
	fs.csums[2].Ndir++
	sb.Cstotal.Nifree--
	cg.SetFragFree(int64(sb.Iblkno), true)
	d, err := a.Check()
	if err != nil {
		t.Fatal(err)
	}
	var what []string
	for _, x := range d {
		w := x.What
		if strings.HasPrefix(w, "cg_clustersum[") {
			w = "cg_clustersum" // where the split run lands depends on the geometry
		}
		what = append(what, w)
	}
	if !slices.Contains(what, "cg_clustersum") {
		t.Errorf("Check missed the cluster summary; found %v", d)
	}
	for _, want := range []string{"cg_cs.cs_nbfree", "cg_cs.cs_nffree", "cg_frsum[3]", "cg_frsum[4]",
		"cluster map bits disagreeing with the free map", "metadata fragments marked free",
		"fs_cs.cs_ndir", "fs_cstotal.cs_ndir", "fs_cstotal.cs_nifree"} {
		if !slices.Contains(what, want) {
			t.Errorf("Check missed %s; found %v", want, d)
		}
	}
	// Put things back for the cleanup check.
	cg.SetFragFree(h*int64(sb.Frag)+3, true)
	fs.csums[2].Ndir--
	sb.Cstotal.Nifree++
	cg.SetFragFree(int64(sb.Iblkno), false)
}

func TestMapsearchCorruptSummary(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a := fs.a
	cg := fs.groups.cgs[1]
	// The summary promises a run of 3 fragments the map does not have.
	cg.Frsum[3]++
	for c := range fs.groups.cgs {
		if c != 1 {
			fs.groups.cgs[c].Cs.Nbfree, fs.csums[c].Nbfree = 0, 0 // keep the search in group 1
		}
	}
	_, err := a.AllocBlock(fileHint(ondisk.Ino(fs.sb.Ipg)), 0, 0, 3*int(fs.sb.Fsize), false)
	if !errors.Is(err, ErrCorrupt) || fs.corruptions() != 1 {
		t.Fatalf("%v, %d reports", err, fs.corruptions())
	}
	// Restore for the cleanup check.
	cg.Frsum[3]--
	for c := range fs.groups.cgs {
		r := recount(fs.sb, ondisk.Cg(c), fs.groups.cgs[c])
		fs.groups.cgs[c].Cs.Nbfree, fs.csums[c].Nbfree = int32(r.nbfree), int32(r.nbfree)
	}
}

func TestRunTable(t *testing.T) {
	// Spot checks of the run table against the definition.
	for _, tc := range []struct {
		shift int
		b     uint8
		want  uint8
	}{
		{3, 0xff, 1 << 7},
		{3, 0b0110_1110, 1<<2 | 1<<1},
		{2, 0b1111_0110, 1<<3 | 1<<1},
		{1, 0b1101_0001, 1<<1 | 1<<0},
		{0, 0b0000_0001, 1},
		{0, 0, 0},
	} {
		if got := runTable[tc.shift][tc.b]; got != tc.want {
			t.Errorf("runTable[%d][%08b] = %08b, want %08b", tc.shift, tc.b, got, tc.want)
		}
	}
	for _, tc := range []struct{ blk, frag, n, want int }{
		{0b0110_1110, 8, 2, 5},
		{0b0110_1110, 8, 3, 1},
		{0b0110_1110, 8, 1, -1},
		{0xff, 8, 8, 0},
		{0b1100, 4, 2, 2},
	} {
		if got := exactRun(tc.blk, tc.frag, tc.n); got != tc.want {
			t.Errorf("exactRun(%b, %d, %d) = %d, want %d", tc.blk, tc.frag, tc.n, got, tc.want)
		}
	}
}

func TestStatfsPendingAndHelpers(t *testing.T) {
	fs := newFS(t, geomSmall, Options{})
	a := fs.a
	before := a.Statfs()
	// Eight 512-byte sectors pending are eight 512-byte fragments.
	a.AddPending(8, 3)
	st := a.Statfs()
	if st.Bfree != before.Bfree+8 || st.Bavail != before.Bavail+8 || st.Ffree != before.Ffree+3 {
		t.Fatalf("pending not counted: before %+v after %+v", before, st)
	}
	if !a.TakeModified() || a.TakeModified() {
		t.Fatal("TakeModified should report once")
	}
	a.AddPending(-8, -3)
	if a.Statfs() != before {
		t.Fatal("pending counts did not return")
	}
	var d ondisk.Dinode
	d.Mode = ondisk.IFDIR | 0o755
	d.Db[ondisk.NDaddr-1] = 1234
	d.Ib[0] = 5678
	if h := Hint(42, &d); h != (InodeHint{Ino: 42, Mode: d.Mode, LastDirect: 1234, FirstIndirect: 5678}) || !h.isDir() {
		t.Fatalf("Hint = %+v", h)
	}
	for _, tc := range []struct {
		d    Discrepancy
		want string
	}{
		{Discrepancy{Cg: 3, What: "cg_cs.cs_nbfree", Have: 1, Want: 2}, "cg 3: cg_cs.cs_nbfree is 1, want 2"},
		{Discrepancy{Cg: -1, What: "fs_cstotal.cs_ndir", Have: 5, Want: 4}, "superblock: fs_cstotal.cs_ndir is 5, want 4"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
	if Blocks.String() != "blocks" || Inodes.String() != "inodes" {
		t.Error("Resource names")
	}
}

// TestHashallocOrder checks the cylinder overflow order: the preferred
// group, then +1, +3, +7 (mod ncg), then every group from +2 on.
func TestHashallocOrder(t *testing.T) {
	g := geomSmall
	g.ncg = 8
	fs := newFS(t, g, Options{})
	a, sb := fs.a, fs.sb
	ip := fileHint(ondisk.Ino(2*sb.Ipg + 1)) // group 2
	var full []ondisk.Cg
	hide := func(c ondisk.Cg) { // the group looks full to the block search
		full = append(full, c)
		fs.csums[c].Nbfree = 0
	}
	var got []ondisk.Frag
	for _, want := range []ondisk.Cg{2, 3, 5, 1, 4, 6, 7, 0} {
		b, err := a.AllocBlock(ip, 0, 0, int(sb.Bsize), false)
		if err != nil {
			t.Fatal(err)
		}
		if sb.Dtog(b) != want {
			t.Fatalf("with groups %v full, block went to group %d, want %d", full, sb.Dtog(b), want)
		}
		got = append(got, b)
		hide(want)
	}
	// Put the hidden counts back and free.
	for _, c := range full {
		fs.csums[c].Nbfree = fs.groups.cgs[c].Cs.Nbfree
	}
	for _, b := range got {
		if err := a.FreeBlock(b, int(sb.Bsize), ip.Ino); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScanMap compares scanMap with a byte-by-byte scan over maps made of
// runs of one value (wholly free or allocated stretches, and others) and
// of random bytes, for every fragment shift, wanted run and range.
func TestScanMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	naive := func(m []byte, from, to int64, tbl *[256]uint8, want uint8) int64 {
		for i := from; i < to; i++ {
			if tbl[m[i]]&want != 0 {
				return i
			}
		}
		return -1
	}
	for round := range 300 {
		m := make([]byte, 1+rng.IntN(3000))
		for i := 0; i < len(m); {
			n := min(1+rng.IntN(300), len(m)-i)
			switch v := byte(rng.IntN(256)); rng.IntN(4) {
			case 0: // random bytes
				for j := range n {
					m[i+j] = byte(rng.IntN(256))
				}
			case 1:
				v = 0
				fallthrough
			case 2:
				if v != 0 {
					v = 0xff
				}
				fallthrough
			default:
				for j := range n {
					m[i+j] = v
				}
			}
			i += n
		}
		for s := range 4 {
			tbl := &runTable[s]
			for n := 1; n <= 1<<s; n++ {
				want := uint8(1) << (n - 1)
				from := int64(rng.IntN(len(m)))
				to := from + int64(rng.IntN(len(m)-int(from)+1))
				if got, exp := scanMap(m, from, to, tbl, want), naive(m, from, to, tbl, want); got != exp {
					t.Fatalf("round %d, shift %d, run %d, [%d,%d): scanMap %d, byte by byte %d", round, s, n, from, to, got, exp)
				}
			}
		}
	}
}
