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
