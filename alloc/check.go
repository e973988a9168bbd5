package alloc

import (
	"fmt"
	"math/bits"

	"github.com/ufs2/ufs2/ondisk"
)

// Discrepancy is one disagreement Check found: the field named by What, in
// group Cg (or in the superblock when Cg is -1), holds Have where the maps
// (or the group summaries, for totals) say Want.
type Discrepancy struct {
	Cg   int64
	What string
	Have int64
	Want int64
}

func (d Discrepancy) String() string {
	where := "superblock"
	if d.Cg >= 0 {
		where = fmt.Sprintf("cg %d", d.Cg)
	}
	return fmt.Sprintf("%s: %s is %d, want %d", where, d.What, d.Have, d.Want)
}

// Check recounts every group's maps and compares: cg_cs (free blocks,
// free fragments, free inodes) with the maps; cg_frsum with the free runs;
// the cluster map with the whole free blocks and the cluster summary with
// its runs; each fs_cs entry with its group's cg_cs (directories too); and
// fs_cstotal with the sum of the fs_cs entries. It also reports metadata
// marked free, free bits past the group's end, and inodes in use beyond
// cg_initediblk. It returns every discrepancy it finds; an error only when
// a group cannot be read.
func (a *Allocator) Check() ([]Discrepancy, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Check(a.sb, a.csums, a.groups)
}

// Check is Allocator.Check over a superblock, its summaries and groups
// with no Allocator (for fsck-like callers and tests). The caller keeps
// them from changing meanwhile.
func Check(sb *ondisk.Superblock, csums []ondisk.Csum, g Groups) ([]Discrepancy, error) {
	var out []Discrepancy
	add := func(c int64, what string, have, want int64) {
		if have != want {
			out = append(out, Discrepancy{Cg: c, What: what, Have: have, Want: want})
		}
	}
	if uint64(len(csums)) != uint64(sb.Ncg) {
		add(-1, "number of csum entries", int64(len(csums)), int64(sb.Ncg))
		return out, nil
	}
	var tot ondisk.CsumTotal
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		cg, err := g.Cg(c)
		if err != nil {
			return out, fmt.Errorf("alloc: check: cg %d: %w", c, err)
		}
		ci := int64(c)
		r := recount(sb, c, cg)
		add(ci, "cg_cs.cs_nbfree", int64(cg.Cs.Nbfree), r.nbfree)
		add(ci, "cg_cs.cs_nffree", int64(cg.Cs.Nffree), r.nffree)
		add(ci, "cg_cs.cs_nifree", int64(cg.Cs.Nifree), r.nifree)
		for i := 1; i < ondisk.MaxFrag; i++ {
			add(ci, fmt.Sprintf("cg_frsum[%d]", i), int64(cg.Frsum[i]), r.frsum[i])
		}
		for i := 1; i <= int(sb.Contigsumsize); i++ {
			add(ci, fmt.Sprintf("cg_clustersum[%d]", i), int64(cg.ClusterSum(i)), r.clustersum[i])
		}
		add(ci, "cluster map bits disagreeing with the free map", r.clusterBad, 0)
		add(ci, "metadata fragments marked free", r.metaFree, 0)
		add(ci, "free bits past cg_ndblk", r.pastEnd, 0)
		add(ci, "inodes in use past cg_initediblk", r.pastInited, 0)
		add(ci, "fs_cs.cs_ndir", int64(csums[c].Ndir), int64(cg.Cs.Ndir))
		add(ci, "fs_cs.cs_nbfree", int64(csums[c].Nbfree), int64(cg.Cs.Nbfree))
		add(ci, "fs_cs.cs_nifree", int64(csums[c].Nifree), int64(cg.Cs.Nifree))
		add(ci, "fs_cs.cs_nffree", int64(csums[c].Nffree), int64(cg.Cs.Nffree))
		tot.Ndir += int64(csums[c].Ndir)
		tot.Nbfree += int64(csums[c].Nbfree)
		tot.Nifree += int64(csums[c].Nifree)
		tot.Nffree += int64(csums[c].Nffree)
	}
	add(-1, "fs_cstotal.cs_ndir", sb.Cstotal.Ndir, tot.Ndir)
	add(-1, "fs_cstotal.cs_nbfree", sb.Cstotal.Nbfree, tot.Nbfree)
	add(-1, "fs_cstotal.cs_nifree", sb.Cstotal.Nifree, tot.Nifree)
	add(-1, "fs_cstotal.cs_nffree", sb.Cstotal.Nffree, tot.Nffree)
	return out, nil
}

type counts struct {
	nbfree, nffree, nifree int64
	frsum                  [ondisk.MaxFrag]int64
	clustersum             [ondisk.FSMaxContig + 1]int64
	clusterBad             int64
	metaFree               int64
	pastEnd                int64
	pastInited             int64
}

// recount counts group c's maps the way fsck_ffs's pass 5 does.
func recount(sb *ondisk.Superblock, c ondisk.Cg, cg *ondisk.CylGroup) counts {
	var r counts
	ipg := int64(sb.Ipg)
	for i := range ipg {
		if cg.InodeUsed(i) {
			if i >= int64(cg.Initediblk) {
				r.pastInited++
			}
		} else {
			r.nifree++
		}
	}
	frag := int64(sb.Frag)
	ndblk := int64(cg.Ndblk)
	css := int64(sb.Contigsumsize)
	run := int64(0)
	endRun := func() {
		if run > 0 {
			r.clustersum[min(run, css)]++
		}
		run = 0
	}
	for h := int64(0); h*frag < ndblk; h++ {
		whole := (h+1)*frag <= ndblk && cg.IsBlock(h)
		if whole {
			r.nbfree++
		} else {
			blk := cg.BlockMap(h)
			r.nffree += int64(bits.OnesCount(uint(blk)))
			ondisk.FragRuns(int(frag), blk, func(n int) { r.frsum[n]++ })
		}
		if css > 0 && h < int64(cg.Nclusterblks) {
			if cg.ClusterFree(h) != whole {
				r.clusterBad++
			}
			// The cluster summary counts runs of whole free blocks, as
			// fsck_ffs rebuilds it from the free map.
			if whole {
				run++
			} else {
				endRun()
			}
		}
	}
	endRun()
	for f := ndblk; f < int64(sb.Fpg); f++ {
		if cg.FragFree(f) {
			r.pastEnd++
		}
	}
	// Metadata: the superblock copy, the group block and the inodes (all
	// of the group's head in group 0), and the summary area.
	lo := int64(sb.Sblkno)
	if c == 0 {
		lo = 0
	}
	for f := lo; f < int64(sb.Dblkno) && f < ndblk; f++ {
		if cg.FragFree(f) {
			r.metaFree++
		}
	}
	base := sb.Cgbase(c)
	csEnd := sb.Csaddr + ondisk.Frag(sb.Numfrags(sb.Fragroundup(int64(sb.Cssize))))
	for f := max(sb.Csaddr, base); f < csEnd && f < base+ondisk.Frag(ndblk); f++ {
		if cg.FragFree(int64(f - base)) {
			r.metaFree++
		}
	}
	return r
}
