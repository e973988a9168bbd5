package newfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
	tib = int64(1) << 40
)

// TestComputeFreeBSD1GiB pins the geometry FreeBSD 14's newfs prints for a
// 1 GiB device with default options (a well-known output: 4 groups of
// 256.03MB, 8193 blocks, 32896 inodes, copies at 192, 524544, 1048896,
// 1573248) and the fields that follow from it.
func TestComputeFreeBSD1GiB(t *testing.T) {
	l, err := Compute(DefaultParams(), gib)
	if err != nil {
		t.Fatal(err)
	}
	sb := l.SB
	for _, f := range []struct {
		name      string
		got, want int64
	}{
		{"fs_size", sb.Size, 262144},
		{"fs_ncg", int64(sb.Ncg), 4},
		{"fs_fpg", int64(sb.Fpg), 65544},
		{"fs_ipg", int64(sb.Ipg), 32896},
		{"fs_bsize", int64(sb.Bsize), 32768},
		{"fs_fsize", int64(sb.Fsize), 4096},
		{"fs_frag", int64(sb.Frag), 8},
		{"fs_sblkno", int64(sb.Sblkno), 24},
		{"fs_cblkno", int64(sb.Cblkno), 32},
		{"fs_iblkno", int64(sb.Iblkno), 40},
		{"fs_dblkno", int64(sb.Dblkno), 2096},
		{"fs_csaddr", int64(sb.Csaddr), 2096},
		{"fs_cssize", int64(sb.Cssize), 4096},
		{"fs_cgsize", int64(sb.Cgsize), 16384},
		{"fs_sbsize", int64(sb.Sbsize), 4096},
		{"fs_maxcontig", int64(sb.Maxcontig), 32},
		{"fs_contigsumsize", int64(sb.Contigsumsize), 16},
		{"fs_maxbpg", int64(sb.Maxbpg), 4096},
		{"fs_maxbsize", int64(sb.Maxbsize), 32768},
		{"fs_metaspace", sb.Metaspace, 2616},
		{"fs_minfree", int64(sb.Minfree), 8},
		{"fs_optim", int64(sb.Optim), ondisk.FSOptTime},
		{"fs_fsbtodb", int64(sb.Fsbtodb), 3},
		{"fs_nindir", int64(sb.Nindir), 4096},
		{"fs_inopb", int64(sb.Inopb), 128},
		{"fs_maxsymlinklen", int64(sb.Maxsymlinklen), 120},
		{"fs_sblockloc", sb.Sblockloc, 65536},
		{"fs_providersize", sb.Providersize, 262144},
		{"fs_flags", int64(sb.Flags), ondisk.FSDoSoftdep | ondisk.FSMetackhash},
		{"fs_metackhash", int64(sb.Metackhash), ondisk.CKSuperblock | ondisk.CKCylGrp | ondisk.CKInode},
		{"fs_old_flags", int64(uint8(sb.OldFlags)), ondisk.FSFlagsUpdated},
		{"fs_clean", int64(sb.Clean), 1},
		{"fs_avgfilesize", int64(sb.Avgfilesize), 16384},
		{"fs_avgfpdir", int64(sb.Avgfpdir), 64},
		{"fs_maxfilesize", int64(sb.Maxfilesize), 32768*12 - 1 + 32768*4096 + 32768*4096*4096 + 32768*4096*4096*4096},
		{"fs_dsize", sb.Dsize, 262144 - 24 - 4*(2096-24) - 1},
		{"cs_ndir", sb.Cstotal.Ndir, 2},
		{"cs_nifree", sb.Cstotal.Nifree, 4*32896 - 4},
		{"cs_nffree", sb.Cstotal.Nffree, 21},
		{"root fragment", int64(l.RootFrag), 2104},
		{".snap fragment", int64(l.SnapFrag), 2112},
	} {
		if f.got != f.want {
			t.Errorf("%s = %d, want %d", f.name, f.got, f.want)
		}
	}
	var out bytes.Buffer
	if err := l.WriteSummary(&out, "/dev/md0", 80); err != nil {
		t.Fatal(err)
	}
	want := "/dev/md0: 1024.0MB (2097152 sectors) block size 32768, fragment size 4096\n" +
		"\tusing 4 cylinder groups of 256.03MB, 8193 blks, 32896 inodes.\n" +
		"\twith soft updates\n" +
		"super-block backups (for fsck_ffs -b #) at:\n" +
		" 192, 524544, 1048896, 1573248\n"
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
	}
	if len(l.Notes) != 0 {
		t.Errorf("notes for the defaults: %q", l.Notes)
	}
}

