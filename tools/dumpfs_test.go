package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
)

// The golden files under testdata/dumpfs are rewritten by
//
//	go test ./tools -run Dumpfs -update
//
// The flag is registered only if no other test file of the package did so.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	v, _ := g.Get().(bool)
	return v
}

// Fixed values written over what makefs puts in the time and id fields, so
// that the dumps are stable.
const (
	dumpfsTestTime = 1700000000 // Tue Nov 14 22:13:20 2023 UTC
	dumpfsTestID0  = 0x12345678
	dumpfsTestID1  = 0x0abcdef0
)

// dumpfsTree writes the small fixed tree the test images are made from.
func dumpfsTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	content := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7) + seed
		}
		return b
	}
	for _, d := range []string{"d1", "d1/d2", "e"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct {
		name string
		size int
	}{
		{"a.txt", 6}, {"d1/b.bin", 50000}, {"d1/d2/c", 5000}, {"d1/empty", 0},
		{"e/f", 4097}, {"e/g", 70000}, {"e/h", 1},
	} {
		if err := os.WriteFile(filepath.Join(src, f.name), content(f.size, byte(len(f.name))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	return src
}

// dumpfsImage makes an image of the fixed tree with makefs and the given
// options and normalises its times and id.
func dumpfsImage(t *testing.T, o testutil.MakefsOptions) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img")
	testutil.MakefsWith(t, dumpfsTree(t), img, o)
	if o.Version == 2 {
		rewriteImage(t, img, nil)
	}
	return img
}

// image4m is the image of the brief: 4 MiB, 32 KiB blocks, 4 KiB fragments.
var image4m = testutil.MakefsOptions{Version: 2, Size: "4m", Bsize: 32768, Fsize: 4096}

// image20m has two cylinder groups, the last one short.
var image20m = testutil.MakefsOptions{Version: 2, Size: "20m", Bsize: 4096, Fsize: 512}

// rewriteImage sets the fixed times and id, lets edit change the superblock
// further, writes it back with its check-hash and re-encodes every cylinder
// group (with its check-hash when the superblock asks for one).
func rewriteImage(t *testing.T, img string, edit func(sb *ondisk.Superblock)) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, loc, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatalf("%s: %v", img, err)
	}
	sb.Time, sb.Mtime = dumpfsTestTime, dumpfsTestTime
	sb.ID = [2]int32{dumpfsTestID0, dumpfsTestID1}
	if edit != nil {
		edit(sb)
	}
	if _, err := f.WriteAt(sb.EncodeWithHash(), loc); err != nil {
		t.Fatal(err)
	}
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		off := sb.FragOffset(sb.Cgtod(c))
		buf := make([]byte, sb.Cgsize)
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		cg, err := ondisk.DecodeCg(sb, c, buf)
		if err != nil {
			t.Fatalf("cg %d: %v", c, err)
		}
		cg.Time = dumpfsTestTime
		cg.Sync()
		if _, err := f.WriteAt(cg.B, off); err != nil {
			t.Fatal(err)
		}
	}
}

