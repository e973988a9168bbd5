package ufs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// longName is a name of 255 bytes: one entry fills most of a chunk, so a
// directory reaches its indirect blocks after a few thousand entries.
func longName(prefix string, i int) string {
	n := fmt.Sprintf("%s%06d-", prefix, i)
	return n + strings.Repeat("x", ondisk.MaxNameLen-len(n))
}

// uncachedDir reads directory dir the slow way: every block mapped by
// bmapUncached (through the indirect blocks, not the index's block
// cache) and decoded. It returns name → inode.
func uncachedDir(t *testing.T, fsys *FS, dir ondisk.Ino) map[string]ondisk.Ino {
	t.Helper()
	ip, err := fsys.OpenInode(dir)
	must(t, err)
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	out := map[string]ondisk.Ino{}
	bsize := int64(fsys.sb.Bsize)
	size := int64(ip.din.Size)
	for lbn := ondisk.Lbn(0); int64(lbn)*bsize < size; lbn++ {
		p, err := fsys.bmapUncached(ip, lbn)
		if err != nil || p == 0 {
			t.Fatalf("directory %d: block %d at %d: %v", dir, lbn, p, err)
		}
		b, err := fsys.cache.Get(fsys.sb.FragOffset(p), int(fsys.blkSize(ip.din.Size, lbn)))
		must(t, err)
		b.RLock()
		_, err = fsys.dirBlockEntries(ip, lbn, b.Data(), func(_ int64, d ondisk.Direct) bool {
			out[string(d.Name)] = d.Ino
			return true
		})
		b.RUnlock()
		fsys.cache.Release(b)
		must(t, err)
	}
	return out
}

// verifyDirBlocks checks directory dir three ways: the index's block
// cache against the block map, every name the slow walk finds against
// Lookup (which goes through the index and its block cache), and the
// names the test expects (want) against both. Afterwards the cache must
// cover the whole directory, so that the lookups did use it.
func verifyDirBlocks(t *testing.T, fsys *FS, dir ondisk.Ino, want map[string]ondisk.Ino, gone []string, where string) {
	t.Helper()
	slow := uncachedDir(t, fsys, dir)
	delete(slow, ".")
	delete(slow, "..")
	if len(slow) != len(want) {
		t.Fatalf("%s: the block map walk finds %d names, the test made %d", where, len(slow), len(want))
	}
	for name, ino := range want {
		if slow[name] != ino {
			t.Fatalf("%s: %.12s...: walk says inode %d, the test %d", where, name, slow[name], ino)
		}
		got, err := fsys.Lookup(dir, name)
		if err != nil || got != ino {
			t.Fatalf("%s: Lookup %.12s... = %d, %v; want %d", where, name, got, err, ino)
		}
	}
	for _, name := range gone {
		if _, err := fsys.Lookup(dir, name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: Lookup of removed %.12s... = %v", where, name, err)
		}
	}
	ip, err := fsys.OpenInode(dir)
	must(t, err)
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if err := fsys.checkDirBlocks(ip); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	nblocks := int((int64(ip.din.Size) + int64(fsys.sb.Bsize) - 1) / int64(fsys.sb.Bsize))
	if nblocks > ondisk.NDaddr {
		dh := dirhashOf(ip)
		if dh == nil {
			t.Fatalf("%s: a directory of %d blocks has no index", where, nblocks)
		}
		if bp := dh.blocks.Load(); bp == nil || len(*bp) != nblocks-ondisk.NDaddr {
			n := 0
			if bp != nil {
				n = len(*bp)
			}
			t.Fatalf("%s: %d blocks cached for a directory of %d", where, n, nblocks)
		}
	}
}

