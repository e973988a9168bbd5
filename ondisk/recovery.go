package ondisk

// FsRecovery is struct fsrecovery (20 bytes): newfs writes it at the very end
// of the boot area, just before the superblock at 65536 (so at byte
// 65536-20), so that fsck can find the backup superblocks when the primary is
// lost. Its magic is the filesystem's.
type FsRecovery struct {
	Magic   int32  // 0: fsr_magic
	Fsbtodb int32  // 4: fsr_fsbtodb
	Sblkno  int32  // 8: fsr_sblkno
	Fpg     int32  // 12: fsr_fpg
	Ncg     uint32 // 16: fsr_ncg
}

// FsRecoverySize is sizeof(struct fsrecovery).
const FsRecoverySize = 20

// DecodeFsRecovery decodes the record from the first FsRecoverySize bytes of b.
func DecodeFsRecovery(b []byte) (FsRecovery, error) {
	var f FsRecovery
	if len(b) < FsRecoverySize {
		return f, ErrShort
	}
	r := reader{b: b}
	f.Magic, f.Fsbtodb, f.Sblkno, f.Fpg = r.i32(), r.i32(), r.i32(), r.i32()
	f.Ncg = r.u32()
	return f, nil
}

// Encode writes the record into the first FsRecoverySize bytes of b.
func (f *FsRecovery) Encode(b []byte) error {
	if len(b) < FsRecoverySize {
		return ErrShort
	}
	w := writer{b: b}
	w.i32(f.Magic)
	w.i32(f.Fsbtodb)
	w.i32(f.Sblkno)
	w.i32(f.Fpg)
	w.u32(f.Ncg)
	return nil
}

// BackupSuperblocks lists the byte offsets of the backup superblock in each
// cylinder group (cgsblock of every group), from a recovery record or a
// superblock's geometry: group c's copy is at (c*fpg + sblkno) fragments,
// and a fragment is 512<<fsbtodb bytes.
func (f *FsRecovery) BackupSuperblocks() []int64 {
	out := make([]int64, 0, f.Ncg)
	fragBytes := int64(DevBSize) << uint(f.Fsbtodb&31)
	for c := int64(0); c < int64(f.Ncg); c++ {
		out = append(out, (c*int64(f.Fpg)+int64(f.Sblkno))*fragBytes)
	}
	return out
}
