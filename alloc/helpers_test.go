package alloc

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"testing"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// geom is a small filesystem geometry for tests.
type geom struct {
	name      string
	bsize     int32
	fsize     int32
	ncg       uint32
	fpg       int32 // fragments per group
	ipg       uint32
	lastFrags int64 // fragments in the last group; 0 means a full group
	contig    int32 // fs_contigsumsize
	minfree   int32
	maxbpg    int32
}

var (
	geomSmall = geom{name: "4k/512", bsize: 4096, fsize: 512, ncg: 4, fpg: 2048, ipg: 64, contig: 16, minfree: 8, maxbpg: 64}
	geoms     = []geom{
		geomSmall,
		{name: "4k/1k-partial", bsize: 4096, fsize: 1024, ncg: 5, fpg: 1024, ipg: 128, lastFrags: 700 + 3, contig: 4, minfree: 8, maxbpg: 32},
		{name: "8k/1k-nocluster", bsize: 8192, fsize: 1024, ncg: 3, fpg: 2048, ipg: 96, contig: 0, minfree: 5, maxbpg: 128},
		{name: "4k/4k", bsize: 4096, fsize: 4096, ncg: 3, fpg: 512, ipg: 32, lastFrags: 400, contig: 8, minfree: 10, maxbpg: 64},
		{name: "4k/2k-onecg", bsize: 4096, fsize: 2048, ncg: 1, fpg: 2048, ipg: 64, contig: 16, minfree: 8, maxbpg: 64},
	}
)

func log2(v int32) int32 { return int32(bits.TrailingZeros32(uint32(v))) }

func roundup(x, y int64) int64 { return (x + y - 1) / y * y }

// makeSuperblock computes a consistent UFS2 superblock for g, laid out as
// FreeBSD's newfs lays out a group: the superblock copy at 64 KiB + 8 KiB,
// the group block, the inode blocks, then data.
func makeSuperblock(t testing.TB, g geom) *ondisk.Superblock {
	t.Helper()
	sb := &ondisk.Superblock{}
	sb.Magic = ondisk.FSUFS2Magic
	sb.Bsize, sb.Fsize = g.bsize, g.fsize
	sb.Frag = g.bsize / g.fsize
	sb.Bshift, sb.Fshift, sb.Fragshift = log2(g.bsize), log2(g.fsize), log2(sb.Frag)
	sb.Bmask, sb.Fmask = ^(g.bsize - 1), ^(g.fsize - 1)
	sb.Qbmask, sb.Qfmask = int64(g.bsize-1), int64(g.fsize-1)
	sb.Fsbtodb = log2(g.fsize / ondisk.DevBSize)
	sb.Sbsize = int32(roundup(ondisk.SuperblockSize, int64(g.fsize)))
	sb.Nindir = g.bsize / 8
	sb.Inopb = uint32(g.bsize / ondisk.DinodeSize)
	sb.Ncg, sb.Ipg, sb.Fpg = g.ncg, g.ipg, g.fpg
	sb.Contigsumsize = g.contig
	sb.Maxcontig = max(1, g.contig)
	sb.Minfree, sb.Maxbpg = g.minfree, g.maxbpg
	sb.Avgfilesize, sb.Avgfpdir = ondisk.AvgFileSize, ondisk.AvgFilesPerDir
	sb.Optim = ondisk.FSOptTime
	sb.Maxsymlinklen = ondisk.MaxSymlinkLen
	sb.Sblockloc = ondisk.SblockUFS2
	frag, fsize := int64(sb.Frag), int64(g.fsize)
	sb.Sblkno = int32(roundup((ondisk.SblockUFS2+ondisk.SblockSize+fsize-1)/fsize, frag))
	sb.Cblkno = sb.Sblkno + int32(roundup((ondisk.SblockSize+fsize-1)/fsize, frag))
	sb.Cgsize = int32(roundup(sb.CgSizeFor(), fsize))
	sb.Iblkno = sb.Cblkno + int32(roundup(int64(sb.Cgsize+g.fsize-1)/fsize, frag))
	sb.Dblkno = sb.Iblkno + int32(int64(g.ipg)/int64(sb.Inopb)*frag)
	sb.Cssize = int32(roundup(int64(g.ncg)*ondisk.CsumSize, fsize))
	last := g.lastFrags
	if last == 0 {
		last = int64(g.fpg)
	}
	sb.Size = int64(g.ncg-1)*int64(g.fpg) + last
	sb.Csaddr = sb.Cgdmin(0)
	sb.Dsize = sb.Size - int64(sb.Sblkno) - int64(g.ncg)*int64(sb.Dblkno-sb.Sblkno) - int64(sb.Cssize)/fsize
	sb.Metaspace = int64(sb.Blknum(ondisk.Frag(int64(g.fpg) * int64(g.minfree) / 200)))
	if err := sb.Validate(); err != nil {
		t.Fatalf("geometry %s: %v", g.name, err)
	}
	return sb
}

