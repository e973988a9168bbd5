package ondisk

import "encoding/binary"

// IndirPtr is block pointer i of indirect block data (UFS2's 64-bit
// little-endian ufs2_daddr_t).
func IndirPtr(data []byte, i int) Frag {
	return Frag(binary.LittleEndian.Uint64(data[i*8:]))
}

// SetIndirPtr stores p as block pointer i of indirect block data.
func SetIndirPtr(data []byte, i int, p Frag) {
	binary.LittleEndian.PutUint64(data[i*8:], uint64(p))
}

// Btodb is btodb(): bytes in DEV_BSIZE sectors, the unit of di_blocks and
// fs_pendingblocks.
func Btodb(n int64) int64 { return n / DevBSize }

// ExtBlkSize is the allocated size of block i of an extended attribute area
// of size bytes (the area's last block may be a fragment, as a small
// file's is), 0 past its end.
func (sb *Superblock) ExtBlkSize(size int64, i int) int64 {
	if int64(i)*int64(sb.Bsize) >= size {
		return 0
	}
	return sb.Sblksize(size, Lbn(i))
}