// TestComputeGeometry checks mkfs's rules over a range of sizes and
// options: the map fits the group block, the last group holds its
// metadata, the group count is MINCYLGRPS or more unless the map is full.
func TestComputeGeometry(t *testing.T) {
	mod := func(f func(*Params)) Params { p := DefaultParams(); f(&p); return p }
	for _, tc := range []struct {
		name  string
		p     Params
		media int64
		notes []string // substrings expected among the notes
	}{
		{"1t", DefaultParams(), tib, nil},
		{"100g", DefaultParams(), 100 * gib, nil},
		{"64m", DefaultParams(), 64 * mib, nil},
		{"odd", DefaultParams(), 3*gib + 12345*512, nil},
		{"tiny", DefaultParams(), 2 * mib, nil},
		{"b4096", mod(func(p *Params) { p.Bsize, p.Fsize = 4096, 512 }), 512 * mib, nil},
		{"b65536", mod(func(p *Params) { p.Bsize, p.Fsize = 65536, 8192 }), 10 * gib, nil},
		{"b65536-f65536", mod(func(p *Params) { p.Bsize, p.Fsize = 65536, 65536 }), 10 * gib, nil},
		{"frag-too-small", mod(func(p *Params) { p.Bsize, p.Fsize = 65536, 512 }), gib, []string{"increasing fragment size from 512 to block size / 8 (8192)"}},
		{"frag-bigger", mod(func(p *Params) { p.Bsize, p.Fsize = 4096, 8192 }), gib, []string{"increasing block size from 4096 to fragment size (8192)"}},
		{"dense", mod(func(p *Params) { p.Density = 1024 }), gib, nil},
		{"sparse-inodes", mod(func(p *Params) { p.Density = 1 << 20 }), 100 * gib, nil},
		{"minfree0", mod(func(p *Params) { p.Minfree = 0 }), gib, []string{"changing optimization to space"}},
		{"maxblkspercg", mod(func(p *Params) { p.MaxBlksPerCg = 4096 }), 10 * gib, nil},
		{"sector4k", mod(func(p *Params) { p.SectorSize = 4096 }), gib, nil},
		{"reserved", mod(func(p *Params) { p.Reserved = 2048 }), gib, nil},
		{"size", mod(func(p *Params) { p.Size = 300 * mib }), gib, nil},
		{"label", mod(func(p *Params) { p.VolumeLabel = "root_fs-1" }), gib, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Compute(tc.p, tc.media)
			if err != nil {
				t.Fatal(err)
			}
			sb := l.SB
			if err := sb.Validate(); err != nil {
				t.Fatal(err)
			}
			if sb.CgSizeFor() > int64(sb.Bsize) || int64(sb.Cgsize) > int64(sb.Bsize) {
				t.Errorf("CGSIZE %d, cgsize %d > bsize %d", sb.CgSizeFor(), sb.Cgsize, sb.Bsize)
			}
			if sb.CgMapsEnd() > int64(sb.Cgsize) {
				t.Errorf("maps end at %d, cgsize %d", sb.CgMapsEnd(), sb.Cgsize)
			}
			last := sb.CgFrags(ondisk.Cg(sb.Ncg - 1))
			if last < int64(sb.Dblkno) {
				t.Errorf("last group has %d fragments, metadata needs %d", last, sb.Dblkno)
			}
			if int64(sb.Ncg) != howmany(sb.Size, int64(sb.Fpg)) {
				t.Errorf("ncg %d for size %d fpg %d", sb.Ncg, sb.Size, sb.Fpg)
			}
			limit := tc.media - tc.p.Reserved*int64(l.SectorSize)
			if tc.p.Size > 0 {
				limit = tc.p.Size
			}
			if sb.Size*int64(sb.Fsize) > limit || sb.Size*int64(sb.Fsize) <= limit-int64(sb.Fsize)-int64(l.SectorSize) {
				t.Errorf("fs_size %d fragments of %d for %d bytes", sb.Size, sb.Fsize, limit)
			}
			if sb.Providersize != tc.media/int64(sb.Fsize) {
				t.Errorf("providersize %d, want %d", sb.Providersize, tc.media/int64(sb.Fsize))
			}
			if int64(sb.Ipg)%int64(sb.Inopb) != 0 || int64(sb.Ncg)*int64(sb.Ipg) > 1<<32 {
				t.Errorf("ipg %d", sb.Ipg)
			}
			if sb.VolumeName() != tc.p.VolumeLabel {
				t.Errorf("volname %q", sb.VolumeName())
			}
			for _, want := range tc.notes {
				found := false
				for _, n := range l.Notes {
					found = found || strings.Contains(n, want)
				}
				if !found {
					t.Errorf("notes %q lack %q", l.Notes, want)
				}
			}
			var out bytes.Buffer
			if err := l.WriteSummary(&out, "img", 80); err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if len(line) >= 80 && !strings.HasPrefix(line, "img:") {
					t.Errorf("summary line of %d columns: %q", len(line), line)
				}
			}
			_, list, _ := strings.Cut(out.String(), "at:\n")
			if n := strings.Count(list, ","); n != int(sb.Ncg)-1 {
				t.Errorf("summary lists %d copies, want %d", n, sb.Ncg)
			}
		})
	}
}

