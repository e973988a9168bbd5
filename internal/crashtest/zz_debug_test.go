package crashtest

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

func TestZZDump(t *testing.T) {
	path := os.Getenv("DUMP_IMG")
	if path == "" {
		t.Skip()
	}
	b, _ := os.ReadFile(path)
	m := blockdev.NewMemBytes(b)
	sb, _, err := ondisk.FindSuperblock(m)
	if err != nil {
		t.Fatal(err)
	}
	ino, _ := strconv.Atoi(os.Getenv("DUMP_INO"))
	off := sb.InoOffset(ondisk.Ino(ino))
	var d ondisk.Dinode
	d.Decode(b[off : off+256])
	fmt.Printf("ino %d mode %o nlink %d size %d blocks %d db %v ib %v extsize %d extb %v\n", ino, d.Mode, d.Nlink, d.Size, d.Blocks, d.Db, d.Ib, d.Extsize, d.Extb)
	for l, p := range d.Ib {
		if p == 0 {
			continue
		}
		o := sb.FragOffset(p)
		var nz []string
		for i := 0; i < int(sb.NINDIR()); i++ {
			if v := binary.LittleEndian.Uint64(b[o+int64(i*8):]); v != 0 {
				nz = append(nz, fmt.Sprintf("%d:%d", i, v))
			}
		}
		fmt.Printf("ib[%d]=%d nonzero %v\n", l, p, nz)
	}
}
