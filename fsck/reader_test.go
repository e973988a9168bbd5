package fsck

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// img is a test's view of an image held in memory: a small independent
// reader (no fsck code) to find inodes, read files and damage metadata.
type img struct {
	t     testing.TB
	b     []byte
	sb    *ondisk.Superblock
	cache map[string]fileState // tree() of the undamaged image, for picking
}

func openImg(t testing.TB, b []byte) *img {
	t.Helper()
	sb, _, err := ondisk.FindSuperblock(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("test image: %v", err)
	}
	return &img{t: t, b: b, sb: sb}
}

func (m *img) inodeOff(ino ondisk.Ino) int64 { return m.sb.InoOffset(ino) }

func (m *img) inode(ino ondisk.Ino) *ondisk.Dinode {
	m.t.Helper()
	dp := new(ondisk.Dinode)
	off := m.inodeOff(ino)
	if err := dp.Decode(m.b[off : off+ondisk.DinodeSize]); err != nil {
		m.t.Fatalf("inode %d: %v", ino, err)
	}
	return dp
}

// putInode writes dp back, with a check-hash when the image has them.
func (m *img) putInode(ino ondisk.Ino, dp *ondisk.Dinode) {
	off := m.inodeOff(ino)
	if err := dp.EncodeWithHash(m.sb, m.b[off:off+ondisk.DinodeSize]); err != nil {
		m.t.Fatal(err)
	}
}

func (m *img) frag(f ondisk.Frag, n int) []byte {
	off := m.sb.FragOffset(f)
	return m.b[off : off+int64(n)*int64(m.sb.Fsize)]
}

// blocks returns the data block addresses of dp by logical block, 0 for
// holes, as many as the size covers.
func (m *img) blocks(dp *ondisk.Dinode) []ondisk.Frag {
	sb := m.sb
	n := (int64(dp.Size) + int64(sb.Bsize) - 1) / int64(sb.Bsize)
	out := make([]ondisk.Frag, 0, n)
	for i := 0; i < ondisk.NDaddr && int64(len(out)) < n; i++ {
		out = append(out, dp.Db[i])
	}
	var walk func(b ondisk.Frag, level int)
	walk = func(b ondisk.Frag, level int) {
		per := int64(1)
		for i := 0; i < level; i++ {
			per *= sb.NINDIR()
		}
		if b == 0 {
			for k := int64(0); k < sb.NINDIR()*per && int64(len(out)) < n; k++ {
				out = append(out, 0)
			}
			return
		}
		blk := m.frag(b, int(sb.Frag))
		for k := int64(0); k < sb.NINDIR() && int64(len(out)) < n; k++ {
			p := ondisk.Frag(le.Uint64(blk[k*8:]))
			if level == 0 {
				out = append(out, p)
			} else {
				walk(p, level-1)
			}
		}
	}
	for lvl := 0; lvl < ondisk.NIaddr && int64(len(out)) < n; lvl++ {
		walk(dp.Ib[lvl], lvl)
	}
	return out
}

// content returns a file's bytes (a symlink's target).
func (m *img) content(dp *ondisk.Dinode) []byte {
	if s, ok := dp.ShortLink(m.sb); ok {
		return s
	}
	out := make([]byte, 0, dp.Size)
	bs := int64(m.sb.Bsize)
	for i, b := range m.blocks(dp) {
		n := min(bs, int64(dp.Size)-int64(i)*bs)
		if b == 0 {
			out = append(out, make([]byte, n)...)
			continue
		}
		off := m.sb.FragOffset(b)
		out = append(out, m.b[off:off+n]...)
	}
	return out
}

type entry struct {
	ino    ondisk.Ino
	name   string
	dtype  uint8
	off    int64 // byte offset of the entry in the image
	reclen int
}

// entries lists a directory's entries (unused ones skipped).
func (m *img) entries(dir ondisk.Ino) []entry {
	dp := m.inode(dir)
	var out []entry
	bs := int64(m.sb.Bsize)
	for i, b := range m.blocks(dp) {
		if b == 0 {
			continue
		}
		n := min(bs, int64(dp.Size)-int64(i)*bs)
		base := m.sb.FragOffset(b)
		for c := int64(0); c < n; c += ondisk.DirBlkSize {
			_ = ondisk.DirChunkEntries(m.b[base+c:base+c+ondisk.DirBlkSize], func(off int, d ondisk.Direct) bool {
				if d.Ino != 0 {
					out = append(out, entry{ino: d.Ino, name: string(d.Name), dtype: d.Type, off: base + c + int64(off), reclen: int(d.Reclen)})
				}
				return true
			})
		}
	}
	return out
}