// TestComputeRejects checks the impossible values: FreeBSD's message, its
// exit status and the sentinel.
func TestComputeRejects(t *testing.T) {
	mod := func(f func(*Params)) Params { p := DefaultParams(); f(&p); return p }
	for _, tc := range []struct {
		name     string
		p        Params
		media    int64
		sentinel error
		code     int
		msg      string
	}{
		{"bsize-pow2", mod(func(p *Params) { p.Bsize = 12288 }), gib, ErrBadParam, 16, "block size must be a power of 2, not 12288"},
		{"fsize-pow2", mod(func(p *Params) { p.Bsize, p.Fsize = 16384, 3000 }), gib, ErrBadParam, 17, "fragment size must be a power of 2, not 3000"},
		{"bsize-small", mod(func(p *Params) { p.Bsize = 2048 }), gib, ErrBadParam, 1, "block size too small, min is 4096"},
		{"bsize-large", mod(func(p *Params) { p.Bsize = 131072 }), gib, ErrBadParam, 1, "block size too large, max is 65536"},
		{"minfree", mod(func(p *Params) { p.Minfree = 100 }), gib, ErrBadParam, 1, "bad free space"},
		{"avgfilesize", mod(func(p *Params) { p.AvgFileSize = 0 }), gib, ErrBadParam, 14, "illegal expected average file size"},
		{"avgfpdir", mod(func(p *Params) { p.AvgFilesPerDir = 0 }), gib, ErrBadParam, 15, "illegal expected number of files per directory"},
		{"label-chars", mod(func(p *Params) { p.VolumeLabel = "a b" }), gib, ErrBadParam, 1, "bad volume label"},
		{"label-long", mod(func(p *Params) { p.VolumeLabel = strings.Repeat("x", 32) }), gib, ErrBadParam, 1, "Length is longer than 32"},
		{"sector", mod(func(p *Params) { p.SectorSize = 1000 }), gib, ErrBadParam, 1, "bad sector size"},
		{"optim", mod(func(p *Params) { p.Optim = 7 }), gib, ErrBadParam, 1, "unknown optimization preference"},
		{"too-large", mod(func(p *Params) { p.Size = 2 * gib }), gib, ErrTooLarge, 1, "maximum file system size is 2097152 sectors"},
		{"reserved", mod(func(p *Params) { p.Reserved = 1 << 21 }), gib, ErrTooSmall, 1, "reserved not less than device size"},
		{"empty", DefaultParams(), 0, ErrTooSmall, 1, "reserved not less than device size"},
		{"one-sector", DefaultParams(), 512, ErrTooSmall, 28, "minimum size"},
		{"below-minimum", DefaultParams(), 128 * kib, ErrTooSmall, 28, "Filesystem size 32 < minimum size of 48"},
		{"no-room-for-root", DefaultParams(), 41 * 4096, ErrTooSmall, 28, "minimum size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compute(tc.p, tc.media)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v, want %v", err, tc.sentinel)
			}
			var ne *Error
			if !errors.As(err, &ne) || ne.Code != tc.code || !strings.Contains(ne.Msg, tc.msg) {
				t.Fatalf("error %#v, want code %d and %q", err, tc.code, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("message is not one line: %q", err)
			}
		})
	}
}

