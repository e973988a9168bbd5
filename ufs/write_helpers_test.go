package ufs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// testGeom is a filesystem shape for write tests.
type testGeom struct {
	name         string
	size         string // makefs -s
	bsize, fsize int
	extra        string // more makefs -o options
	ckhash       bool   // turn on CK_SUPERBLOCK|CK_CYLGRP|CK_INODE
	softdep      bool   // set FS_DOSOFTDEP: the engine runs with soft updates
}

var (
	geomSmall = testGeom{name: "4k-512", size: "24m", bsize: 4096, fsize: 512, extra: "density=4096,maxbpcg=2048", ckhash: true}
	geomMid   = testGeom{name: "8k-1k", size: "32m", bsize: 8192, fsize: 1024, extra: "density=8192,maxbpcg=1024", ckhash: true}
	geomBig   = testGeom{name: "32k-4k", size: "64m", bsize: 32768, fsize: 4096, extra: "density=16384,maxbpcg=1024"}
	// The same with soft updates.
	geomSmallSU = testGeom{name: "4k-512-su", size: "24m", bsize: 4096, fsize: 512, extra: "density=4096,maxbpcg=2048", ckhash: true, softdep: true}
	geomBigSU   = testGeom{name: "32k-4k-su", size: "64m", bsize: 32768, fsize: 4096, extra: "density=16384,maxbpcg=1024", softdep: true}
)

// emptyImages caches one empty image per geometry for the test binary.
var emptyImages = map[string][]byte{}

// emptyImage returns the bytes of a new empty UFS2 filesystem (makefs of
// an empty directory), with metadata check-hashes turned on when the
// geometry asks.
func emptyImage(t testing.TB, g testGeom) []byte {
	t.Helper()
	if b, ok := emptyImages[g.name]; ok {
		return append([]byte(nil), b...)
	}
	src := t.TempDir()
	img := filepath.Join(t.TempDir(), "empty.img")
	testutil.MakefsWith(t, src, img, testutil.MakefsOptions{Version: 2, Size: g.size, Bsize: g.bsize, Fsize: g.fsize, Extra: []string{"-o", g.extra}})
	if g.ckhash {
		enableCheckHashes(t, img)
	}
	if g.softdep {
		e := editImage(t, img)
		e.sb.Flags |= ondisk.FSDoSoftdep
		e.putSuperblock()
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	emptyImages[g.name] = raw
	return append([]byte(nil), raw...)
}

// enableCheckHashes turns on FreeBSD's metadata check-hashes in an image
// (as newfs does by default): the superblock flag and mask, every
// cylinder group's and every allocated inode's hash.
func enableCheckHashes(t testing.TB, img string) {
	t.Helper()
	e := editImage(t, img)
	e.sb.Flags |= ondisk.FSMetackhash
	e.sb.Metackhash = ondisk.CKSuperblock | ondisk.CKCylGrp | ondisk.CKInode
	for c := ondisk.Cg(0); c < ondisk.Cg(e.sb.Ncg); c++ {
		off := e.fragOff(e.sb.Cgtod(c))
		raw := e.read(off, int(e.sb.Cgsize))
		cg, err := ondisk.DecodeCg(e.sb, c, raw)
		if err != nil {
			t.Fatal(err)
		}
		cg.Sync()
		e.write(off, cg.B)
		for i := int64(0); i < int64(cg.Initediblk); i++ {
			ino := ondisk.Ino(int64(c)*int64(e.sb.Ipg) + i)
			d := e.inode(ino)
			if d.Mode != 0 {
				e.putInode(ino, d)
			}
		}
	}
	e.putSuperblock()
}

// memFS is a filesystem on an in-memory device that a test can close and
// open again.
type memFS struct {
	t    testing.TB
	dev  *blockdev.Mem
	opts Options
	fs   *FS
}

// newMemFS makes an empty filesystem of geometry g and opens it
// read-write.
func newMemFS(t testing.TB, g testGeom, opts Options) *memFS {
	t.Helper()
	m := &memFS{t: t, dev: blockdev.NewMemBytes(emptyImage(t, g)), opts: opts}
	m.open()
	t.Cleanup(func() {
		if m.fs != nil && !m.fs.closed.Load() {
			m.fs.Close()
		}
	})
	return m
}

func (m *memFS) open() {
	m.t.Helper()
	fsys, err := Open(m.dev, m.opts)
	if err != nil {
		m.t.Fatalf("Open: %v", err)
	}
	if fsys.ReadOnly() {
		m.t.Fatalf("opened read-only: %s", fsys.ReadOnlyReason())
	}
	m.fs = fsys
}

// reopen closes the filesystem and opens it again from the device.
func (m *memFS) reopen() {
	m.t.Helper()
	if err := m.fs.Close(); err != nil {
		m.t.Fatalf("Close: %v", err)
	}
	m.open()
}

// must fails the test on an error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustIno(t testing.TB) func(ondisk.Ino, error) ondisk.Ino {
	return func(ino ondisk.Ino, err error) ondisk.Ino {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ino
	}
}

// checkFS is a small fsck: it walks the tree from the root and checks
// that every link count equals the entries naming the inode, that
// di_blocks equals the blocks each inode holds, that no fragment is held
// twice, that the cylinder groups' maps mark exactly the held fragments
// and inodes as used (no leak, no double use), that no file has blocks
// past its end or a hole as its last block, and that alloc.Check finds
// the summaries right. It reports every problem.
func checkFS(t testing.TB, fsys *FS) {
	t.Helper()
	for _, p := range fsckProblems(fsys) {
		t.Error(p)
	}
}

