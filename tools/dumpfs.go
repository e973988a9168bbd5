package tools

// dumpfs: the superblock and every cylinder group of a UFS2 filesystem, in
// the layout of FreeBSD's dumpfs(8) (sbin/dumpfs/dumpfs.c), or as JSON with
// FreeBSD's field names as keys.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// fsIndexDirs is FS_INDEXDIRS (fs.h): the kernel may index directories.
// ondisk does not name it because nothing but dumpfs looks at it.
const fsIndexDirs = 0x01000000

// DumpfsOptions selects what Dumpfs prints.
type DumpfsOptions struct {
	// Name is the target as the user gave it; -m prints it in the newfs
	// command line.
	Name string
	// FreeSpace is dumpfs -f: 1 lists the free fragments of every group as
	// ranges of absolute fragment numbers, one per line; 2 (-ff) lists each
	// free fragment on its own line. 0 prints the full dump.
	FreeSpace int
	// Marshal is dumpfs -m: print a newfs command that recreates the
	// filesystem's parameters instead of the dump.
	Marshal bool
	// Location is the time zone of printed times (FreeBSD prints them with
	// ctime(3), in local time); nil means time.Local.
	Location *time.Location
}

// DumpfsInfo is everything the full dump shows, as DumpfsJSON writes it.
// Keys are FreeBSD's field names (struct fs, struct csum, struct cg); values
// dumpfs derives or decodes have descriptive keys.
type DumpfsInfo struct {
	Superblock DumpfsSuperblock `json:"superblock"`
	// Cs is the fs_csp summary array (one entry per group) read from
	// fs_csaddr; nil if it could not be read.
	Cs             []DumpfsCsum `json:"fs_cs"`
	CylinderGroups []DumpfsCg   `json:"cylinder_groups"`
	// Errors lists every problem found (bad check-hash, unreadable summary,
	// damaged groups); the dump is complete only when it is empty.
	Errors []string `json:"errors"`
}

// DumpfsCsum is struct csum (per group) or struct csum_total (whole
// filesystem; only then is cs_numclusters present).
type DumpfsCsum struct {
	Nbfree      int64  `json:"cs_nbfree"`
	Ndir        int64  `json:"cs_ndir"`
	Nifree      int64  `json:"cs_nifree"`
	Nffree      int64  `json:"cs_nffree"`
	Numclusters *int64 `json:"cs_numclusters,omitempty"`
}

// DumpfsSuperblock is the superblock as dumpfs shows it.
type DumpfsSuperblock struct {
	Magic           uint32     `json:"fs_magic"`
	Mtime           int64      `json:"fs_mtime"` // last mounted
	Time            int64      `json:"fs_time"`  // last modified
	Sblockloc       int64      `json:"fs_sblockloc"`
	ID              [2]uint32  `json:"fs_id"`
	Ncg             uint32     `json:"fs_ncg"`
	Size            int64      `json:"fs_size"`
	Dsize           int64      `json:"fs_dsize"`
	Bsize           int32      `json:"fs_bsize"`
	Bshift          int32      `json:"fs_bshift"`
	Bmask           uint32     `json:"fs_bmask"`
	Fsize           int32      `json:"fs_fsize"`
	Fshift          int32      `json:"fs_fshift"`
	Fmask           uint32     `json:"fs_fmask"`
	Frag            int32      `json:"fs_frag"`
	Fragshift       int32      `json:"fs_fragshift"`
	Fsbtodb         int32      `json:"fs_fsbtodb"`
	Minfree         int32      `json:"fs_minfree"`
	Optim           int32      `json:"fs_optim"`
	OptimName       string     `json:"fs_optim_name"` // "time" or "space", as dumpfs prints it
	Maxsymlinklen   int32      `json:"fs_maxsymlinklen"`
	Maxbsize        int32      `json:"fs_maxbsize"`
	Maxbpg          int32      `json:"fs_maxbpg"`
	Maxcontig       int32      `json:"fs_maxcontig"`
	Contigsumsize   int32      `json:"fs_contigsumsize"`
	Cstotal         DumpfsCsum `json:"fs_cstotal"`
	Bpg             int32      `json:"bpg"` // fs_fpg / fs_frag
	Fpg             int32      `json:"fs_fpg"`
	Ipg             uint32     `json:"fs_ipg"`
	Unrefs          int64      `json:"fs_unrefs"`
	Nindir          int32      `json:"fs_nindir"`
	Inopb           uint32     `json:"fs_inopb"`
	Maxfilesize     uint64     `json:"fs_maxfilesize"`
	Sbsize          int32      `json:"fs_sbsize"`
	Cgsize          int32      `json:"fs_cgsize"`
	Csaddr          int64      `json:"fs_csaddr"`
	Cssize          int32      `json:"fs_cssize"`
	Sblkno          int32      `json:"fs_sblkno"`
	Cblkno          int32      `json:"fs_cblkno"`
	Iblkno          int32      `json:"fs_iblkno"`
	Dblkno          int32      `json:"fs_dblkno"`
	Cgrotor         int32      `json:"fs_cgrotor"`
	Fmod            int8       `json:"fs_fmod"`
	Ronly           int8       `json:"fs_ronly"`
	Clean           int8       `json:"fs_clean"`
	Metaspace       int64      `json:"fs_metaspace"`
	Avgfpdir        uint32     `json:"fs_avgfpdir"`
	Avgfilesize     uint32     `json:"fs_avgfilesize"`
	Flags           int32      `json:"fs_flags"`
	OldFlags        int8       `json:"fs_old_flags"`
	FlagNames       []string   `json:"fs_flags_names"` // decoded from fs_flags (fs_old_flags on old filesystems)
	Metackhash      uint32     `json:"fs_metackhash"`
	MetackhashNames []string   `json:"fs_metackhash_names"`
	Ckhash          uint32     `json:"fs_ckhash"`
	Fsmnt           string     `json:"fs_fsmnt"`
	Volname         string     `json:"fs_volname"`
	Swuid           uint64     `json:"fs_swuid"`
	Providersize    int64      `json:"fs_providersize"`
	Pendingblocks   int64      `json:"fs_pendingblocks"`
	Pendinginodes   uint32     `json:"fs_pendinginodes"`
	Snapinum        []uint32   `json:"fs_snapinum"` // the non-zero entries
	Sujfree         int32      `json:"fs_sujfree"`
	State           int32      `json:"fs_state"`
}