// allowedWrites lists the byte ranges Format may write.
func allowedWrites(l *Layout, sb *ondisk.Superblock, sector int64) [][2]int64 {
	fs := sb.FragOffset(ondisk.Frag(sb.Size))
	r := [][2]int64{
		{ondisk.SblockUFS2 - sector, ondisk.SblockUFS2 + int64(sb.Sbsize)},
		{fs - sector, fs},
		{sb.FragOffset(sb.Csaddr), sb.FragOffset(sb.Csaddr) + int64(sb.Cssize)},
		{sb.FragOffset(l.RootFrag), sb.FragOffset(l.RootFrag) + int64(sb.Fsize)},
	}
	if l.SnapFrag != 0 {
		r = append(r, [2]int64{sb.FragOffset(l.SnapFrag), sb.FragOffset(l.SnapFrag) + int64(sb.Fsize)})
	}
	inodes := int64(min(sb.Ipg, 2*sb.Inopb)) * ondisk.DinodeSize
	for c := ondisk.Cg(0); uint32(c) < sb.Ncg; c++ {
		s := sb.FragOffset(sb.Cgsblock(c))
		r = append(r, [2]int64{s, s + int64(sb.Sbsize)})
		g := sb.FragOffset(sb.Cgtod(c))
		r = append(r, [2]int64{g, sb.FragOffset(sb.Cgimin(c)) + inodes})
	}
	return r
}

func checkWrites(t *testing.T, ops []blockdev.Op, allowed [][2]int64) (written int64) {
	t.Helper()
	for _, op := range ops {
		if op.Kind != blockdev.OpWrite {
			continue
		}
		written += int64(len(op.Data))
		lo, hi := op.Off, op.Off+int64(len(op.Data))
		ok := false
		for _, a := range allowed {
			ok = ok || lo >= a[0] && hi <= a[1]
		}
		if !ok {
			t.Errorf("%v: outside the metadata newfs may write", op)
		}
	}
	return written
}

