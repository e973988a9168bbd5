package newfs

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// Discarder is implemented by devices that can discard a byte range (TRIM a
// flash device, punch a hole in an image file). Format needs it for
// Params.Erase; see WithDiscard.
type Discarder interface {
	Discard(off, length int64) error
}

// Format builds a new UFS2 filesystem on dev as FreeBSD 14's newfs does and
// returns its superblock. The size is p.Size, or the whole device less
// p.Reserved sectors.
//
// Only metadata is written: the superblock and its copies, every cylinder
// group block, the first two blocks of inodes of each group (the rest are
// initialised lazily, cg_initediblk), the summary area, the root directory
// and /.snap, and the recovery record. The data area is never written, so
// an image file stays sparse. Nothing is written when the parameters are
// rejected. The primary superblock carries FS_BAD_MAGIC until everything
// else is on the device, so an interrupted newfs leaves a filesystem no
// one will mount.
func Format(ctx context.Context, dev blockdev.Device, p Params) (*ondisk.Superblock, error) {
	l, err := Compute(p, dev.Size())
	if err != nil {
		return nil, err
	}
	if dev.ReadOnly() {
		return nil, fmt.Errorf("%s: %w", dev.Name(), blockdev.ErrReadOnly)
	}
	var disc Discarder
	if p.Erase {
		d, ok := dev.(Discarder)
		if !ok {
			return nil, errf(1, ErrUnsupported, "%s: cannot erase: the device does not support discarding", dev.Name())
		}
		disc = d
	}
	w := &writer{l: l, dev: dev, log: p.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w.run(ctx, disc)
}

// writer carries one Format run.
type writer struct {
	l   *Layout
	dev blockdev.Device
	log *slog.Logger
	rnd func() uint32
	now int64
}

func (w *writer) run(ctx context.Context, disc Discarder) (*ondisk.Superblock, error) {
	l := w.l
	sb := *l.SB // our copy: fs_time, fs_id
	w.setRandom(l.p.Regression)
	sb.Time = w.now
	sb.ID[0] = int32(w.now)
	sb.ID[1] = int32(w.rnd())

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fsBytes := sb.FragOffset(ondisk.Frag(sb.Size))
	if disc != nil {
		w.log.Info("erasing", "from", sb.Sblockloc, "to", fsBytes)
		if err := disc.Discard(sb.Sblockloc, fsBytes-sb.Sblockloc); err != nil {
			return nil, fmt.Errorf("%s: erase: %w", w.dev.Name(), err)
		}
	}
	// mkfs first checks that the last sector of the filesystem can be
	// written; rewrite it with what it holds.
	last := make([]byte, l.SectorSize)
	lastOff := fsBytes - int64(l.SectorSize)
	if _, err := w.dev.ReadAt(last, lastOff); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: cannot read the last sector of the filesystem: %w", w.dev.Name(), err)
	}
	if err := w.write(last, lastOff, "last sector"); err != nil {
		return nil, err
	}
	if err := w.wipeOldSuperblock(fsBytes); err != nil {
		return nil, err
	}

	// The primary superblock says "newfs in progress" until the end.
	bad := sb
	bad.Magic = ondisk.FSBadMagic
	if err := w.write(bad.EncodeWithHash(), sb.Sblockloc, "superblock"); err != nil {
		return nil, err
	}

	// Cylinder groups, each with its superblock copy and first inodes.
	csums := make([]byte, sb.Cssize)
	var total ondisk.CsumTotal
	// One buffer for a group block and the inode blocks after it, written
	// together.
	gap := sb.FragOffset(ondisk.Frag(sb.Iblkno - sb.Cblkno))
	buf := make([]byte, gap+int64(min(sb.Ipg, 2*sb.Inopb))*ondisk.DinodeSize)
	for c := ondisk.Cg(0); uint32(c) < sb.Ncg; c++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		clear(buf)
		cg, err := w.buildCg(&sb, c, buf[gap:])
		if err != nil {
			return nil, err
		}
		copy(buf, cg.B)
		cg.Cs.Encode(csums[int(c)*ondisk.CsumSize:])
		total.Ndir += int64(cg.Cs.Ndir)
		total.Nbfree += int64(cg.Cs.Nbfree)
		total.Nifree += int64(cg.Cs.Nifree)
		total.Nffree += int64(cg.Cs.Nffree)

		backup := sb
		backup.Sblockactualloc = sb.FragOffset(sb.Cgsblock(c))
		if err := w.write(backup.EncodeWithHash(), backup.Sblockactualloc, fmt.Sprintf("superblock copy of cylinder group %d", c)); err != nil {
			return nil, err
		}
		if err := w.write(buf, sb.FragOffset(sb.Cgtod(c)), fmt.Sprintf("cylinder group %d", c)); err != nil {
			return nil, err
		}
		if l.p.Progress != nil {
			l.p.Progress(uint32(c)+1, sb.Ncg)
		}
	}
	if total != sb.Cstotal {
		return nil, fmt.Errorf("%w: cylinder groups hold %+v, the superblock says %+v", ErrInternal, total, sb.Cstotal)
	}

	// Directory blocks, then the summary area.
	if err := w.write(dirFragment(&sb, ondisk.RootIno, ondisk.RootIno, !l.p.NoSnapDir), sb.FragOffset(l.RootFrag), "root directory"); err != nil {
		return nil, err
	}
	if l.SnapFrag != 0 {
		if err := w.write(dirFragment(&sb, ondisk.RootIno+1, ondisk.RootIno, false), sb.FragOffset(l.SnapFrag), ".snap directory"); err != nil {
			return nil, err
		}
	}
	if err := w.write(csums, sb.FragOffset(sb.Csaddr), "summary area"); err != nil {
		return nil, err
	}
	if err := w.sync(); err != nil {
		return nil, err
	}

	// Now the real superblock, then the recovery record before it.
	sb.Sblockactualloc = sb.Sblockloc
	if err := w.write(sb.EncodeWithHash(), sb.Sblockloc, "superblock"); err != nil {
		return nil, err
	}
	if err := w.writeRecovery(&sb); err != nil {
		return nil, err
	}
	if err := w.sync(); err != nil {
		return nil, err
	}
	w.log.Info("newfs done", "ncg", sb.Ncg, "size", sb.Size)
	return &sb, nil
}

