package dump

// The writing side: FreeBSD's sbin/dump passes I to IV over a UFS2 device,
// record for record. Comments name the dump function each step follows.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

// Options are dump's settings.
type Options struct {
	Level int // 0..9
	// Date is c_date, the time of this dump (Unix seconds).
	Date int64
	// Ddate is c_ddate, the time of the dump this one is relative to (from
	// dumpdates or -T); 0 dumps everything.
	Ddate int64
	// HonorLevel is -h: the nodump flag is honoured at this level and
	// above (dump's default is 1).
	HonorLevel int
	// Ntrec is -b: records (KiB) per write; 0 means NTREC (10).
	Ntrec int
	// Dev, Filesys, Host and Label fill the volume header's text fields
	// (c_dev, c_filesys, c_host, c_label); Label "" means "none".
	Dev, Filesys, Host, Label string
	// Msg receives dump's operator messages, one per call, without the
	// "  DUMP: " prefix and with their newline.
	Msg func(string)
	// EstimateOnly stops after the mapping passes (dump -S): Result
	// holds the estimate and nothing is written.
	EstimateOnly bool
	// Progress, if set, is called after each write of a full buffer with
	// the records written so far and the estimate of the total.
	Progress func(written, estimated int64)
}

// Result summarises a dump.
type Result struct {
	Estimated int64 // tape blocks (records) estimated in pass II
	Records   int64 // records written, as dump's "N tape blocks"
	Bytes     int64 // bytes written to the output
	Dirs      int   // directories dumped
	Files     int   // other inodes dumped
	Skipped   int   // inodes in use but not dumped (unchanged or nodump)
	ReadErrs  int   // device read errors (the records hold zeros)
}

// Errors of dumping.
var (
	// ErrFS: the device does not hold a UFS2 filesystem dump can read.
	ErrFS = errors.New("dump: cannot read the filesystem")
	// ErrAiling: more than maxReadErrors device read errors.
	ErrAiling = errors.New("dump: too many read errors from the device (DUMP IS AILING)")
)

const maxReadErrors = 32 // BREADEMAX

// dumper is the state of one dump; spcl is the persistent header record
// FreeBSD's dump keeps in a global and changes field by field, so that
// every header carries what the earlier steps left in it.
type dumper struct {
	ctx  context.Context
	dev  io.ReaderAt
	sb   *ondisk.Superblock
	opts Options
	out  *recWriter
	spcl Header

	maxino    ondisk.Ino
	mapsize   int // bytes of each map, a multiple of TPBsize
	usedMap   []byte
	dirMap    []byte
	inoMap    []byte
	inodes    map[ondisk.Ino]*ondisk.Dinode // the inodes in use (a slice of every inode would take 8 bytes per inode of a large filesystem)
	nonodump  bool
	tapesize  int64
	newtape   bool
	writingEA bool
	readErrs  int
	res       Result
	bsize     int64
	fsize     int64
	tbperdb   int
	buf       []byte // one filesystem block
	reported  int64  // c_tapea at the last Progress call
}

// Dump writes a dump of the UFS2 filesystem on dev to w and returns what it
// wrote. ctx interrupts it between records.
func Dump(ctx context.Context, dev io.ReaderAt, w io.Writer, opts Options) (Result, error) {
	sb, _, err := ondisk.FindSuperblock(dev)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrFS, err)
	}
	if opts.Ntrec == 0 {
		opts.Ntrec = NTREC
	}
	if opts.Ntrec < 1 || opts.Ntrec > maxNtrec {
		return Result{}, fmt.Errorf("dump: %d records per write: must be between 1 and %d", opts.Ntrec, maxNtrec)
	}
	if opts.Msg == nil {
		opts.Msg = func(string) {}
	}
	d := &dumper{ctx: ctx, dev: dev, sb: sb, opts: opts,
		bsize: int64(sb.Bsize), fsize: int64(sb.Fsize), tbperdb: int(sb.Bsize) / TPBsize}
	d.buf = make([]byte, sb.Bsize)
	d.out = newRecWriter(w, opts.Ntrec, dev, d.readError)
	err = d.run()
	d.res.Records = d.spcl.Tapea
	d.res.Bytes = d.out.written
	d.res.ReadErrs = d.readErrs
	return d.res, err
}

func (d *dumper) msg(format string, args ...any) { d.opts.Msg(fmt.Sprintf(format, args...)) }

