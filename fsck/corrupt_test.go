package fsck

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// damage is one kind of corruption: apply damages the image and returns
// the paths (or path prefixes) whose content or place a repair may
// change; every other file must come out byte-identical.
type damage struct {
	name string
	spec imageSpec
	want string // in the -n transcript
	// nexit is fsck_ffs's exit status for -n: 0 when the check ran to
	// its end (what -n leaves unrepaired does not change it), 16 when
	// something asks for a rerun, 8 when the check could not be made.
	nexit int
	alt   int64 // -b for the repairing run
	apply func(t *testing.T, m *img) []string
}

// pick returns the first of the files in [minSize, maxSize].
func pick(t *testing.T, m *img, minSize, maxSize int64, n int) []string {
	t.Helper()
	fs := m.files(minSize, maxSize)
	if len(fs) < n {
		t.Fatalf("want %d files of %d..%d bytes, have %d", n, minSize, maxSize, len(fs))
	}
	return fs[:n]
}

// dirWithEntries returns a directory holding at least n entries besides
// "." and ".." in its first chunk, and those entries.
func dirWithEntries(t *testing.T, m *img, n int) (string, []entry) {
	t.Helper()
	for _, d := range append([]string{""}, m.dirs()...) {
		es := m.entries(m.lookup(d))
		if len(es) < n+2 {
			continue
		}
		first := es[0].off - es[0].off%ondisk.DirBlkSize
		var in []entry
		for _, e := range es[2:] {
			if e.off < first+ondisk.DirBlkSize && m.inode(e.ino).Mode&ondisk.IFMT == ondisk.IFREG {
				in = append(in, e)
			}
		}
		if len(in) >= n {
			return d, in
		}
	}
	t.Fatal("no directory with enough entries")
	return "", nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func zeroSuperblock(m *img) { clear(m.b[m.sb.Sblockloc : m.sb.Sblockloc+ondisk.SblockSize]) }

var damages = []damage{
	{name: "zeroed cylinder group 0", spec: specSmall, want: "CYLINDER GROUP 0: INTEGRITY CHECK FAILED", nexit: ExitRerun,
		apply: func(t *testing.T, m *img) []string {
			off := m.sb.FragOffset(m.sb.Cgtod(0))
			clear(m.b[off : off+int64(m.sb.Cgsize)])
			return nil
		}},
	{name: "zeroed cylinder groups 1 and 5", spec: specMulti, want: "CYLINDER GROUP 5: INTEGRITY CHECK FAILED", nexit: ExitRerun,
		apply: func(t *testing.T, m *img) []string {
			for _, g := range []ondisk.Cg{1, 5} {
				off := m.sb.FragOffset(m.sb.Cgtod(g))
				clear(m.b[off : off+int64(m.sb.Cgsize)])
			}
			return nil
		}},
	{name: "bad primary superblock, backups found", spec: specMulti, want: "LOOK FOR ALTERNATE SUPERBLOCKS? no", nexit: ExitError,
		apply: func(t *testing.T, m *img) []string { zeroSuperblock(m); return nil }},
	{name: "bad primary superblock, -b", spec: specSmall, want: "LOOK FOR ALTERNATE SUPERBLOCKS? no", nexit: ExitError, alt: 32,
		apply: func(t *testing.T, m *img) []string {
			if m.sb.Sblkno*m.sb.Fsize != 32*512 {
				t.Fatalf("backup not at sector 32: sblkno %d fsize %d", m.sb.Sblkno, m.sb.Fsize)
			}
			zeroSuperblock(m)
			return nil
		}},
	{name: "block map bits flipped", spec: specSmall, want: "BLK(S) MISSING IN BIT MAPS",
		apply: func(t *testing.T, m *img) []string {
			cg := m.cg(0)
			dp := m.inode(m.lookup(pick(t, m, 20000, 40000, 1)[0]))
			rel := m.sb.Dtogd(dp.Db[0])
			for i := int64(0); i < int64(m.sb.Frag); i++ {
				cg.SetFragFree(rel+i, true) // in use, marked free
			}
			for f := int64(cg.Ndblk) - 1; f > 0; f-- {
				if cg.FragFree(f) {
					cg.SetFragFree(f, false) // free, marked in use
					break
				}
			}
			cg.Sync()
			return nil
		}},
	{name: "inode map bits flipped", spec: specSmall, want: "BLK(S) MISSING IN BIT MAPS",
		apply: func(t *testing.T, m *img) []string {
			cg := m.cg(0)
			free := m.freeInode()
			used := m.lookup(pick(t, m, 1, 40000, 1)[0])
			cg.SetInodeUsed(int64(used), false)
			cg.SetInodeUsed(int64(free), true)
			cg.Sync()
			return nil
		}},
	{name: "block claimed by two files", spec: specSmall, want: "DUP I=",
		apply: func(t *testing.T, m *img) []string {
			fs := pick(t, m, int64(m.sb.Bsize)+1, 3*int64(m.sb.Bsize), 2)
			a, b := m.lookup(fs[0]), m.lookup(fs[1])
			da, db := m.inode(a), m.inode(b)
			db.Db[0] = da.Db[0]
			m.putInode(b, db)
			return fs
		}},
	{name: "pointer past the end of the filesystem", spec: specSmall, want: "BAD I=",
		apply: func(t *testing.T, m *img) []string {
			f := pick(t, m, 2*int64(m.sb.Bsize)+1, 4*int64(m.sb.Bsize), 1)[0]
			ino := m.lookup(f)
			dp := m.inode(ino)
			dp.Db[1] = ondisk.Frag(m.sb.Size + 800)
			m.putInode(ino, dp)
			return []string{f}
		}},
	{name: "indirect pointer past the end", spec: specSmall, want: "BAD I=",
		apply: func(t *testing.T, m *img) []string {
			f := pick(t, m, 13*int64(m.sb.Bsize), 1<<30, 1)[0]
			ino := m.lookup(f)
			dp := m.inode(ino)
			dp.Ib[0] = ondisk.Frag(m.sb.Size * 3)
			m.putInode(ino, dp)
			return []string{f}
		}},
	{name: "file size beyond its blocks", spec: specSmall, want: "BEYOND END OF ALLOCATED FILE",
		apply: func(t *testing.T, m *img) []string {
			f := pick(t, m, 13*int64(m.sb.Bsize), 1<<30, 1)[0]
			ino := m.lookup(f)
			dp := m.inode(ino)
			dp.Size += 40 * uint64(m.sb.Bsize)
			m.putInode(ino, dp)
			return []string{f}
		}},
	{name: "directory size not a multiple of 512", spec: specSmall, want: "NOT MULTIPLE OF 512",
		apply: func(t *testing.T, m *img) []string {
			ino := m.lookup("deep1/deep2")
			dp := m.inode(ino)
			dp.Size += 100
			m.putInode(ino, dp)
			return nil
		}},
	{name: "wrong di_blocks", spec: specSmall, want: "INCORRECT BLOCK COUNT",
		apply: func(t *testing.T, m *img) []string {
			ino := m.lookup(pick(t, m, 5000, 40000, 1)[0])
			dp := m.inode(ino)
			dp.Blocks += 16
			m.putInode(ino, dp)
			return nil
		}},
	{name: "entry naming a free inode", spec: specSmall, want: "UNALLOCATED",
		apply: func(t *testing.T, m *img) []string {
			f := pick(t, m, 100, 40000, 1)[0]
			e := m.entryOf(f)
			le.PutUint32(m.b[e.off:], uint32(m.freeInode()))
			return []string{f}
		}},
	{name: "entry naming an out-of-range inode", spec: specSmall, want: "I OUT OF RANGE",
		apply: func(t *testing.T, m *img) []string {
			f := pick(t, m, 100, 40000, 2)[1]
			e := m.entryOf(f)
			le.PutUint32(m.b[e.off:], m.sb.Ncg*m.sb.Ipg+7)
			return []string{f}
		}},
	{name: "broken ..", spec: specSmall, want: "BAD INODE NUMBER FOR '..'",
		apply: func(t *testing.T, m *img) []string {
			e := m.entries(m.lookup("deep1/deep2/deep3"))[1]
			if e.name != ".." {
				t.Fatalf("second entry is %q", e.name)
			}
			le.PutUint32(m.b[e.off:], uint32(ondisk.RootIno))
			return nil
		}},
	{name: "orphaned directory", spec: specSmall, want: "UNREF DIR",
		apply: func(t *testing.T, m *img) []string {
			e := m.entryOf("deep1/deep2")
			le.PutUint32(m.b[e.off:], 0)
			return []string{"deep1/deep2"}
		}},
	{name: "link count too high", spec: specSmall, want: "LINK COUNT FILE",
		apply: func(t *testing.T, m *img) []string {
			ino := m.lookup(pick(t, m, 1, 40000, 1)[0])
			dp := m.inode(ino)
			dp.Nlink = 5
			m.putInode(ino, dp)
			return nil
		}},
	{name: "link count zero", spec: specSmall, want: "COUNT 0 SHOULD BE 1",
		apply: func(t *testing.T, m *img) []string {
			ino := m.lookup(pick(t, m, 1, 40000, 2)[1])
			dp := m.inode(ino)
			dp.Nlink = 0
			m.putInode(ino, dp)
			return nil
		}},
	{name: "bad record length", spec: specSmall, want: "DIRECTORY CORRUPTED",
		apply: func(t *testing.T, m *img) []string {
			dir, es := dirWithEntries(t, m, 3)
			var hit []string
			for _, e := range m.entries(m.lookup(dir))[2:] {
				hit = append(hit, join(dir, e.name))
			}
			le.PutUint16(m.b[es[1].off+4:], 6)
			return hit
		}},
	{name: "bad d_type", spec: specSmall, want: "BAD TYPE VALUE",
		apply: func(t *testing.T, m *img) []string {
			e := m.entryOf(pick(t, m, 1, 40000, 1)[0])
			m.b[e.off+6] = ondisk.DTSock
			return nil
		}},
	{name: "missing .", spec: specSmall, want: "MISSING '.'",
		apply: func(t *testing.T, m *img) []string {
			e := m.entries(m.lookup("deep1"))[0]
			le.PutUint32(m.b[e.off:], 0)
			return nil
		}},
	// The first entry named otherwise than "." with an inode out of
	// range (two bytes of fsck-rounds.py seed 1264): removed, and "."
	// added in the same run, not the next.
	{name: "first entry out of range, not named .", spec: specSmall, want: "I OUT OF RANGE",
		apply: func(t *testing.T, m *img) []string {
			e := m.entries(m.lookup("deep1"))[0]
			le.PutUint32(m.b[e.off:], m.sb.Ncg*m.sb.Ipg+7)
			m.b[e.off+8] = 0x8f
			return nil
		}},
	{name: "second entry out of range, not named ..", spec: specSmall, want: "I OUT OF RANGE",
		apply: func(t *testing.T, m *img) []string {
			e := m.entries(m.lookup("deep1/deep2"))[1]
			le.PutUint32(m.b[e.off:], m.sb.Ncg*m.sb.Ipg+7)
			m.b[e.off+9] = 'x'
			return nil
		}},
	// A byte of the standard superblock's fs_sbsize (fuzz seeds 569 and
	// 988): -y goes on with it (IGNORE ALTERNATE SUPER BLOCK), and must
	// leave the backup agreeing, or every later check stops there.
	{name: "superblock disagrees with the last backup", spec: specSmall, want: "DISAGREE WITH THOSE IN", nexit: ExitError,
		apply: func(t *testing.T, m *img) []string {
			m.b[m.sb.Sblockloc+104] ^= 0x02
			return nil
		}},
	{name: "bad inode check-hash", spec: specHash, want: "INODE CHECK-HASH FAILED",
		apply: func(t *testing.T, m *img) []string {
			ino := m.lookup(pick(t, m, 1, 40000, 1)[0])
			off := m.inodeOff(ino)
			m.b[off+244] ^= 0x5a
			return nil
		}},
	{name: "bad cylinder group check-hash", spec: specHash, want: "CYLINDER GROUP 0: INTEGRITY CHECK FAILED", nexit: ExitRerun,
		apply: func(t *testing.T, m *img) []string {
			off := m.sb.FragOffset(m.sb.Cgtod(0))
			m.b[off+132] ^= 1
			return nil
		}},
	{name: "bad superblock check-hash", spec: specHash, want: "SUPERBLOCK CHECK-HASH FAILED",
		apply: func(t *testing.T, m *img) []string {
			m.b[m.sb.Sblockloc+1304] ^= 0x10
			return nil
		}},
	{name: "unreferenced inode", spec: specSmall, want: "UNREF FILE",
		apply: func(t *testing.T, m *img) []string {
			ino := m.freeInode()
			m.putInode(ino, &ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1, Mtime: 1e9})
			cg := m.cg(0)
			cg.SetInodeUsed(int64(ino), true)
			cg.Cs.Nifree--
			cg.Sync()
			m.sb.Cstotal.Nifree--
			csOff := m.sb.FragOffset(m.sb.Csaddr)
			le.PutUint32(m.b[csOff+8:], uint32(cg.Cs.Nifree))
			m.writeSuperblock()
			return nil
		}},
	{name: "wrong summary totals", spec: specSmall, want: "SUMMARY BLK COUNT(S) WRONG IN SUPERBLK",
		apply: func(t *testing.T, m *img) []string {
			m.sb.Cstotal.Nbfree += 7
			m.sb.Cstotal.Nifree -= 2
			m.writeSuperblock()
			return nil
		}},
	{name: "wrong cylinder group summary", spec: specMulti, want: "SUMMARY INFORMATION BAD",
		apply: func(t *testing.T, m *img) []string {
			cg := m.cg(2)
			cg.Cs.Nffree += 3
			cg.Frsum[1] += 2
			cg.Sync()
			return nil
		}},
	{name: "partially allocated inode", spec: specSmall, want: "PARTIALLY ALLOCATED INODE",
		apply: func(t *testing.T, m *img) []string {
			ino := m.freeInode()
			m.putInode(ino, &ondisk.Dinode{Size: 4096, Db: [ondisk.NDaddr]ondisk.Frag{77}})
			return nil
		}},
	{name: "unknown file type", spec: specSmall, want: "UNKNOWN FILE TYPE",
		apply: func(t *testing.T, m *img) []string {
			f := pick(t, m, 1, 40000, 3)[2]
			ino := m.lookup(f)
			dp := m.inode(ino)
			dp.Mode = ondisk.IFWHT | 0o644
			m.putInode(ino, dp)
			return []string{f}
		}},
	{name: "corrupt extended attribute area", spec: specSmall, want: "CORRUPT EXTENDED ATTRIBUTES",
		apply: func(t *testing.T, m *img) []string {
			cg := m.cg(0)
			var free int64 = -1
			for f := int64(cg.Ndblk) - 1; f > int64(m.sb.Dblkno); f-- {
				if cg.FragFree(f) {
					free = f
					break
				}
			}
			if free < 0 {
				t.Fatal("no free fragment")
			}
			clear(m.frag(ondisk.Frag(free), 1))
			ino := m.lookup(pick(t, m, 1, 40000, 1)[0])
			dp := m.inode(ino)
			dp.Extsize = 64
			dp.Extb[0] = ondisk.Frag(free)
			dp.Blocks += uint64(m.sb.Fsize / ondisk.DevBSize)
			m.putInode(ino, dp)
			return nil
		}},
	{name: "zero-length directory", spec: specSmall, want: "ZERO LENGTH",
		apply: func(t *testing.T, m *img) []string {
			d := "deep1/deep2/deep3/deep4"
			ino := m.lookup(d)
			dp := m.inode(ino)
			dp.Size = 0
			dp.Db[0] = 0
			m.putInode(ino, dp)
			return []string{d}
		}},
}

