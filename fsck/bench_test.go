package fsck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// synth builds, inside an image made by makefs from an empty tree, a tree
// of nfiles empty files in directories of 1000, writing the inodes,
// directory blocks, maps and counts directly. It returns the image's path
// and the number of directories.
func synth(tb testing.TB, nfiles int) (string, int) {
	tb.Helper()
	const perDir = 1000
	ndirs := (nfiles + perDir - 1) / perDir
	dir := tb.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "img")
	sizeMB := (int64(nfiles+ndirs)*4096*5/4)>>20 + 64
	testutil.MakefsWith(tb, src, path, testutil.MakefsOptions{Version: 2, Size: fmt.Sprintf("%dm", sizeMB),
		Bsize: 32768, Fsize: 4096, Extra: []string{"-o", "density=4096"}})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sb, _, err := ondisk.FindSuperblock(f)
	if err != nil {
		tb.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			tb.Helper()
			tb.Fatal(err)
		}
	}
	cgs := make([]*ondisk.CylGroup, sb.Ncg)
	for g := range cgs {
		b := make([]byte, sb.Cgsize)
		_, err := f.ReadAt(b, sb.FragOffset(sb.Cgtod(ondisk.Cg(g))))
		must(err)
		cgs[g], err = ondisk.DecodeCg(sb, ondisk.Cg(g), b)
		must(err)
	}
	// Inode tables are edited one group at a time.
	curG := -1
	var table []byte
	flush := func() {
		if curG >= 0 {
			_, err := f.WriteAt(table, sb.InoOffset(ondisk.Ino(uint32(curG)*sb.Ipg)))
			must(err)
		}
	}
	putInode := func(ino ondisk.Ino, dp *ondisk.Dinode) {
		g := int(uint32(ino) / sb.Ipg)
		if g != curG {
			flush()
			curG = g
			table = make([]byte, int(sb.Ipg)*ondisk.DinodeSize)
			_, err := f.ReadAt(table, sb.InoOffset(ondisk.Ino(uint32(g)*sb.Ipg)))
			must(err)
		}
		off := int(uint32(ino)%sb.Ipg) * ondisk.DinodeSize
		must(dp.EncodeWithHash(sb, table[off:off+ondisk.DinodeSize]))
	}
	next := ondisk.Ino(ondisk.RootIno + 1)
	allocIno := func() ondisk.Ino {
		for ; next < ondisk.Ino(sb.Ncg*sb.Ipg); next++ {
			cg := cgs[uint32(next)/sb.Ipg]
			if i := int64(uint32(next) % sb.Ipg); !cg.InodeUsed(i) {
				cg.SetInodeUsed(i, true)
				if uint32(i) >= cg.Initediblk {
					cg.Initediblk = min(sb.Ipg, uint32(i)/sb.Inopb*sb.Inopb+sb.Inopb)
				}
				next++
				return next - 1
			}
		}
		tb.Fatal("out of inodes")
		return 0
	}
	bg, bh := 0, int64(0)
	allocFrags := func(n int) ondisk.Frag {
		for ; bg < len(cgs); bg, bh = bg+1, 0 {
			cg := cgs[bg]
			for ; bh < int64(cg.Ndblk)/int64(sb.Frag); bh++ {
				if cg.IsBlock(bh) {
					for k := int64(0); k < int64(n); k++ {
						cg.SetFragFree(bh*int64(sb.Frag)+k, false)
					}
					bh++
					return sb.Cgbase(ondisk.Cg(bg)) + sb.Blkstofrags(bh-1)
				}
			}
		}
		tb.Fatal("out of blocks")
		return 0
	}
	now := time.Now().Unix()
	// writeDir writes a directory of the given entries and returns its
	// inode fields.
	writeDir := func(self, parent ondisk.Ino, names []string, inos []ondisk.Ino, types []uint8) *ondisk.Dinode {
		var chunks [][]byte
		cur := make([]byte, ondisk.DirBlkSize)
		used, last := 0, -1
		add := func(ino ondisk.Ino, t uint8, name string) {
			n := ondisk.DirectSize(len(name))
			if used+n > ondisk.DirBlkSize {
				le.PutUint16(cur[last+4:], uint16(ondisk.DirBlkSize-last))
				chunks = append(chunks, cur)
				cur, used = make([]byte, ondisk.DirBlkSize), 0
			}
			d := ondisk.Direct{Ino: ino, Reclen: uint16(n), Type: t, Name: []byte(name)}
			must(d.Encode(cur[used:]))
			last = used
			used += n
		}
		add(self, ondisk.DTDir, ".")
		add(parent, ondisk.DTDir, "..")
		for i := range names {
			add(inos[i], types[i], names[i])
		}
		le.PutUint16(cur[last+4:], uint16(ondisk.DirBlkSize-last))
		chunks = append(chunks, cur)
		size := sb.Fragroundup(int64(len(chunks)) * ondisk.DirBlkSize)
		if size > int64(sb.Bsize) {
			tb.Fatalf("directory of %d entries needs more than a block", len(names))
		}
		data := make([]byte, size)
		for i, c := range chunks {
			copy(data[i*ondisk.DirBlkSize:], c)
		}
		for off := len(chunks) * ondisk.DirBlkSize; off < len(data); off += ondisk.DirBlkSize {
			le.PutUint16(data[off+4:], ondisk.DirBlkSize)
		}
		nfr := int(size / int64(sb.Fsize))
		blk := allocFrags(nfr)
		_, err := f.WriteAt(data, sb.FragOffset(blk))
		must(err)
		dp := &ondisk.Dinode{Mode: ondisk.IFDIR | 0o755, Nlink: 2, Size: uint64(size),
			Blocks: uint64(size / ondisk.DevBSize), Atime: now, Mtime: now, Ctime: now, Birthtime: now, Gen: uint32(self)}
		dp.Db[0] = blk
		return dp
	}
	var dnames []string
	var dinos []ondisk.Ino
	var dtypes []uint8
	made := 0
	for d := 0; d < ndirs; d++ {
		dino := allocIno()
		var names []string
		var inos []ondisk.Ino
		var types []uint8
		for k := 0; k < perDir && made < nfiles; k, made = k+1, made+1 {
			ino := allocIno()
			putInode(ino, &ondisk.Dinode{Mode: ondisk.IFREG | 0o644, Nlink: 1, Atime: now, Mtime: now,
				Ctime: now, Birthtime: now, Gen: uint32(ino)})
			names = append(names, fmt.Sprintf("f%07d", made))
			inos = append(inos, ino)
			types = append(types, ondisk.DTReg)
		}
		putInode(dino, writeDir(dino, ondisk.RootIno, names, inos, types))
		dnames = append(dnames, fmt.Sprintf("d%05d", d))
		dinos = append(dinos, dino)
		dtypes = append(dtypes, ondisk.DTDir)
	}
	// The new root replaces makefs's.
	rootOld := make([]byte, ondisk.DinodeSize)
	_, err = f.ReadAt(rootOld, sb.InoOffset(ondisk.RootIno))
	must(err)
	var old ondisk.Dinode
	must(old.Decode(rootOld))
	for k := int64(0); k < sb.Numfrags(sb.Fragroundup(int64(old.Size))); k++ {
		cgs[0].SetFragFree(sb.Dtogd(old.Db[0])+k, true)
	}
	root := writeDir(ondisk.RootIno, ondisk.RootIno, dnames, dinos, dtypes)
	root.Nlink = int16(2 + ndirs)
	root.Mode = old.Mode
	putInode(ondisk.RootIno, root)
	flush()
	// Recount every group and the totals from the maps.
	sb.Cstotal = ondisk.CsumTotal{}
	csum := make([]byte, sb.Fragroundup(int64(sb.Cssize)))
	for g, cg := range cgs {
		cg.Cs = ondisk.Csum{}
		cg.Frsum = [ondisk.MaxFrag]uint32{}
		if sb.Contigsumsize > 0 {
			for i := 1; i <= int(sb.Contigsumsize); i++ {
				cg.SetClusterSum(i, 0)
			}
			clear(cg.B[cg.Clusteroff : int64(cg.Clusteroff)+(int64(cg.Nclusterblks)+7)/8])
		}
		for h := int64(0); h < int64(cg.Ndblk)/int64(sb.Frag); h++ {
			if cg.IsBlock(h) {
				cg.Cs.Nbfree++
				cg.ClusterAcct(h, 1)
				continue
			}
			m := cg.BlockMap(h)
			cg.FragAcct(m, 1)
			for i := 0; i < int(sb.Frag); i++ {
				if m&(1<<i) != 0 {
					cg.Cs.Nffree++
				}
			}
		}
		for i := int64(0); i < int64(sb.Ipg); i++ {
			if !cg.InodeUsed(i) {
				cg.Cs.Nifree++
			}
		}
		cg.Cs.Ndir = 0
		if g == 0 {
			cg.Cs.Ndir = 1
		}
		for _, d := range dinos {
			if int(uint32(d)/sb.Ipg) == g {
				cg.Cs.Ndir++
			}
		}
		cg.Sync()
		_, err := f.WriteAt(cg.B, sb.FragOffset(sb.Cgtod(ondisk.Cg(g))))
		must(err)
		cg.Cs.Encode(csum[g*ondisk.CsumSize:])
		sb.Cstotal.Ndir += int64(cg.Cs.Ndir)
		sb.Cstotal.Nbfree += int64(cg.Cs.Nbfree)
		sb.Cstotal.Nffree += int64(cg.Cs.Nffree)
		sb.Cstotal.Nifree += int64(cg.Cs.Nifree)
	}
	_, err = f.WriteAt(csum[:sb.Cssize], sb.FragOffset(sb.Csaddr))
	must(err)
	_, err = f.WriteAt(sb.EncodeWithHash(), sb.Sblockloc)
	must(err)
	return path, ndirs
}