func (d *dumper) run() error {
	o := d.opts
	d.spcl.Date = o.Date
	d.spcl.Ddate = o.Ddate
	setCstr(d.spcl.Dev[:], o.Dev)
	fsys := o.Filesys
	if fsys == "" {
		fsys = "an unlisted file system"
	}
	setCstr(d.spcl.Filesys[:], fsys)
	label := o.Label
	if label == "" {
		label = "none"
	}
	setCstr(d.spcl.Label[:], label)
	setCstr(d.spcl.Host[:], o.Host)
	d.spcl.Level = int32(o.Level)
	d.spcl.Type = TSTape

	d.maxino = ondisk.Ino(uint64(d.sb.Ipg) * uint64(d.sb.Ncg))
	d.mapsize = int(roundup(howmany(int64(d.maxino), 8), TPBsize))
	d.usedMap = make([]byte, d.mapsize)
	d.dirMap = make([]byte, d.mapsize)
	d.inoMap = make([]byte, d.mapsize)
	d.inodes = map[ondisk.Ino]*ondisk.Dinode{}
	d.tapesize = 3 * (int64(d.mapsize)/TPBsize + 1)
	d.nonodump = o.Level < o.HonorLevel

	d.msg("mapping (Pass I) [regular files]\n")
	anyDirSkipped, err := d.mapFiles()
	if err != nil {
		return err
	}
	d.msg("mapping (Pass II) [directories]\n")
	for anyDirSkipped {
		if anyDirSkipped, err = d.mapDirs(); err != nil {
			return err
		}
	}
	d.tapesize += 10
	d.res.Estimated = d.tapesize
	d.msg("estimated %d tape blocks.\n", d.tapesize)
	if o.EstimateOnly {
		return nil
	}

	// startnewtape: the volume header.
	d.newtape = true
	d.spcl.Count = 1
	d.spcl.Firstrec = 0
	d.spcl.Volume = 1
	d.spcl.Type = TSTape
	if err := d.writeHeader(0); err != nil {
		return err
	}
	if err := d.dumpMap(d.usedMap, TSClri, d.maxino-1); err != nil {
		return err
	}

	d.msg("dumping (Pass III) [directories]\n")
	for ino := ondisk.Ino(1); ino < d.maxino; ino++ {
		if !testIno(d.dirMap, ino) {
			continue
		}
		if dp := d.inodes[ino]; dp != nil && dp.Type() == ondisk.IFDIR {
			if err := d.dumpIno(dp, ino); err != nil {
				return err
			}
			d.res.Dirs++
		}
	}
	d.msg("dumping (Pass IV) [regular files]\n")
	for ino := ondisk.Ino(1); ino < d.maxino; ino++ {
		if !testIno(d.inoMap, ino) {
			continue
		}
		dp := d.inodes[ino]
		if dp != nil && dp.Type() == ondisk.IFDIR {
			continue
		}
		if dp == nil {
			dp = &ondisk.Dinode{} // a freed inode: dumpino writes nothing
		}
		if err := d.dumpIno(dp, ino); err != nil {
			return err
		}
		if dp.Mode != 0 {
			d.res.Files++
		}
	}
	d.spcl.Type = TSEnd
	for range d.opts.Ntrec {
		if err := d.writeHeader(d.maxino - 1); err != nil {
			return err
		}
	}
	return d.out.close()
}

func howmany(x, y int64) int64 { return (x + y - 1) / y }
func roundup(x, y int64) int64 { return howmany(x, y) * y }

// The inode maps are offset by one: bit 0 of byte 0 is inode 1.
func setIno(m []byte, ino ondisk.Ino) { m[(ino-1)/8] |= 1 << ((ino - 1) % 8) }
func clrIno(m []byte, ino ondisk.Ino) { m[(ino-1)/8] &^= 1 << ((ino - 1) % 8) }
func testIno(m []byte, ino ondisk.Ino) bool {
	if ino < 1 || int(ino-1)/8 >= len(m) {
		return false
	}
	return m[(ino-1)/8]&(1<<((ino-1)%8)) != 0
}

// changedSince is CHANGEDSINCE: mtime or ctime at or after t.
func changedSince(dp *ondisk.Dinode, t int64) bool { return dp.Mtime >= t || dp.Ctime >= t }