func TestCorruption(t *testing.T) {
	if len(damages) < 15 {
		t.Fatalf("only %d kinds of damage", len(damages))
	}
	for _, dmg := range damages {
		t.Run(dmg.name, func(t *testing.T) {
			orig := image(t, dmg.spec)
			before := openImg(t, orig).tree()
			b := bytes.Clone(orig)
			touched := dmg.apply(t, openImg(t, b))
			if bytes.Equal(b, orig) {
				t.Fatal("the damage changed nothing")
			}

			// -n reports and changes nothing.
			rep, after, out, _ := check(t, b, Options{Mode: No, Force: true})
			if rep.ExitCode != dmg.nexit || rep.Clean || len(rep.Problems) == 0 {
				t.Errorf("fsck -n: exit %d, clean %v, %d problems; want exit %d, not clean, some problems",
					rep.ExitCode, rep.Clean, len(rep.Problems), dmg.nexit)
			}
			if !strings.Contains(out, dmg.want) {
				t.Errorf("fsck -n transcript lacks %q:\n%s", dmg.want, out)
			}
			if !bytes.Equal(after, b) {
				t.Fatalf("fsck -n changed the image")
			}

			// -y repairs (a second -y when the first asks for it).
			fixed := b
			var yout string
			for run := 0; run < 2; run++ {
				opts := Options{Mode: Yes, Force: true}
				if run == 0 {
					opts.AltSuperblock = dmg.alt
				}
				rep, fixed, out, err := check(t, fixed, opts)
				yout += out
				if err != nil {
					t.Fatalf("fsck -y: %v\n%s", err, yout)
				}
				if rep.ExitCode == ExitOK {
					if !rep.Modified {
						t.Errorf("fsck -y repaired nothing")
					}
					b = fixed
					break
				}
				if rep.ExitCode != ExitRerun || run == 1 {
					t.Fatalf("fsck -y: exit %d\n%s", rep.ExitCode, yout)
				}
				b = fixed
			}
			if m := openImg(t, b); m.sb.Clean != 1 {
				t.Errorf("not marked clean after repair")
			}
			if testing.Verbose() {
				t.Logf("fsck -n:\n%s\nfsck -y:\n%s", out, yout)
			}
			mustBeClean(t, b, "after -y:\n"+yout)

			// Files the damage did not touch are intact.
			after2 := openImg(t, b).tree()
			for p, fs := range before {
				if isTouched(p, touched) {
					continue
				}
				got, ok := after2[p]
				switch {
				case !ok:
					t.Errorf("%s: gone after repair\n%s", p, yout)
				case got.mode != fs.mode || got.sum != fs.sum:
					t.Errorf("%s: changed by repair (%v -> %v)", p, fs, got)
				}
			}
		})
	}
}

func isTouched(p string, touched []string) bool {
	for _, x := range touched {
		if p == x || strings.HasPrefix(p, x+"/") {
			return true
		}
	}
	return false
}
