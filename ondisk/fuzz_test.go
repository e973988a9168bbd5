package ondisk

import (
	"bytes"
	"errors"
	"testing"
)

// testSuperblock returns a small but consistent UFS2 geometry: 32 KiB
// blocks, 4 KiB fragments, 4 groups of 16 MiB.
func testSuperblock() *Superblock {
	sb := &Superblock{
		Magic: FSUFS2Magic, Bsize: 32768, Fsize: 4096, Frag: 8, Bshift: 15, Fshift: 12,
		Fragshift: 3, Fsbtodb: 3, Bmask: ^int32(32767), Fmask: ^int32(4095),
		Qbmask: 32767, Qfmask: 4095, Sbsize: 4096, Ncg: 4, Ipg: 1024, Inopb: 128,
		Nindir: 4096, Fpg: 4096, Sblkno: 24, Cblkno: 32, Iblkno: 40, Dblkno: 40 + 64,
		Contigsumsize: 16, Maxsymlinklen: MaxSymlinkLen, Minfree: 8, Sblockloc: SblockUFS2,
		Cssize: 4096, Metackhash: CKSuperblock | CKCylGrp | CKInode, Flags: FSMetackhash,
	}
	sb.Size = 4 * 4096
	sb.Dsize = sb.Size - 4*int64(sb.Dblkno) - 1
	sb.Csaddr = Frag(sb.Dblkno)
	sb.Cgsize = int32(sb.Fragroundup(sb.CgMapsEnd()))
	return sb
}

func TestTestSuperblockValid(t *testing.T) {
	sb := testSuperblock()
	if err := sb.Validate(); err != nil {
		t.Fatal(err)
	}
	raw := sb.EncodeWithHash()
	got, err := DecodeSuperblock(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.VerifyHash(raw); err != nil {
		t.Fatal(err)
	}
	raw[100] ^= 1
	if err := got.VerifyHash(raw); err == nil {
		t.Fatal("flipped bit not caught by the superblock check-hash")
	}
}

func TestCgMapsAndHash(t *testing.T) {
	sb := testSuperblock()
	cg := NewCg(sb, 1)
	for h := int64(0); h < int64(cg.Nclusterblks); h++ {
		cg.SetBlock(h, true)
		cg.ClusterAcct(h, 1)
	}
	// One run longer than fs_contigsumsize counts once, in the last slot.
	if cg.ClusterSum(16) != 1 || cg.MaxCluster() != 16 {
		t.Fatalf("cluster summary: sum[16]=%d max=%d", cg.ClusterSum(16), cg.MaxCluster())
	}
	// Take one fragment out of block 3: the block leaves the cluster map
	// and its seven free fragments become one run of 7.
	cg.ClusterAcct(3, -1)
	cg.SetFragFree(3*8, false)
	cg.FragAcct(cg.BlockMap(3), 1)
	if cg.Frsum[7] != 1 || cg.IsBlock(3) {
		t.Fatalf("frsum %v", cg.Frsum)
	}
	cg.Sync()
	again, err := DecodeCg(sb, 1, cg.B)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.VerifyHash(); err != nil {
		t.Fatal(err)
	}
	cg.B[cg.Freeoff] ^= 0x80
	if err := again.VerifyHash(); err == nil {
		t.Fatal("flipped map bit not caught by the cylinder group check-hash")
	}
	if _, err := DecodeCg(sb, 2, cg.B); err == nil {
		t.Fatal("group 1's block accepted as group 2")
	}
}

func TestDinodeHashAndShortLink(t *testing.T) {
	sb := testSuperblock()
	d := Dinode{Mode: IFLNK | 0o777, Nlink: 1}
	d.SetShortLink([]byte("../some/target"))
	b := make([]byte, DinodeSize)
	d.EncodeWithHash(sb, b)
	if err := VerifyDinodeHash(sb, b); err != nil {
		t.Fatal(err)
	}
	back, _ := DecodeDinode(b)
	if l, ok := back.ShortLink(sb); !ok || string(l) != "../some/target" {
		t.Fatalf("short link %q %v", l, ok)
	}
	b[0] ^= 1
	if err := VerifyDinodeHash(sb, b); err == nil {
		t.Fatal("flipped bit not caught by the inode check-hash")
	}
}

func FuzzSuperblock(f *testing.F) {
	f.Add(testSuperblock().EncodeWithHash())
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := DecodeSuperblock(b)
		if err != nil {
			return
		}
		out := make([]byte, SuperblockSize)
		sb.Encode(out)
		if !bytes.Equal(out, b[:SuperblockSize]) {
			t.Fatal("round trip differs")
		}
		_ = sb.VerifyHash(b)
		if sb.Validate() != nil {
			return
		}
		// A validated superblock makes the geometry safe to use.
		for c := Cg(0); c < Cg(min(sb.Ncg, 8)); c++ {
			_ = sb.Cgtod(c) + sb.Cgimin(c) + sb.Cgdmin(c)
			_ = sb.CgFrags(c)
		}
		_ = sb.InoToFsba(Ino(sb.Ipg - 1))
		_ = NewCg(sb, 0)
	})
}