type initCall struct {
	c     ondisk.Cg
	frag  ondisk.Frag
	first ondisk.Ino
	n     int
}

// memGroups is an in-memory Groups: the decoded groups and a record of
// what the Allocator asked of it. The Allocator calls it under its lock;
// tests read it after the calls return.
type memGroups struct {
	sb      *ondisk.Superblock
	cgs     []*ondisk.CylGroup
	dirty   map[ondisk.Cg]int
	inits   []initCall
	initErr error
	cgErr   error
}

func (m *memGroups) Cg(c ondisk.Cg) (*ondisk.CylGroup, error) {
	if m.cgErr != nil {
		return nil, m.cgErr
	}
	if int(c) >= len(m.cgs) {
		return nil, fmt.Errorf("no group %d", c)
	}
	return m.cgs[c], nil
}

func (m *memGroups) Dirty(c ondisk.Cg) { m.dirty[c]++ }

func (m *memGroups) InitInodeBlock(c ondisk.Cg, frag ondisk.Frag, first ondisk.Ino, n int) error {
	if m.initErr != nil {
		return m.initErr
	}
	m.inits = append(m.inits, initCall{c, frag, first, n})
	return nil
}

// testFS is a fresh filesystem: superblock, summaries, groups, allocator.
type testFS struct {
	g      geom
	sb     *ondisk.Superblock
	csums  []ondisk.Csum
	groups *memGroups
	a      *Allocator

	mu      sync.Mutex
	corrupt []error // what NeedsFsck was told
}

// newFS builds the filesystem newfs would make for g (inodes 0 and 1
// reserved, the root directory's inode 2 in use) and an Allocator over it,
// and checks the summaries at the end of the test.
func newFS(t testing.TB, g geom, opts Options) *testFS {
	t.Helper()
	sb := makeSuperblock(t, g)
	fs := &testFS{g: g, sb: sb, csums: make([]ondisk.Csum, sb.Ncg)}
	fs.groups = &memGroups{sb: sb, dirty: map[ondisk.Cg]int{}}
	frag := int64(sb.Frag)
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		cg := ondisk.NewCg(sb, c)
		cg.Initediblk = min(sb.Ipg, 2*sb.Inopb)
		ndblk := int64(cg.Ndblk)
		freeBlock := func(h int64) {
			cg.SetBlock(h, true)
			cg.ClusterAcct(h, 1)
		}
		if c > 0 {
			for d := int64(0); d < int64(sb.Sblkno); d += frag {
				freeBlock(d / frag)
			}
		}
		dupper := int64(sb.Dblkno)
		if c == 0 {
			dupper += int64(sb.Cssize) / int64(sb.Fsize)
			for i := int64(0); i <= int64(ondisk.RootIno); i++ {
				cg.SetInodeUsed(i, true)
			}
			cg.Cs.Ndir = 1
		}
		for ; dupper%frag != 0 && dupper < ndblk; dupper++ {
			cg.SetFragFree(dupper, true)
		}
		for ; dupper+frag <= ndblk; dupper += frag {
			freeBlock(dupper / frag)
		}
		for ; dupper < ndblk; dupper++ {
			cg.SetFragFree(dupper, true)
		}
		r := recount(sb, c, cg)
		cg.Cs.Nbfree, cg.Cs.Nffree, cg.Cs.Nifree = int32(r.nbfree), int32(r.nffree), int32(r.nifree)
		for i := range cg.Frsum {
			cg.Frsum[i] = uint32(r.frsum[i])
		}
		// Go through the codec, as the engine's groups will.
		cg.Sync()
		dec, err := ondisk.DecodeCg(sb, c, cg.B)
		if err != nil {
			t.Fatalf("cg %d: %v", c, err)
		}
		fs.groups.cgs = append(fs.groups.cgs, dec)
		fs.csums[c] = dec.Cs
		sb.Cstotal.Ndir += int64(dec.Cs.Ndir)
		sb.Cstotal.Nbfree += int64(dec.Cs.Nbfree)
		sb.Cstotal.Nffree += int64(dec.Cs.Nffree)
		sb.Cstotal.Nifree += int64(dec.Cs.Nifree)
	}
	if opts.NeedsFsck == nil {
		opts.NeedsFsck = func(err error) {
			fs.mu.Lock()
			fs.corrupt = append(fs.corrupt, err)
			fs.mu.Unlock()
		}
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Unix(1700000000, 0) }
	}
	if opts.Rand == nil {
		var n uint32
		opts.Rand = func() uint32 { n = n*1664525 + 1013904223; return n >> 8 }
	}
	a, err := New(sb, fs.csums, fs.groups, opts)
	if err != nil {
		t.Fatal(err)
	}
	fs.a = a
	t.Cleanup(func() { fs.mustCheck(t) })
	return fs
}