// DumpfsCg is one cylinder group. CgIndex and Tell are always set; the
// header fields are absent (nil) when the group could not be read at all,
// and each map is nil when it lies outside the group's block.
type DumpfsCg struct {
	CgIndex uint32 `json:"cg"`   // which group this is
	Tell    int64  `json:"tell"` // byte offset of the cylinder group block
	*DumpfsCgHeader
	// ClusterSum is cg_clustersum[0..fs_contigsumsize]; index i counts free
	// clusters of i blocks (the last: that size and over).
	ClusterSum   []int32    `json:"cg_clustersum"`
	ClustersFree [][2]int64 `json:"clusters_free"` // runs of set bits of the cluster map (blocks)
	InodesUsed   [][2]int64 `json:"inodes_used"`   // runs of allocated inodes (relative to the group)
	BlksFree     [][2]int64 `json:"blks_free"`     // runs of free fragments (relative to the group)
	Error        string     `json:"error,omitempty"`
}

// DumpfsCgHeader is the fixed part of struct cg as dumpfs shows it.
type DumpfsCgHeader struct {
	Magic        uint32     `json:"cg_magic"`
	Time         int64      `json:"cg_time"`
	Cgx          uint32     `json:"cg_cgx"`
	Ndblk        uint32     `json:"cg_ndblk"`
	Niblk        uint32     `json:"cg_niblk"`
	Initediblk   uint32     `json:"cg_initediblk"`
	Unrefs       uint32     `json:"cg_unrefs"`
	Cs           DumpfsCsum `json:"cg_cs"`
	Rotor        uint32     `json:"cg_rotor"`
	Irotor       uint32     `json:"cg_irotor"`
	Frotor       uint32     `json:"cg_frotor"`
	Frsum        []uint32   `json:"cg_frsum"`     // cg_frsum[0..MAXFRAG-1]
	FrsumTotal   int64      `json:"sum_of_frsum"` // free fragments the frsum counts: sum of i*frsum[i]
	Nclusterblks uint32     `json:"cg_nclusterblks"`
	Ckhash       uint32     `json:"cg_ckhash"`
}

