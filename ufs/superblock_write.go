package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// Writing the superblock and the summary information, which bypass the
// buffer cache.

// summaryBytes encodes the csum array as it goes to fs_csaddr.
func summaryBytes(sb *ondisk.Superblock, cs []ondisk.Csum) []byte {
	b := make([]byte, sb.Fragroundup(int64(sb.Cssize)))
	for i := range cs {
		if (i+1)*ondisk.CsumSize > len(b) {
			break
		}
		cs[i].Encode(b[i*ondisk.CsumSize:])
	}
	return b
}

// writeSuperblock writes the summary area and the superblock (fs_time set
// to now, fs_fmod cleared, check-hash computed) straight to the device at
// the location it was read from, and syncs the device. The backup
// superblocks in the cylinder groups are left alone, as FreeBSD's kernel
// leaves them (newfs, fsck_ffs and growfs write those).
func (fs *FS) writeSuperblock() error {
	var sum, sbb []byte
	fs.alloc.Locked(func(sb *ondisk.Superblock, cs []ondisk.Csum) {
		sum = summaryBytes(sb, cs)
		sb.Fmod = 0
		sb.Time = fs.now().Unix()
		sbb = sb.EncodeWithHash()
	})
	return fs.putSuperblock(sum, sbb)
}

func (fs *FS) putSuperblock(sum, sbb []byte) error {
	if _, err := fs.dev.WriteAt(sum, fs.sb.FragOffset(fs.sb.Csaddr)); err != nil {
		return fmt.Errorf("writing the summary area: %w", err)
	}
	if _, err := fs.dev.WriteAt(sbb, fs.sbLoc); err != nil {
		return fmt.Errorf("writing the superblock: %w", err)
	}
	if err := fs.dev.Sync(); err != nil {
		return fmt.Errorf("syncing the device: %w", err)
	}
	return nil
}