// wantToDump is WANTTODUMP.
func (d *dumper) wantToDump(dp *ondisk.Dinode) bool {
	return changedSince(dp, d.spcl.Ddate) && (d.nonodump || dp.Flags&ondisk.UFNodump == 0)
}

// blockest estimates the records an inode takes (blockest).
func (d *dumper) blockest(dp *ondisk.Dinode) int64 {
	if dp.Flags&ondisk.SFSnapshot != 0 {
		return 1
	}
	blkest := howmany(int64(dp.Blocks)*512, TPBsize)
	sizeest := howmany(int64(dp.Size), TPBsize)
	blkest = min(blkest, sizeest)
	if int64(dp.Size) > d.bsize*ondisk.NDaddr {
		blkest += howmany(sizeest-ondisk.NDaddr*d.bsize/TPBsize, TPNindir)
	}
	return blkest + 1
}

// readInodes reads cylinder group cg's header and its initialised inodes
// (mapfiles' loop bound: cg_initediblk, cut to the last inode marked used
// under soft updates) into d.inodes.
func (d *dumper) readInodes(cg ondisk.Cg) error {
	sb := d.sb
	cgb := make([]byte, sb.Cgsize)
	if _, err := d.dev.ReadAt(cgb, int64(sb.Cgtod(cg))*d.fsize); err != nil {
		return fmt.Errorf("%w: reading cylinder group %d: %w", ErrFS, cg, err)
	}
	c, err := ondisk.DecodeCg(sb, cg, cgb)
	if err == nil {
		err = c.Validate(cg)
	}
	if err != nil {
		return fmt.Errorf("%w: cylinder group %d: %w", ErrFS, cg, err)
	}
	inosused := int64(min(c.Initediblk, sb.Ipg))
	if sb.Flags&ondisk.FSDoSoftdep != 0 {
		for inosused > 0 && !c.InodeUsed(inosused-1) {
			inosused--
		}
	}
	base := ondisk.Ino(uint64(cg) * uint64(sb.Ipg))
	const chunk = 4096 // inodes per read (1 MiB)
	raw := make([]byte, min(inosused, chunk)*ondisk.DinodeSize)
	for first := int64(0); first < inosused; first += chunk {
		n := min(chunk, inosused-first)
		b := raw[:n*ondisk.DinodeSize]
		ino0 := base + ondisk.Ino(first)
		off := int64(sb.InoToFsba(ino0))*d.fsize + int64(sb.InoToFsbo(ino0))*ondisk.DinodeSize
		if _, err := d.dev.ReadAt(b, off); err != nil {
			return fmt.Errorf("%w: reading inodes %d-%d: %w", ErrFS, ino0, ino0+ondisk.Ino(n)-1, err)
		}
		for i := range n {
			ino := ino0 + ondisk.Ino(i)
			rb := b[i*ondisk.DinodeSize : (i+1)*ondisk.DinodeSize]
			if le.Uint16(rb) == 0 || ino < ondisk.RootIno {
				continue
			}
			if err := ondisk.VerifyDinodeHash(sb, rb); err != nil {
				d.msg("inode %d: %v; dumped as read\n", ino, err)
			}
			dp, err := ondisk.DecodeDinode(rb)
			if err != nil {
				return fmt.Errorf("%w: inode %d: %w", ErrFS, ino, err)
			}
			d.inodes[ino] = dp
		}
	}
	return nil
}

// mapFiles is pass I (mapfiles): every inode in use goes in the used map,
// directories in the directory map, and what changed since the last dump
// in the dump map. It reports whether a directory was left out.
func (d *dumper) mapFiles() (bool, error) {
	anyDirSkipped := false
	for cg := ondisk.Cg(0); cg < ondisk.Cg(d.sb.Ncg); cg++ {
		if err := d.ctx.Err(); err != nil {
			return false, err
		}
		if err := d.readInodes(cg); err != nil {
			return false, err
		}
	}
	for ino, dp := range d.inodes { // the order does not matter: maps and sums
		if dp.Type() == 0 {
			delete(d.inodes, ino)
			continue
		}
		setIno(d.usedMap, ino)
		if dp.Type() == ondisk.IFDIR {
			setIno(d.dirMap, ino)
		}
		if d.wantToDump(dp) {
			setIno(d.inoMap, ino)
			switch dp.Type() {
			case ondisk.IFREG, ondisk.IFDIR, ondisk.IFLNK:
				d.tapesize += d.blockest(dp)
			default:
				d.tapesize++
			}
			continue
		}
		d.res.Skipped++
		if dp.Type() == ondisk.IFDIR {
			if !d.nonodump && dp.Flags&ondisk.UFNodump != 0 {
				clrIno(d.usedMap, ino)
			}
			anyDirSkipped = true
		}
	}
	// restore wants the root on every dump.
	setIno(d.inoMap, ondisk.RootIno)
	return anyDirSkipped, nil
}

