package fsck

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// TestSizeCutPastIndirect: an indirect block whose pointers are all gone
// leaves a file whose size reaches past its last block in use. fsck_ffs
// cuts the size (FILE SIZE BEYOND END OF ALLOCATED FILE) and keeps the
// indirect pointers past the new end, so the next run clears the whole
// file as UNKNOWN FILE TYPE. One -y must do it all: the size cut, the
// indirect blocks past it dropped and their pointers zeroed (in the
// inode, and in a double indirect block kept), the block count lowered;
// a check after it finds nothing, and the blocks before the cut read as
// they were written.
func TestSizeCutPastIndirect(t *testing.T) {
	const bsize = 4096
	nindir := int64(bsize / 8)
	type file struct {
		name   string
		blocks int64
		// empty picks the indirect block whose pointers are zeroed: the
		// single indirect block, or child i of the double indirect block.
		child int64 // -1 for the single indirect block
		// keep is the number of blocks the cut leaves.
		keep int64
	}
	files := []file{
		{"single", 30, -1, ondisk.NDaddr},
		{"double-all", ondisk.NDaddr + nindir + 200, 0, ondisk.NDaddr + nindir},
		{"double-part", ondisk.NDaddr + 2*nindir + 90, 1, ondisk.NDaddr + 2*nindir},
	}
	var names []string
	var blocks []int64
	for _, f := range files {
		names, blocks = append(names, f.name), append(blocks, f.blocks)
	}
	b, content := smallBlockImage(t, names, blocks)
	mustBeClean(t, b, "the image before damage")

	m := openImg(t, b)
	inos := map[string]ondisk.Ino{}
	for _, f := range files {
		ino := m.lookup(f.name)
		inos[f.name] = ino
		dp := m.inode(ino)
		blk := dp.Ib[0]
		if f.child >= 0 {
			blk = ondisk.Frag(le.Uint64(m.frag(dp.Ib[1], int(m.sb.Frag))[f.child*8:]))
		}
		if blk == 0 {
			t.Fatalf("%s: no indirect block to empty", f.name)
		}
		clear(m.frag(blk, int(m.sb.Frag)))
	}

	rep, _, out, err := check(t, b, Options{Mode: No, Force: true})
	if err != nil || len(rep.Problems) != len(files)+3 { // the block counts, the free counts, the summary, the maps
		t.Fatalf("fsck -n: err %v, exit %d, %d problems; want %d\n%s", err, rep.ExitCode, len(rep.Problems), len(files)+3, out)
	}
	rep, fixed, out, err := check(t, b, Options{Mode: Yes, Force: true})
	if err != nil || rep.ExitCode != ExitOK || strings.Count(out, "BEYOND END OF ALLOCATED FILE") != len(files) {
		t.Fatalf("fsck -y: exit %d, %v; want FILE SIZE BEYOND END OF ALLOCATED FILE for each file\n%s", rep.ExitCode, err, out)
	}
	mustBeClean(t, fixed, "after one fsck -y:\n"+out)

	m = openImg(t, fixed)
	efs, err := ufs.Open(blockdev.NewMemBytes(fixed), ufs.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer efs.Close()
	for _, f := range files {
		dp := m.inode(inos[f.name])
		if want := uint64(f.keep * bsize); dp.Size != want {
			t.Errorf("%s: size %d after repair, want %d", f.name, dp.Size, want)
		}
		got := make([]byte, f.keep*bsize)
		if n, err := efs.ReadAt(inos[f.name], got, 0); int64(n) != f.keep*bsize || (err != nil && n == 0) {
			t.Errorf("%s: read %d bytes: %v", f.name, n, err)
		} else if !bytes.Equal(got, content[f.name][:len(got)]) {
			t.Errorf("%s: the blocks before the cut changed", f.name)
		}
	}
}

// smallBlockImage makes a 24 MiB filesystem with 4 KiB blocks and
// fragments (512 pointers to an indirect block, one DUP per block shared)
// holding, in its root, a file of each
// name with that many blocks of data, and returns it and the contents.
func smallBlockImage(t *testing.T, names []string, blocks []int64) ([]byte, map[string][]byte) {
	t.Helper()
	const bsize = 4096
	mem := blockdev.NewMem(24 << 20)
	p := newfs.DefaultParams()
	p.Bsize, p.Fsize = bsize, bsize
	if _, err := newfs.Format(context.Background(), mem, p); err != nil {
		t.Fatal(err)
	}
	fs, err := ufs.Open(mem, ufs.Options{Async: true})
	if err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{}
	for i, name := range names {
		ino, err := fs.Create(fs.Root(), name, 0o644, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, blocks[i]*bsize)
		for j := range data {
			data[j] = byte(j/bsize + i)
		}
		if _, err := fs.WriteAt(ino, data, 0); err != nil {
			t.Fatal(err)
		}
		content[name] = data
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	return mem.Bytes(), content
}

// TestClearedSharedIndirect: two files share an indirect block, the one
// with the lower inode number walked first over all its pointers; the
// second, shorter, has the pointers past its size zeroed in that block
// (PARTIALLY TRUNCATED INODE). Both are cleared as BAD/DUP files. The
// first one's blocks given back one by one, walked through the block as
// it is by then, would miss what pass 1 marked through the pointers
// since zeroed: they would stay in use with no owner. One -y must leave
// maps and counts that a check finds right.
func TestClearedSharedIndirect(t *testing.T) {
	const bsize = 4096
	b, _ := smallBlockImage(t, []string{"first", "second"}, []int64{30, 30})
	mustBeClean(t, b, "the image before damage")
	m := openImg(t, b)
	first, second := m.lookup("first"), m.lookup("second")
	if first > second {
		first, second = second, first
	}
	a, s := m.inode(first), m.inode(second)
	a.Ib[0] = s.Ib[0] // the first walks the second's indirect block
	m.putInode(first, a)
	s.Size = 20 * bsize // 8 of its 18 pointers there are within the size
	m.putInode(second, s)

	rep, fixed, out, err := check(t, b, Options{Mode: Yes, Force: true})
	if err != nil || rep.ExitCode != ExitOK {
		t.Fatalf("fsck -y: exit %d, %v\n%s", rep.ExitCode, err, out)
	}
	for _, want := range []string{"PARTIALLY TRUNCATED INODE I=", "DUP I=", "BAD/DUP FILE"} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck -y transcript lacks %q: not the damage meant\n%s", want, out)
		}
	}
	mustBeClean(t, fixed, "after one fsck -y:\n"+out)
}

