package ufs

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// sparseFile models a file's contents: 4 KiB chunks of what was written
// (the rest reads as zeros) and the size.
type sparseFile struct {
	b    map[int64][]byte
	size int64
}

const chunk = 4096

func newSparseFile() *sparseFile { return &sparseFile{b: map[int64][]byte{}} }

func (f *sparseFile) write(p []byte, off int64) {
	for len(p) > 0 {
		c, o := off/chunk, off%chunk
		buf := f.b[c]
		if buf == nil {
			buf = make([]byte, chunk)
			f.b[c] = buf
		}
		n := copy(buf[o:], p)
		p, off = p[n:], off+int64(n)
		f.size = max(f.size, off)
	}
}

func (f *sparseFile) truncate(n int64) {
	if n < f.size {
		for c, buf := range f.b {
			switch {
			case c*chunk >= n:
				delete(f.b, c)
			case (c+1)*chunk > n:
				clear(buf[n-c*chunk:])
			}
		}
	}
	f.size = n
}

func (f *sparseFile) read(off int64, n int) []byte {
	out := make([]byte, n)
	for i := 0; i < n; {
		c, o := (off+int64(i))/chunk, (off+int64(i))%chunk
		k := min(int64(n-i), chunk-o)
		if buf := f.b[c]; buf != nil {
			copy(out[i:], buf[o:o+k])
		}
		i += int(k)
	}
	return out
}

// verify compares the file with the model around every written chunk and
// at a few random places.
func (f *sparseFile) verify(t *testing.T, fsys *FS, ino ondisk.Ino, rng *rand.Rand) {
	t.Helper()
	st, err := fsys.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	if int64(st.Size) != f.size {
		t.Fatalf("size %d, model %d", st.Size, f.size)
	}
	check := func(off int64, n int) {
		t.Helper()
		if off >= f.size {
			return
		}
		n = int(min(int64(n), f.size-off))
		got := make([]byte, n)
		m, err := fsys.ReadAt(ino, got, off)
		if m != n || err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, n, m, err)
		}
		if want := f.read(off, n); !bytes.Equal(got, want) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			t.Fatalf("contents differ at %d: got %d want %d", off+int64(i), got[i], want[i])
		}
	}
	var cs []int64
	for c := range f.b {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	for _, c := range cs {
		check(max(0, c*chunk-100), chunk+200)
	}
	for range 5 {
		if f.size > 0 {
			check(rng.Int64N(f.size), 3000)
		}
	}
}

// randomOffset picks offsets in the direct, fragment, single, double and
// triple indirect ranges.
func randomOffset(rng *rand.Rand, bsize int64, nindir int64) int64 {
	switch rng.IntN(6) {
	case 0:
		return rng.Int64N(bsize)
	case 1:
		return rng.Int64N(12 * bsize)
	case 2:
		return 12*bsize + rng.Int64N(nindir*bsize)
	case 3:
		return (12+nindir)*bsize + rng.Int64N(nindir*nindir*bsize)
	case 4:
		return (12+nindir+nindir*nindir)*bsize + rng.Int64N(min(nindir*nindir*nindir, 1<<22)*bsize)
	}
	return rng.Int64N(64 * bsize)
}

// TestFileRandomOps writes, extends and truncates files at random offsets
// in every range of the block map, comparing contents with a model and
// running checkFS (block counts, leaks, double use, maps) as it goes and
// after a remount, with and without soft updates (whole blocks and parts
// of written blocks go straight to the device, the rest through the
// cache). Every file is removed at the end: the free counts must
// be back where they started.
func TestFileRandomOps(t *testing.T) {
	for _, g := range []testGeom{geomSmall, geomMid, geomBig, geomSmallSU, geomBigSU} {
		t.Run(g.name, func(t *testing.T) {
			seed := uint64(1)
			rng := rand.New(rand.NewPCG(seed, 7))
			m := newMemFS(t, g, Options{})
			before := m.fs.Statfs()
			bsize := int64(m.fs.sb.Bsize)
			nindir := m.fs.sb.NINDIR()
			root := m.fs.Root()
			const nfiles = 4
			inos := make([]ondisk.Ino, nfiles)
			models := make([]*sparseFile, nfiles)
			for i := range inos {
				inos[i] = mustIno(t)(m.fs.Create(root, "f"+itoa(i), 0o644, 0, 0))
				models[i] = newSparseFile()
			}
			for step := range 200 {
				i := rng.IntN(nfiles)
				ino, f := inos[i], models[i]
				switch op := rng.IntN(10); {
				case op < 6:
					var off int64
					if rng.IntN(3) == 0 {
						off = f.size + rng.Int64N(3*bsize) // append-ish
					} else {
						off = randomOffset(rng, bsize, nindir)
					}
					n := 1 + rng.IntN(int(3*bsize))
					p := make([]byte, n)
					for k := range p {
						p[k] = byte(1 + rng.IntN(255))
					}
					if w, err := m.fs.WriteAt(ino, p, off); w != n || err != nil {
						t.Fatalf("step %d: WriteAt(%d, %d bytes) = %d, %v", step, off, n, w, err)
					}
					f.write(p, off)
				case op < 9:
					var size int64
					switch rng.IntN(3) {
					case 0:
						size = rng.Int64N(f.size + 1)
					case 1:
						size = rng.Int64N(14 * bsize)
					default:
						size = randomOffset(rng, bsize, nindir)
					}
					must(t, m.fs.Truncate(ino, uint64(size)))
					f.truncate(size)
				default:
					f.verify(t, m.fs, ino, rng)
				}
				if step%40 == 0 {
					if g.softdep {
						must(t, m.fs.Sync()) // the deferred frees
					}
					checkFS(t, m.fs)
					if t.Failed() {
						t.Fatalf("after step %d", step)
					}
				}
			}
			m.reopen()
			checkFS(t, m.fs)
			for i := range inos {
				models[i].verify(t, m.fs, inos[i], rng)
				must(t, m.fs.Unlink(root, "f"+itoa(i)))
			}
			if g.softdep {
				must(t, m.fs.Sync()) // the inodes freed once their names are gone
			}
			checkFS(t, m.fs)
			if after := m.fs.Statfs(); after != before {
				t.Errorf("statfs after removing everything %+v, before %+v", after, before)
			}
		})
	}
}