const (
	hasDumpedFile = 1
	hasSubdirs    = 2
)

// mapDirs is one round of pass II (mapdirs): directories holding something
// to dump are dumped; nodump spreads to subdirectories. It reports whether
// a map changed.
func (d *dumper) mapDirs() (bool, error) {
	change := false
	for ino := ondisk.Ino(1); ino < d.maxino; ino++ {
		if err := d.ctx.Err(); err != nil {
			return false, err
		}
		nodump := !d.nonodump && !testIno(d.usedMap, ino)
		if !testIno(d.dirMap, ino) || (testIno(d.inoMap, ino) && !nodump) {
			continue
		}
		dp := d.inodes[ino]
		if dp == nil {
			continue
		}
		di := *dp
		filesize := int64(di.Size)
		ret := 0
		for i := 0; filesize > 0 && i < ondisk.NDaddr; i++ {
			if di.Db[i] != 0 {
				ret |= d.searchDir(ino, di.Db[i], d.sb.Sblksize(int64(di.Size), ondisk.Lbn(i)), filesize, nodump)
			}
			if ret&hasDumpedFile != 0 {
				filesize = 0
			} else {
				filesize -= d.bsize
			}
		}
		for i := 0; filesize > 0 && i < ondisk.NIaddr; i++ {
			if di.Ib[i] == 0 {
				continue
			}
			ret |= d.dirIndir(ino, di.Ib[i], i, &filesize, nodump)
		}
		if ret&hasDumpedFile != 0 {
			setIno(d.inoMap, ino)
			d.tapesize += d.blockest(&di)
			change = true
			continue
		}
		if nodump {
			if ret&hasSubdirs != 0 {
				change = true
			}
			clrIno(d.dirMap, ino)
		} else if ret&hasSubdirs == 0 && !testIno(d.inoMap, ino) {
			clrIno(d.dirMap, ino)
			change = true
		}
	}
	return change, nil
}

// validPtr reports whether a block pointer names n fragments inside the
// filesystem.
func (d *dumper) validPtr(p ondisk.Frag, n int64) bool {
	return p > 0 && int64(p)+n <= d.sb.Size
}

// readBlock reads size bytes at fragment p into a new slice, or reports
// why it cannot (a pointer outside the filesystem, a read error).
func (d *dumper) readBlock(ino ondisk.Ino, p ondisk.Frag, size int64) ([]byte, bool) {
	b := make([]byte, size)
	if !d.validPtr(p, howmany(size, d.fsize)) {
		d.msg("inode %d: block %d is outside the filesystem; read as zeros\n", ino, p)
		return b, false
	}
	if n, err := d.dev.ReadAt(b, int64(p)*d.fsize); n != len(b) {
		d.readError(int64(p)*d.fsize, len(b), n, err)
		return b, false
	}
	return b, true
}

// dirIndir is dirindir: the directory blocks under an indirect block.
func (d *dumper) dirIndir(ino ondisk.Ino, blk ondisk.Frag, level int, filesize *int64, nodump bool) int {
	b, _ := d.readBlock(ino, blk, d.bsize)
	nindir := int(d.sb.NINDIR())
	ret := 0
	for i := 0; *filesize > 0 && i < nindir; i++ {
		p := ondisk.Frag(le.Uint64(b[8*i:]))
		if level <= 0 {
			if p != 0 {
				ret |= d.searchDir(ino, p, d.bsize, *filesize, nodump)
			}
			if ret&hasDumpedFile != 0 {
				*filesize = 0
			} else {
				*filesize -= d.bsize
			}
			continue
		}
		if p != 0 {
			ret |= d.dirIndir(ino, p, level-1, filesize, nodump)
		}
	}
	return ret
}