// Dumpfs writes to w what FreeBSD's dumpfs prints for the UFS2 filesystem
// on dev: the full dump, or with opts.FreeSpace the free-fragment list, or
// with opts.Marshal a newfs command.
//
// A missing or UFS1 superblock fails at once (wrapping ondisk.ErrNotFound,
// ondisk.ErrUFS1 or ondisk.ErrCorrupt) with nothing written. A superblock
// whose check-hash fails, a damaged cylinder group or an unreadable summary
// area is reported in the output where it occurs and the dump goes on; the
// error returned at the end then wraps ErrDumpfsDamage and the first
// problem (ondisk.ErrCorrupt, ondisk.ErrBadMagic, ondisk.ErrCheckHash or the
// read error).
func Dumpfs(dev io.ReaderAt, w io.Writer, opts DumpfsOptions) error {
	// A superblock whose check-hash fails comes back with the error: it is
	// dumped anyway and the error reported at the end.
	sb, _, sbErr := ondisk.FindSuperblock(dev)
	if sb == nil {
		return sbErr
	}
	bw := bufio.NewWriter(w)
	p := &printer{w: bw}
	var probs problems
	probs.add(sbErr)
	switch {
	case opts.Marshal:
		printMarshal(p, sb, opts.Name)
	case opts.FreeSpace > 0:
		for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
			cg, err := readDumpfsCg(dev, sb, c)
			probs.add(err)
			base := int64(sb.Cgbase(c))
			for _, r := range cg.BlksFree {
				if opts.FreeSpace >= 2 {
					for f := r[0]; f <= r[1]; f++ {
						p.printf("%d\n", f+base)
					}
				} else if r[0] == r[1] {
					p.printf("%d\n", r[0]+base)
				} else {
					p.printf("%d-%d\n", r[0]+base, r[1]+base)
				}
			}
		}
	default:
		loc := opts.Location
		if loc == nil {
			loc = time.Local
		}
		info := DumpfsSuperblockInfo(sb)
		cs, csErr := readCsums(dev, sb)
		probs.add(csErr)
		printSuperblock(p, &info, sb, cs, csErr, loc)
		for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
			cg, err := readDumpfsCg(dev, sb, c)
			probs.add(err)
			printCg(p, &cg, sb, loc)
		}
	}
	if p.err == nil {
		p.err = bw.Flush()
	}
	if p.err != nil {
		return fmt.Errorf("dumpfs: writing output: %w", p.err)
	}
	return probs.err()
}

// DumpfsJSON writes ReadDumpfs's result to w as indented JSON. Errors are as
// for Dumpfs; the damage found is also listed in the output's "errors".
func DumpfsJSON(dev io.ReaderAt, w io.Writer) error {
	info, err := ReadDumpfs(dev)
	if info == nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(info); werr != nil {
		return fmt.Errorf("dumpfs: writing output: %w", werr)
	}
	return err
}

// ReadDumpfs reads the superblock, the summary area and every cylinder group
// of dev. It returns a nil DumpfsInfo only when there is no usable UFS2
// superblock; damage after that is recorded in the result and summarised by
// the error, as Dumpfs does.
func ReadDumpfs(dev io.ReaderAt) (*DumpfsInfo, error) {
	// A superblock whose check-hash fails comes back with the error: it is
	// dumped anyway and the error reported at the end.
	sb, _, sbErr := ondisk.FindSuperblock(dev)
	if sb == nil {
		return nil, sbErr
	}
	var probs problems
	probs.add(sbErr)
	info := &DumpfsInfo{Superblock: DumpfsSuperblockInfo(sb), CylinderGroups: make([]DumpfsCg, 0, sb.Ncg)}
	cs, csErr := readCsums(dev, sb)
	probs.add(csErr)
	if cs != nil {
		info.Cs = make([]DumpfsCsum, len(cs))
		for i, c := range cs {
			info.Cs[i] = DumpfsCsum{Nbfree: int64(c.Nbfree), Ndir: int64(c.Ndir), Nifree: int64(c.Nifree), Nffree: int64(c.Nffree)}
		}
	}
	for c := ondisk.Cg(0); c < ondisk.Cg(sb.Ncg); c++ {
		cg, err := readDumpfsCg(dev, sb, c)
		probs.add(err)
		info.CylinderGroups = append(info.CylinderGroups, cg)
	}
	info.Errors = make([]string, 0, len(probs.list))
	for _, e := range probs.list {
		info.Errors = append(info.Errors, e.Error())
	}
	return info, probs.err()
}

// ErrDumpfsDamage is wrapped (next to the problem's own sentinel) by the
// error Dumpfs, DumpfsJSON and ReadDumpfs return when they dumped the
// filesystem but found damage on the way. Its absence means nothing was
// dumped: there is no usable UFS2 superblock.
var ErrDumpfsDamage = errors.New("dumpfs: damage found")

// problems collects the damage found during a dump.
type problems struct{ list []error }

// damageError is the first problem of a dump with a count of the others.
type damageError struct {
	first error
	more  int
}

