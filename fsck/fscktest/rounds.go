// Package fscktest damages UFS2 images for the tests of fsck, in package
// fsck and through the ufs2 command alike.
package fscktest

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/ufs2/ufs2/ondisk"
)

// Image is what Damage changes: an image file, or a device in memory.
type Image interface {
	io.ReaderAt
	io.WriterAt
}

// Damage damages img as ../shared/repro/fsck-rounds.py does, count
// times, each on the image the previous ones left: an inode's block
// pointer made to share another inode's first block, to point past the
// end or anywhere; a byte of a cylinder group; a byte of a directory's
// first block; an inode's mode, link count, size or block count. Inodes
// are taken from 3 up to 4000. With pointers, only block pointers of
// inodes 3-899. Inodes are changed byte by byte: their check-hashes stay
// as they were. The image must hold a UFS2 filesystem.
func Damage(img Image, rng *rand.Rand, count int, pointers bool) error {
	sb, _, err := ondisk.FindSuperblock(img)
	if err != nil {
		return fmt.Errorf("fscktest: %w", err)
	}
	d := damager{img: img, sb: sb, rng: rng}
	if pointers {
		for range count {
			ino := 3 + rng.IntN(897)
			p := d.inode(ino)
			if le.Uint16(p) == 0 {
				continue
			}
			d.pointer(p, rng.IntN(3), d.inode(3+rng.IntN(897)))
			d.putInode(ino, p)
		}
		return d.err
	}
	var live, dirs []int
	for ino := 3; ino < min(int(sb.Ipg)*int(sb.Ncg), 4000) && d.err == nil; ino++ {
		if m := le.Uint16(d.inode(ino)); m != 0 {
			live = append(live, ino)
			if m&ondisk.IFMT == ondisk.IFDIR {
				dirs = append(dirs, ino)
			}
		}
	}
	if len(live) == 0 || len(dirs) == 0 {
		return fmt.Errorf("fscktest: no files or no directories besides the root to damage")
	}
	for range count {
		if d.err != nil {
			break
		}
		kind, ino := rng.IntN(6), live[rng.IntN(len(live))]
		p := d.inode(ino)
		switch kind {
		case 0, 1, 2:
			d.pointer(p, kind, d.inode(live[rng.IntN(len(live))]))
		case 3:
			g := ondisk.Cg(rng.IntN(int(sb.Ncg)))
			d.write(sb.FragOffset(sb.Cgtod(g))+rng.Int64N(int64(sb.Bsize)), []byte{byte(rng.IntN(256))})
			continue
		case 4:
			blk := int64(le.Uint64(d.inode(dirs[rng.IntN(len(dirs))])[112:]))
			if blk > 0 && blk < sb.Size {
				d.write(sb.FragOffset(ondisk.Frag(blk))+rng.Int64N(512), []byte{byte(rng.IntN(256))})
			}
			continue
		default:
			switch rng.IntN(4) {
			case 0: // di_mode
				le.PutUint16(p[0:], uint16(rng.IntN(1<<16)))
			case 1: // di_nlink
				le.PutUint16(p[2:], uint16(rng.IntN(1<<15)))
			case 2: // di_size
				le.PutUint64(p[16:], uint64(rng.Int64N(1<<40)))
			default: // di_blocks
				le.PutUint64(p[24:], uint64(rng.Int64N(1<<40)))
			}
		}
		d.putInode(ino, p)
	}
	return d.err
}

var le = binary.LittleEndian

// damager keeps the first I/O error; later reads return zeros.
type damager struct {
	img Image
	sb  *ondisk.Superblock
	rng *rand.Rand
	err error
}

func (d *damager) read(off int64, n int) []byte {
	p := make([]byte, n)
	if d.err == nil {
		if _, err := d.img.ReadAt(p, off); err != nil {
			d.err = fmt.Errorf("fscktest: reading %d bytes at %d: %w", n, off, err)
		}
	}
	return p
}

func (d *damager) write(off int64, p []byte) {
	if d.err == nil {
		if _, err := d.img.WriteAt(p, off); err != nil {
			d.err = fmt.Errorf("fscktest: writing %d bytes at %d: %w", len(p), off, err)
		}
	}
}

func (d *damager) inode(ino int) []byte {
	return d.read(d.sb.InoOffset(ondisk.Ino(ino)), ondisk.DinodeSize)
}

func (d *damager) putInode(ino int, p []byte) { d.write(d.sb.InoOffset(ondisk.Ino(ino)), p) }

// pointer changes one of the 15 block pointers of inode p: to other's
// first block (kind 0), past the end (1) or anywhere (2).
func (d *damager) pointer(p []byte, kind int, other []byte) {
	s := 112 + 8*d.rng.IntN(ondisk.NDaddr+ondisk.NIaddr) // di_db[], di_ib[]
	switch kind {
	case 0:
		copy(p[s:s+8], other[112:120])
	case 1:
		le.PutUint64(p[s:], uint64(d.sb.Size+1+d.rng.Int64N(1_000_000)))
	default:
		le.PutUint64(p[s:], uint64(d.rng.Int64N(d.sb.Size)))
	}
}
