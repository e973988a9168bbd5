package ufs

import (
	"github.com/ufs2/ufs2/alloc"
	"github.com/ufs2/ufs2/ondisk"
)

// Statfs is what statfs(2) reports, with FreeBSD's meaning of each field
// (ffs_statfs): sizes are counted in fragments.
type Statfs struct {
	Bsize   int64  // f_bsize: the fragment size, the unit of the block counts
	Iosize  int64  // f_iosize: the block size, the best I/O size
	Blocks  uint64 // f_blocks: fragments in the data area (fs_dsize)
	Bfree   uint64 // f_bfree: free fragments
	Bavail  int64  // f_bavail: free fragments outside the minfree reserve; negative when the reserve is in use
	Files   uint64 // f_files: inodes, less the two reserved ones
	Ffree   uint64 // f_ffree: free inodes
	NameMax uint32 // f_namemax: 255
}

// Statfs returns the filesystem's numbers as FreeBSD's statfs gives them.
func (fs *FS) Statfs() Statfs {
	var st alloc.Stat
	if fs.alloc != nil {
		st = fs.alloc.Statfs()
	} else {
		sb := fs.sb
		st = alloc.Stat{
			Fsize: int64(sb.Fsize), Bsize: int64(sb.Bsize), Blocks: sb.Dsize,
			Bfree:  int64(sb.Blkstofrags(sb.Cstotal.Nbfree)) + sb.Cstotal.Nffree,
			Bavail: sb.Freespace(int64(sb.Minfree)),
			Files:  int64(sb.Ncg)*int64(sb.Ipg) - int64(ondisk.RootIno),
			Ffree:  sb.Cstotal.Nifree,
		}
	}
	return Statfs{
		Bsize: st.Fsize, Iosize: st.Bsize,
		Blocks: uint64(max(st.Blocks, 0)), Bfree: uint64(max(st.Bfree, 0)), Bavail: st.Bavail,
		Files: uint64(max(st.Files, 0)), Ffree: uint64(max(st.Ffree, 0)),
		NameMax: ondisk.MaxNameLen,
	}
}

// Check recounts the cylinder groups' maps against every summary (see
// alloc.Check) and returns the disagreements. Read-write only.
func (fs *FS) Check() ([]alloc.Discrepancy, error) {
	if err := fs.writable(); err != nil {
		return nil, err
	}
	return fs.alloc.Check()
}