func (e *damageError) Error() string {
	if e.more == 0 {
		return e.first.Error()
	}
	return fmt.Sprintf("%v (and %d more problems, shown in the output)", e.first, e.more)
}

func (e *damageError) Unwrap() []error { return []error{e.first, ErrDumpfsDamage} }

func (p *problems) add(err error) {
	if err != nil {
		p.list = append(p.list, err)
	}
}

// err is nil or a damageError naming the first problem (the output shows
// them all).
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &damageError{first: p.list[0], more: len(p.list) - 1}
}

// DumpfsSuperblockInfo is what dumpfs shows of sb.
func DumpfsSuperblockInfo(sb *ondisk.Superblock) DumpfsSuperblock {
	numclusters := sb.Cstotal.Numclusters
	s := DumpfsSuperblock{
		Magic:         uint32(sb.Magic),
		Mtime:         sb.Mtime,
		Time:          sb.Time,
		Sblockloc:     sb.Sblockloc,
		ID:            [2]uint32{uint32(sb.ID[0]), uint32(sb.ID[1])},
		Ncg:           sb.Ncg,
		Size:          sb.Size,
		Dsize:         sb.Dsize,
		Bsize:         sb.Bsize,
		Bshift:        sb.Bshift,
		Bmask:         uint32(sb.Bmask),
		Fsize:         sb.Fsize,
		Fshift:        sb.Fshift,
		Fmask:         uint32(sb.Fmask),
		Frag:          sb.Frag,
		Fragshift:     sb.Fragshift,
		Fsbtodb:       sb.Fsbtodb,
		Minfree:       sb.Minfree,
		Optim:         sb.Optim,
		OptimName:     "time",
		Maxsymlinklen: sb.Maxsymlinklen,
		Maxbsize:      sb.Maxbsize,
		Maxbpg:        sb.Maxbpg,
		Maxcontig:     sb.Maxcontig,
		Contigsumsize: sb.Contigsumsize,
		Cstotal: DumpfsCsum{Nbfree: sb.Cstotal.Nbfree, Ndir: sb.Cstotal.Ndir,
			Nifree: sb.Cstotal.Nifree, Nffree: sb.Cstotal.Nffree, Numclusters: &numclusters},
		Fpg:             sb.Fpg,
		Ipg:             sb.Ipg,
		Unrefs:          sb.Unrefs,
		Nindir:          sb.Nindir,
		Inopb:           sb.Inopb,
		Maxfilesize:     sb.Maxfilesize,
		Sbsize:          sb.Sbsize,
		Cgsize:          sb.Cgsize,
		Csaddr:          int64(sb.Csaddr),
		Cssize:          sb.Cssize,
		Sblkno:          sb.Sblkno,
		Cblkno:          sb.Cblkno,
		Iblkno:          sb.Iblkno,
		Dblkno:          sb.Dblkno,
		Cgrotor:         sb.Cgrotor,
		Fmod:            sb.Fmod,
		Ronly:           sb.Ronly,
		Clean:           sb.Clean,
		Metaspace:       sb.Metaspace,
		Avgfpdir:        sb.Avgfpdir,
		Avgfilesize:     sb.Avgfilesize,
		Flags:           sb.Flags,
		OldFlags:        sb.OldFlags,
		FlagNames:       fsFlagNames(effectiveFlags(sb), true),
		Metackhash:      sb.Metackhash,
		MetackhashNames: ckhashNames(sb.Metackhash, true),
		Ckhash:          sb.Ckhash,
		Fsmnt:           cString(sb.Fsmnt[:]),
		Volname:         cString(sb.Volname[:]),
		Swuid:           sb.Swuid,
		Providersize:    sb.Providersize,
		Pendingblocks:   sb.Pendingblocks,
		Pendinginodes:   sb.Pendinginodes,
		Snapinum:        []uint32{},
		Sujfree:         sb.Sujfree,
		State:           sb.State,
	}
	if sb.Optim == ondisk.FSOptSpace {
		s.OptimName = "space"
	}
	if sb.Frag != 0 {
		s.Bpg = sb.Fpg / sb.Frag
	}
	for _, ino := range sb.Snapinum {
		if ino != 0 {
			s.Snapinum = append(s.Snapinum, ino)
		}
	}
	return s
}

// effectiveFlags is the flag word dumpfs decodes: fs_flags once
// FS_FLAGS_UPDATED is set in fs_old_flags, fs_old_flags before.
func effectiveFlags(sb *ondisk.Superblock) int32 {
	if uint8(sb.OldFlags)&ondisk.FSFlagsUpdated != 0 {
		return sb.Flags
	}
	return int32(sb.OldFlags)
}

