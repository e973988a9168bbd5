package tools

// Estimating what copying a host tree in takes, so that put can refuse
// before it starts rather than stop half-way on a full filesystem, and
// newfs --from can size a new image.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/ondisk"
)

// TreeUsage is what a copy of a host tree needs in a UFS2 filesystem of a
// given block and fragment size, counted as Put and newfs --from copy:
// holes stay holes, hard links share one inode, symlinks up to
// ondisk.MaxSymlinkLen bytes live in the inode. It is an upper estimate
// (a block of zeros in a host file that is not a hole is counted though it
// is not written).
type TreeUsage struct {
	Frags  int64 // fragments: data, directories, slow symlinks, indirect blocks, extended attributes
	Inodes int64 // inodes, src itself included
	Data   int64 // bytes of file data the host holds (allocated, holes excluded)
}

// EstimateTree walks host path src (not following symlinks, src included)
// and returns what copying it into a filesystem of block size bsize and
// fragment size fsize takes.
func EstimateTree(src string, bsize, fsize int64) (TreeUsage, error) {
	if bsize <= 0 || fsize <= 0 || bsize%fsize != 0 {
		return TreeUsage{}, fmt.Errorf("estimate: bad block size %d or fragment size %d", bsize, fsize)
	}
	e := estimator{bsize: bsize, fsize: fsize, seen: map[[2]uint64]bool{}}
	err := e.walk(src)
	return e.u, err
}

type estimator struct {
	bsize, fsize int64
	seen         map[[2]uint64]bool // host inodes with several links already counted
	u            TreeUsage
}

func (e *estimator) frags(bytes int64) int64 { return (bytes + e.fsize - 1) / e.fsize }

func (e *estimator) walk(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("%w: %w", ErrPutHost, &os.PathError{Op: "lstat", Path: p, Err: err})
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		k := [2]uint64{uint64(st.Dev), st.Ino}
		if e.seen[k] {
			return nil // another name of an inode counted already
		}
		e.seen[k] = true
	}
	e.u.Inodes++
	e.u.Frags += e.xattrFrags(p)
	switch typ {
	case unix.S_IFREG:
		e.u.Frags += e.fileFrags(st.Size, st.Blocks*512)
		e.u.Data += min(st.Size, st.Blocks*512)
	case unix.S_IFLNK:
		if st.Size >= ondisk.MaxSymlinkLen {
			e.u.Frags += e.frags(st.Size)
		}
	case unix.S_IFDIR:
		names, err := dirNames(p)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPutHost, err)
		}
		// Each entry takes DIRSIZ(namelen) bytes (8 of header, the name and
		// its NUL rounded up to 4), in 512-byte directory blocks no entry
		// spans: count a quarter of a chunk lost per chunk.
		bytes := int64(2 * 12) // "." and ".."
		for _, n := range names {
			bytes += 8 + (int64(len(n))+1+3)&^3
		}
		chunks := (bytes+ondisk.DirBlkSize-1)/ondisk.DirBlkSize + bytes/(3*ondisk.DirBlkSize)
		e.u.Frags += e.fileFrags(chunks*ondisk.DirBlkSize, chunks*ondisk.DirBlkSize)
		for _, n := range names {
			if err := e.walk(filepath.Join(p, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// fileFrags is the fragments a file of size bytes, allocated bytes of
// which hold data on the host, takes: the data in whole blocks, but the
// last in fragments while the file is within the direct blocks, and its
// indirect blocks. A sparse file also gets its last block (a file ending
// in a hole has it allocated) and the indirect blocks down to it.
func (e *estimator) fileFrags(size, allocated int64) int64 {
	if size == 0 {
		return 0
	}
	data := min(size, allocated)
	fpb := e.bsize / e.fsize
	nb := (data + e.bsize - 1) / e.bsize
	var frags int64
	if size <= ondisk.NDaddr*e.bsize {
		frags = e.frags(data)
		if data < size {
			frags += fpb
		}
		return frags
	}
	frags = nb * fpb
	nindir := e.bsize / 8
	ind := int64(0)
	if rest := nb - ondisk.NDaddr; rest > 0 {
		ind += (rest + nindir - 1) / nindir // single indirect blocks, and the doubles' children
		if rest > nindir {
			ind += 1 + (rest-nindir+nindir*nindir-1)/(nindir*nindir)
		}
	}
	if data < size {
		ind += 3 // the path to a last block past the data
		frags += fpb
	}
	return frags + ind*fpb
}

// xattrFrags is the extended attribute area p's attributes take, each as
// FreeBSD's struct extattr: 7 bytes of header and the name padded to 8,
// then the value padded to 8.
func (e *estimator) xattrFrags(p string) int64 {
	names, err := listXattrNames(p)
	if err != nil || len(names) == 0 {
		return 0
	}
	var bytes int64
	for _, n := range names {
		sz, err := unix.Lgetxattr(p, n, nil)
		if err != nil {
			continue
		}
		bytes += (7+int64(len(n))+7)&^7 + (int64(sz)+7)&^7
	}
	return e.frags(bytes)
}

// listXattrNames lists the extended attribute names of p (not following a
// symlink); a filesystem without them has none.
func listXattrNames(p string) ([]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, sz+256)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	start := 0
	for i, b := range buf[:n] {
		if b == 0 {
			if i > start {
				names = append(names, string(buf[start:i]))
			}
			start = i + 1
		}
	}
	return names, nil
}

// dirNames lists host directory p.
func dirNames(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
