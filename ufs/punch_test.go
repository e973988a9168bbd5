package ufs

import (
	"bytes"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// TestPunchHole: a punched range reads as zeros, the whole blocks inside
// it are freed (di_blocks and the free count say so), the rest of the file
// is untouched, the last block stays allocated, and the filesystem checks
// clean after a remount; with and without soft updates.
func TestPunchHole(t *testing.T) {
	for _, g := range []testGeom{geomBig, geomBigSU} {
		t.Run(g.name, func(t *testing.T) {
			mem := blockdev.NewMemBytes(emptyImage(t, g))
			fsys, err := Open(mem, Options{})
			if err != nil {
				t.Fatal(err)
			}
			bs := int64(fsys.sb.Bsize)
			const nblk = 40 // past the direct blocks
			want := make([]byte, nblk*bs-100)
			for i := range want {
				want[i] = byte(i/7 + 1)
			}
			ino := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
			if _, err := fsys.WriteAt(ino, want, 0); err != nil {
				t.Fatal(err)
			}
			must(t, fsys.Sync())
			st0 := mustStat(t, fsys, ino)
			free0 := fsys.Statfs().Bfree
			punch := func(off, n int64) {
				t.Helper()
				must(t, fsys.PunchHole(ino, off, n))
				for i := off; i < min(off+n, int64(len(want))); i++ {
					want[i] = 0
				}
			}
			punch(bs+bs/2, 15*bs)         // blocks 2..15 freed, parts of 1 and 16 zeroed
			punch(20*bs, 30*bs)           // to past the end: 20..38 freed, the last kept
			punch(3*bs, bs)               // already a hole
			punch(int64(len(want))-10, 5) // inside the kept last block
			must(t, fsys.Sync())
			st := mustStat(t, fsys, ino)
			freed := int64(14 + 19)
			if got := int64(st0.Blocks-st.Blocks) / (bs / 512); got != freed {
				t.Errorf("di_blocks went down by %d blocks, want %d", got, freed)
			}
			if got := int64(fsys.Statfs().Bfree-free0) / int64(int(bs)/int(fsys.sb.Fsize)); got != freed {
				t.Errorf("%d blocks more free, want %d", got, freed)
			}
			if st.Size != uint64(len(want)) {
				t.Errorf("size %d, want %d", st.Size, len(want))
			}
			check := func(fsys *FS) {
				t.Helper()
				got := make([]byte, len(want))
				if n, err := fsys.ReadAt(ino, got, 0); n != len(got) || !bytes.Equal(got, want) {
					i := 0
					for i < len(got) && got[i] == want[i] {
						i++
					}
					t.Errorf("contents after punching: %d bytes, %v; first difference at %d", n, err, i)
				}
			}
			check(fsys)
			must(t, fsys.Close())
			fsys, err = Open(mem, Options{})
			if err != nil {
				t.Fatal(err)
			}
			check(fsys)
			checkFS(t, fsys)
			must(t, fsys.Close())
		})
	}
}

func mustStat(t *testing.T, fsys *FS, ino ondisk.Ino) Stat {
	t.Helper()
	st, err := fsys.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