// fsFlagNames decodes fs_flags in dumpfs's order and words. all adds the
// bits dumpfs leaves out of its flags line (FS_METACKHASH, which it shows
// as the check-hash line) and a final "unknown-flags (0x...)" entry.
func fsFlagNames(flags int32, all bool) []string {
	f := uint32(flags)
	names := []string{}
	if f&ondisk.FSUnclean != 0 {
		names = append(names, "unclean")
	}
	if f&ondisk.FSDoSoftdep != 0 {
		if f&ondisk.FSSuj != 0 {
			names = append(names, "soft-updates+journal")
		} else {
			names = append(names, "soft-updates")
		}
	}
	for _, b := range []struct {
		bit  uint32
		name string
	}{
		{ondisk.FSNeedsFsck, "needs-fsck-run"},
		{fsIndexDirs, "indexed-directories"},
		{ondisk.FSAcls, "acls"},
		{ondisk.FSMultilabel, "multilabel"},
		{ondisk.FSGjournal, "gjournal"},
		{ondisk.FSFlagsUpdated, "fs_flags-expanded"},
		{ondisk.FSNfs4Acls, "nfsv4acls"},
		{ondisk.FSTrim, "trim"},
	} {
		if f&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	if all {
		if f&ondisk.FSMetackhash != 0 {
			names = append(names, "metadata-check-hashes")
		}
		if u := unknownFlags(flags); u != 0 {
			names = append(names, fmt.Sprintf("unknown-flags (%#x)", u))
		}
	}
	return names
}

// unknownFlags is the part of flags dumpfs has no word for.
func unknownFlags(flags int32) uint32 {
	known := uint32(ondisk.FSUnclean | ondisk.FSDoSoftdep | ondisk.FSNeedsFsck |
		ondisk.FSMetackhash | ondisk.FSAcls | ondisk.FSMultilabel | ondisk.FSGjournal |
		ondisk.FSFlagsUpdated | ondisk.FSNfs4Acls | ondisk.FSSuj | ondisk.FSTrim | fsIndexDirs)
	return uint32(flags) &^ known
}

const knownCkhash = ondisk.CKSuperblock | ondisk.CKCylGrp | ondisk.CKInode | ondisk.CKIndir | ondisk.CKDir

// ckhashNames decodes fs_metackhash in dumpfs's order and words; all adds
// an "unknown flags (0x...)" entry.
func ckhashNames(ck uint32, all bool) []string {
	names := []string{}
	for _, b := range []struct {
		bit  uint32
		name string
	}{
		{ondisk.CKSuperblock, "superblock"},
		{ondisk.CKCylGrp, "cylinder-groups"},
		{ondisk.CKInode, "inodes"},
		{ondisk.CKIndir, "indirect-blocks"},
		{ondisk.CKDir, "directories"},
	} {
		if ck&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	if u := ck &^ knownCkhash; all && u != 0 {
		names = append(names, fmt.Sprintf("unknown flags (%#x)", u))
	}
	return names
}

// cString is a NUL-terminated C string held in a fixed array.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// readCsums reads the fs_csp summary array: fs_cssize bytes at fs_csaddr,
// one struct csum per group.
func readCsums(dev io.ReaderAt, sb *ondisk.Superblock) ([]ondisk.Csum, error) {
	off := sb.FragOffset(sb.Csaddr)
	buf := make([]byte, sb.Cssize)
	if err := blockdev.ReadFull(dev, buf, off); err != nil {
		return nil, fmt.Errorf("summary area (fs_csaddr %d, %d bytes at byte %d): %w", sb.Csaddr, sb.Cssize, off, err)
	}
	cs := make([]ondisk.Csum, sb.Ncg)
	for i := range cs {
		c, err := ondisk.DecodeCsum(buf[i*ondisk.CsumSize:])
		if err != nil {
			return nil, fmt.Errorf("summary area: entry %d: %w", i, err)
		}
		cs[i] = c
	}
	return cs, nil
}

// readDumpfsCg reads cylinder group c. The result holds whatever could be
// decoded; the error says what is wrong with the group (unreadable, a
// header that breaks the format, a check-hash mismatch) and is also in
// the result's Error.
func readDumpfsCg(dev io.ReaderAt, sb *ondisk.Superblock, c ondisk.Cg) (DumpfsCg, error) {
	cg := DumpfsCg{CgIndex: uint32(c), Tell: sb.FragOffset(sb.Cgtod(c))}
	fail := func(err error) (DumpfsCg, error) {
		cg.Error = err.Error()
		return cg, err
	}
	buf := make([]byte, sb.Cgsize)
	if err := blockdev.ReadFull(dev, buf, cg.Tell); err != nil {
		return fail(fmt.Errorf("cylinder group %d: reading %d bytes at byte %d: %w", c, len(buf), cg.Tell, err))
	}
	h, err := ondisk.DecodeCgHeader(buf)
	if err != nil {
		return fail(fmt.Errorf("cylinder group %d: %w", c, err))
	}
	hdr := &DumpfsCgHeader{
		Magic: uint32(h.Magic), Time: h.Time, Cgx: h.Cgx, Ndblk: h.Ndblk, Niblk: h.Niblk,
		Initediblk: h.Initediblk, Unrefs: h.Unrefs,
		Cs:    DumpfsCsum{Nbfree: int64(h.Cs.Nbfree), Ndir: int64(h.Cs.Ndir), Nifree: int64(h.Cs.Nifree), Nffree: int64(h.Cs.Nffree)},
		Rotor: h.Rotor, Irotor: h.Irotor, Frotor: h.Frotor,
		Frsum:        append([]uint32(nil), h.Frsum[:]...),
		Nclusterblks: h.Nclusterblks, Ckhash: h.Ckhash,
	}
	for i := 1; i < int(sb.Frag) && i < len(h.Frsum); i++ {
		hdr.FrsumTotal += int64(i) * int64(h.Frsum[i])
	}
	cg.DumpfsCgHeader = hdr

	cg.InodesUsed = bitRuns(buf, h.Iusedoff, int64(sb.Ipg))
	cg.BlksFree = bitRuns(buf, h.Freeoff, int64(sb.Fpg))
	if sb.Contigsumsize > 0 {
		cg.ClusterSum = int32Array(buf, h.Clustersumoff, int(sb.Contigsumsize)+1)
		cg.ClustersFree = bitRuns(buf, h.Clusteroff, int64(h.Nclusterblks))
	}

	dc, err := ondisk.DecodeCg(sb, c, buf)
	if err == nil {
		err = dc.VerifyHash()
	}
	if err != nil {
		return fail(err)
	}
	return cg, nil
}

// bitRuns returns the runs of set bits among the first n bits of the map
// at byte off of b, as inclusive [first, last] pairs; nil when the map does
// not fit in b.
func bitRuns(b []byte, off uint32, n int64) [][2]int64 {
	if n < 0 || int64(off)+(n+7)/8 > int64(len(b)) {
		return nil
	}
	m := b[off:]
	runs := [][2]int64{}
	for i := int64(0); i < n; i++ {
		if m[i>>3]&(1<<(i&7)) == 0 {
			continue
		}
		j := i
		for j+1 < n && m[(j+1)>>3]&(1<<((j+1)&7)) != 0 {
			j++
		}
		runs = append(runs, [2]int64{i, j})
		i = j
	}
	return runs
}

// int32Array returns n little-endian int32s at byte off of b; nil when they
// do not fit.
func int32Array(b []byte, off uint32, n int) []int32 {
	if int64(off)+4*int64(n) > int64(len(b)) {
		return nil
	}
	v := make([]int32, n)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(b[int(off)+4*i:]))
	}
	return v
}