func fsckProblems(fsys *FS) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	sb := fsys.sb
	refs := map[ondisk.Ino]int{}
	owner := map[ondisk.Frag]ondisk.Ino{}
	visited := map[ondisk.Ino]bool{}
	var visit func(ino, parent ondisk.Ino)
	visit = func(ino, parent ondisk.Ino) {
		if visited[ino] {
			return
		}
		visited[ino] = true
		ip, err := fsys.OpenInode(ino)
		if err != nil {
			bad("inode %d: %v", ino, err)
			return
		}
		ip.mu.RLock()
		d := ip.din
		var blocks uint64
		err = fsys.forEachExtent(ip, func(p ondisk.Frag, size int64) {
			blocks += btodb(size)
			for f := int64(0); f < sb.Numfrags(sb.Fragroundup(size)); f++ {
				q := p + ondisk.Frag(f)
				if o, dup := owner[q]; dup {
					bad("fragment %d held by inodes %d and %d", q, o, ino)
				}
				owner[q] = ino
			}
		})
		ip.mu.RUnlock()
		ip.Release()
		if err != nil {
			bad("inode %d: %v", ino, err)
		}
		if blocks != d.Blocks {
			bad("inode %d: di_blocks %d, holds %d", ino, d.Blocks, blocks)
		}
		if fsys.hasBlocks(&d) {
			bsize := int64(sb.Bsize)
			nblk := (int64(d.Size) + bsize - 1) / bsize
			for i := nblk; i < ondisk.NDaddr; i++ {
				if d.Db[i] != 0 {
					bad("inode %d: direct block %d past the end (size %d)", ino, i, d.Size)
				}
			}
			if d.Size > 0 {
				p, err := fsys.Bmap(ino, ondisk.Lbn(nblk-1))
				if err == nil && p == 0 {
					bad("inode %d: the last block (%d) is a hole (size %d)", ino, nblk-1, d.Size)
				}
			}
		}
		if !d.IsDir() {
			return
		}
		err = fsys.ReadDir(ino, func(e Dirent) bool {
			refs[e.Ino]++
			switch e.Name {
			case ".":
				if e.Ino != ino {
					bad("directory %d: . names %d", ino, e.Ino)
				}
			case "..":
				if e.Ino != parent {
					bad("directory %d: .. names %d, want %d", ino, e.Ino, parent)
				}
			default:
				st, err := fsys.Stat(e.Ino)
				if err != nil {
					bad("directory %d: %q: %v", ino, e.Name, err)
					return true
				}
				if e.Type != ondisk.DTypeFromMode(st.Mode) {
					bad("directory %d: %q has d_type %d, mode 0%o", ino, e.Name, e.Type, st.Mode)
				}
				visit(e.Ino, ino)
			}
			return true
		})
		if err != nil {
			bad("directory %d: %v", ino, err)
		}
	}
	refs[ondisk.RootIno]++ // the root's ".." counts as its link from above
	visit(ondisk.RootIno, ondisk.RootIno)
	refs[ondisk.RootIno]--
	for ino := range visited {
		st, err := fsys.Stat(ino)
		if err != nil {
			continue
		}
		if int(st.Nlink) != refs[ino] {
			bad("inode %d: nlink %d, %d entries name it", ino, st.Nlink, refs[ino])
		}
	}
	// Compare with the maps.
	if fsys.alloc == nil {
		return probs
	}
	csEnd := sb.Csaddr + ondisk.Frag(sb.Numfrags(sb.Fragroundup(int64(sb.Cssize))))
	fsys.alloc.Locked(func(_ *ondisk.Superblock, _ []ondisk.Csum) {
		for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
			cg, err := fsys.groups.Cg(c)
			if err != nil {
				bad("cg %d: %v", c, err)
				return
			}
			for i := int64(0); i < int64(sb.Ipg); i++ {
				ino := ondisk.Ino(int64(c)*int64(sb.Ipg) + i)
				used := cg.InodeUsed(i)
				if ino < ondisk.RootIno {
					continue
				}
				switch {
				case used && !visited[ino]:
					bad("inode %d marked used but unreachable", ino)
				case !used && visited[ino]:
					bad("inode %d reachable but marked free", ino)
				}
			}
			base := sb.Cgbase(c)
			for f := int64(0); f < int64(cg.Ndblk); f++ {
				q := base + ondisk.Frag(f)
				meta := f < int64(sb.Dblkno) && (c == 0 || f >= int64(sb.Sblkno)) || q >= sb.Csaddr && q < csEnd
				_, held := owner[q]
				free := cg.FragFree(f)
				switch {
				case held && free:
					bad("fragment %d held by inode %d but free in the map", q, owner[q])
				case held && meta:
					bad("fragment %d held by inode %d is metadata", q, owner[q])
				case !held && !free && !meta:
					bad("fragment %d allocated but held by nobody", q)
				}
			}
		}
	})
	ds, err := fsys.alloc.Check()
	if err != nil {
		bad("alloc.Check: %v", err)
	}
	for _, d := range ds {
		bad("alloc.Check: %s", d)
	}
	return probs
}

// is reports whether err matches target, for table tests.
func is(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return errors.Is(err, target)
}

// memDev wraps image bytes as a device.
func memDev(img []byte) *blockdev.Mem { return blockdev.NewMemBytes(img) }

// newTestRand is a seeded generator for tests.
func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b9)) }
