package ufs

import (
	"bytes"
	"io"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

func TestWriteBasic(t *testing.T) {
	for _, g := range []testGeom{geomSmall, geomBig} {
		t.Run(g.name, func(t *testing.T) {
			m := newMemFS(t, g, Options{})
			checkFS(t, m.fs)
			root := m.fs.Root()
			ino := mustIno(t)(m.fs.Create(root, "hello", 0o644, 1000, 1000))
			data := []byte("hello, world\n")
			if n, err := m.fs.WriteAt(ino, data, 0); n != len(data) || err != nil {
				t.Fatalf("WriteAt = %d, %v", n, err)
			}
			checkFS(t, m.fs)
			m.reopen()
			checkFS(t, m.fs)
			got := make([]byte, 100)
			n, err := m.fs.ReadAt(ino, got, 0)
			if err != io.EOF || !bytes.Equal(got[:n], data) {
				t.Fatalf("ReadAt = %q, %v", got[:n], err)
			}
			if ino2, err := m.fs.Lookup(root, "hello"); err != nil || ino2 != ino {
				t.Fatalf("Lookup = %d, %v", ino2, err)
			}
			sb := m.fs.Superblock()
			if sb.Clean != 0 {
				t.Errorf("open filesystem has fs_clean %d", sb.Clean)
			}
			t.Logf("ncg %d ipg %d fpg %d initediblk?", sb.Ncg, sb.Ipg, sb.Fpg)
			_ = ondisk.RootIno
		})
	}
}