// mustCheck fails the test on any discrepancy between summaries and maps.
func (fs *testFS) mustCheck(t testing.TB) {
	t.Helper()
	d, err := fs.a.Check()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range d {
		t.Errorf("%s: %v", fs.g.name, x)
	}
}

func (fs *testFS) corruptions() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.corrupt)
}

// state is what must come back exactly once everything is freed.
type state struct {
	total ondisk.CsumTotal
	csums []ondisk.Csum
	maps  [][]byte // each group's free map, cluster summary and cluster map
	frsum [][ondisk.MaxFrag]uint32
	inos  [][]byte
}

func (fs *testFS) snapshot() state {
	var s state
	fs.a.Locked(func(sb *ondisk.Superblock, cs []ondisk.Csum) {
		s.total = sb.Cstotal
		s.csums = append([]ondisk.Csum(nil), cs...)
		for _, cg := range fs.groups.cgs {
			s.maps = append(s.maps, append([]byte(nil), cg.B[cg.Freeoff:cg.Nextfreeoff]...))
			s.frsum = append(s.frsum, cg.Frsum)
			s.inos = append(s.inos, append([]byte(nil), cg.B[cg.Iusedoff:cg.Freeoff]...))
		}
	})
	return s
}

func (s state) diff(o state) error {
	var errs []error
	if s.total != o.total {
		errs = append(errs, fmt.Errorf("fs_cstotal %+v, was %+v", o.total, s.total))
	}
	for c := range s.csums {
		if s.csums[c] != o.csums[c] {
			errs = append(errs, fmt.Errorf("cg %d: fs_cs %+v, was %+v", c, o.csums[c], s.csums[c]))
		}
		if string(s.maps[c]) != string(o.maps[c]) {
			errs = append(errs, fmt.Errorf("cg %d: free/cluster maps differ", c))
		}
		if s.frsum[c] != o.frsum[c] {
			errs = append(errs, fmt.Errorf("cg %d: cg_frsum %v, was %v", c, o.frsum[c], s.frsum[c]))
		}
		if string(s.inos[c]) != string(o.inos[c]) {
			errs = append(errs, fmt.Errorf("cg %d: inode maps differ", c))
		}
	}
	return errors.Join(errs...)
}

// fileHint is an InodeHint for a regular file.
func fileHint(ino ondisk.Ino) InodeHint { return InodeHint{Ino: ino, Mode: ondisk.IFREG} }

const (
	modeFile = ondisk.IFREG | 0o644
	modeDir  = ondisk.IFDIR | 0o755
)
