package newfs

import (
	"io"
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// checkImage verifies a freshly made filesystem from the bytes alone, with
// ondisk only: superblock and copies, every cylinder group against its own
// maps, the summary area, the root directory, /.snap and the recovery
// record. It returns the superblock.
func checkImage(t *testing.T, r io.ReaderAt, withSnap bool) *ondisk.Superblock {
	t.Helper()
	sb, loc, err := ondisk.FindSuperblock(r)
	if err != nil {
		t.Fatalf("FindSuperblock: %v", err)
	}
	if loc != ondisk.SblockUFS2 || sb.Sblockactualloc != ondisk.SblockUFS2 {
		t.Fatalf("superblock at %d (actualloc %d), want 65536", loc, sb.Sblockactualloc)
	}
	read := func(off int64, n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil && err != io.EOF {
			t.Fatalf("read %d bytes at %d: %v", n, off, err)
		}
		return b
	}
	primaryRaw := read(ondisk.SblockUFS2, sb.SbsizeBytes())

	// Cylinder groups and the summary area.
	csum := read(sb.FragOffset(sb.Csaddr), int(sb.Cssize))
	frag := int64(sb.Frag)
	var total ondisk.CsumTotal
	for c := ondisk.Cg(0); uint32(c) < sb.Ncg; c++ {
		raw := read(sb.FragOffset(sb.Cgtod(c)), int(sb.Cgsize))
		cg, err := ondisk.DecodeCg(sb, c, raw)
		if err != nil {
			t.Fatalf("cg %d: %v", c, err)
		}
		if err := cg.VerifyHash(); err != nil {
			t.Fatalf("cg %d: %v", c, err)
		}
		if want := min(sb.Ipg, 2*sb.Inopb); cg.Initediblk != want {
			t.Errorf("cg %d: initediblk %d, want %d", c, cg.Initediblk, want)
		}
		// Counts from the maps.
		var got ondisk.Csum
		var frsum [ondisk.MaxFrag]uint32
		nblk := int64(cg.Ndblk) / frag
		for h := int64(0); h < nblk; h++ {
			if cg.IsBlock(h) {
				got.Nbfree++
			} else {
				ondisk.FragRuns(int(frag), cg.BlockMap(h), func(n int) { frsum[n]++; got.Nffree += int32(n) })
			}
			if sb.Contigsumsize > 0 && cg.ClusterFree(h) != cg.IsBlock(h) {
				t.Fatalf("cg %d: cluster map says %v for block %d, free map %v", c, cg.ClusterFree(h), h, cg.IsBlock(h))
			}
		}
		if tail := int64(cg.Ndblk) - nblk*frag; tail > 0 {
			n := int32(0)
			for f := nblk * frag; f < int64(cg.Ndblk); f++ {
				if cg.FragFree(f) {
					n++
				}
			}
			if int64(n) != tail {
				t.Errorf("cg %d: %d of the %d tail fragments free", c, n, tail)
			}
			frsum[n]++
			got.Nffree += n
		}
		for i := int64(0); i < int64(sb.Ipg); i++ {
			if !cg.InodeUsed(i) {
				got.Nifree++
			}
		}
		dirs := int32(0)
		if c == 0 {
			dirs = 1
			if withSnap {
				dirs = 2
			}
		}
		got.Ndir = dirs
		if got != cg.Cs {
			t.Fatalf("cg %d: header says %+v, maps say %+v", c, cg.Cs, got)
		}
		if frsum != cg.Frsum {
			t.Fatalf("cg %d: frsum %v, maps say %v", c, cg.Frsum, frsum)
		}
		if sb.Contigsumsize > 0 {
			want := make([]int32, sb.Contigsumsize+1)
			run := 0
			for h := int64(0); h <= int64(cg.Nclusterblks); h++ {
				if h < int64(cg.Nclusterblks) && cg.ClusterFree(h) {
					run++
					continue
				}
				if run > 0 {
					want[min(run, int(sb.Contigsumsize))]++
				}
				run = 0
			}
			for i := 1; i <= int(sb.Contigsumsize); i++ {
				if cg.ClusterSum(i) != want[i] {
					t.Fatalf("cg %d: clustersum[%d] = %d, map says %d", c, i, cg.ClusterSum(i), want[i])
				}
			}
		}
		// Metadata is never free.
		meta := int64(sb.Dblkno)
		lo := int64(sb.Sblkno)
		if c == 0 {
			lo = 0
			meta += howmany(int64(sb.Cssize), int64(sb.Fsize))
		}
		for f := lo; f < meta; f++ {
			if cg.FragFree(f) {
				t.Fatalf("cg %d: metadata fragment %d is marked free", c, f)
			}
		}
		sum, _ := ondisk.DecodeCsum(csum[int(c)*ondisk.CsumSize:])
		if sum != cg.Cs {
			t.Fatalf("cg %d: summary area has %+v, group has %+v", c, sum, cg.Cs)
		}
		total.Ndir += int64(got.Ndir)
		total.Nbfree += int64(got.Nbfree)
		total.Nifree += int64(got.Nifree)
		total.Nffree += int64(got.Nffree)

		// The superblock copy: the primary but for where it says it is.
		off := sb.FragOffset(sb.Cgsblock(c))
		braw := read(off, ondisk.SblockSize)
		bsb, err := ondisk.DecodeSuperblock(braw)
		if err != nil {
			t.Fatalf("cg %d copy: %v", c, err)
		}
		if err := bsb.VerifyHash(braw); err != nil {
			t.Fatalf("cg %d copy: %v", c, err)
		}
		if bsb.Sblockactualloc != off {
			t.Errorf("cg %d copy: sblockactualloc %d, want %d", c, bsb.Sblockactualloc, off)
		}
		cmp := *bsb
		cmp.Sblockactualloc, cmp.Ckhash = sb.Sblockactualloc, sb.Ckhash
		if cmp != *sb {
			t.Errorf("cg %d copy differs from the primary beyond its location", c)
		}
	}
	if total != sb.Cstotal {
		t.Fatalf("groups add up to %+v, superblock says %+v", total, sb.Cstotal)
	}
	if err := sb.VerifyHash(primaryRaw); err != nil {
		t.Fatal(err)
	}

	// Root directory and /.snap.
	checkDir := func(ino ondisk.Ino, mode uint16, nlink int16, gid uint32, names []string, inos []ondisk.Ino) {
		t.Helper()
		raw := read(sb.InoOffset(ino), ondisk.DinodeSize)
		if err := ondisk.VerifyDinodeHash(sb, raw); err != nil {
			t.Fatalf("inode %d: %v", ino, err)
		}
		di, _ := ondisk.DecodeDinode(raw)
		if di.Mode != mode || di.Nlink != nlink || di.UID != 0 || di.GID != gid || di.Size != ondisk.DirBlkSize ||
			di.Blocks != uint64(sb.Fsize/ondisk.DevBSize) || di.Birthtime != sb.Time || di.Mtime != sb.Time || di.Ckhash == 0 {
			t.Fatalf("inode %d: %+v", ino, di)
		}
		cg0raw := read(sb.FragOffset(sb.Cgtod(0)), int(sb.Cgsize))
		cg0, _ := ondisk.DecodeCg(sb, 0, cg0raw)
		if !cg0.InodeUsed(int64(ino)) || cg0.FragFree(int64(di.Db[0])) {
			t.Fatalf("inode %d or its block %d not allocated", ino, di.Db[0])
		}
		chunk := read(sb.FragOffset(di.Db[0]), ondisk.DirBlkSize)
		var gotNames []string
		var gotInos []ondisk.Ino
		end := 0
		err := ondisk.DirChunkEntries(chunk, func(off int, d ondisk.Direct) bool {
			gotNames = append(gotNames, string(d.Name))
			gotInos = append(gotInos, d.Ino)
			if d.Type != ondisk.DTDir {
				t.Errorf("inode %d: entry %q has type %d", ino, d.Name, d.Type)
			}
			end = off + int(d.Reclen)
			return true
		})
		if err != nil || end != ondisk.DirBlkSize {
			t.Fatalf("inode %d: directory chunk: %v (ends at %d)", ino, err, end)
		}
		if len(gotNames) != len(names) {
			t.Fatalf("inode %d: entries %q %v, want %q %v", ino, gotNames, gotInos, names, inos)
		}
		for i := range names {
			if gotNames[i] != names[i] || gotInos[i] != inos[i] {
				t.Fatalf("inode %d: entries %q %v, want %q %v", ino, gotNames, gotInos, names, inos)
			}
		}
	}
	if withSnap {
		checkDir(ondisk.RootIno, ondisk.IFDIR|0o755, 3, 0, []string{".", "..", ".snap"}, []ondisk.Ino{2, 2, 3})
		checkDir(ondisk.RootIno+1, ondisk.IFDIR|0o775, 2, OperatorGID, []string{".", ".."}, []ondisk.Ino{3, 2})
	} else {
		checkDir(ondisk.RootIno, ondisk.IFDIR|0o755, 2, 0, []string{".", ".."}, []ondisk.Ino{2, 2})
	}

	// The recovery record.
	fsr, _ := ondisk.DecodeFsRecovery(read(ondisk.SblockUFS2-ondisk.FsRecoverySize, ondisk.FsRecoverySize))
	want := ondisk.FsRecovery{Magic: sb.Magic, Fsbtodb: sb.Fsbtodb, Sblkno: sb.Sblkno, Fpg: sb.Fpg, Ncg: sb.Ncg}
	if fsr != want {
		t.Fatalf("recovery record %+v, want %+v", fsr, want)
	}
	return sb
}
