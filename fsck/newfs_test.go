package fsck

import (
	"bytes"
	"context"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
)

// TestNewfsImagesClean: what our own newfs writes checks clean, with every
// check-hash on, in several geometries; and with the primary superblock
// zeroed, -y recovers from a backup.
func TestNewfsImagesClean(t *testing.T) {
	for _, tc := range []struct {
		name         string
		size         int64
		bsize, fsize int
	}{
		{"64MiB-default", 64 << 20, 0, 0},
		{"96MiB-8k1k", 96 << 20, 8192, 1024},
		{"48MiB-4k512", 48 << 20, 4096, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newfs.DefaultParams()
			if tc.bsize != 0 {
				p.Bsize, p.Fsize = tc.bsize, tc.fsize
			}
			m := blockdev.NewMem(tc.size)
			if _, err := newfs.Format(context.Background(), m, p); err != nil {
				t.Fatal(err)
			}
			b := m.Bytes()
			mustBeClean(t, b, tc.name)

			damaged := append([]byte(nil), b...)
			clear(damaged[ondisk.SblockUFS2 : ondisk.SblockUFS2+ondisk.SblockSize])
			rep, _, out, _ := check(t, damaged, Options{Mode: No, Force: true})
			if rep.ExitCode == ExitOK || len(rep.Backups) == 0 {
				t.Fatalf("zeroed superblock: exit %d, backups %v:\n%s", rep.ExitCode, rep.Backups, out)
			}
			rep, fixed, out, err := check(t, damaged, Options{Mode: Yes, Force: true, AltSuperblock: rep.Backups[0]})
			if err != nil {
				t.Fatalf("fsck -y -b %d: exit %d, %v:\n%s", rep.Backups[0], rep.ExitCode, err, out)
			}
			mustBeClean(t, fixed, tc.name+" after recovery")
			if !bytes.Equal(fixed[ondisk.SblockUFS2+1372:ondisk.SblockUFS2+1376], b[ondisk.SblockUFS2+1372:ondisk.SblockUFS2+1376]) {
				t.Fatal("primary superblock magic not restored")
			}
		})
	}
}