// patchImage overwrites bytes of img at off.
func patchImage(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// readSuperblock returns the superblock of img as ondisk decodes it.
func readSuperblock(t *testing.T, img string) *ondisk.Superblock {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, _, err := ondisk.FindSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// runDumpfs dumps img through blockdev, as the command does.
func runDumpfs(t *testing.T, img string, opts DumpfsOptions) (string, error) {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	var out bytes.Buffer
	err = Dumpfs(dev, &out, opts)
	return out.String(), err
}

// checkGolden compares got with testdata/dumpfs/name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "dumpfs", name)
	if updateGolden() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tools -run Dumpfs -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff describes the first line where want and got differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant %q\n got %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

func TestDumpfsGolden(t *testing.T) {
	img4 := dumpfsImage(t, image4m)
	img20 := dumpfsImage(t, image20m)
	tests := []struct {
		golden string
		img    string
		opts   DumpfsOptions
	}{
		{"ufs2-4m.txt", img4, DumpfsOptions{}},
		{"ufs2-4m-f.txt", img4, DumpfsOptions{FreeSpace: 1}},
		{"ufs2-4m-m.txt", img4, DumpfsOptions{Marshal: true, Name: "ufs2.img"}},
		{"ufs2-20m.txt", img20, DumpfsOptions{}},
		{"ufs2-20m-f.txt", img20, DumpfsOptions{FreeSpace: 1}},
		{"ufs2-20m-m.txt", img20, DumpfsOptions{Marshal: true, Name: "disk.img@2"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := runDumpfs(t, tc.img, tc.opts)
			if err != nil {
				t.Fatalf("Dumpfs: %v", err)
			}
			checkGolden(t, tc.golden, got)
		})
	}
}

// TestDumpfsSections checks the dump's structure against the superblock
// as ondisk decodes it, independently of the golden files.
func TestDumpfsSections(t *testing.T) {
	img := dumpfsImage(t, image20m)
	sb := readSuperblock(t, img)
	got, err := runDumpfs(t, img, DumpfsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"magic\t19540119 (UFS2)\n",
		"last mounted time\tTue Nov 14 22:13:20 2023\n",
		"last modified time\tTue Nov 14 22:13:20 2023\n",
		fmt.Sprintf("superblock location\t%d\tid\t[ 12345678 0abcdef0 ]\n", sb.Sblockloc),
		fmt.Sprintf("ncg\t%d\tsize\t%d\tblocks\t%d\n", sb.Ncg, sb.Size, sb.Dsize),
		fmt.Sprintf("bsize\t%d\tshift\t%d\tmask\t0x%08x\n", sb.Bsize, sb.Bshift, uint32(sb.Bmask)),
		fmt.Sprintf("nbfree\t%d\tndir\t%d\tnifree\t%d\tnffree\t%d\n", sb.Cstotal.Nbfree, sb.Cstotal.Ndir, sb.Cstotal.Nifree, sb.Cstotal.Nffree),
		fmt.Sprintf("blocks in last group %d\n\n", sb.Size%int64(sb.Fpg)/int64(sb.Frag)),
		"\ncg 0:\n", "\ncg 1:\n",
		fmt.Sprintf("tell\t%x\t", sb.FragOffset(sb.Cgtod(1))),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dump lacks %q", want)
		}
	}
	if n := strings.Count(got, "\ncg "); n != int(sb.Ncg) {
		t.Errorf("dump has %d cylinder group sections, want %d", n, sb.Ncg)
	}
}

// TestDumpfsFreeList checks -f and -ff against the free maps ondisk reads.
func TestDumpfsFreeList(t *testing.T) {
	img := dumpfsImage(t, image20m)
	sb := readSuperblock(t, img)
	var want []int64
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		cg := readCgForTest(t, f, sb, c)
		for i := int64(0); i < int64(sb.Fpg); i++ {
			if cg.FragFree(i) {
				want = append(want, int64(sb.Cgbase(c))+i)
			}
		}
	}
	parse := func(out string) []int64 {
		var got []int64
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			var a, b int64
			if n, _ := fmt.Sscanf(line, "%d-%d", &a, &b); n == 2 {
				for x := a; x <= b; x++ {
					got = append(got, x)
				}
			} else if _, err := fmt.Sscanf(line, "%d", &a); err == nil {
				got = append(got, a)
			} else {
				t.Fatalf("bad line %q", line)
			}
		}
		return got
	}
	for _, level := range []int{1, 2} {
		out, err := runDumpfs(t, img, DumpfsOptions{FreeSpace: level})
		if err != nil {
			t.Fatal(err)
		}
		if level == 2 && strings.Contains(out, "-") {
			t.Errorf("-ff printed a range")
		}
		if got := parse(out); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("-f level %d lists %d fragments, want %d", level, len(got), len(want))
		}
	}
}