// setRandom picks fs_time and the source of newfs_random(): arc4random in
// FreeBSD, a fixed counter from 1 under -R.
func (w *writer) setRandom(regression bool) {
	if regression {
		w.now = regressionTime
		next := uint32(0)
		w.rnd = func() uint32 { next++; return next }
		return
	}
	w.now = time.Now().Unix()
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails (Go 1.24+)
	r := rand.New(rand.NewChaCha8(seed))
	w.rnd = r.Uint32
}

// buildCg makes the cylinder group block of group c as mkfs's initcg does,
// plus, for group 0, the root directory and /.snap; and the initialised
// inode blocks (cg_initediblk inodes with random generation numbers), which
// it puts in inodes (zeroed, cg_initediblk inodes long).
func (w *writer) buildCg(sb *ondisk.Superblock, c ondisk.Cg, inodes []byte) (*ondisk.CylGroup, error) {
	l := w.l
	cg := ondisk.NewCg(sb, c)
	cg.Time = sb.Time
	cg.Initediblk = min(sb.Ipg, 2*sb.Inopb)
	frag := int64(sb.Frag)
	ndblk := int64(cg.Ndblk)
	dlower := int64(sb.Sblkno)
	dupper := int64(sb.Dblkno)
	if c == 0 {
		dupper += howmany(int64(sb.Cssize), int64(sb.Fsize))
	}
	clusters := sb.Contigsumsize > 0
	// freeBlocks marks the whole blocks holding fragments [from, to) free.
	freeBlocks := func(from, to int64) {
		if from >= to {
			return
		}
		setRange(cg.B[cg.Freeoff:], from, to)
		if clusters {
			setRange(cg.B[cg.Clusteroff:], from/frag, to/frag)
		}
		cg.Cs.Nbfree += int32((to - from) / frag)
	}

	cg.Cs.Nifree = int32(sb.Ipg)
	if c == 0 {
		for i := int64(0); i < int64(ondisk.RootIno); i++ {
			cg.SetInodeUsed(i, true)
			cg.Cs.Nifree--
		}
	} else {
		// Outside group 0 the space before the superblock copy is data.
		freeBlocks(0, dlower)
	}
	if r := dupper % frag; r != 0 {
		cg.Frsum[frag-r]++
		for end := dupper + frag - r; dupper < end; dupper++ {
			cg.SetFragFree(dupper, true)
			cg.Cs.Nffree++
		}
	}
	d := dupper + (ndblk-dupper)/frag*frag
	freeBlocks(dupper, d)
	if d < ndblk {
		cg.Frsum[ndblk-d]++
		for ; d < ndblk; d++ {
			cg.SetFragFree(d, true)
			cg.Cs.Nffree++
		}
	}
	if clusters {
		sumClusters(cg, sb)
	}

	var gen [4]byte
	for i := 0; i < int(cg.Initediblk); i++ {
		binary.LittleEndian.PutUint32(gen[:], w.rnd())
		copy(inodes[i*ondisk.DinodeSize+dinodeGenOff:], gen[:])
	}
	if c == 0 {
		if err := w.makeDir(sb, cg, inodes, ondisk.RootIno, l.RootFrag, !l.p.NoSnapDir); err != nil {
			return nil, err
		}
		if l.SnapFrag != 0 {
			if err := w.makeDir(sb, cg, inodes, ondisk.RootIno+1, l.SnapFrag, false); err != nil {
				return nil, err
			}
		}
	}
	cg.Sync()
	return cg, nil
}

