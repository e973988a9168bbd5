package ufs

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// corpus is a small makefs image and the byte ranges of its metadata.
type corpus struct {
	img    []byte
	ranges [][2]int64 // [start, end) byte ranges holding metadata
}

var (
	corpusOnce sync.Once
	corpusVal  corpus
)

// fuzzCorpus builds (once per test binary) an image with directories,
// small and indirect-block files and both kinds of symlink, and lists
// where its metadata is: the superblock, cylinder group blocks, inode
// blocks, directory blocks and indirect blocks.
func fuzzCorpus(t testing.TB) corpus {
	corpusOnce.Do(func() {
		src, err := os.MkdirTemp("", "ufs-fuzz-src")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(src)
		spec := testutil.Small()
		spec.BigFileSize = 200 << 10 // indirect blocks, quickly read
		spec.Files = 30
		testutil.MakeTree(t, src, spec)
		dir, err := os.MkdirTemp("", "ufs-fuzz-img")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		img := filepath.Join(dir, "img")
		testutil.MakefsWith(t, src, img, testutil.MakefsOptions{Version: 2})
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := openBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		defer fsys.Close()
		sb := fsys.sb
		c := corpus{img: raw}
		c.ranges = append(c.ranges, [2]int64{fsys.sbLoc, fsys.sbLoc + int64(sb.Sbsize)})
		for cg := ondisk.Cg(0); cg < ondisk.Cg(sb.Ncg); cg++ {
			c.ranges = append(c.ranges,
				[2]int64{sb.FragOffset(sb.Cgtod(cg)), sb.FragOffset(sb.Cgtod(cg)) + int64(sb.Cgsize)},
				[2]int64{sb.FragOffset(sb.Cgimin(cg)), sb.FragOffset(sb.Cgimin(cg)) + int64(sb.Ipg)*ondisk.DinodeSize})
		}
		walkAll(fsys, func(ino ondisk.Ino, st Stat) {
			ip, err := fsys.OpenInode(ino)
			if err != nil {
				return
			}
			d := ip.Dinode()
			ip.Release()
			for _, p := range d.Ib {
				if p != 0 {
					c.ranges = append(c.ranges, [2]int64{sb.FragOffset(p), sb.FragOffset(p) + int64(sb.Bsize)})
				}
			}
			if st.IsDir() {
				fsys.Extents(ino, 0, func(e Extent) bool {
					c.ranges = append(c.ranges, [2]int64{sb.FragOffset(e.Addr), sb.FragOffset(e.Addr) + e.Len})
					return true
				})
			}
		})
		corpusVal = c
	})
	if corpusVal.img == nil {
		t.Fatal("no fuzz corpus")
	}
	return corpusVal
}

// walkAll visits every inode reachable from the root, reading each file's
// start, its extents, symlink targets and extended attributes, with limits
// so that a corrupt size cannot make it run for ever. It ignores errors:
// the point is that nothing panics or hangs.
func walkAll(fsys *FS, visit func(ondisk.Ino, Stat)) {
	seen := map[ondisk.Ino]bool{}
	buf := make([]byte, 64<<10)
	budget := 5000
	var walk func(dir ondisk.Ino)
	walk = func(dir ondisk.Ino) {
		var kids []ondisk.Ino
		fsys.ReadDir(dir, func(e Dirent) bool {
			budget--
			if e.Name != "." && e.Name != ".." {
				kids = append(kids, e.Ino)
			}
			return budget > 0
		})
		for _, ino := range kids {
			if seen[ino] || budget <= 0 {
				continue
			}
			seen[ino] = true
			st, err := fsys.Stat(ino)
			if err != nil {
				continue
			}
			if visit != nil {
				visit(ino, st)
			}
			fsys.Xattrs(ino)
			switch st.Type() {
			case ondisk.IFDIR:
				walk(ino)
			case ondisk.IFLNK:
				fsys.Readlink(ino)
			case ondisk.IFREG:
				for off := int64(0); off < int64(st.Size) && off < 256<<10; off += int64(len(buf)) {
					if _, err := fsys.ReadAt(ino, buf, off); err != nil && err != io.EOF {
						break
					}
				}
				n := 0
				fsys.Extents(ino, 0, func(Extent) bool { n++; return n < 1000 })
				fsys.SeekHole(ino, 0)
			}
		}
	}
	seen[fsys.Root()] = true
	walk(fsys.Root())
	fsys.Namei("/deep1/deep2/../deep2/deep3")
}

// mutateAndWalk flips bytes of the corpus's metadata, chosen by seed, and
// walks the damaged filesystem.
func mutateAndWalk(t testing.TB, c corpus, seed uint64, flips int) {
	img := bytes.Clone(c.img)
	rng := rand.New(rand.NewPCG(seed, 0x75667332))
	for range flips {
		r := c.ranges[rng.IntN(len(c.ranges))]
		if r[1] <= r[0] || r[1] > int64(len(img)) {
			continue
		}
		off := r[0] + rng.Int64N(r[1]-r[0])
		switch rng.IntN(3) {
		case 0:
			img[off] ^= 1 << rng.IntN(8)
		case 1:
			img[off] = byte(rng.Uint32())
		case 2:
			img[off] = 0xFF
		}
	}
	fsys, err := openBytes(img)
	if err != nil {
		return
	}
	defer fsys.Close()
	walkAll(fsys, nil)
}

// TestCorruptionNeverPanics damages the metadata of a makefs image in
// many seeded ways and walks the whole tree each time.
func TestCorruptionNeverPanics(t *testing.T) {
	c := fuzzCorpus(t)
	n := 300
	if testing.Short() {
		n = 50
	}
	for seed := range uint64(n) {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("seed %d: panic: %v", seed, r)
				}
			}()
			mutateAndWalk(t, c, seed, 1+int(seed%8))
		}()
	}
}

// TestConcurrentReaders walks the undamaged corpus from several goroutines
// sharing one FS, with a cache small enough to evict (run with -race).
func TestConcurrentReaders(t *testing.T) {
	c := fuzzCorpus(t)
	fsys, err := Open(blockdevMem(c.img), Options{ReadOnly: true, CacheBytes: 64 << 10, MaxInodes: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	var want int
	walkAll(fsys, func(ondisk.Ino, Stat) { want++ })
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			walkAll(fsys, func(ondisk.Ino, Stat) { n++ })
			if n != want {
				t.Errorf("walk saw %d inodes, want %d", n, want)
			}
		}()
	}
	wg.Wait()
}

// FuzzCorruption is the same under the fuzzer: go test -fuzz FuzzCorruption ./ufs
func FuzzCorruption(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, seed uint64, flips uint8) {
		mutateAndWalk(t, fuzzCorpus(t), seed, 1+int(flips%32))
	})
}

// BenchmarkReadAt reads a 32 MiB file through the engine in 128 KiB
// requests, the size the FUSE mount asks for.
func BenchmarkReadAt(b *testing.B) {
	src := b.TempDir()
	data := make([]byte, 32<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	writeFile(b, filepath.Join(src, "big"), data, 0o644)
	img := makeImage(b, src, testutil.MakefsOptions{})
	fsys := openImage(b, img)
	ino, err := fsys.Namei("/big")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for off := int64(0); off < int64(len(data)); off += int64(len(buf)) {
			if _, err := fsys.ReadAt(ino, buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}