// printer writes formatted text and keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// ctime formats t as ctime(3) does, newline included.
func ctime(t int64, loc *time.Location) string {
	return time.Unix(t, 0).In(loc).Format("Mon Jan _2 15:04:05 2006") + "\n"
}

// printSuperblock prints the superblock section of dumpfs.
func printSuperblock(p *printer, s *DumpfsSuperblock, sb *ondisk.Superblock, cs []ondisk.Csum, csErr error, loc *time.Location) {
	p.printf("magic\t%x (UFS2)\n", s.Magic)
	p.printf("last mounted time\t%s", ctime(s.Mtime, loc))
	p.printf("last modified time\t%s", ctime(s.Time, loc))
	p.printf("superblock location\t%d\tid\t[ %08x %08x ]\n", s.Sblockloc, s.ID[0], s.ID[1])
	p.printf("ncg\t%d\tsize\t%d\tblocks\t%d\n", s.Ncg, s.Size, s.Dsize)
	p.printf("bsize\t%d\tshift\t%d\tmask\t0x%08x\n", s.Bsize, s.Bshift, s.Bmask)
	p.printf("fsize\t%d\tshift\t%d\tmask\t0x%08x\n", s.Fsize, s.Fshift, s.Fmask)
	p.printf("frag\t%d\tshift\t%d\tfsbtodb\t%d\n", s.Frag, s.Fragshift, s.Fsbtodb)
	p.printf("minfree\t%d%%\toptim\t%s\tsymlinklen %d\n", s.Minfree, s.OptimName, s.Maxsymlinklen)
	p.printf("maxbsize %d\tmaxbpg\t%d\tmaxcontig %d\tcontigsumsize %d\n", s.Maxbsize, s.Maxbpg, s.Maxcontig, s.Contigsumsize)
	p.printf("nbfree\t%d\tndir\t%d\tnifree\t%d\tnffree\t%d\n", s.Cstotal.Nbfree, s.Cstotal.Ndir, s.Cstotal.Nifree, s.Cstotal.Nffree)
	p.printf("bpg\t%d\tfpg\t%d\tipg\t%d\tunrefs\t%d\n", s.Bpg, s.Fpg, s.Ipg, s.Unrefs)
	p.printf("nindir\t%d\tinopb\t%d\tmaxfilesize\t%d\n", s.Nindir, s.Inopb, s.Maxfilesize)
	p.printf("sbsize\t%d\tcgsize\t%d\tcsaddr\t%d\tcssize\t%d\n", s.Sbsize, s.Cgsize, s.Csaddr, s.Cssize)
	p.printf("sblkno\t%d\tcblkno\t%d\tiblkno\t%d\tdblkno\t%d\n", s.Sblkno, s.Cblkno, s.Iblkno, s.Dblkno)
	p.printf("cgrotor\t%d\tfmod\t%d\tronly\t%d\tclean\t%d\n", s.Cgrotor, s.Fmod, s.Ronly, s.Clean)
	p.printf("metaspace %d\tavgfpdir %d\tavgfilesize %d\n", s.Metaspace, s.Avgfpdir, s.Avgfilesize)

	// dumpfs puts a space after every word, "none" for no flags, and the
	// unknown bits last.
	flags := effectiveFlags(sb)
	p.printf("flags\t")
	if flags == 0 {
		p.printf("none")
	}
	for _, n := range fsFlagNames(flags, false) {
		p.printf("%s ", n)
	}
	rest := unknownFlags(flags)
	if rest != 0 {
		p.printf("unknown-flags (%#x)", rest)
	}
	p.printf("\n")
	// The check-hash line appears only with FS_METACKHASH; without it
	// dumpfs still ends the (empty) line, and reports there any unknown
	// fs_flags bits outside the check-hash bits.
	if sb.Flags&ondisk.FSMetackhash != 0 {
		p.printf("check hashes\t")
		if sb.Metackhash == 0 {
			p.printf("none")
		}
		for _, n := range ckhashNames(sb.Metackhash, false) {
			p.printf("%s ", n)
		}
		rest = sb.Metackhash
	}
	if rest &^= knownCkhash; rest != 0 {
		p.printf("unknown flags (%#x)", rest)
	}
	p.printf("\n")
	p.printf("fsmnt\t%s\n", s.Fsmnt)
	p.printf("volname\t%s\tswuid\t%d\tprovidersize\t%d\n", s.Volname, s.Swuid, s.Providersize)

	p.printf("\ncs[].cs_(nbfree,ndir,nifree,nffree):\n\t")
	if csErr != nil {
		p.printf("error\t%v\n", csErr)
	} else {
		for i, c := range cs {
			if i > 0 && i%4 == 0 {
				p.printf("\n\t")
			}
			p.printf("(%d,%d,%d,%d) ", c.Nbfree, c.Ndir, c.Nifree, c.Nffree)
		}
		p.printf("\n")
	}
	if sb.Fpg > 0 && sb.Size%int64(sb.Fpg) != 0 && sb.Frag > 0 {
		p.printf("blocks in last group %d\n\n", sb.Size%int64(sb.Fpg)/int64(sb.Frag))
	}
}

