package ufs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// rawEntries decodes every entry (unused ones included) of directory
// dir: offset, inode, record length and name.
type rawEntry struct {
	off    int64
	ino    ondisk.Ino
	reclen uint16
	name   string
}

func rawDir(t *testing.T, fsys *FS, dir ondisk.Ino) []rawEntry {
	t.Helper()
	ip, err := fsys.OpenInode(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	var out []rawEntry
	bsize := int64(fsys.sb.Bsize)
	for lbn := ondisk.Lbn(0); int64(lbn)*bsize < int64(ip.din.Size); lbn++ {
		b, err := fsys.fileBlock(ip, lbn)
		if err != nil || b == nil {
			t.Fatalf("block %d: %v", lbn, err)
		}
		b.RLock()
		data := b.Data()
		for c := int64(0); c < int64(len(data)) && int64(lbn)*bsize+c < int64(ip.din.Size); c += ondisk.DirBlkSize {
			base := int64(lbn)*bsize + c
			err := ondisk.DirChunkEntries(data[c:c+ondisk.DirBlkSize], func(o int, d ondisk.Direct) bool {
				out = append(out, rawEntry{base + int64(o), d.Ino, d.Reclen, string(d.Name)})
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		b.RUnlock()
		fsys.cache.Release(b)
	}
	return out
}

func layout(es []rawEntry) string {
	var sb strings.Builder
	for _, e := range es {
		name := e.name
		if e.ino == 0 {
			name = "-"
		}
		fmt.Fprintf(&sb, "%d:%s/%d ", e.off, name, e.reclen)
	}
	return strings.TrimSpace(sb.String())
}

// TestDirectoryLayout follows FreeBSD's ufs_direnter and ufs_dirremove on
// a new directory entry by entry: a new entry takes the tail of the first
// entry with room, a removed one's space goes to the entry before it, the
// first entry of a chunk is only marked unused, and the space is reused.
func TestDirectoryLayout(t *testing.T) {
	m := newMemFS(t, geomSmall, Options{})
	fsys := m.fs
	d := mustIno(t)(fsys.Mkdir(fsys.Root(), "d", 0o755, 0, 0))
	steps := []struct {
		op, name string
		want     string
	}{
		{"", "", "0:./12 12:../500"},
		{"create", "a", "0:./12 12:../12 24:a/488"},
		{"create", "bbbbb", "0:./12 12:../12 24:a/12 36:bbbbb/476"},
		{"create", "c", "0:./12 12:../12 24:a/12 36:bbbbb/16 52:c/460"},
		{"remove", "bbbbb", "0:./12 12:../12 24:a/28 52:c/460"},
		{"create", "dd", "0:./12 12:../12 24:a/12 36:dd/16 52:c/460"},
		{"remove", "a", "0:./12 12:../24 36:dd/16 52:c/460"},
		{"create", "e", "0:./12 12:../12 24:e/12 36:dd/16 52:c/460"},
	}
	for _, s := range steps {
		switch s.op {
		case "create":
			mustIno(t)(fsys.Create(d, s.name, 0o644, 0, 0))
		case "remove":
			must(t, fsys.Unlink(d, s.name))
		}
		if got := layout(rawDir(t, fsys, d)); got != s.want {
			t.Fatalf("after %s %s:\n got %s\nwant %s", s.op, s.name, got, s.want)
		}
	}
	// A second chunk: fill the first with long names.
	long := func(c byte) string { return strings.Repeat(string(c), 230) }
	mustIno(t)(fsys.Create(d, long('x'), 0o644, 0, 0)) // 240 bytes: fits in c's tail
	mustIno(t)(fsys.Create(d, long('y'), 0o644, 0, 0)) // does not: a new chunk
	es := rawDir(t, fsys, d)
	st, _ := fsys.Stat(d)
	if st.Size != 2*ondisk.DirBlkSize || es[len(es)-1].off != ondisk.DirBlkSize || es[len(es)-1].reclen != ondisk.DirBlkSize {
		t.Fatalf("size %d, layout %s", st.Size, layout(es))
	}
	// Removing the only entry of the second chunk marks it unused; the
	// next entry added where the first chunk has room cuts the
	// directory back to one chunk (ufs_direnter's i_endoff truncation).
	must(t, fsys.Unlink(d, long('y')))
	if es := rawDir(t, fsys, d); es[len(es)-1].ino != 0 || es[len(es)-1].off != ondisk.DirBlkSize {
		t.Fatalf("after removing the second chunk's entry: %s", layout(es))
	}
	mustIno(t)(fsys.Create(d, "f", 0o644, 0, 0))
	if st, _ := fsys.Stat(d); st.Size != ondisk.DirBlkSize {
		t.Fatalf("directory not cut back: size %d, %s", st.Size, layout(rawDir(t, fsys, d)))
	}
	checkFS(t, fsys)
}

// TestCompactInsert checks ufs_direnter's compaction on a chunk whose free
// space is scattered over several entries.
func TestCompactInsert(t *testing.T) {
	chunk := make([]byte, ondisk.DirBlkSize)
	put := func(off int, ino ondisk.Ino, reclen int, name string) {
		d := ondisk.Direct{Ino: ino, Reclen: uint16(reclen), Type: ondisk.DTReg, Name: []byte(name)}
		if err := d.Encode(chunk[off:]); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 2, 12, ".")
	put(12, 3, 20, "aaaa")  // 16 used, 4 free
	put(32, 4, 20, "bbbb")  // 16 used, 4 free
	put(52, 0, 8, "")       // unused: 8 free
	put(60, 5, 452, "cccc") // the rest, its tail too far to matter
	nd := ondisk.Direct{Ino: 9, Type: ondisk.DTReg, Name: []byte("x")}
	if err := compactInsert(chunk, 12, 48, &nd); err != nil {
		t.Fatal(err)
	}
	var got []string
	ondisk.DirChunkEntries(chunk, func(o int, d ondisk.Direct) bool {
		got = append(got, fmt.Sprintf("%d:%s/%d", o, d.Name, d.Reclen))
		return true
	})
	want := "0:./12 12:aaaa/16 28:bbbb/16 44:x/16 60:cccc/452"
	if g := strings.Join(got, " "); g != want {
		t.Fatalf("got  %s\nwant %s", g, want)
	}
	// Not enough room: an error, not a panic.
	nd2 := ondisk.Direct{Ino: 10, Name: []byte(strings.Repeat("z", 40))}
	if err := compactInsert(chunk, 12, 48, &nd2); err == nil {
		t.Error("compaction into a too-small slot succeeded")
	}
}

// TestDirhash builds a directory large enough to be indexed, then
// creates, removes and renames names in it at random, checking after each
// step that the index agrees with a linear scan: every name at its
// offset, every chunk's free space right.
func TestDirhash(t *testing.T) {
	m := newMemFS(t, geomMid, Options{Async: true})
	fsys := m.fs
	d := mustIno(t)(fsys.Mkdir(fsys.Root(), "big", 0o755, 0, 0))
	rng := rand.New(rand.NewPCG(3, 4))
	names := map[string]bool{}
	name := func() string {
		return fmt.Sprintf("n%d-%s", rng.IntN(3000), strings.Repeat("p", rng.IntN(40)))
	}
	for len(names) < 1500 {
		n := name()
		if names[n] {
			continue
		}
		mustIno(t)(fsys.Create(d, n, 0o644, 0, 0))
		names[n] = true
	}
	ip, err := fsys.OpenInode(d)
	must(t, err)
	defer ip.Release()
	if _, err := fsys.Lookup(d, "n1"); err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if dirhashOf(ip) == nil {
		t.Fatal("no dirhash for a directory of 1500 entries")
	}
	verify := func(step int) {
		t.Helper()
		scanned := map[string]int64{}
		for _, e := range rawDir(t, fsys, d) {
			if e.ino != 0 {
				scanned[e.name] = e.off
			}
		}
		ip.mu.RLock()
		defer ip.mu.RUnlock()
		dh := dirhashOf(ip)
		if dh == nil {
			t.Fatalf("step %d: dirhash dropped", step)
		}
		if dh.size() != len(names)+2 || len(scanned) != len(names)+2 { // "." and ".." too
			t.Fatalf("step %d: dirhash has %d names, the scan %d, the test %d", step, dh.size(), len(scanned), len(names))
		}
		for n, off := range scanned {
			if got := hashedOffsets(dh, n); !slices.Contains(got, off) {
				t.Fatalf("step %d: %q: hashed at %v, scan found it at %d", step, n, got, off)
			}
		}
		if len(dh.free) != int(ip.din.Size/ondisk.DirBlkSize) {
			t.Fatalf("step %d: %d chunks indexed, directory has %d", step, len(dh.free), ip.din.Size/ondisk.DirBlkSize)
		}
		for c := range dh.free {
			b, pos, err := fsys.chunkAt(ip, int64(c)*ondisk.DirBlkSize)
			if err != nil {
				t.Fatal(err)
			}
			b.RLock()
			free, err := chunkFree(b.Data()[pos : pos+ondisk.DirBlkSize])
			b.RUnlock()
			fsys.cache.Release(b)
			if err != nil || free != dh.free[c] {
				t.Fatalf("step %d: chunk %d: %d free, index says %d (%v)", step, c, free, dh.free[c], err)
			}
		}
	}
	verify(0)
	list := func() []string {
		var l []string
		for n := range names {
			l = append(l, n)
		}
		return l
	}
	for step := 1; step <= 600; step++ {
		switch rng.IntN(3) {
		case 0:
			n := name()
			_, err := fsys.Create(d, n, 0o644, 0, 0)
			if names[n] != errors.Is(err, ErrExist) || err != nil && !names[n] {
				t.Fatalf("create %q: %v (exists %v)", n, err, names[n])
			}
			names[n] = true
		case 1:
			l := list()
			n := l[rng.IntN(len(l))]
			must(t, fsys.Unlink(d, n))
			delete(names, n)
		case 2:
			l := list()
			o, n := l[rng.IntN(len(l))], name()
			must(t, fsys.Rename(d, o, d, n, RenameFlags{}))
			delete(names, o)
			names[n] = true
		}
		if step%100 == 0 {
			verify(step)
		}
	}
	// Remove all but a few: the directory stays indexed while large and
	// lookups keep working.
	for _, n := range list()[10:] {
		must(t, fsys.Unlink(d, n))
		delete(names, n)
	}
	for n := range names {
		if _, err := fsys.Lookup(d, n); err != nil {
			t.Fatalf("lookup %q: %v", n, err)
		}
	}
	checkFS(t, fsys)
	m.reopen()
	for n := range names {
		if _, err := m.fs.Lookup(d, n); err != nil {
			t.Fatalf("after remount: lookup %q: %v", n, err)
		}
	}
	checkFS(t, m.fs)
}

// hashedOffsets is where dh's probe for name leads.
func hashedOffsets(dh *dirhash, name string) []int64 {
	var offs []int64
	t := dh.tagString(name)
	at := uint64(t)
	for off := dh.probe(t, &at); off >= 0; off = dh.probe(t, &at) {
		offs = append(offs, off)
	}
	return offs
}

// TestDirhashBudget: past Options.DirhashMaxEntries the least recently
// used indexes are dropped; lookups stay right and indexes come back.
func TestDirhashBudget(t *testing.T) {
	m := newMemFS(t, geomMid, Options{Async: true, DirhashMaxEntries: 500})
	fsys := m.fs
	var dirs []ondisk.Ino
	for d := range 3 {
		dir := mustIno(t)(fsys.Mkdir(fsys.Root(), "d"+itoa(d), 0o755, 0, 0))
		for i := range 400 {
			mustIno(t)(fsys.Create(dir, fmt.Sprintf("entry-%d-%d", d, i), 0o644, 0, 0))
		}
		dirs = append(dirs, dir)
	}
	for round := range 3 {
		for d, dir := range dirs {
			for i := 0; i < 400; i += 37 {
				if _, err := fsys.Lookup(dir, fmt.Sprintf("entry-%d-%d", d, i)); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			fsys.dirhashes.mu.Lock()
			n, entries := fsys.dirhashes.l.Len(), fsys.dirhashes.entries
			fsys.dirhashes.mu.Unlock()
			if n != 1 || entries > 402 {
				t.Fatalf("round %d: %d indexes holding %d names, budget 500", round, n, entries)
			}
		}
	}
}