// searchDir is searchdir: what one directory block holds.
func (d *dumper) searchDir(ino ondisk.Ino, blk ondisk.Frag, size, filesize int64, nodump bool) int {
	b, _ := d.readBlock(ino, blk, size)
	if filesize < size {
		size = filesize
	}
	ret := 0
	for loc := int64(0); loc+8 <= size; {
		dino := ondisk.Ino(le.Uint32(b[loc:]))
		reclen := int64(le.Uint16(b[loc+4:]))
		namlen := int64(b[loc+7])
		if reclen == 0 {
			d.msg("corrupted directory, inumber %d\n", ino)
			break
		}
		name := b[loc+8 : min(loc+8+namlen, int64(len(b)))]
		loc += reclen
		if dino == 0 {
			continue
		}
		if dino >= d.maxino {
			d.msg("corrupted directory entry, d_ino %d >= %d\n", dino, d.maxino)
			break
		}
		if string(name) == "." || string(name) == ".." {
			continue
		}
		if nodump {
			ip := d.inodes[dino]
			if testIno(d.inoMap, dino) {
				clrIno(d.inoMap, dino)
				if ip != nil {
					d.tapesize -= d.blockest(ip)
				}
			}
			if ip != nil && ip.Type() == ondisk.IFDIR {
				setIno(d.dirMap, dino)
				clrIno(d.usedMap, dino)
				ret |= hasSubdirs
			}
			continue
		}
		if testIno(d.inoMap, dino) {
			ret |= hasDumpedFile
			if ret&hasSubdirs != 0 {
				break
			}
		}
		if testIno(d.dirMap, dino) {
			ret |= hasSubdirs
			if ret&hasDumpedFile != 0 {
				break
			}
		}
	}
	return ret
}

// dumpIno is dumpino (passes III and IV): one inode's header and data.
func (d *dumper) dumpIno(dp *ondisk.Dinode, ino ondisk.Ino) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	if d.newtape {
		d.newtape = false
		if err := d.dumpMap(d.inoMap, TSBits, ino); err != nil {
			return err
		}
	}
	clrIno(d.inoMap, ino)
	di := *dp
	if di.Flags&ondisk.SFSnapshot != 0 {
		di.Size = 0
		di.Flags &^= ondisk.SFSnapshot
	}
	s := &d.spcl
	s.Mode = di.Mode
	s.Size = di.Size
	s.Extsize = int32(di.Extsize)
	if int64(di.Extsize) > ondisk.NXaddr*d.bsize {
		d.msg("inode %d: extended attribute size %d is larger than its area; cut to %d\n", ino, di.Extsize, ondisk.NXaddr*d.bsize)
		s.Extsize = int32(ondisk.NXaddr * d.bsize)
	}
	s.Atime, s.Atimensec = di.Atime, di.Atimensec
	s.Mtime, s.Mtimensec = di.Mtime, di.Mtimensec
	s.Birthtime, s.Birthtimensec = di.Birthtime, di.Birthnsec
	s.Rdev = int32(di.Db[0])
	s.FileFlags = di.Flags
	s.UID, s.GID = di.UID, di.GID
	s.Type = TSInode
	s.Count = 0

	switch di.Type() {
	case 0:
		return nil
	case ondisk.IFLNK:
		if di.Size > 0 && di.Size < uint64(d.sb.Maxsymlinklen) {
			s.Addr[0] = 1
			s.Count = 1
			added := d.appendExtData()
			if err := d.writeHeader(ino); err != nil {
				return err
			}
			var rec [TPBsize]byte
			var raw [ondisk.MaxSymlinkLen]byte
			for i, p := range di.Db {
				le.PutUint64(raw[8*i:], uint64(p))
			}
			for i, p := range di.Ib {
				le.PutUint64(raw[8*(ondisk.NDaddr+i):], uint64(p))
			}
			copy(rec[:], raw[:di.Size])
			if err := d.out.record(rec[:]); err != nil {
				return err
			}
			d.spcl.Tapea++
			return d.writeExtData(&di, ino, added)
		}
		fallthrough
	case ondisk.IFDIR, ondisk.IFREG:
		if di.Size > 0 {
			break
		}
		fallthrough
	case ondisk.IFIFO, ondisk.IFSOCK, ondisk.IFCHR, ondisk.IFBLK:
		added := d.appendExtData()
		if err := d.writeHeader(ino); err != nil {
			return err
		}
		return d.writeExtData(&di, ino, added)
	default:
		d.msg("Warning: undefined file type 0%o\n", di.Type())
		return nil
	}
	var cnt int64
	last := false
	if int64(di.Size) > ondisk.NDaddr*d.bsize {
		cnt = ondisk.NDaddr * int64(d.sb.Frag)
	} else {
		cnt = howmany(int64(di.Size), d.fsize)
		last = true
	}
	if err := d.blksOut(&di, di.Db[:], cnt, ino, last); err != nil {
		return err
	}
	size := int64(di.Size) - ondisk.NDaddr*d.bsize
	if size <= 0 {
		return nil
	}
	for level := 0; level < ondisk.NIaddr; level++ {
		if err := d.dmpIndir(&di, ino, di.Ib[level], level, &size); err != nil {
			return err
		}
		if size <= 0 {
			return nil
		}
	}
	return nil
}