// printCg prints the section of one cylinder group.
func printCg(p *printer, cg *DumpfsCg, sb *ondisk.Superblock, loc *time.Location) {
	p.printf("\ncg %d:\n", cg.CgIndex)
	h := cg.DumpfsCgHeader
	if h == nil {
		p.printf("error\t%s\n", cg.Error)
		return
	}
	p.printf("magic\t%x\ttell\t%x\ttime\t%s", h.Magic, cg.Tell, ctime(h.Time, loc))
	p.printf("cgx\t%d\tndblk\t%d\tniblk\t%d\tinitiblk %d\tunrefs %d\n", h.Cgx, h.Ndblk, h.Niblk, h.Initediblk, h.Unrefs)
	p.printf("nbfree\t%d\tndir\t%d\tnifree\t%d\tnffree\t%d\n", h.Cs.Nbfree, h.Cs.Ndir, h.Cs.Nifree, h.Cs.Nffree)
	p.printf("rotor\t%d\tirotor\t%d\tfrotor\t%d\nfrsum", h.Rotor, h.Irotor, h.Frotor)
	for i := 1; i < int(sb.Frag) && i < len(h.Frsum); i++ {
		p.printf("\t%d", h.Frsum[i])
	}
	p.printf("\nsum of frsum: %d", h.FrsumTotal)
	if css := int(sb.Contigsumsize); css > 0 && cg.ClusterSum != nil {
		for i := 1; i < css; i++ {
			if (i-1)%8 == 0 {
				p.printf("\nclusters %d-%d:", i, min(css-1, i+7))
			}
			p.printf("\t%d", cg.ClusterSum[i])
		}
		p.printf("\nclusters size %d and over: %d\n", css, cg.ClusterSum[css])
		p.printf("clusters free:\t")
		printRuns(p, cg.ClustersFree)
	} else {
		p.printf("\n")
	}
	p.printf("inodes used:\t")
	printRuns(p, cg.InodesUsed)
	p.printf("blks free:\t")
	printRuns(p, cg.BlksFree)
	if cg.Error != "" {
		p.printf("error\t%s\n", cg.Error)
	}
}