func newImage(t *testing.T, size int64) (string, blockdev.Device) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "img")
	dev, err := blockdev.Open(path, blockdev.Options{Create: true, CreateSize: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	return path, dev
}

// TestFormat builds filesystems with several option sets on sparse image
// files and checks each from the bytes, and that nothing but metadata was
// written.
func TestFormat(t *testing.T) {
	mod := func(f func(*Params)) Params { p := DefaultParams(); f(&p); return p }
	for _, tc := range []struct {
		name string
		p    Params
		size int64
	}{
		{"1g", DefaultParams(), gib},
		{"odd-size", DefaultParams(), 3*gib + 12345*512},
		{"no-snap", mod(func(p *Params) { p.NoSnapDir = true }), 256 * mib},
		{"small", DefaultParams(), 4 * mib},
		{"b4096-f512", mod(func(p *Params) { p.Bsize, p.Fsize = 4096, 512 }), 96 * mib},
		{"b65536-f8192", mod(func(p *Params) { p.Bsize, p.Fsize = 65536, 8192 }), 2 * gib},
		{"frag-eq-block", mod(func(p *Params) { p.Bsize, p.Fsize = 8192, 8192 }), 256 * mib},
		{"no-clusters", mod(func(p *Params) { p.Maxcontig = 1 }), 256 * mib},
		{"options", mod(func(p *Params) {
			p.SoftUpdates, p.Trim, p.Multilabel, p.VolumeLabel, p.Minfree, p.Optim = false, true, true, "data", 5, ondisk.FSOptSpace
		}), 512 * mib},
		{"sector4k", mod(func(p *Params) { p.SectorSize = 4096 }), 512 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dev := newImage(t, tc.size)
			rec := blockdev.NewRecorder(dev)
			sb, err := Format(context.Background(), rec, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			got := checkImage(t, dev, !tc.p.NoSnapDir)
			if *got != *sb {
				t.Errorf("superblock on disk differs from the one returned")
			}
			l, _ := Compute(tc.p, tc.size)
			want := *l.SB
			want.Time, want.ID, want.Ckhash = sb.Time, sb.ID, sb.Ckhash
			if *sb != want {
				t.Errorf("written superblock differs from Compute's")
			}
			if sb.ID[0] == 0 || time.Since(time.Unix(sb.Time, 0)) > time.Minute {
				t.Errorf("fs_id %v fs_time %d", sb.ID, sb.Time)
			}
			flags := int32(ondisk.FSMetackhash)
			if tc.p.SoftUpdates {
				flags |= ondisk.FSDoSoftdep
			}
			if tc.p.Trim {
				flags |= ondisk.FSTrim
			}
			if tc.p.Multilabel {
				flags |= ondisk.FSMultilabel
			}
			if sb.Flags != flags || sb.VolumeName() != tc.p.VolumeLabel || sb.Minfree != int32(tc.p.Minfree) {
				t.Errorf("flags %#x volname %q minfree %d", sb.Flags, sb.VolumeName(), sb.Minfree)
			}
			sector := int64(max(tc.p.SectorSize, 512))
			checkWrites(t, rec.Ops(), allowedWrites(l, sb, sector))
		})
	}
}

// TestFormatRegression: -R makes the image a function of the options.
func TestFormatRegression(t *testing.T) {
	p := DefaultParams()
	p.Regression = true
	var images [2][]byte
	for i := range images {
		m := blockdev.NewMem(64 * mib)
		sb, err := Format(context.Background(), m, p)
		if err != nil {
			t.Fatal(err)
		}
		if sb.Time != regressionTime || sb.ID != [2]int32{regressionTime, 1} {
			t.Fatalf("fs_time %d fs_id %v", sb.Time, sb.ID)
		}
		images[i] = m.Bytes()
		checkImage(t, m, true)
		// Inode 0 of group 0 has the first di_gen after fs_id's.
		raw := images[i][sb.InoOffset(0):]
		di, _ := ondisk.DecodeDinode(raw)
		if di.Gen != 2 || di.Mode != 0 {
			t.Fatalf("inode 0: gen %d mode %o", di.Gen, di.Mode)
		}
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Fatal("two -R runs differ")
	}
}

// TestSleuthkit: Debian's sleuthkit reads what we write.
func TestSleuthkit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noSnap bool
	}{{"default", false}, {"no-snap", true}} {
		t.Run(tc.name, func(t *testing.T) {
			path, dev := newImage(t, 256*mib)
			p := DefaultParams()
			p.NoSnapDir = tc.noSnap
			p.VolumeLabel = "tsk"
			sb, err := Format(context.Background(), dev, p)
			if err != nil {
				t.Fatal(err)
			}
			st := testutil.Fsstat(t, path)
			for _, want := range []string{
				"File System Type: UFS 2",
				"Volume Name: tsk",
				"Root Directory: 2",
				fmt.Sprintf("Num of Avail Inodes: %d", sb.Cstotal.Nifree),
				fmt.Sprintf("Num of Directories: %d", sb.Cstotal.Ndir),
				fmt.Sprintf("Num of Avail Full Blocks: %d", sb.Cstotal.Nbfree),
				fmt.Sprintf("Num of Avail Fragments: %d", sb.Cstotal.Nffree),
				fmt.Sprintf("Number of Cylinder Groups: %d", sb.Ncg),
				fmt.Sprintf("Inodes per group: %d", sb.Ipg),
				fmt.Sprintf("Fragments per group: %d", sb.Fpg),
			} {
				if !strings.Contains(st, want) {
					t.Errorf("fsstat lacks %q:\n%s", want, st)
				}
			}
			ls := testutil.Fls(t, path)
			if got := strings.Contains(ls, "d/d 3:\t.snap"); got == tc.noSnap {
				t.Errorf("fls (want .snap: %v):\n%s", !tc.noSnap, ls)
			}
			if !tc.noSnap {
				if ls := testutil.Fls(t, path, "-r", "-p"); strings.Contains(ls, ".snap/") {
					t.Errorf(".snap is not empty:\n%s", ls)
				}
			}
		})
	}
}