// TestLongSymlinksClean: the engine stores symlink targets up to 4095
// bytes (Linux's PATH_MAX-1), longer than FreeBSD's 1023, as slow
// symlinks; fsck takes them as they are, in every block and fragment size,
// next to fast symlinks at the inode's limit, and their targets read back
// whole after a -y that changed nothing.
func TestLongSymlinksClean(t *testing.T) {
	for _, g := range []struct{ bsize, fsize int }{{4096, 512}, {8192, 1024}, {32768, 4096}} {
		t.Run(fmt.Sprintf("%d-%d", g.bsize, g.fsize), func(t *testing.T) {
			mem := blockdev.NewMem(16 << 20)
			p := newfs.DefaultParams()
			p.Bsize, p.Fsize = g.bsize, g.fsize
			sb, err := newfs.Format(context.Background(), mem, p)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := ufs.Open(mem, ufs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			lengths := []int{int(sb.Maxsymlinklen) - 1, int(sb.Maxsymlinklen), 1023, 1024, 2048, 4095}
			targets := map[string]string{}
			for _, n := range lengths {
				target := strings.Repeat("abcdefghi/", n/10+1)[:n]
				name := fmt.Sprintf("l%d", n)
				if _, err := fs.Symlink(fs.Root(), name, target, 0, 0); err != nil {
					t.Fatalf("symlink of %d bytes: %v", n, err)
				}
				targets[name] = target
			}
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			b := mem.Bytes()
			mustBeClean(t, b, "symlinks up to 4095 bytes")
			m := openImg(t, b)
			if dp := m.inode(m.lookup("l4095")); dp.Size != 4095 || dp.Db[0] == 0 || dp.Blocks == 0 {
				t.Fatalf("l4095 is not a slow symlink of 4095 bytes: size %d, db[0] %d, blocks %d", dp.Size, dp.Db[0], dp.Blocks)
			}
			rep, after, out, err := check(t, b, Options{Mode: Yes, Force: true})
			if err != nil || rep.ExitCode != ExitOK || len(rep.Problems) != 0 || !bytes.Equal(after, b) {
				t.Fatalf("fsck -y: exit %d, %v, %d problems, image changed %v\n%s", rep.ExitCode, err, len(rep.Problems), !bytes.Equal(after, b), out)
			}
			efs, err := ufs.Open(blockdev.NewMemBytes(after), ufs.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer efs.Close()
			for name, want := range targets {
				ino, err := efs.Lookup(efs.Root(), name)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := efs.Readlink(ino); err != nil || got != want {
					t.Errorf("%s: readlink %d bytes, %v; want %d", name, len(got), err, len(want))
				}
			}
		})
	}
}