// printRuns prints runs as dumpfs's pbits does: "a-b, c, d-e", six to a
// line, continuation lines indented by a tab. nil (a map outside the
// block) prints as "(unreadable)".
func printRuns(p *printer, runs [][2]int64) {
	if runs == nil {
		p.printf("(unreadable)\n")
		return
	}
	for k, r := range runs {
		if k > 0 {
			if k%6 != 0 {
				p.printf(", ")
			} else {
				p.printf(",\n\t")
			}
		}
		p.printf("%d", r[0])
		if r[1] != r[0] {
			p.printf("-%d", r[1])
		}
	}
	p.printf("\n")
}

// printMarshal prints dumpfs -m: a newfs command for the filesystem's
// parameters.
func printMarshal(p *printer, sb *ondisk.Superblock, name string) {
	p.printf("# newfs command for %s (%s)\n", name, name)
	p.printf("newfs ")
	if v := cString(sb.Volname[:]); v != "" {
		p.printf("-L %s ", v)
	}
	p.printf("-O 2 ")
	if sb.Flags&ondisk.FSDoSoftdep != 0 {
		p.printf("-U ")
	}
	p.printf("-a %d ", sb.Maxcontig)
	p.printf("-b %d ", sb.Bsize)
	p.printf("-d %d ", sb.Maxbsize)
	p.printf("-e %d ", sb.Maxbpg)
	p.printf("-f %d ", sb.Fsize)
	p.printf("-g %d ", sb.Avgfilesize)
	p.printf("-h %d ", sb.Avgfpdir)
	p.printf("-i %d ", marshalDensity(sb))
	if sb.Flags&ondisk.FSSuj != 0 {
		p.printf("-j ")
	}
	if sb.Flags&ondisk.FSGjournal != 0 {
		p.printf("-J ")
	}
	p.printf("-k %d ", sb.Metaspace)
	if sb.Flags&ondisk.FSMultilabel != 0 {
		p.printf("-l ")
	}
	p.printf("-m %d ", sb.Minfree)
	switch sb.Optim {
	case ondisk.FSOptSpace:
		p.printf("-o space ")
	case ondisk.FSOptTime:
		p.printf("-o time ")
	default:
		p.printf("-o unknown ")
	}
	p.printf("-s %d ", sb.FsbToDb(ondisk.Frag(sb.Size)))
	if sb.Flags&ondisk.FSTrim != 0 {
		p.printf("-t ")
	}
	p.printf("%s \n", name)
}

// marshalDensity is the bytes-per-inode (-i) that gives the filesystem's
// fs_ipg: a group's data bytes over fs_ipg, rounded up to a fragment.
func marshalDensity(sb *ondisk.Superblock) int64 {
	if sb.Ipg == 0 {
		return 0
	}
	bytes := sb.Lblktosize(ondisk.Lbn(sb.Fragstoblks(int64(sb.Fpg))))
	return sb.Fragroundup(bytes / int64(sb.Ipg))
}