// TestSparse: a 100 GiB image takes only its metadata on disk. (Format
// does 1 TiB in about half a second too, see BenchmarkNewfs, but ext4 then
// takes seconds to delete the file.)
func TestSparse(t *testing.T) {
	const size = 100 * gib
	path, dev := newImage(t, size)
	start := time.Now()
	cw := &countingDevice{Device: dev}
	sb, err := Format(context.Background(), cw, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	used := st.Blocks * 512
	t.Logf("100 GiB: %d groups, %d bytes written, %d bytes allocated, %v", sb.Ncg, cw.n.Load(), used, elapsed)
	if used > size/1000 || cw.n.Load() > size/1000 {
		t.Errorf("allocated %d bytes, wrote %d: more than 0.1%% of the size", used, cw.n.Load())
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != size {
		t.Errorf("image size changed: %v %v", fi.Size(), err)
	}
	// Spot-check the first and last groups rather than all of them.
	for _, c := range []ondisk.Cg{0, ondisk.Cg(sb.Ncg - 1)} {
		raw := make([]byte, sb.Cgsize)
		if _, err := dev.ReadAt(raw, sb.FragOffset(sb.Cgtod(c))); err != nil {
			t.Fatal(err)
		}
		if _, err := ondisk.DecodeCg(sb, c, raw); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFormatFailsCleanly: rejected parameters write nothing; a cancelled
// run leaves no valid superblock behind.
func TestFormatFailsCleanly(t *testing.T) {
	p := DefaultParams()
	p.Bsize = 12288
	m := blockdev.NewMem(64 * mib)
	rec := blockdev.NewRecorder(m)
	if _, err := Format(context.Background(), rec, p); !errors.Is(err, ErrBadParam) {
		t.Fatalf("error %v", err)
	}
	if ops := rec.Ops(); len(ops) != 0 {
		t.Fatalf("wrote %v", ops)
	}
	p = DefaultParams()
	p.Size = 128 * mib
	if _, err := Format(context.Background(), rec, p); !errors.Is(err, ErrTooLarge) || len(rec.Ops()) != 0 {
		t.Fatalf("error %v, %d ops", err, len(rec.Ops()))
	}
	p = DefaultParams()
	p.Erase = true
	if _, err := Format(context.Background(), rec, p); !errors.Is(err, ErrUnsupported) || len(rec.Ops()) != 0 {
		t.Fatalf("erase on a device that cannot discard: %v, %d ops", err, len(rec.Ops()))
	}
	if _, err := Format(context.Background(), m.ReadOnlyView(), DefaultParams()); !errors.Is(err, blockdev.ErrReadOnly) {
		t.Fatalf("read-only device: %v", err)
	}

	// Cancel half way: the primary superblock still says FS_BAD_MAGIC.
	ctx, cancel := context.WithCancel(context.Background())
	p = DefaultParams()
	p.Progress = func(done, total uint32) {
		if done == total/2 {
			cancel()
		}
	}
	m = blockdev.NewMem(gib / 4)
	if _, err := Format(ctx, m, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	if _, _, err := ondisk.FindSuperblock(m); !errors.Is(err, ondisk.ErrIncomplete) {
		t.Fatalf("after a cancelled newfs FindSuperblock says %v", err)
	}
	raw := make([]byte, ondisk.SuperblockSize)
	_, _ = m.ReadAt(raw, ondisk.SblockUFS2)
	if sb, _ := ondisk.DecodeSuperblock(raw); uint32(sb.Magic) != ondisk.FSBadMagic {
		t.Fatalf("magic %#x, want FS_BAD_MAGIC", sb.Magic)
	}
}

// TestWipeOldSuperblock: an old UFS1 filesystem's superblock at 8192 and
// its copies inside the new filesystem lose their magic numbers.
func TestWipeOldSuperblock(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("old data"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "old.img")
	testutil.MakefsWith(t, src, img, testutil.MakefsOptions{Version: 1, Size: "64m", Bsize: 4096, Fsize: 512})
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := ondisk.DecodeSuperblock(raw[ondisk.SblockUFS1:])
	if uint32(old.Magic) != ondisk.FSUFS1Magic || old.Ncg < 2 {
		t.Fatalf("makefs image: magic %#x ncg %d", old.Magic, old.Ncg)
	}
	var copies []int64
	for c := int64(0); c < int64(old.Ncg); c++ {
		start := c*int64(old.Fpg) + int64(old.OldCgoffset)*(c&^int64(uint32(old.OldCgmask)))
		off := (start + int64(old.Sblkno)) << uint(old.Fsbtodb) * 512
		if b, _ := ondisk.DecodeSuperblock(raw[off:]); uint32(b.Magic) == ondisk.FSUFS1Magic {
			copies = append(copies, off)
		}
	}
	if len(copies) < 2 {
		t.Fatalf("makefs image has %d superblock copies", len(copies))
	}
	dev, err := blockdev.Open(img, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := Format(context.Background(), dev, DefaultParams()); err != nil {
		t.Fatal(err)
	}
	checkImage(t, dev, true)
	buf := make([]byte, ondisk.SuperblockSize)
	for _, off := range append([]int64{ondisk.SblockUFS1}, copies...) {
		if _, err := dev.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if sb, _ := ondisk.DecodeSuperblock(buf); uint32(sb.Magic) == ondisk.FSUFS1Magic {
			t.Errorf("UFS1 superblock left at %d", off)
		}
	}
}

// TestErase: -E punches the old contents out of an image file.
func TestErase(t *testing.T) {
	path, dev := newImage(t, 64*mib)
	junk := bytes.Repeat([]byte("stale!"), 1<<16)
	for _, off := range []int64{ondisk.SblockUFS2 + 8192, 8 * mib, 63 * mib} {
		if _, err := dev.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	boot := bytes.Repeat([]byte{0xb0}, 4096)
	if _, err := dev.WriteAt(boot, 0); err != nil {
		t.Fatal(err)
	}
	d, err := WithDiscard(dev, path)
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	p.Erase = true
	if _, err := Format(context.Background(), d, p); err != nil {
		t.Fatal(err)
	}
	checkImage(t, dev, true)
	buf := make([]byte, len(junk))
	if _, err := dev.ReadAt(buf, 8*mib); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf, []byte("stale!")) {
		t.Error("old contents survived -E")
	}
	got := make([]byte, len(boot))
	if _, err := dev.ReadAt(got, 0); err != nil || !bytes.Equal(got, boot) {
		t.Error("-E erased the boot area in front of the superblock")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 4*mib {
		t.Errorf("%d bytes allocated after -E", st.Blocks*512)
	}
}