func TestSynthImage(t *testing.T) {
	path, _ := synth(t, 3000)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustBeClean(t, b, "synthetic image")
	rep, _, _, _ := check(t, b, Options{Mode: No, Force: true})
	if rep.Summary.Files != 3000+3+1 {
		t.Errorf("files = %d, want %d", rep.Summary.Files, 3000+3+1)
	}
}

// liveHeap collects garbage and returns the bytes of heap still reachable.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// measurePeak runs one check of path and returns the most heap it held
// reachable at once, above what was reachable before it started. A
// sampler collects garbage back to back while the check runs, and the
// check's progress calls (once per group or per 256 directories) collect
// too, so that peaks between two samples are caught at the phase
// boundaries. Objects allocated while a collection marks count as
// reachable, so the figure errs high, by little now that the check makes
// almost no garbage.
func measurePeak(tb testing.TB, path string) uint64 {
	dev, err := blockdev.Open(path, blockdev.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer dev.Close()
	base := liveHeap()
	var peak atomic.Uint64
	note := func() {
		if v := liveHeap(); v > base && v-base > peak.Load() {
			peak.Store(v - base)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			note()
			time.Sleep(200 * time.Microsecond)
		}
	}()
	rep, err := Check(context.Background(), dev, Options{Mode: No, Force: true,
		Progress: func(string, float64) { note() }})
	close(stop)
	<-done
	if err != nil || rep.ExitCode != ExitOK {
		tb.Fatalf("check: exit %d err %v", rep.ExitCode, err)
	}
	return peak.Load()
}

// paperBudget is what the UFS2 paper (section 8) gives as fsck's needs:
// 4 bytes per regular inode, 40 to 50 (here 45) per directory and one bit
// per fragment of the filesystem.
func paperBudget(files, dirs, frags int64) float64 {
	return 4*float64(files-dirs) + 45*float64(dirs) + float64(frags)/8
}

// benchCheck times fsck -n -f over a synthetic image of nfiles files and
// then measures, in one more run outside the timing, its peak heap. It
// reports inodes checked per second, the peak per inode and per fragment,
// and xpaper: the peak over the paper's budget, which the issue wants at 2
// or less.
func benchCheck(b *testing.B, nfiles int) {
	path, ndirs := synth(b, nfiles)
	b.ReportAllocs()
	var frags, inodes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dev, err := blockdev.Open(path, blockdev.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		rep, err := Check(context.Background(), dev, Options{Mode: No, Force: true})
		dev.Close()
		if err != nil || rep.ExitCode != ExitOK {
			b.Fatalf("check: exit %d err %v", rep.ExitCode, err)
		}
		frags = rep.Summary.Used + rep.Summary.Free
		inodes = rep.Summary.Files
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	peak := float64(measurePeak(b, path))
	budget := paperBudget(inodes, int64(ndirs)+1, frags)
	b.ReportMetric(float64(inodes)/sec, "inodes/s")
	b.ReportMetric(peak/float64(inodes), "peakB/inode")
	b.ReportMetric(peak*8/float64(frags), "peakbits/frag")
	b.ReportMetric(peak/budget, "xpaper")
	b.Logf("%d files in %d directories, %d fragments: peak heap %.2f MiB, %.2f times the UFS2 paper's budget of %.2f MiB (4 B/inode, 45 B/dir, 1 bit/frag)",
		inodes, ndirs+1, frags, peak/(1<<20), peak/budget, budget/(1<<20))
}

func BenchmarkCheck100k(b *testing.B) { benchCheck(b, 100_000) }
func BenchmarkCheck1M(b *testing.B)   { benchCheck(b, 1_000_000) }