// lookup resolves a path from the root ("" is the root).
func (m *img) lookup(path string) ondisk.Ino {
	m.t.Helper()
	ino := ondisk.RootIno
	if path == "" {
		return ino
	}
	for _, part := range bytes.Split([]byte(path), []byte("/")) {
		found := false
		for _, e := range m.entries(ino) {
			if e.name == string(part) {
				ino, found = e.ino, true
				break
			}
		}
		if !found {
			m.t.Fatalf("lookup %q: %q not found", path, part)
		}
	}
	return ino
}

// entryOf returns the entry naming path in its directory.
func (m *img) entryOf(path string) entry {
	m.t.Helper()
	dir, name := "", path
	if i := bytes.LastIndexByte([]byte(path), '/'); i >= 0 {
		dir, name = path[:i], path[i+1:]
	}
	for _, e := range m.entries(m.lookup(dir)) {
		if e.name == name {
			return e
		}
	}
	m.t.Fatalf("no entry %q", path)
	return entry{}
}

type fileState struct {
	ino  ondisk.Ino
	mode uint16
	sum  [32]byte
}

// tree walks the whole tree: path -> type and content digest.
func (m *img) tree() map[string]fileState {
	out := map[string]fileState{}
	var walk func(dir ondisk.Ino, prefix string, depth int)
	walk = func(dir ondisk.Ino, prefix string, depth int) {
		if depth > 64 {
			m.t.Fatalf("directory loop at %q", prefix)
		}
		for _, e := range m.entries(dir) {
			if e.name == "." || e.name == ".." {
				continue
			}
			p := prefix + e.name
			dp := m.inode(e.ino)
			fs := fileState{ino: e.ino, mode: dp.Mode}
			if dp.IsDir() {
				out[p] = fs
				walk(e.ino, p+"/", depth+1)
				continue
			}
			fs.sum = sha256.Sum256(m.content(dp))
			out[p] = fs
		}
	}
	walk(ondisk.RootIno, "", 0)
	return out
}

// files returns the regular files of the tree with at least minBlocks
// blocks of data and at most maxSize bytes, sorted by path.
func (m *img) files(minSize, maxSize int64) []string {
	var out []string
	if m.cache == nil {
		m.cache = m.tree()
	}
	for p, fs := range m.cache {
		if fs.mode&ondisk.IFMT != ondisk.IFREG {
			continue
		}
		dp := m.inode(fs.ino)
		if int64(dp.Size) >= minSize && int64(dp.Size) <= maxSize && dp.Nlink == 1 {
			out = append(out, p)
		}
	}
	sortStrings(out)
	return out
}

func (m *img) dirs() []string {
	var out []string
	for p, fs := range m.tree() {
		if fs.mode&ondisk.IFMT == ondisk.IFDIR && p != "lost+found" {
			out = append(out, p)
		}
	}
	sortStrings(out)
	return out
}

// cg returns group g decoded over the image's bytes (changes go straight
// to the image; call Sync).
func (m *img) cg(g ondisk.Cg) *ondisk.CylGroup {
	m.t.Helper()
	off := m.sb.FragOffset(m.sb.Cgtod(g))
	cg, err := ondisk.DecodeCg(m.sb, g, m.b[off:off+int64(m.sb.Cgsize)])
	if err != nil {
		m.t.Fatalf("cg %d: %v", g, err)
	}
	return cg
}

// writeSuperblock encodes m.sb at its place.
func (m *img) writeSuperblock() {
	raw := m.sb.EncodeWithHash()
	copy(m.b[m.sb.Sblockloc:], raw)
}

// freeInode returns an unallocated inode of group 0 below cg_initediblk.
func (m *img) freeInode() ondisk.Ino {
	m.t.Helper()
	cg := m.cg(0)
	for i := int64(ondisk.RootIno) + 1; i < int64(cg.Initediblk); i++ {
		if !cg.InodeUsed(i) && m.inode(ondisk.Ino(i)).Mode == 0 {
			return ondisk.Ino(i)
		}
	}
	m.t.Fatal("no free inode in group 0")
	return 0
}

// enableCheckHashes turns on superblock, cylinder group and inode
// check-hashes and computes them all, as a kernel that supports them would.
func (m *img) enableCheckHashes() {
	sb := m.sb
	sb.Flags |= ondisk.FSMetackhash
	sb.Metackhash = ondisk.CKSuperblock | ondisk.CKCylGrp | ondisk.CKInode
	for g := ondisk.Cg(0); g < ondisk.Cg(sb.Ncg); g++ {
		cg := m.cg(g)
		for i := uint32(0); i < cg.Initediblk; i++ {
			ino := ondisk.Ino(uint32(g)*sb.Ipg + i)
			if dp := m.inode(ino); dp.Mode != 0 {
				m.putInode(ino, dp)
			}
		}
		cg.Sync()
	}
	m.writeSuperblock()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (fs fileState) String() string { return fmt.Sprintf("ino %d mode %o", fs.ino, fs.mode) }