// TestDirBlockCache grows a directory through its direct blocks, the
// single and into the double indirect range, shrinks it back inside its
// direct blocks (the trailing blocks cut by ufs_direnter's truncation
// without soft updates), grows it again into blocks allocated anew, and
// remounts, checking at each stage that lookups through the index's block
// cache agree with a walk of the block map that does not use it, and the
// cache with the block map.
func TestDirBlockCache(t *testing.T) {
	for _, tc := range []struct {
		g    testGeom
		opts Options
	}{
		{geomSmall, Options{Async: true}},
		{geomSmallSU, Options{}},
	} {
		t.Run(tc.g.name, func(t *testing.T) {
			m := newMemFS(t, tc.g, tc.opts)
			fsys := m.fs
			dir := mustIno(t)(fsys.Mkdir(fsys.Root(), "d", 0o755, 0, 0))
			rng := rand.New(rand.NewPCG(5, 6))
			want := map[string]ondisk.Ino{}
			var order []string
			var gone []string
			// Past NDADDR + NINDIR blocks: into the double indirect
			// block. A 255-byte name takes a chunk.
			nindir := int(fsys.sb.NINDIR())
			perBlock := int(fsys.sb.Bsize) / ondisk.DirBlkSize
			target := (ondisk.NDaddr+nindir+4)*perBlock + 1
			create := func(prefix string, n int) {
				for i := range n {
					name := longName(prefix, i)
					want[name] = mustIno(t)(fsys.Create(dir, name, 0o644, 0, 0))
					order = append(order, name)
					if i%97 == 0 { // extend the cache as the directory grows
						probe := order[rng.IntN(len(order))]
						if got, err := fsys.Lookup(dir, probe); err != nil || got != want[probe] {
							t.Fatalf("Lookup %.12s... while growing = %d, %v; want %d", probe, got, err, want[probe])
						}
					}
				}
			}
			create("a", target)
			verifyDirBlocks(t, fsys, dir, want, nil, "grown into the double indirect range")

			// Shrink: the entries at the end go first, down to what
			// fits in the direct blocks; a create then cuts the
			// empty trailing blocks (not under soft updates).
			keep := ondisk.NDaddr*perBlock/2 - 2
			for len(order) > keep {
				name := order[len(order)-1]
				order = order[:len(order)-1]
				must(t, fsys.Unlink(dir, name))
				delete(want, name)
				gone = append(gone, name)
				if len(order)%101 == 0 {
					probe := order[rng.IntN(len(order))]
					if got, err := fsys.Lookup(dir, probe); err != nil || got != want[probe] {
						t.Fatalf("Lookup %.12s... while shrinking = %d, %v; want %d", probe, got, err, want[probe])
					}
				}
			}
			n := "short"
			want[n] = mustIno(t)(fsys.Create(dir, n, 0o644, 0, 0))
			if st, err := fsys.Stat(dir); err != nil || fsys.sd == nil && st.Size > uint64(ondisk.NDaddr)*uint64(fsys.sb.Bsize) {
				t.Fatalf("directory of %d bytes after shrinking (%v)", st.Size, err)
			}
			verifyDirBlocks(t, fsys, dir, want, gone, "shrunk")

			// Grow again: the blocks past the direct ones are new.
			create("b", target-keep)
			verifyDirBlocks(t, fsys, dir, want, gone, "grown again")
			must(t, fsys.Sync()) // soft updates: the removals' frees done
			checkFS(t, fsys)

			m.reopen()
			fsys = m.fs
			verifyDirBlocks(t, fsys, dir, want, gone, "after remount")
			// And once more in the new mount, from a cache built from
			// the disk.
			for i := range 40 * perBlock {
				name := longName("c", i)
				want[name] = mustIno(t)(fsys.Create(dir, name, 0o644, 0, 0))
			}
			for _, name := range order[:200] {
				must(t, fsys.Unlink(dir, name))
				delete(want, name)
				gone = append(gone, name)
			}
			verifyDirBlocks(t, fsys, dir, want, gone, "after remount, changed")
			must(t, fsys.Sync())
			checkFS(t, fsys)
		})
	}
}

// TestDirBlockCacheParallel looks names up in a directory past its direct
// blocks from several goroutines while another grows it into new blocks
// and shrinks it again (without soft updates the trailing blocks are
// cut): the readers extend the block cache under the directory's shared
// lock while the writer cuts it under the exclusive one. Run with -race.
func TestDirBlockCacheParallel(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{Async: true})
	fsys := m.fs
	dir := mustIno(t)(fsys.Mkdir(fsys.Root(), "d", 0o755, 0, 0))
	perBlock := int(fsys.sb.Bsize) / ondisk.DirBlkSize
	stable := map[string]ondisk.Ino{}
	for i := range (ondisk.NDaddr + 20) * perBlock {
		name := longName("s", i)
		stable[name] = mustIno(t)(fsys.Create(dir, name, 0o644, 0, 0))
	}
	names := make([]string, 0, len(stable))
	for n := range stable {
		names = append(names, n)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := names[rng.IntN(len(names))]
				if got, err := fsys.Lookup(dir, n); err != nil || got != stable[n] {
					errs <- fmt.Errorf("Lookup %.12s... = %d, %v; want %d", n, got, err, stable[n])
					return
				}
			}
		}()
	}
	for round := range 6 {
		var made []string
		for i := range 10 * perBlock {
			n := longName(fmt.Sprintf("r%d-", round), i)
			mustIno(t)(fsys.Create(dir, n, 0o644, 0, 0))
			made = append(made, n)
		}
		for i := len(made) - 1; i >= 0; i-- {
			must(t, fsys.Unlink(dir, made[i]))
		}
		mustIno(t)(fsys.Create(dir, fmt.Sprintf("cut-%d", round), 0o644, 0, 0))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ip, err := fsys.OpenInode(dir)
	must(t, err)
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if err := fsys.checkDirBlocks(ip); err != nil {
		t.Fatal(err)
	}
}