func FuzzCg(f *testing.F) {
	sb := testSuperblock()
	cg := NewCg(sb, 0)
	cg.Sync()
	f.Add(cg.B)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < int(sb.Cgsize) {
			b = append(b, make([]byte, int(sb.Cgsize)-len(b))...)
		}
		cg, err := DecodeCg(sb, 0, b)
		if err != nil {
			return
		}
		_ = cg.VerifyHash()
		for i := int64(0); i < int64(sb.Ipg); i++ {
			cg.InodeUsed(i)
		}
		for h := int64(0); h < int64(sb.Fpg/sb.Frag); h++ {
			cg.FragAcct(cg.BlockMap(h), 1)
			cg.IsBlock(h)
			cg.ClusterFree(h)
		}
		for h := int64(0); h < int64(cg.Nclusterblks); h++ {
			cg.ClusterAcct(h, 1)
		}
		cg.MaxCluster()
		cg.Sync()
	})
}

func FuzzDinode(f *testing.F) {
	f.Add(make([]byte, DinodeSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDinode(b)
		if err != nil {
			return
		}
		out := make([]byte, DinodeSize)
		d.Encode(out)
		if !bytes.Equal(out, b[:DinodeSize]) {
			t.Fatal("round trip differs")
		}
		d.ShortLink(testSuperblock())
		_ = VerifyDinodeHash(testSuperblock(), b)
	})
}

func FuzzDirChunk(f *testing.F) {
	chunk := make([]byte, DirBlkSize)
	(&Direct{Ino: 2, Reclen: 12, Type: DTDir, Name: []byte(".")}).Encode(chunk)
	(&Direct{Ino: 2, Reclen: DirBlkSize - 12, Type: DTDir, Name: []byte("..")}).Encode(chunk[12:])
	f.Add(chunk)
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = DirChunkEntries(b, func(off int, d Direct) bool {
			if off+int(d.Reclen) > len(b) {
				t.Fatalf("entry at %d runs past the chunk", off)
			}
			return true
		})
	})
}

func FuzzExtattr(f *testing.F) {
	b := make([]byte, 48)
	(&Extattr{Namespace: 1, Name: []byte("user.a"), Value: []byte("xyz")}).Encode(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = WalkExtattrs(b, func(off int, e Extattr) bool {
			rec := Extattr{Namespace: e.Namespace, Name: e.Name, Value: e.Value}
			if rec.Len() > len(b)-off {
				t.Fatalf("record at %d longer than the area", off)
			}
			return true
		})
	})
}

func FuzzFsRecovery(f *testing.F) {
	f.Add(make([]byte, FsRecoverySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeFsRecovery(b)
		if err != nil {
			return
		}
		if r.Ncg < 1<<16 {
			r.BackupSuperblocks()
		}
	})
}

func TestFindSuperblockStopsAtUnfinishedNewfs(t *testing.T) {
	sb := testSuperblock()
	sb.Magic = FSBadMagic
	img := make([]byte, SblockUFS2+SblockSize)
	copy(img[SblockUFS2:], sb.EncodeWithHash())
	good := testSuperblock()
	good.Sblockloc = SblockUFS1
	copy(img[SblockUFS1:], good.EncodeWithHash())
	if _, _, err := FindSuperblock(bytes.NewReader(img)); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("got %v, want ErrIncomplete", err)
	}
}