// makeDir allocates the directory block at frag in group 0 (one fragment
// of a whole free block, the rest left as free fragments, as mkfs's alloc
// does) and the inode ino, and stores the inode in inodes.
func (w *writer) makeDir(sb *ondisk.Superblock, cg *ondisk.CylGroup, inodes []byte, ino ondisk.Ino, at ondisk.Frag, withSnap bool) error {
	frag := int64(sb.Frag)
	h := int64(at) / frag
	if !cg.IsBlock(h) || cg.Cs.Nbfree == 0 {
		return fmt.Errorf("%w: block %d of cylinder group 0 is not free for inode %d", ErrInternal, h, ino)
	}
	cg.SetBlock(h, false)
	cg.ClusterAcct(h, -1)
	cg.Cs.Nbfree--
	cg.Cs.Ndir++
	if frag > 1 {
		for i := int64(1); i < frag; i++ {
			cg.SetFragFree(h*frag+i, true)
		}
		cg.Cs.Nffree += int32(frag - 1)
		cg.Frsum[frag-1]++
	}
	if cg.InodeUsed(int64(ino)) {
		return fmt.Errorf("%w: inode %d already in use", ErrInternal, ino)
	}
	cg.SetInodeUsed(int64(ino), true)
	cg.Cs.Nifree--

	di := ondisk.Dinode{
		Mode:      dirMode,
		Nlink:     rootLinkCount,
		Size:      ondisk.DirBlkSize,
		Blocks:    uint64(sb.Fragroundup(ondisk.DirBlkSize) / ondisk.DevBSize),
		Atime:     sb.Time,
		Mtime:     sb.Time,
		Ctime:     sb.Time,
		Birthtime: sb.Time,
	}
	di.Db[0] = at
	switch {
	case ino != ondisk.RootIno:
		di.Mode |= snapExtraMode
		di.GID = OperatorGID
		di.Nlink = snapLinkCount
	case !withSnap:
		di.Nlink = rootLinkCount - 1
	}
	off := int(ino) * ondisk.DinodeSize
	if off+ondisk.DinodeSize > len(inodes) {
		return fmt.Errorf("%w: inode %d is not in the initialised inode blocks", ErrInternal, ino)
	}
	return di.EncodeWithHash(sb, inodes[off:off+ondisk.DinodeSize])
}

// dirFragment is one fragment holding a new directory's first DIRBLKSIZ
// chunk: ".", ".." and, for the root, ".snap"; the last entry's d_reclen
// runs to the end of the chunk; the rest of the fragment is zero.
func dirFragment(sb *ondisk.Superblock, self, parent ondisk.Ino, withSnap bool) []byte {
	b := make([]byte, sb.Fsize)
	ents := []ondisk.Direct{
		{Ino: self, Type: ondisk.DTDir, Name: []byte(".")},
		{Ino: parent, Type: ondisk.DTDir, Name: []byte("..")},
	}
	if withSnap {
		ents = append(ents, ondisk.Direct{Ino: ondisk.RootIno + 1, Type: ondisk.DTDir, Name: []byte(".snap")})
	}
	off := 0
	for i := range ents {
		e := &ents[i]
		e.Namlen = uint8(len(e.Name))
		e.Reclen = uint16(ondisk.DirectSize(len(e.Name)))
		if i == len(ents)-1 {
			e.Reclen = uint16(ondisk.DirBlkSize - off)
		}
		_ = e.Encode(b[off:ondisk.DirBlkSize]) // fits: three short names in 512 bytes
		off += int(e.Reclen)
	}
	return b
}

// sumClusters fills cg_clustersum from the cluster map: one count per run
// of free blocks, runs longer than fs_contigsumsize counted at that size.
func sumClusters(cg *ondisk.CylGroup, sb *ondisk.Superblock) {
	css := int(sb.Contigsumsize)
	run := 0
	flush := func() {
		if run > 0 {
			n := min(run, css)
			cg.SetClusterSum(n, cg.ClusterSum(n)+1)
			run = 0
		}
	}
	m := cg.B[cg.Clusteroff:]
	n := int64(cg.Nclusterblks)
	for h := int64(0); h < n; {
		if h&7 == 0 && h+8 <= n && (m[h>>3] == 0xff || m[h>>3] == 0) {
			if m[h>>3] == 0xff {
				run += 8
			} else {
				flush()
			}
			h += 8
			continue
		}
		if m[h>>3]&(1<<(h&7)) != 0 {
			run++
		} else {
			flush()
		}
		h++
	}
	flush()
}