func readCgForTest(t *testing.T, r io.ReaderAt, sb *ondisk.Superblock, c ondisk.Cg) *ondisk.CylGroup {
	t.Helper()
	buf := make([]byte, sb.Cgsize)
	if _, err := r.ReadAt(buf, sb.FragOffset(sb.Cgtod(c))); err != nil {
		t.Fatal(err)
	}
	cg, err := ondisk.DecodeCg(sb, c, buf)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

// jsonDump mirrors the parts of DumpfsJSON's output the test checks, by key.
type jsonDump struct {
	Superblock map[string]any `json:"superblock"`
	Cs         []struct {
		Nbfree int64 `json:"cs_nbfree"`
		Ndir   int64 `json:"cs_ndir"`
		Nifree int64 `json:"cs_nifree"`
		Nffree int64 `json:"cs_nffree"`
	} `json:"fs_cs"`
	CylinderGroups []struct {
		Cg    uint32 `json:"cg"`
		Tell  int64  `json:"tell"`
		Cgx   uint32 `json:"cg_cgx"`
		Magic uint32 `json:"cg_magic"`
		Ndblk uint32 `json:"cg_ndblk"`
		Cs    struct {
			Nbfree int64 `json:"cs_nbfree"`
			Ndir   int64 `json:"cs_ndir"`
			Nifree int64 `json:"cs_nifree"`
			Nffree int64 `json:"cs_nffree"`
		} `json:"cg_cs"`
		Frsum        []uint32   `json:"cg_frsum"`
		ClusterSum   []int32    `json:"cg_clustersum"`
		ClustersFree [][2]int64 `json:"clusters_free"`
		InodesUsed   [][2]int64 `json:"inodes_used"`
		BlksFree     [][2]int64 `json:"blks_free"`
		Error        string     `json:"error"`
	} `json:"cylinder_groups"`
	Errors []string `json:"errors"`
}

func TestDumpfsJSON(t *testing.T) {
	for _, o := range []testutil.MakefsOptions{image4m, image20m} {
		t.Run(o.Size, func(t *testing.T) {
			img := dumpfsImage(t, o)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sb, _, err := ondisk.FindSuperblock(f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := DumpfsJSON(f, &out); err != nil {
				t.Fatal(err)
			}
			var d jsonDump
			if err := json.Unmarshal(out.Bytes(), &d); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			for key, want := range map[string]float64{
				"fs_magic": float64(uint32(sb.Magic)), "fs_bsize": float64(sb.Bsize), "fs_fsize": float64(sb.Fsize),
				"fs_frag": float64(sb.Frag), "fs_ncg": float64(sb.Ncg), "fs_size": float64(sb.Size),
				"fs_dsize": float64(sb.Dsize), "fs_fpg": float64(sb.Fpg), "fs_ipg": float64(sb.Ipg),
				"fs_sblockloc": float64(sb.Sblockloc), "fs_csaddr": float64(sb.Csaddr),
				"fs_cgsize": float64(sb.Cgsize), "fs_time": dumpfsTestTime, "fs_mtime": dumpfsTestTime,
				"fs_minfree": float64(sb.Minfree), "fs_maxcontig": float64(sb.Maxcontig),
				"fs_contigsumsize": float64(sb.Contigsumsize), "fs_flags": float64(sb.Flags),
				"bpg": float64(sb.Fpg / sb.Frag), "fs_bmask": float64(uint32(sb.Bmask)),
			} {
				if got, ok := d.Superblock[key].(float64); !ok || got != want {
					t.Errorf("superblock %s = %v, want %v", key, d.Superblock[key], want)
				}
			}
			if fmt.Sprint(d.Superblock["fs_id"]) != fmt.Sprint([]any{float64(dumpfsTestID0), float64(dumpfsTestID1)}) {
				t.Errorf("fs_id = %v", d.Superblock["fs_id"])
			}
			tot, _ := d.Superblock["fs_cstotal"].(map[string]any)
			if tot["cs_nbfree"] != float64(sb.Cstotal.Nbfree) || tot["cs_nifree"] != float64(sb.Cstotal.Nifree) ||
				tot["cs_ndir"] != float64(sb.Cstotal.Ndir) || tot["cs_nffree"] != float64(sb.Cstotal.Nffree) {
				t.Errorf("fs_cstotal = %v, want %+v", tot, sb.Cstotal)
			}
			if _, ok := d.Superblock["fs_flags_names"].([]any); !ok {
				t.Errorf("fs_flags_names = %#v, want a list", d.Superblock["fs_flags_names"])
			}
			if len(d.Errors) != 0 {
				t.Errorf("errors = %q, want none", d.Errors)
			}
			if len(d.Cs) != int(sb.Ncg) || len(d.CylinderGroups) != int(sb.Ncg) {
				t.Fatalf("%d fs_cs entries and %d groups, want %d", len(d.Cs), len(d.CylinderGroups), sb.Ncg)
			}
			for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
				cg := readCgForTest(t, f, sb, c)
				j := d.CylinderGroups[c]
				if j.Cg != uint32(c) || j.Cgx != cg.Cgx || j.Magic != ondisk.CgMagic || j.Ndblk != cg.Ndblk ||
					j.Tell != sb.FragOffset(sb.Cgtod(c)) || j.Error != "" {
					t.Errorf("cg %d: header %+v disagrees with ondisk (cgx %d ndblk %d)", c, j, cg.Cgx, cg.Ndblk)
				}
				if j.Cs.Nbfree != int64(cg.Cs.Nbfree) || j.Cs.Ndir != int64(cg.Cs.Ndir) ||
					j.Cs.Nifree != int64(cg.Cs.Nifree) || j.Cs.Nffree != int64(cg.Cs.Nffree) {
					t.Errorf("cg %d: cg_cs %+v, want %+v", c, j.Cs, cg.Cs)
				}
				if d.Cs[c].Nbfree != j.Cs.Nbfree || d.Cs[c].Nifree != j.Cs.Nifree {
					t.Errorf("cg %d: fs_cs %+v disagrees with cg_cs %+v", c, d.Cs[c], j.Cs)
				}
				if fmt.Sprint(j.Frsum) != fmt.Sprint(cg.Frsum[:]) {
					t.Errorf("cg %d: cg_frsum %v, want %v", c, j.Frsum, cg.Frsum)
				}
				checkRuns(t, fmt.Sprintf("cg %d blks_free", c), j.BlksFree, int64(sb.Fpg), cg.FragFree)
				checkRuns(t, fmt.Sprintf("cg %d inodes_used", c), j.InodesUsed, int64(sb.Ipg), cg.InodeUsed)
				if sb.Contigsumsize > 0 {
					checkRuns(t, fmt.Sprintf("cg %d clusters_free", c), j.ClustersFree, int64(cg.Nclusterblks), cg.ClusterFree)
					for i := 1; i <= int(sb.Contigsumsize); i++ {
						if j.ClusterSum[i] != cg.ClusterSum(i) {
							t.Errorf("cg %d: cg_clustersum[%d] = %d, want %d", c, i, j.ClusterSum[i], cg.ClusterSum(i))
						}
					}
				}
				// The maps agree with the counts in the header.
				if n := countRuns(j.BlksFree); n != int64(cg.Cs.Nbfree)*int64(sb.Frag)+int64(cg.Cs.Nffree) {
					t.Errorf("cg %d: %d free fragments in the map, header says %d blocks + %d fragments", c, n, cg.Cs.Nbfree, cg.Cs.Nffree)
				}
				if n := countRuns(j.InodesUsed); n != int64(sb.Ipg)-int64(cg.Cs.Nifree) {
					t.Errorf("cg %d: %d inodes used in the map, header says %d free of %d", c, n, cg.Cs.Nifree, sb.Ipg)
				}
			}
		})
	}
}

// checkRuns compares runs with the bits bit reports for 0..n-1.
func checkRuns(t *testing.T, what string, runs [][2]int64, n int64, bit func(int64) bool) {
	t.Helper()
	if runs == nil {
		t.Errorf("%s: missing", what)
		return
	}
	set := make([]bool, n)
	for _, r := range runs {
		for i := r[0]; i <= r[1]; i++ {
			if i < 0 || i >= n {
				t.Errorf("%s: run %v outside 0..%d", what, r, n-1)
				return
			}
			set[i] = true
		}
	}
	for i := int64(0); i < n; i++ {
		if set[i] != bit(i) {
			t.Errorf("%s: bit %d is %v in the output, %v on disk", what, i, set[i], bit(i))
			return
		}
	}
}

func countRuns(runs [][2]int64) int64 {
	var n int64
	for _, r := range runs {
		n += r[1] - r[0] + 1
	}
	return n
}

// TestDumpfsFlags checks the decoded flags and check-hash lines and the
// newfs options -m derives from flags.
func TestDumpfsFlags(t *testing.T) {
	base := dumpfsImage(t, image4m)
	raw, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	const updated = -128 // FS_FLAGS_UPDATED in the int8 fs_old_flags
	tests := []struct {
		name       string
		edit       func(sb *ondisk.Superblock)
		flags      string // the flags line
		ckhash     string // the line after it
		jsonFlags  string
		jsonCkhash string
		newfs      string // options -m prints between "-O 2 " and "-a"
		newfsTail  string // options -m prints between "-s N " and the name
	}{
		{"none", nil, "flags\tnone", "", "[]", "[]", "", ""},
		{"old flags", func(sb *ondisk.Superblock) { sb.OldFlags = ondisk.FSDoSoftdep | ondisk.FSAcls },
			"flags\tsoft-updates acls ", "", "[soft-updates acls]", "[]", "", ""},
		// -m looks at fs_flags whatever fs_old_flags says.
		{"new flags ignored without FS_FLAGS_UPDATED", func(sb *ondisk.Superblock) { sb.OldFlags, sb.Flags = 0, ondisk.FSMultilabel },
			"flags\tnone", "", "[]", "[]", "", ""},
		{"soft updates journal trim", func(sb *ondisk.Superblock) {
			sb.OldFlags = updated
			sb.Flags = ondisk.FSDoSoftdep | ondisk.FSSuj | ondisk.FSTrim | ondisk.FSMultilabel | ondisk.FSGjournal
		}, "flags\tsoft-updates+journal multilabel gjournal trim ", "",
			"[soft-updates+journal multilabel gjournal trim]", "[]", "-U ", "-t "},
		{"everything", func(sb *ondisk.Superblock) {
			sb.OldFlags = updated
			sb.Flags = ondisk.FSUnclean | ondisk.FSNeedsFsck | fsIndexDirs | ondisk.FSFlagsUpdated | ondisk.FSNfs4Acls | 0x800
		}, "flags\tunclean needs-fsck-run indexed-directories fs_flags-expanded nfsv4acls unknown-flags (0x800)",
			// dumpfs.c reports unknown fs_flags bits a second time on the
			// line the check hashes would take.
			"unknown flags (0x800)",
			"[unclean needs-fsck-run indexed-directories fs_flags-expanded nfsv4acls unknown-flags (0x800)]", "[]", "", ""},
		{"check hashes", func(sb *ondisk.Superblock) {
			sb.OldFlags = updated
			sb.Flags = ondisk.FSMetackhash
			sb.Metackhash = ondisk.CKSuperblock | ondisk.CKCylGrp | ondisk.CKInode | ondisk.CKIndir | ondisk.CKDir | 0x40
		}, "flags\t", "check hashes\tsuperblock cylinder-groups inodes indirect-blocks directories unknown flags (0x40)",
			"[metadata-check-hashes]", "[superblock cylinder-groups inodes indirect-blocks directories unknown flags (0x40)]", "", ""},
		{"check hashes none", func(sb *ondisk.Superblock) {
			sb.OldFlags = updated
			sb.Flags = ondisk.FSMetackhash | ondisk.FSDoSoftdep
		}, "flags\tsoft-updates ", "check hashes\tnone", "[soft-updates metadata-check-hashes]", "[]", "-U ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			rewriteImage(t, img, tc.edit)
			out, err := runDumpfs(t, img, DumpfsOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.flags + "\n" + tc.ckhash + "\nfsmnt\t"
			if !strings.Contains(out, "\n"+want) {
				i := strings.Index(out, "\nflags")
				t.Errorf("flag lines:\n got %q\nwant %q", out[i+1:min(len(out), i+1+len(want)+20)], want)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info, err := ReadDumpfs(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(info.Superblock.FlagNames); got != tc.jsonFlags {
				t.Errorf("fs_flags_names = %s, want %s", got, tc.jsonFlags)
			}
			if got := fmt.Sprint(info.Superblock.MetackhashNames); got != tc.jsonCkhash {
				t.Errorf("fs_metackhash_names = %s, want %s", got, tc.jsonCkhash)
			}
			m, err := runDumpfs(t, img, DumpfsOptions{Marshal: true, Name: "x"})
			if err != nil {
				t.Fatal(err)
			}
			wantM := "newfs -O 2 " + tc.newfs + "-a 2 -b 32768 -d 32768 -e 8192 -f 4096 -g 16384 -h 64 -i 32768 "
			switch tc.name {
			case "soft updates journal trim":
				wantM += "-j -J -k 0 -l "
			case "new flags ignored without FS_FLAGS_UPDATED":
				wantM += "-k 0 -l "
			default:
				wantM += "-k 0 "
			}
			wantM += "-m 5 -o time -s 8192 " + tc.newfsTail + "x \n"
			if !strings.HasSuffix(m, "\n"+wantM) {
				t.Errorf("-m:\n got %q\nwant %q", m, wantM)
			}
		})
	}
}

// TestDumpfsMarshal checks dumpfs -m's other fields: label, optimisation,
// metaspace, and the density that reproduces fs_ipg.
func TestDumpfsMarshal(t *testing.T) {
	img := dumpfsImage(t, image20m)
	sb := readSuperblock(t, img)
	out, err := runDumpfs(t, img, DumpfsOptions{Marshal: true, Name: "disk.img@2"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 3 || lines[0] != "# newfs command for disk.img@2 (disk.img@2)" || lines[2] != "" {
		t.Fatalf("-m printed %q", out)
	}
	var got struct{ a, b, d, e, f, g, h, i, k, m, s int64 }
	var o, name string
	_, err = fmt.Sscanf(lines[1], "newfs -O 2 -a %d -b %d -d %d -e %d -f %d -g %d -h %d -i %d -k %d -m %d -o %s -s %d %s ",
		&got.a, &got.b, &got.d, &got.e, &got.f, &got.g, &got.h, &got.i, &got.k, &got.m, &o, &got.s, &name)
	if err != nil {
		t.Fatalf("cannot parse %q: %v", lines[1], err)
	}
	if got.b != int64(sb.Bsize) || got.f != int64(sb.Fsize) || got.a != int64(sb.Maxcontig) ||
		got.e != int64(sb.Maxbpg) || got.m != int64(sb.Minfree) || got.s*ondisk.DevBSize != sb.Size*int64(sb.Fsize) ||
		name != "disk.img@2" || o != "time" {
		t.Errorf("-m printed %q for %+v", lines[1], sb)
	}
	// newfs computes fs_ipg as a group's data bytes over the density,
	// rounded to whole inode blocks; the printed density must give back
	// at least the inodes the filesystem has, and not a block's worth more.
	groupBytes := int64(sb.Fpg) * int64(sb.Fsize)
	if ipg := groupBytes / got.i; ipg < int64(sb.Ipg)-int64(sb.Inopb) || ipg > int64(sb.Ipg)+int64(sb.Inopb) {
		t.Errorf("-i %d gives %d inodes per group, filesystem has %d", got.i, ipg, sb.Ipg)
	}

	rewriteImage(t, img, func(sb *ondisk.Superblock) {
		copy(sb.Volname[:], "backup")
		sb.Optim = ondisk.FSOptSpace
		sb.Metaspace = 96
	})
	out, err = runDumpfs(t, img, DumpfsOptions{Marshal: true, Name: "d"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nnewfs -L backup -O 2 -a ", " -k 96 ", " -o space -s "} {
		if !strings.Contains(out, want) {
			t.Errorf("-m printed %q, want it to contain %q", out, want)
		}
	}
}

func TestPrintRuns(t *testing.T) {
	tests := []struct {
		runs [][2]int64
		want string
	}{
		{nil, "(unreadable)\n"},
		{[][2]int64{}, "\n"},
		{[][2]int64{{0, 0}}, "0\n"},
		{[][2]int64{{0, 3}, {5, 5}}, "0-3, 5\n"},
		{[][2]int64{{0, 0}, {2, 2}, {4, 4}, {6, 6}, {8, 8}, {10, 10}, {12, 13}},
			"0, 2, 4, 6, 8, 10,\n\t12-13\n"},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		printRuns(&printer{w: &b}, tc.runs)
		if b.String() != tc.want {
			t.Errorf("printRuns(%v) = %q, want %q", tc.runs, b.String(), tc.want)
		}
	}
}

func TestBitRuns(t *testing.T) {
	b := []byte{0xff, 0b1010_0001, 0x80, 0x01}
	tests := []struct {
		off  uint32
		n    int64
		want string
	}{
		{0, 32, "[[0 8] [13 13] [15 15] [23 24]]"},
		{0, 14, "[[0 8] [13 13]]"},
		{1, 8, "[[0 0] [5 5] [7 7]]"},
		{2, 16, "[[7 8]]"},
		{3, 8, "[[0 0]]"},
		{0, 0, "[]"},
		{3, 9, "[]"}, // does not fit: nil prints as []
	}
	for _, tc := range tests {
		got := bitRuns(b, tc.off, tc.n)
		if fmt.Sprint(got) != tc.want {
			t.Errorf("bitRuns(off %d, n %d) = %v, want %s", tc.off, tc.n, got, tc.want)
		}
	}
	if bitRuns(b, 3, 9) != nil || bitRuns(b, 5, 1) != nil {
		t.Errorf("bitRuns outside the buffer is not nil")
	}
}

// TestDumpfsNotUFS2 checks the refusals: nothing printed, the right
// sentinel.
func TestDumpfsNotUFS2(t *testing.T) {
	ufs1 := dumpfsImage(t, testutil.MakefsOptions{Version: 1, Size: "4m"})
	dir := t.TempDir()
	zeros := filepath.Join(dir, "zeros")
	if err := os.WriteFile(zeros, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, bytes.Repeat([]byte("not a filesystem\n"), 40000), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A UFS2 superblock that breaks the format: fs_bsize not a power of two.
	bad := dumpfsImage(t, image4m)
	rewriteImage(t, bad, func(sb *ondisk.Superblock) { sb.Bsize = 12345 })

	tests := []struct {
		name string
		img  string
		want error
	}{
		{"UFS1", ufs1, ondisk.ErrUFS1},
		{"zeros", zeros, ondisk.ErrNotFound},
		{"text", text, ondisk.ErrNotFound},
		{"short", short, ondisk.ErrNotFound},
		{"corrupt superblock", bad, ondisk.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, opts := range []DumpfsOptions{{}, {FreeSpace: 1}, {Marshal: true}} {
				out, err := runDumpfs(t, tc.img, opts)
				if !errors.Is(err, tc.want) || errors.Is(err, ErrDumpfsDamage) {
					t.Errorf("%+v: err = %v, want %v and not ErrDumpfsDamage", opts, err, tc.want)
				}
				if out != "" {
					t.Errorf("%+v: printed %q", opts, out)
				}
			}
			f, err := os.Open(tc.img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out bytes.Buffer
			if err := DumpfsJSON(f, &out); !errors.Is(err, tc.want) || out.Len() != 0 {
				t.Errorf("DumpfsJSON: err = %v, printed %q", err, out.String())
			}
		})
	}
}

// truncatedReader is an io.ReaderAt over the first n bytes of r.
type truncatedReader struct {
	r io.ReaderAt
	n int64
}

func (t truncatedReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= t.n {
		return 0, io.EOF
	}
	if off+int64(len(p)) > t.n {
		k, err := t.r.ReadAt(p[:t.n-off], off)
		if err == nil {
			err = io.EOF
		}
		return k, err
	}
	return t.r.ReadAt(p, off)
}

// TestDumpfsDamagedCg checks that a damaged group is reported where it is,
// the others are dumped in full, and the error at the end says so.
func TestDumpfsDamagedCg(t *testing.T) {
	base := dumpfsImage(t, image20m)
	raw, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	sb := readSuperblock(t, base)
	cg0 := sb.FragOffset(sb.Cgtod(0))
	cg1 := sb.FragOffset(sb.Cgtod(1))
	le32 := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

	tests := []struct {
		name     string
		damage   func(t *testing.T, img string)
		size     int64  // if > 0, the device ends here
		wantErr  error  // sentinel the final error wraps
		badCg    int    // the group reported damaged
		wantText string // in the damaged group's section
		header   bool   // the damaged group's header is still shown
	}{
		{"bad magic", func(t *testing.T, img string) { patchImage(t, img, cg0+4, le32(0xdead)) },
			0, ondisk.ErrBadMagic, 0, "magic\tdead\t", true},
		{"wrong cgx", func(t *testing.T, img string) { patchImage(t, img, cg1+12, le32(7)) },
			0, ondisk.ErrCorrupt, 1, "cgx\t7\t", true},
		{"map outside the block", func(t *testing.T, img string) { patchImage(t, img, cg1+92, le32(60000)) },
			0, ondisk.ErrCorrupt, 1, "inodes used:\t(unreadable)\n", true},
		{"check-hash mismatch", func(t *testing.T, img string) {
			rewriteImage(t, img, func(sb *ondisk.Superblock) {
				sb.OldFlags = -128
				sb.Flags |= ondisk.FSMetackhash
				sb.Metackhash = ondisk.CKCylGrp
			})
			// Free one more fragment in cg 1's map without rehashing.
			c := readCgForTest(t, mustOpen(t, img), sb, 1)
			f := int64(sb.Fpg) - 1
			for c.FragFree(f) {
				f--
			}
			c.SetFragFree(f, true)
			patchImage(t, img, cg1, c.B)
		}, 0, ondisk.ErrCheckHash, 1, "blks free:\t", true},
		{"unreadable", nil, cg1 + 100, io.ErrUnexpectedEOF, 1, "reading", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.damage != nil {
				tc.damage(t, img)
			}
			f := mustOpen(t, img)
			var dev io.ReaderAt = f
			if tc.size > 0 {
				dev = truncatedReader{f, tc.size}
			}
			var b bytes.Buffer
			err := Dumpfs(dev, &b, DumpfsOptions{Location: time.UTC})
			out := b.String()
			if !errors.Is(err, ErrDumpfsDamage) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want ErrDumpfsDamage and %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("cylinder group %d", tc.badCg)) {
				t.Errorf("err = %v, want it to name cylinder group %d", err, tc.badCg)
			}
			sections := strings.Split(out, "\ncg ")
			if len(sections) != int(sb.Ncg)+1 {
				t.Fatalf("%d cylinder group sections, want %d:\n%s", len(sections)-1, sb.Ncg, out)
			}
			for c, sec := range sections[1:] {
				hasErr := strings.Contains(sec, "\nerror\t")
				if hasErr != (c == tc.badCg) {
					t.Errorf("cg %d: error line present = %v:\n%s", c, hasErr, sec)
				}
				if c != tc.badCg && !strings.Contains(sec, "\nblks free:\t") {
					t.Errorf("cg %d not dumped in full:\n%s", c, sec)
				}
			}
			bad := sections[tc.badCg+1]
			if !strings.Contains(bad, tc.wantText) {
				t.Errorf("cg %d section lacks %q:\n%s", tc.badCg, tc.wantText, bad)
			}
			if got := strings.Contains(bad, "\nnbfree\t"); got != tc.header {
				t.Errorf("cg %d header shown = %v, want %v:\n%s", tc.badCg, got, tc.header, bad)
			}

			// The JSON dump records the same damage and still parses.
			var jb bytes.Buffer
			jerr := DumpfsJSON(dev, &jb)
			if !errors.Is(jerr, ErrDumpfsDamage) {
				t.Errorf("DumpfsJSON err = %v", jerr)
			}
			var d jsonDump
			if err := json.Unmarshal(jb.Bytes(), &d); err != nil {
				t.Fatalf("JSON output does not parse: %v", err)
			}
			if len(d.Errors) != 1 || d.CylinderGroups[tc.badCg].Error == "" {
				t.Errorf("JSON errors %q, cg %d error %q", d.Errors, tc.badCg, d.CylinderGroups[tc.badCg].Error)
			}
			var m map[string]any
			_ = json.Unmarshal(jb.Bytes(), &m)
			cg := m["cylinder_groups"].([]any)[tc.badCg].(map[string]any)
			if _, ok := cg["cg_cgx"]; ok != tc.header {
				t.Errorf("JSON cg %d has cg_cgx = %v, want %v", tc.badCg, ok, tc.header)
			}
		})
	}
}

// TestDumpfsSuperblockHash checks that a superblock whose check-hash fails
// is still dumped in full, and the error says why.
func TestDumpfsSuperblockHash(t *testing.T) {
	img := dumpfsImage(t, image4m)
	var loc int64
	rewriteImage(t, img, func(sb *ondisk.Superblock) {
		sb.OldFlags = -128
		sb.Flags |= ondisk.FSMetackhash
		sb.Metackhash = ondisk.CKSuperblock
		loc = sb.Sblockloc
	})
	patchImage(t, img, loc+680, []byte("x")) // fs_volname, not rehashed
	out, err := runDumpfs(t, img, DumpfsOptions{})
	if !errors.Is(err, ondisk.ErrCheckHash) || !errors.Is(err, ErrDumpfsDamage) {
		t.Fatalf("err = %v, want ErrCheckHash and ErrDumpfsDamage", err)
	}
	for _, want := range []string{"check hashes\tsuperblock \n", "volname\tx\t", "\ncg 0:\n", "\nblks free:\t"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q", want)
		}
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
