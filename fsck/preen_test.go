package fsck

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// softdepDirty marks the image as a soft-updates filesystem that was not
// unmounted cleanly.
func softdepDirty(m *img) {
	m.sb.Flags |= ondisk.FSDoSoftdep
	m.sb.Clean = 0
	m.writeSuperblock()
}

func TestPreen(t *testing.T) {
	tests := []struct {
		name  string
		fixes bool   // preen repairs it (else stops with exit 8)
		want  string // in the transcript
		apply func(t *testing.T, m *img)
	}{
		{"unclean, nothing wrong", true, "files,", func(t *testing.T, m *img) {}},
		{"unreferenced inode with blocks", true, "(CLEARED)", func(t *testing.T, m *img) {
			// A file whose name soft updates had not written yet.
			f := pick(t, m, 1000, 40000, 1)[0]
			e := m.entryOf(f)
			le.PutUint32(m.b[e.off:], 0)
		}},
		{"unreferenced directory", true, "UNREF DIR", func(t *testing.T, m *img) {
			// A directory whose name's removal reached the disk before
			// its inode was freed: its ".." link of the parent is given
			// back once, not twice.
			var dir string
			for _, d := range m.dirs() {
				leaf := d != ""
				for _, e := range m.entries(m.lookup(d))[2:] {
					if e.dtype == ondisk.DTDir {
						leaf = false
					}
				}
				if leaf {
					dir = d
					break
				}
			}
			if dir == "" {
				t.Fatal("no directory without subdirectories in the image")
			}
			e := m.entryOf(dir)
			le.PutUint32(m.b[e.off:], 0)
		}},
		{"link count too high", true, "(ADJUSTED)", func(t *testing.T, m *img) {
			ino := m.lookup(pick(t, m, 1, 40000, 1)[0])
			dp := m.inode(ino)
			dp.Nlink = 3
			m.putInode(ino, dp)
		}},
		{"free blocks marked in use", true, "(SALVAGED)", func(t *testing.T, m *img) {
			cg := m.cg(0)
			n := 0
			for f := int64(cg.Ndblk) - 1; f > 0 && n < 5; f-- {
				if cg.FragFree(f) {
					cg.SetFragFree(f, false)
					n++
				}
			}
			cg.Sync()
		}},
		{"wrong summary counts", true, "SUMMARY BLK COUNT(S) WRONG IN SUPERBLK", func(t *testing.T, m *img) {
			m.sb.Cstotal.Nffree += 11
		}},
		{"entry naming a free inode", false, "RUN fsck MANUALLY", func(t *testing.T, m *img) {
			e := m.entryOf(pick(t, m, 1, 40000, 1)[0])
			le.PutUint32(m.b[e.off:], uint32(m.freeInode()))
		}},
		{"link count too low", false, "LINK COUNT INCREASING", func(t *testing.T, m *img) {
			ino := m.lookup(pick(t, m, 1, 40000, 2)[1])
			dp := m.inode(ino)
			dp.Nlink = 0
			m.putInode(ino, dp)
		}},
		{"duplicate block", false, "UNEXPECTED SOFT UPDATE INCONSISTENCY; RUN fsck MANUALLY.", func(t *testing.T, m *img) {
			fs := pick(t, m, int64(m.sb.Bsize)+1, 3*int64(m.sb.Bsize), 2)
			da, db := m.inode(m.lookup(fs[0])), m.inode(m.lookup(fs[1]))
			db.Db[0] = da.Db[0]
			m.putInode(m.lookup(fs[1]), db)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := image(t, specSmall)
			m := openImg(t, b)
			tc.apply(t, m)
			softdepDirty(m)
			// What -n -f finds is all leaks exactly when a preen may
			// repair it.
			nrep, _, nout, _ := check(t, b, Options{Mode: No, Force: true})
			leaks := true // nothing found counts as only leaks
			for _, p := range nrep.Problems {
				if p.Kind == "" {
					t.Errorf("problem %q has no kind", p.Message)
				}
				leaks = leaks && p.Leak()
			}
			if leaks != tc.fixes {
				t.Errorf("fsck -n -f: all problems leaks = %v, want %v: %+v\n%s", leaks, tc.fixes, nrep.Problems, nout)
			}
			rep, after, out, err := check(t, b, Options{Mode: Preen})
			if testing.Verbose() {
				t.Logf("fsck -p:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("transcript lacks %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, "** Phase") {
				t.Errorf("a preen prints no phase headers:\n%s", out)
			}
			if !tc.fixes {
				if err == nil || rep.ExitCode != ExitError {
					t.Fatalf("preen: exit %d err %v; want %d and an error", rep.ExitCode, err, ExitError)
				}
				if openImg(t, after).sb.Clean != 0 {
					t.Errorf("preen that stopped marked the filesystem clean")
				}
				// A manual -y then repairs it.
				rep, fixed, out, err := check(t, after, Options{Mode: Yes})
				if err != nil || rep.ExitCode != ExitOK {
					t.Fatalf("fsck -y after preen: exit %d err %v\n%s", rep.ExitCode, err, out)
				}
				mustBeClean(t, fixed, "after preen and -y")
				return
			}
			if err != nil || rep.ExitCode != ExitOK {
				t.Fatalf("preen: exit %d err %v\n%s", rep.ExitCode, err, out)
			}
			if openImg(t, after).sb.Clean != 1 {
				t.Errorf("preen did not mark the filesystem clean")
			}
			if bytes.Equal(after, b) {
				t.Errorf("preen wrote nothing")
			}
			mustBeClean(t, after, "after preen:\n"+out)
		})
	}
}

// TestProblemKinds checks the kind each report site gives, with -n -f.
func TestProblemKinds(t *testing.T) {
	tests := []struct {
		name  string
		spec  imageSpec
		kinds []string // every kind expected among the problems
		apply func(t *testing.T, m *img)
	}{
		{"block count too high", specSmall, []string{KindBlockCountHigh}, func(t *testing.T, m *img) {
			ino := m.lookup(pick(t, m, 1000, 40000, 1)[0])
			dp := m.inode(ino)
			dp.Blocks += 8
			m.putInode(ino, dp)
		}},
		{"block count too low", specSmall, []string{KindBlockCountLow}, func(t *testing.T, m *img) {
			ino := m.lookup(pick(t, m, 1000, 40000, 1)[0])
			dp := m.inode(ino)
			dp.Blocks -= 2
			m.putInode(ino, dp)
		}},
		{"inode in use marked free", specSmall, []string{KindBitmapMissing}, func(t *testing.T, m *img) {
			ino := m.lookup(pick(t, m, 1, 40000, 1)[0])
			g := m.sb.InoToCg(ino)
			cg := m.cg(g)
			cg.SetInodeUsed(int64(ino)%int64(m.sb.Ipg), false)
			cg.Sync()
		}},
		{"block in use marked free", specSmall, []string{KindBitmapMissing}, func(t *testing.T, m *img) {
			dp := m.inode(m.lookup(pick(t, m, 1000, 40000, 1)[0]))
			f := dp.Db[0]
			g := m.sb.Dtog(f)
			cg := m.cg(g)
			cg.SetFragFree(int64(m.sb.Dtogd(f)), true)
			cg.Sync()
		}},
		// A leak in group 0 and a block marked free in group 1: the one
		// maps problem takes the worse kind.
		{"leak then missing", specMulti, []string{KindBitmapMissing}, func(t *testing.T, m *img) {
			cg := m.cg(0)
			for f := int64(cg.Ndblk) - 1; f > 0; f-- {
				if cg.FragFree(f) {
					cg.SetFragFree(f, false)
					break
				}
			}
			cg.Sync()
			var victim ondisk.Frag
			for _, p := range m.files(1, 1<<30) {
				dp := m.inode(m.lookup(p))
				if dp.Db[0] != 0 && m.sb.Dtog(dp.Db[0]) > 0 {
					victim = dp.Db[0]
					break
				}
			}
			if victim == 0 {
				t.Fatal("the image has no file with data outside group 0 to damage")
			}
			g := m.sb.Dtog(victim)
			cg = m.cg(g)
			cg.SetFragFree(int64(m.sb.Dtogd(victim)), true)
			cg.Sync()
		}},
		{"unreferenced file", specSmall, []string{KindUnrefInode}, func(t *testing.T, m *img) {
			e := m.entryOf(pick(t, m, 1000, 40000, 1)[0])
			le.PutUint32(m.b[e.off:], 0)
		}},
		{"entry naming a free inode", specSmall, []string{KindBadEntry}, func(t *testing.T, m *img) {
			e := m.entryOf(pick(t, m, 1, 40000, 1)[0])
			le.PutUint32(m.b[e.off:], uint32(m.freeInode()))
		}},
		{"link count too low", specSmall, []string{KindLinkCountLow}, func(t *testing.T, m *img) {
			ino := m.lookup(pick(t, m, 1, 40000, 1)[0])
			dp := m.inode(ino)
			dp.Nlink = 0
			m.putInode(ino, dp)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := image(t, tc.spec)
			m := openImg(t, b)
			tc.apply(t, m)
			rep, _, out, _ := check(t, b, Options{Mode: No, Force: true})
			have := map[string]bool{}
			for _, p := range rep.Problems {
				if p.Kind == "" {
					t.Errorf("problem %q has no kind", p.Message)
				}
				have[p.Kind] = true
			}
			for _, k := range tc.kinds {
				if !have[k] {
					t.Errorf("no problem of kind %s: %+v\n%s", k, rep.Problems, out)
				}
			}
			if have[KindBitmapMissing] && have[KindBitmapLeak] {
				t.Errorf("maps reported both as leak and missing: %+v", rep.Problems)
			}
		})
	}
}