// setRange sets bits [from, to) of the bitmap m (bit i is bit i%8 of byte
// i/8, as setbit in FreeBSD's param.h).
func setRange(m []byte, from, to int64) {
	for ; from < to && from&7 != 0; from++ {
		m[from>>3] |= 1 << (from & 7)
	}
	for ; from+8 <= to; from += 8 {
		m[from>>3] = 0xff
	}
	for ; from < to; from++ {
		m[from>>3] |= 1 << (from & 7)
	}
}

// wipeOldSuperblock clears the magic number of a superblock left at 8192
// by an earlier filesystem (FreeBSD does it for UFS1; a UFS2 superblock
// there, as Debian's makefs writes, would be found by a search that skips
// our superblock while it is FS_BAD_MAGIC, so it goes too), and of that
// filesystem's copies that lie inside the new one.
func (w *writer) wipeOldSuperblock(fsBytes int64) error {
	if w.l.SectorSize > ondisk.SblockUFS1 {
		return nil
	}
	buf := make([]byte, ondisk.SblockSize)
	if _, err := w.dev.ReadAt(buf, ondisk.SblockUFS1); err != nil && err != io.EOF {
		return fmt.Errorf("%s: can't read old UFS1 superblock: %w", w.dev.Name(), err)
	}
	old, err := ondisk.DecodeSuperblock(buf)
	if err != nil {
		return nil
	}
	switch uint32(old.Magic) {
	case ondisk.FSUFS1Magic:
	case ondisk.FSUFS2Magic:
		if old.Sblockloc != ondisk.SblockUFS1 {
			return nil
		}
	default:
		return nil
	}
	w.log.Info("clearing an old superblock", "offset", ondisk.SblockUFS1)
	binary.LittleEndian.PutUint32(buf[1372:], 0) // fs_magic
	if err := w.write(buf, ondisk.SblockUFS1, "old superblock"); err != nil {
		return err
	}
	// Its copies: cgsblock in the old geometry, as long as they lie in the
	// new filesystem. A damaged old superblock stops the walk.
	if old.Fpg <= 0 || old.Fsbtodb < 0 || old.Fsbtodb > 7 || old.Sblkno < 0 {
		return nil
	}
	for c := int64(0); c < int64(old.Ncg) && c < sbWipeLimit; c++ {
		start := c * int64(old.Fpg)
		if uint32(old.Magic) == ondisk.FSUFS1Magic {
			start += int64(old.OldCgoffset) * (c &^ int64(uint32(old.OldCgmask)))
		}
		off := (start + int64(old.Sblkno)) << uint(old.Fsbtodb) * ondisk.DevBSize
		if off < 0 || off+ondisk.SblockSize > fsBytes || off+ondisk.SblockSize > w.dev.Size() {
			break
		}
		if err := w.write(buf, off, "old superblock copy"); err != nil {
			return err
		}
	}
	return nil
}

// writeRecovery stores struct fsrecovery in the last bytes of the sector
// before the superblock, keeping the rest of that sector (boot code).
func (w *writer) writeRecovery(sb *ondisk.Superblock) error {
	sect := make([]byte, w.l.SectorSize)
	off := int64(ondisk.SblockUFS2 - w.l.SectorSize)
	if _, err := w.dev.ReadAt(sect, off); err != nil && err != io.EOF {
		return fmt.Errorf("%s: can't read recovery area: %w", w.dev.Name(), err)
	}
	fsr := ondisk.FsRecovery{Magic: sb.Magic, Fsbtodb: sb.Fsbtodb, Sblkno: sb.Sblkno, Fpg: sb.Fpg, Ncg: sb.Ncg}
	_ = fsr.Encode(sect[len(sect)-ondisk.FsRecoverySize:])
	return w.write(sect, off, "recovery record")
}

func (w *writer) write(b []byte, off int64, what string) error {
	n, err := w.dev.WriteAt(b, off)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("%s: writing the %s (%d bytes at %d): %w", w.dev.Name(), what, len(b), off, err)
	}
	return nil
}

func (w *writer) sync() error {
	if err := w.dev.Sync(); err != nil {
		return fmt.Errorf("%s: %w", w.dev.Name(), err)
	}
	return nil
}
