package ondisk

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Crc32c is FreeBSD's calculate_crc32c(~0, b, len(b)): CRC-32C seeded with
// all ones and, unlike the usual convention, not inverted at the end. It is
// the check-hash of superblocks, cylinder groups and inodes.
func Crc32c(b []byte) uint32 {
	return ^crc32.Checksum(b, castagnoli)
}

// crc32cSkip is Crc32c over b with the four bytes at off taken as zero,
// which is how every UFS check-hash excludes its own field.
func crc32cSkip(b []byte, off int) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, zero[:])
	c = crc32.Update(c, castagnoli, b[off+4:])
	return ^c
}
