package ufs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// TestReadTreeMatchesHost walks a makefs image of a testutil tree with the
// engine and compares every entry with the host tree it was made from:
// type, permission bits, size, contents, symlink targets, link counts and
// mtime seconds (makefs keeps whole seconds only; see TestMakefsTimes).
func TestReadTreeMatchesHost(t *testing.T) {
	for _, geo := range []struct {
		name         string
		bsize, fsize int
	}{{"default", 0, 0}, {"32k_4k", 32768, 4096}, {"4k_512", 4096, 512}} {
		t.Run(geo.name, func(t *testing.T) {
			src := t.TempDir()
			testutil.MakeTree(t, src, testutil.Small())
			img := makeImage(t, src, testutil.MakefsOptions{Bsize: geo.bsize, Fsize: geo.fsize})
			fsys := openImage(t, img)
			if geo.bsize != 0 && int(fsys.sb.Bsize) != geo.bsize {
				t.Fatalf("bsize %d, want %d", fsys.sb.Bsize, geo.bsize)
			}
			n := compareWithHost(t, fsys, fsys.Root(), src, map[ondisk.Ino]bool{})
			if n < 60 {
				t.Errorf("only %d entries compared", n)
			}
		})
	}
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

func compareWithHost(t *testing.T, fsys *FS, dir ondisk.Ino, hostDir string, seen map[ondisk.Ino]bool) int {
	t.Helper()
	hostEnts, err := os.ReadDir(hostDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, e := range hostEnts {
		want[e.Name()] = true
	}
	count := 0
	err = fsys.ReadDir(dir, func(e Dirent) bool {
		switch e.Name {
		case ".":
			if e.Ino != dir {
				t.Errorf("%s: . is %d, want %d", hostDir, e.Ino, dir)
			}
			return true
		case "..":
			return true
		}
		hp := filepath.Join(hostDir, e.Name)
		if !want[e.Name] {
			t.Errorf("%s: not on the host", hp)
			return true
		}
		delete(want, e.Name)
		count++
		st, err := fsys.Stat(e.Ino)
		if err != nil {
			t.Errorf("%s: Stat: %v", hp, err)
			return true
		}
		var hst syscall.Stat_t
		if err := syscall.Lstat(hp, &hst); err != nil {
			t.Fatal(err)
		}
		if uint32(st.Mode) != hst.Mode {
			t.Errorf("%s: mode 0%o, host 0%o", hp, st.Mode, hst.Mode)
		}
		if e.Type != ondisk.DTypeFromMode(st.Mode) {
			t.Errorf("%s: d_type %d, mode 0%o", hp, e.Type, st.Mode)
		}
		if st.Mtime.Unix() != hst.Mtim.Sec {
			t.Errorf("%s: mtime %v, host %d", hp, st.Mtime, hst.Mtim.Sec)
		}
		if st.Type() != ondisk.IFDIR && int64(st.Size) != hst.Size {
			t.Errorf("%s: size %d, host %d", hp, st.Size, hst.Size)
		}
		if st.Type() != ondisk.IFDIR && uint64(st.Nlink) != hst.Nlink {
			t.Errorf("%s: nlink %d, host %d", hp, st.Nlink, hst.Nlink)
		}
		switch st.Type() {
		case ondisk.IFDIR:
			if seen[e.Ino] {
				t.Fatalf("%s: directory cycle", hp)
			}
			seen[e.Ino] = true
			count += compareWithHost(t, fsys, e.Ino, hp, seen)
		case ondisk.IFREG:
			hdata, err := os.ReadFile(hp)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, st.Size+10)
			n, err := fsys.ReadAt(e.Ino, got, 0)
			if n != int(st.Size) || (err != io.EOF) {
				t.Errorf("%s: ReadAt = %d, %v; want %d, EOF", hp, n, err, st.Size)
			}
			if !bytes.Equal(got[:n], hdata) {
				t.Errorf("%s: contents differ", hp)
			}
			// An unaligned read in the middle.
			if len(hdata) > 3000 {
				part := make([]byte, 1777)
				if _, err := fsys.ReadAt(e.Ino, part, 1001); err != nil || !bytes.Equal(part, hdata[1001:2778]) {
					t.Errorf("%s: unaligned read differs (%v)", hp, err)
				}
			}
		case ondisk.IFLNK:
			target, err := os.Readlink(hp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fsys.Readlink(e.Ino)
			if err != nil || got != target {
				t.Errorf("%s: Readlink = %q, %v; want %q", hp, got, err, target)
			}
		}
		return true
	})
	if err != nil {
		t.Errorf("%s: ReadDir: %v", hostDir, err)
	}
	for name := range want {
		t.Errorf("%s: missing from the image", filepath.Join(hostDir, name))
	}
	return count
}

// TestMakefsTimes records what Debian's makefs keeps of a file's times:
// whole seconds of atime and mtime, no nanoseconds. If makefs starts keeping
// nanoseconds this test says so, and the acceptance test can compare them.
func TestMakefsTimes(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "f")
	writeFile(t, p, []byte("x"), 0o644)
	ts := []syscall.Timespec{{Sec: 1000000000, Nsec: 123456789}, {Sec: 1200000000, Nsec: 987654321}}
	if err := syscall.UtimesNano(p, ts); err != nil {
		t.Fatal(err)
	}
	fsys := openImage(t, makeImage(t, src, testutil.MakefsOptions{}))
	ino, err := fsys.Namei("/f")
	if err != nil {
		t.Fatal(err)
	}
	st, err := fsys.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	if st.Atime.Unix() != 1000000000 || st.Mtime.Unix() != 1200000000 {
		t.Errorf("times %v %v", st.Atime, st.Mtime)
	}
	if st.Mtime.Nanosecond() != 0 {
		t.Logf("makefs now keeps nanoseconds (%d): compare them in the acceptance test", st.Mtime.Nanosecond())
	}
}

func TestNamei(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a/b/file"), []byte("hello"), 0o644)
	writeFile(t, filepath.Join(src, "top"), []byte("top"), 0o644)
	for _, l := range []struct{ target, link string }{
		{"b", "a/lb"},                      // relative, to a directory
		{"/a/b", "abs"},                    // absolute
		{"../top", "a/up"},                 // through ..
		{"loop2", "loop1"},                 // a cycle
		{"loop1", "loop2"},                 //
		{"nowhere", "dangling"},            //
		{"a/lb/file", "chain"},             // a symlink through a symlink
		{strings.Repeat("x/", 70), "long"}, // a slow symlink (140 bytes)
	} {
		if err := os.Symlink(l.target, filepath.Join(src, l.link)); err != nil {
			t.Fatal(err)
		}
	}
	img := makeImage(t, src, testutil.MakefsOptions{})
	fsys := openImage(t, img)
	ino := func(p string) ondisk.Ino {
		i, err := fsys.Namei(p)
		if err != nil {
			t.Fatalf("Namei(%q): %v", p, err)
		}
		return i
	}
	file, b, top, lb, chain := ino("/a/b/file"), ino("/a/b"), ino("/top"), ino("/a/lb"), ino("chain")
	tests := []struct {
		path    string
		follow  bool
		want    ondisk.Ino
		wantErr error
	}{
		{"/", false, ondisk.RootIno, nil},
		{"", false, ondisk.RootIno, nil},
		{"a/b/file", false, file, nil},
		{"//a//b/./file", false, file, nil},
		{"/a/b/../b/file", false, file, nil},
		{"/../../a/b", false, b, nil},
		{"/a/lb/file", false, file, nil},
		{"/a/lb", false, lb, nil},
		{"/a/lb", true, b, nil},
		{"/a/lb/", false, b, nil},
		{"/abs/file", false, file, nil},
		{"/a/up", true, top, nil},
		{"/chain", false, chain, nil},
		{"/chain", true, file, nil},
		{"/loop1", false, ino("/loop1"), nil},
		{"/loop1", true, 0, ErrLoop},
		{"/loop1/x", false, 0, ErrLoop},
		{"/dangling", true, 0, ErrNotFound},
		{"/nope", false, 0, ErrNotFound},
		{"/top/x", false, 0, ErrNotDir},
		{"/top/", false, 0, ErrNotDir},
		{"/" + strings.Repeat("n", 256), false, 0, ErrNameTooLong},
		{strings.Repeat("/a", 600), false, 0, ErrNameTooLong},
		{"/long", true, 0, ErrNotFound},
	}
	for _, tc := range tests {
		var got ondisk.Ino
		var err error
		if tc.follow {
			got, err = fsys.NameiFollow(tc.path)
		} else {
			got, err = fsys.Namei(tc.path)
		}
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Namei(%.40q, follow %v) = %d, %v; want %v", tc.path, tc.follow, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Namei(%.40q, follow %v) = %d, %v; want %d", tc.path, tc.follow, got, err, tc.want)
		}
	}
	if target, err := fsys.Readlink(ino("/long")); err != nil || target != strings.Repeat("x/", 70) {
		t.Errorf("slow symlink: %q, %v", target, err)
	}
	if _, err := fsys.Readlink(file); !errors.Is(err, ErrNotSymlink) {
		t.Errorf("Readlink(file) = %v", err)
	}
	if _, err := fsys.Lookup(file, "x"); !errors.Is(err, ErrNotDir) {
		t.Errorf("Lookup in a file = %v", err)
	}
	if _, err := fsys.ReadAt(b, make([]byte, 1), 0); !errors.Is(err, ErrIsDir) {
		t.Errorf("ReadAt(dir) = %v", err)
	}
	if _, err := fsys.Stat(fsys.MaxIno()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Stat(maxino) = %v", err)
	}
	if _, err := fsys.Stat(fsys.MaxIno() - 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(free inode) = %v", err)
	}
}