// dmpIndir is dmpindir: the data blocks under an indirect block.
func (d *dumper) dmpIndir(di *ondisk.Dinode, ino ondisk.Ino, blk ondisk.Frag, level int, size *int64) error {
	nindir := d.sb.NINDIR()
	ptrs := make([]ondisk.Frag, nindir)
	if blk != 0 {
		b, _ := d.readBlock(ino, blk, d.bsize)
		for i := range ptrs {
			ptrs[i] = ondisk.Frag(le.Uint64(b[8*i:]))
		}
	}
	if level <= 0 {
		var cnt int64
		last := false
		if *size > nindir*d.bsize {
			cnt = nindir * int64(d.sb.Frag)
		} else {
			cnt = howmany(*size, d.fsize)
			last = true
		}
		*size -= nindir * d.bsize
		return d.blksOut(di, ptrs, cnt, ino, last)
	}
	for _, p := range ptrs {
		if err := d.dmpIndir(di, ino, p, level-1, size); err != nil {
			return err
		}
		if *size <= 0 {
			return nil
		}
	}
	return nil
}

// blksOut is ufs2_blksout: headers of at most TP_NINDIR records mapping
// the blocks of blkp (frags fragments of them), each followed by the data
// records of its allocated blocks; the last call of a file also carries
// the extended attributes.
func (d *dumper) blksOut(di *ondisk.Dinode, blkp []ondisk.Frag, frags int64, ino ondisk.Ino, last bool) error {
	s := &d.spcl
	blks := howmany(frags*d.fsize, TPBsize)
	if last {
		var resid int64
		if d.writingEA {
			resid = howmany(d.sb.Fragoff(int64(s.Extsize)), TPBsize)
		} else {
			resid = howmany(d.sb.Fragoff(int64(di.Size)), TPBsize)
		}
		if resid > 0 {
			blks -= howmany(d.fsize, TPBsize) - resid
		}
	}
	tb := int64(d.tbperdb)
	for i := int64(0); i < blks; i += TPNindir {
		count := min(i+TPNindir, blks)
		for j := i; j < count; j++ {
			s.Addr[j-i] = 0
			if k := j / tb; k < int64(len(blkp)) && blkp[k] != 0 {
				s.Addr[j-i] = 1
			}
		}
		s.Count = int32(count - i)
		added := 0
		if last && count == blks && !d.writingEA {
			added = d.appendExtData()
		}
		if err := d.writeHeader(ino); err != nil {
			return err
		}
		for j := i; j < count; j += tb {
			k := j / tb
			if k >= int64(len(blkp)) || blkp[k] == 0 {
				continue
			}
			n := d.bsize
			if j+tb > count {
				n = (count - j) * TPBsize
			}
			if err := d.dumpBlock(ino, blkp[k], n); err != nil {
				return err
			}
		}
		s.Type = TSAddr
		s.Count = 0
		if last && count == blks && !d.writingEA {
			d.writingEA = true
			err := d.writeExtData(di, ino, added)
			d.writingEA = false
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// appendExtData is appendextdata: when the extended attributes fit in the
// current header's map they are announced there (as present, whatever
// their pointers say, as FreeBSD's dump does) and follow the file data.
func (d *dumper) appendExtData() int {
	s := &d.spcl
	if s.Extsize == 0 {
		return 0
	}
	blks := int(howmany(int64(s.Extsize), TPBsize))
	if int(s.Count)+blks > TPNindir {
		return 0
	}
	for i := range blks {
		s.Addr[int(s.Count)+i] = 1
	}
	s.Count += int32(blks)
	return blks
}

// writeExtData is writeextdata: the attribute blocks, under their own
// TS_ADDR header when the file's last header had no room for them.
func (d *dumper) writeExtData(di *ondisk.Dinode, ino ondisk.Ino, added int) error {
	s := &d.spcl
	if s.Extsize == 0 {
		return nil
	}
	if added == 0 {
		frags := howmany(int64(s.Extsize), d.fsize)
		return d.blksOut(di, di.Extb[:], frags, ino, true)
	}
	blks := howmany(int64(s.Extsize), TPBsize)
	tb := int64(d.tbperdb)
	for i := int64(0); i < blks; i += tb {
		p := di.Extb[i/tb]
		n := d.bsize
		if i+tb > blks {
			n = (blks - i) * TPBsize
		}
		if p != 0 {
			if err := d.dumpBlock(ino, p, n); err != nil {
				return err
			}
		} else {
			// The header announced these records; keep the stream whole.
			if err := d.zeroRecords(n / TPBsize); err != nil {
				return err
			}
		}
	}
	return nil
}

// dumpMap is dumpmap: a map header and the map's records.
func (d *dumper) dumpMap(m []byte, typ int32, ino ondisk.Ino) error {
	d.spcl.Type = typ
	d.spcl.Count = int32(howmany(int64(len(m)), TPBsize))
	if err := d.writeHeader(ino); err != nil {
		return err
	}
	for i := 0; i < len(m); i += TPBsize {
		if err := d.out.record(m[i : i+TPBsize]); err != nil {
			return err
		}
		d.spcl.Tapea++
	}
	return nil
}

// writeHeader is writeheader: stamp the inode number, magic and checksum
// and write the header record.
func (d *dumper) writeHeader(ino ondisk.Ino) error {
	d.spcl.Inumber = uint32(ino)
	d.spcl.Magic = UFS2Magic
	d.spcl.Checksum = 0
	var b [TPBsize]byte
	d.spcl.Encode(b[:])
	Seal(b[:])
	d.spcl.Checksum = int32(le.Uint32(b[28:]))
	if err := d.out.record(b[:]); err != nil {
		return err
	}
	d.spcl.Tapea++
	d.progress()
	return nil
}

// progress reports to Options.Progress every 1024 records or so.
func (d *dumper) progress() {
	if d.opts.Progress != nil && d.spcl.Tapea-d.reported >= 1024 {
		d.reported = d.spcl.Tapea
		d.opts.Progress(d.spcl.Tapea, d.tapesize)
	}
}

// dumpBlock is dumpblock: size bytes of the device at fragment p as data
// records.
func (d *dumper) dumpBlock(ino ondisk.Ino, p ondisk.Frag, size int64) error {
	if !d.validPtr(p, howmany(size, d.fsize)) {
		d.msg("inode %d: block %d is outside the filesystem; dumped as zeros\n", ino, p)
		return d.zeroRecords(size / TPBsize)
	}
	if err := d.out.data(int64(p)*d.fsize, int(size)); err != nil {
		return err
	}
	d.spcl.Tapea += size / TPBsize
	d.progress()
	if d.readErrs > maxReadErrors {
		return ErrAiling
	}
	return nil
}

func (d *dumper) zeroRecords(n int64) error {
	var z [TPBsize]byte
	for range n {
		if err := d.out.record(z[:]); err != nil {
			return err
		}
		d.spcl.Tapea++
	}
	return nil
}

// readError reports a failed device read (blkread's message).
func (d *dumper) readError(off int64, size, got int, err error) {
	d.readErrs++
	if err != nil && !errors.Is(err, io.EOF) {
		d.msg("read error from %s: %v: [block %d]: count=%d\n", d.opts.Dev, err, off/512, size)
		return
	}
	d.msg("short read error from %s: [block %d]: count=%d, got=%d\n", d.opts.Dev, off/512, size, got)
}

// Elapsed formats dump's closing throughput line.
func Elapsed(records int64, d time.Duration) string {
	secs := int64(d / time.Second)
	if secs == 0 {
		return "finished in less than a second\n"
	}
	return fmt.Sprintf("finished in %d seconds, throughput %d KBytes/sec\n", secs, records/secs)
}