// TestReadDirAtResumes reads a big directory a few entries at a time.
func TestReadDirAtResumes(t *testing.T) {
	src := t.TempDir()
	for i := range 300 {
		writeFile(t, filepath.Join(src, "d", strings.Repeat("n", i%50)+itoa(i)), nil, 0o644)
	}
	fsys := openImage(t, makeImage(t, src, testutil.MakefsOptions{}))
	d, err := fsys.Namei("/d")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	if err := fsys.ReadDir(d, func(e Dirent) bool { all = append(all, e.Name); return true }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 302 {
		t.Fatalf("%d entries, want 302", len(all))
	}
	var got []string
	off := int64(0)
	for {
		n := 0
		err := fsys.ReadDirAt(d, off, func(e Dirent) bool {
			got = append(got, e.Name)
			off = e.Next
			n++
			return n < 7
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if strings.Join(got, "/") != strings.Join(all, "/") {
		t.Errorf("resumed listing differs: %d vs %d entries", len(got), len(all))
	}
	for _, name := range all[2:] {
		if _, err := fsys.Lookup(d, name); err != nil {
			t.Errorf("Lookup(%q): %v", name, err)
		}
	}
}

// sparseImage makes an image with a file "tri" whose only data block
// lies under the triple indirect block, plus a direct block, built by hand
// from the blocks of a padding file, with 4 KiB blocks and 512-byte
// fragments: the file is about 1 GiB, the image a few MiB.
func sparseImage(t testing.TB) (img string, ino ondisk.Ino, size int64, data map[int64][]byte) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "tri"), []byte("x"), 0o644)
	pad := make([]byte, 64<<10)
	writeFile(t, filepath.Join(src, "pad"), pad, 0o644)
	img = makeImage(t, src, testutil.MakefsOptions{Bsize: 4096, Fsize: 512, Size: "4m"})
	ino = lookupIno(t, img, "/tri")
	padIno := lookupIno(t, img, "/pad")

	e := editImage(t, img)
	padDin := e.inode(padIno)
	blocks := append([]ondisk.Frag(nil), padDin.Db[:6]...) // 6 blocks of 4 KiB: T, D, S, X, Y, Z
	for i, b := range blocks {
		if b == 0 || (i > 0 && b != blocks[i-1]+8) {
			t.Fatalf("pad blocks not contiguous: %v", blocks)
		}
	}
	// The padding file gives its blocks away.
	*padDin = ondisk.Dinode{}
	e.putInode(padIno, padDin)

	nindir := int64(e.sb.Nindir)
	bsize := int64(e.sb.Bsize)
	triBase := int64(ondisk.NDaddr) + nindir + nindir*nindir
	lbnX := triBase + 1*nindir*nindir + 2*nindir + 5 // T[1] -> D, D[2] -> S, S[5] -> X
	ptrBlock := func(idx int, p ondisk.Frag) []byte {
		b := make([]byte, bsize)
		binary.LittleEndian.PutUint64(b[idx*8:], uint64(p))
		return b
	}
	T, D, S, X, Y := blocks[0], blocks[1], blocks[2], blocks[3], blocks[4]
	e.write(e.fragOff(T), ptrBlock(1, D))
	e.write(e.fragOff(D), ptrBlock(2, S))
	// S holds two contiguous data blocks, X and Y, at indexes 5 and 6.
	s := ptrBlock(5, X)
	binary.LittleEndian.PutUint64(s[6*8:], uint64(Y))
	e.write(e.fragOff(S), s)
	data = map[int64][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, blk := range []ondisk.Frag{X, Y} {
		b := make([]byte, bsize)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		e.write(e.fragOff(blk), b)
		data[(lbnX+int64(i))*bsize] = b
	}
	din := e.inode(ino)
	// One direct block too: Z as logical block 3 (a file this big has only
	// full blocks, so makefs's one-fragment block 0 goes).
	Z := blocks[5]
	zb := bytes.Repeat([]byte{0xAB}, int(bsize))
	e.write(e.fragOff(Z), zb)
	data[3*bsize] = zb
	din.Db = [ondisk.NDaddr]ondisk.Frag{}
	din.Db[3] = Z
	din.Ib = [ondisk.NIaddr]ondisk.Frag{0, 0, T}
	size = (lbnX+2)*bsize + 1000 // past Y: a hole at the end too
	din.Size = uint64(size)
	din.Blocks = 6 * uint64(bsize) / 512
	e.putInode(ino, din)
	return img, ino, size, data
}

func TestTripleIndirectSparse(t *testing.T) {
	img, ino, size, data := sparseImage(t)
	if fi, err := os.Stat(img); err != nil || fi.Size() > 8<<20 {
		t.Fatalf("image size %v, %v", fi.Size(), err)
	}
	fsys := openImage(t, img)
	bsize := int64(fsys.sb.Bsize)
	if size < (12+512+512*512)*bsize {
		t.Fatalf("file of %d bytes does not reach the triple indirect level", size)
	}
	// Extents: the direct block, then X and Y merged.
	var exts []Extent
	if err := fsys.Extents(ino, 0, func(e Extent) bool { exts = append(exts, e); return true }); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := range data {
		offs = append(offs, off)
	}
	if len(exts) != 2 || exts[0].Off != 3*bsize || exts[0].Len != bsize ||
		exts[1].Len != 2*bsize || data[exts[1].Off] == nil {
		t.Fatalf("extents %+v, data at %v", exts, offs)
	}
	// Bmap agrees at every level.
	for off := range data {
		p, err := fsys.Bmap(ino, ondisk.Lbn(off/bsize))
		if err != nil || p == 0 {
			t.Errorf("Bmap(%d) = %d, %v", off/bsize, p, err)
		}
	}
	for _, lbn := range []ondisk.Lbn{0, 11, 12, 12 + 511, 12 + 512, 12 + 512 + 512*512, ondisk.Lbn(exts[1].Off/bsize) - 1} {
		if p, err := fsys.Bmap(ino, lbn); err != nil || p != 0 {
			t.Errorf("Bmap(hole %d) = %d, %v", lbn, p, err)
		}
	}
	// Reads: each data block, a read across a hole/data boundary, holes,
	// the end.
	for off, want := range data {
		got := make([]byte, bsize)
		if _, err := fsys.ReadAt(ino, got, off); err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadAt(%d): %v, equal %v", off, err, bytes.Equal(got, want))
		}
	}
	across := make([]byte, 2*bsize)
	if _, err := fsys.ReadAt(ino, across, exts[1].Off-bsize); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(across[:bsize], make([]byte, bsize)) || !bytes.Equal(across[bsize:], data[exts[1].Off]) {
		t.Error("read across a hole into data is wrong")
	}
	tail := make([]byte, 5000)
	n, err := fsys.ReadAt(ino, tail, size-1000)
	if n != 1000 || err != io.EOF || !bytes.Equal(tail[:n], make([]byte, 1000)) {
		t.Errorf("tail read = %d, %v", n, err)
	}
	if n, err := fsys.ReadAt(ino, tail, size); n != 0 || err != io.EOF {
		t.Errorf("read at EOF = %d, %v", n, err)
	}
	// SEEK_DATA / SEEK_HOLE.
	for _, tc := range []struct {
		off, data, hole int64
	}{
		{0, 3 * bsize, 0},
		{3*bsize + 10, 3*bsize + 10, 4 * bsize},
		{4 * bsize, exts[1].Off, 4 * bsize},
		{exts[1].Off + 1, exts[1].Off + 1, exts[1].Off + 2*bsize},
	} {
		if got, err := fsys.SeekData(ino, tc.off); err != nil || got != tc.data {
			t.Errorf("SeekData(%d) = %d, %v; want %d", tc.off, got, err, tc.data)
		}
		if got, err := fsys.SeekHole(ino, tc.off); err != nil || got != tc.hole {
			t.Errorf("SeekHole(%d) = %d, %v; want %d", tc.off, got, err, tc.hole)
		}
	}
	if _, err := fsys.SeekData(ino, exts[1].Off+2*bsize); !errors.Is(err, ErrNoData) {
		t.Errorf("SeekData past the last data = %v", err)
	}
	if _, err := fsys.SeekHole(ino, size); !errors.Is(err, ErrNoData) {
		t.Errorf("SeekHole at EOF = %v", err)
	}
}

// TestCorruptPointers points a file's blocks at metadata and outside the
// filesystem: every read fails with ErrCorrupt naming the inode.
func TestCorruptPointers(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), bytes.Repeat([]byte("z"), 100000), 0o644)
	base := makeImage(t, src, testutil.MakefsOptions{})
	raw, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	ino := lookupIno(t, base, "/f")
	sb, _, err := ondisk.FindSuperblock(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(d *ondisk.Dinode)
	}{
		{"direct past the end", func(d *ondisk.Dinode) { d.Db[0] = ondisk.Frag(sb.Size) }},
		{"direct negative", func(d *ondisk.Dinode) { d.Db[1] = -8 }},
		{"direct in inode table", func(d *ondisk.Dinode) { d.Db[2] = sb.Cgimin(0) }},
		{"indirect unaligned", func(d *ondisk.Dinode) { d.Ib[0] += 1 }},
		{"indirect in cg block", func(d *ondisk.Dinode) { d.Ib[0] = sb.Cgtod(0) }},
		{"huge size", func(d *ondisk.Dinode) { d.Size = 1 << 63 }},
		{"no type", func(d *ondisk.Dinode) { d.Mode = 0o644 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(raw)
			off := sb.InoOffset(ino)
			d, _ := ondisk.DecodeDinode(img[off:])
			tc.edit(d)
			d.Encode(img[off:])
			fsys, err := openBytes(img)
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			buf := make([]byte, 100000)
			_, err = fsys.ReadAt(ino, buf, 0)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadAt = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), "inode "+itoa(int(ino))) {
				t.Errorf("error does not name the inode: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	good := makeImage(t, src, testutil.MakefsOptions{})
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	ufs1 := filepath.Join(t.TempDir(), "ufs1.img")
	testutil.MakefsWith(t, src, ufs1, testutil.MakefsOptions{Version: 1})
	raw1, err := os.ReadFile(ufs1)
	if err != nil {
		t.Fatal(err)
	}
	sb, loc, err := ondisk.FindSuperblock(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	withSB := func(edit func(sb *ondisk.Superblock), hash bool) []byte {
		img := bytes.Clone(raw)
		c := *sb
		edit(&c)
		var b []byte
		if hash {
			b = c.EncodeWithHash()
		} else {
			b = make([]byte, c.SbsizeBytes())
			c.Encode(b)
		}
		copy(img[loc:], b)
		return img
	}
	tests := []struct {
		name    string
		img     []byte
		wantErr error
	}{
		{"good", raw, nil},
		{"zeros", make([]byte, 1<<20), ErrNotUFS2},
		{"ufs1", raw1, ErrUFS1},
		{"bad bsize", withSB(func(s *ondisk.Superblock) { s.Bsize = 3000 }, false), ErrCorrupt},
		{"stale hash without FS_METACKHASH", withSB(func(s *ondisk.Superblock) {
			s.Metackhash = ondisk.CKSuperblock
			s.Ckhash = 0x12345678
		}, false), nil},
		{"bad hash with FS_METACKHASH", withSB(func(s *ondisk.Superblock) {
			s.Metackhash = ondisk.CKSuperblock
			s.Flags |= ondisk.FSMetackhash
			s.Ckhash = 0x12345678
		}, false), ErrCorrupt},
		{"good hash with FS_METACKHASH", withSB(func(s *ondisk.Superblock) {
			s.Metackhash = ondisk.CKSuperblock
			s.Flags |= ondisk.FSMetackhash
		}, true), nil},
		{"summary outside", withSB(func(s *ondisk.Superblock) { s.Csaddr = s.Cgimin(0) }, false), ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys, err := openBytes(tc.img)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer fsys.Close()
				if _, err := fsys.Namei("/f"); err != nil {
					t.Errorf("Namei: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestPrepareSuperblockAndWriteRefusal(t *testing.T) {
	base := ondisk.Superblock{Size: 1000, Fsize: 1024, Fshift: 10, Clean: 1}
	tests := []struct {
		name    string
		edit    func(*ondisk.Superblock)
		devSize int64
		want    string // substring of the reason; "" for writable
	}{
		{"clean", func(*ondisk.Superblock) {}, 1 << 20, ""},
		{"suj", func(s *ondisk.Superblock) { s.Flags |= ondisk.FSSuj }, 1 << 20, "FS_SUJ"},
		{"gjournal", func(s *ondisk.Superblock) { s.Flags |= ondisk.FSGjournal }, 1 << 20, "FS_GJOURNAL"},
		{"ck_dir is cleared, not refused", func(s *ondisk.Superblock) {
			s.Flags |= ondisk.FSMetackhash
			s.Metackhash = ondisk.CKDir | ondisk.CKIndir | ondisk.CKInode | 0x100
		}, 1 << 20, ""},
		{"ck_indir without FS_METACKHASH is ignored", func(s *ondisk.Superblock) { s.Metackhash = ondisk.CKIndir }, 1 << 20, ""},
		{"needs fsck", func(s *ondisk.Superblock) { s.Flags |= ondisk.FSNeedsFsck }, 1 << 20, "fsck"},
		{"unclean", func(s *ondisk.Superblock) { s.Clean = 0 }, 1 << 20, "not cleanly unmounted"},
		{"unclean with soft updates", func(s *ondisk.Superblock) {
			s.Clean = 0
			s.Flags |= ondisk.FSDoSoftdep
		}, 1 << 20, ""},
		{"truncated", func(*ondisk.Superblock) {}, 1000*1024 - 1, "truncated"},
		{"snapshots", func(s *ondisk.Superblock) { s.Snapinum[0], s.Snapinum[3] = 5, 9 }, 1 << 20, "2 snapshots"},
		{"unknown flag", func(s *ondisk.Superblock) { s.Flags |= 0x40000000 }, 1 << 20, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := base
			tc.edit(&sb)
			prepareSuperblock(&sb)
			if sb.Flags&^ondisk.FSSupported != 0 {
				t.Errorf("unsupported flags kept: 0x%x", sb.Flags)
			}
			if sb.Metackhash&^ondisk.CKSupported != 0 {
				t.Errorf("unsupported check-hashes kept: 0x%x", sb.Metackhash)
			}
			got := WriteRefusal(&sb, tc.devSize)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("WriteRefusal = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReadWriteOpenFallsBackToReadOnly opens an image with a journal flag
// read-write: it must come up read-only with the reason.
func TestReadWriteOpenFallsBackToReadOnly(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	img := makeImage(t, src, testutil.MakefsOptions{})
	e := editImage(t, img)
	e.sb.Flags |= ondisk.FSSuj
	e.putSuperblock()
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	if !fsys.ReadOnly() || !strings.Contains(fsys.ReadOnlyReason(), "FS_SUJ") {
		t.Errorf("ReadOnly %v reason %q", fsys.ReadOnly(), fsys.ReadOnlyReason())
	}
}

// TestInodeCheckHash turns CK_INODE on (hashing every inode), reads the
// tree, then damages one inode: it must fail with ErrCorrupt.
func TestInodeCheckHash(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "d/f"), []byte("data"), 0o644)
	img := makeImage(t, src, testutil.MakefsOptions{})
	fino := lookupIno(t, img, "/d/f")
	e := editImage(t, img)
	e.sb.Flags |= ondisk.FSMetackhash
	e.sb.Metackhash = ondisk.CKInode | ondisk.CKSuperblock
	e.putSuperblock()
	for ino := ondisk.Ino(0); ino < ondisk.Ino(e.sb.Ipg); ino++ { // makefs: one cylinder group
		e.putInode(ino, e.inode(ino))
	}
	fsys := openImage(t, img)
	if _, err := fsys.Namei("/d/f"); err != nil {
		t.Fatalf("hashed image: %v", err)
	}
	fsys.Close()

	off := e.sb.InoOffset(fino) + 8 // di_gid
	e.write(off, []byte{0xFF})
	fsys = openImage(t, img)
	_, err := fsys.Namei("/d/f")
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ondisk.ErrCheckHash) && !strings.Contains(err.Error(), "check-hash") {
		t.Errorf("damaged inode: %v", err)
	}
}

// TestXattrs writes an extended attribute area by hand (makefs makes
// none) and reads it back.
func TestXattrs(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	writeFile(t, filepath.Join(src, "pad"), make([]byte, 8192), 0o644)
	img := makeImage(t, src, testutil.MakefsOptions{})
	ino, padIno := lookupIno(t, img, "/f"), lookupIno(t, img, "/pad")
	e := editImage(t, img)
	pad := e.inode(padIno)
	blk := pad.Db[0]
	*pad = ondisk.Dinode{}
	e.putInode(padIno, pad)

	attrs := []ondisk.Extattr{
		{Namespace: ondisk.ExtattrNamespaceUser, Name: []byte("comment"), Value: []byte("hello, world")},
		{Namespace: ondisk.ExtattrNamespaceSystem, Name: []byte("dmfs"), Value: bytes.Repeat([]byte{7}, 1500)},
		{Namespace: ondisk.ExtattrNamespaceUser, Name: []byte("empty"), Value: nil},
	}
	var area []byte
	for _, a := range attrs {
		b := make([]byte, a.Len())
		if err := a.Encode(b); err != nil {
			t.Fatal(err)
		}
		area = append(area, b...)
	}
	e.write(e.fragOff(blk), area)
	d := e.inode(ino)
	d.Extsize = uint32(len(area))
	d.Extb[0] = blk
	e.putInode(ino, d)

	fsys := openImage(t, img)
	list, err := fsys.ListXattr(ino)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Name != "comment" || list[1].Namespace != ondisk.ExtattrNamespaceSystem || list[0].Value != nil {
		t.Fatalf("ListXattr = %+v", list)
	}
	for _, a := range attrs {
		v, err := fsys.GetXattr(ino, a.Namespace, string(a.Name))
		if err != nil || !bytes.Equal(v, a.Value) {
			t.Errorf("GetXattr(%s) = %q, %v", a.Name, v, err)
		}
	}
	if _, err := fsys.GetXattr(ino, ondisk.ExtattrNamespaceSystem, "comment"); !errors.Is(err, ErrNoAttr) {
		t.Errorf("missing attribute: %v", err)
	}
	if st, _ := fsys.Stat(ino); st.Extsize != uint32(len(area)) {
		t.Errorf("Stat.Extsize = %d", st.Extsize)
	}
	// A record running past the area is corruption.
	binary.LittleEndian.PutUint32(area[0:], 4096)
	e.write(e.fragOff(blk), area)
	fsys2 := openImage(t, img)
	if _, err := fsys2.Xattrs(ino); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt area: %v", err)
	}
}

func TestClosed(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), nil, 0o644)
	img := makeImage(t, src, testutil.MakefsOptions{})
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(dev, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(ondisk.RootIno); !errors.Is(err, ErrClosed) {
		t.Errorf("Stat after Close = %v", err)
	}
	if err := fsys.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}
