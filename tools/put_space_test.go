package tools

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/newfs"
)

// TestEstimateTree: the estimate of a tree is never below what Put then
// takes, in fragments and in inodes, and not far above it: trees of
// small files, big and sparse files, long symlinks, hard links and
// extended attributes, on 32K/4K and 4K/512 filesystems.
func TestEstimateTree(t *testing.T) {
	small := testutil.Small()
	small.SparseSize = 300 << 20
	for _, tc := range []struct {
		name         string
		bsize, fsize int
		spec         testutil.TreeSpec
		specials     bool
	}{
		{"small-32k", 0, 0, small, true},
		{"small-4k", 4096, 512, small, true},
		{"big-file-32k", 0, 0, testutil.TreeSpec{Seed: 2, Depth: 1, Dirs: 1, Files: 3, MaxFileSize: 100, BigFileSize: 30 << 20}, false},
		{"big-file-4k", 4096, 512, testutil.TreeSpec{Seed: 3, Depth: 1, Dirs: 1, Files: 3, MaxFileSize: 100, BigFileSize: 30 << 20}, false},
		{"many-dirs", 0, 0, testutil.TreeSpec{Seed: 4, Depth: 5, Dirs: 80, Files: 400, MaxFileSize: 2000, HardLinks: 30}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			testutil.MakeTree(t, src, tc.spec)
			if tc.specials {
				addSpecials(t, src)
			}
			img := filepath.Join(t.TempDir(), "est.img")
			p := newfs.DefaultParams()
			p.Bsize, p.Fsize = tc.bsize, tc.fsize
			dev, err := blockdev.Open(img, blockdev.Options{Create: true, CreateSize: 256 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newfs.Format(context.Background(), dev, p); err != nil {
				t.Fatal(err)
			}
			dev.Close()
			fsys := openRW(t, img, true)
			sb := fsys.Superblock()
			u, err := EstimateTree(src, int64(sb.Bsize), int64(sb.Fsize))
			if err != nil {
				t.Fatal(err)
			}
			before := fsys.Statfs()
			if _, err := Put(context.Background(), fsys, src, "/tree", PutOptions{}); err != nil {
				t.Fatal(err)
			}
			after := fsys.Statfs()
			closeChecked(t, fsys, img)
			usedFrags := int64(before.Bfree - after.Bfree)
			usedInodes := int64(before.Ffree - after.Ffree)
			t.Logf("estimate %d frags, %d inodes; used %d frags, %d inodes", u.Frags, u.Inodes, usedFrags, usedInodes)
			if u.Inodes != usedInodes {
				t.Errorf("estimated %d inodes, the copy took %d", u.Inodes, usedInodes)
			}
			if u.Frags < usedFrags || u.Frags > usedFrags+usedFrags/5+64 {
				t.Errorf("estimated %d fragments, the copy took %d", u.Frags, usedFrags)
			}
		})
	}
}

// TestPutNoSpace: a tree the filesystem has no room for, in blocks or in
// inodes, is refused before anything is written, with the numbers; the
// blocks of a file the copy replaces count as free.
func TestPutNoSpace(t *testing.T) {
	img := newImage(t, 32<<20)
	fsys := openRW(t, img, false)
	t.Cleanup(func() { closeChecked(t, fsys, img) })
	host := t.TempDir()
	big := filepath.Join(host, "big")
	data := make([]byte, 20<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Put(context.Background(), fsys, big, "/big", PutOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fsys.Statfs()

	// Another 20 MiB does not fit in the 32 MiB filesystem; the same file
	// over the first does.
	res, err := Put(context.Background(), fsys, big, "/big2", PutOptions{})
	var se *SpaceError
	if !errors.As(err, &se) || !errors.Is(err, ErrPutNoSpace) {
		t.Fatalf("second 20 MiB: %v, want a *SpaceError", err)
	}
	if se.NeedInodes != 1 || se.NeedBytes < 20<<20 || se.FreeBytes >= 20<<20 || se.FreeBytes != before.Bavail*before.Bsize {
		t.Errorf("SpaceError %+v (free %d fragments of %d)", se, before.Bavail, before.Bsize)
	}
	if want := big + " needs about 20.0 MiB and 1 inode; the filesystem has " + byteSize(se.FreeBytes) + " and " + itoa(se.FreeInodes) + " inodes free"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if !GetResult(res).Empty() || fsys.Statfs() != before {
		t.Errorf("the refused put wrote: %+v, statfs %+v -> %+v", res, before, fsys.Statfs())
	}
	if _, err := fsys.Namei("/big2"); err == nil {
		t.Error("the refused put made /big2")
	}
	if _, err := Put(context.Background(), fsys, big, "/big", PutOptions{}); err != nil {
		t.Errorf("replacing /big with a file of its size: %v", err)
	}
	if _, err := Put(context.Background(), fsys, big, "/", PutOptions{}); err != nil {
		t.Errorf("replacing /big by putting into /: %v", err)
	}

	// More files than free inodes.
	files := filepath.Join(host, "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		t.Fatal(err)
	}
	n := int(fsys.Statfs().Ffree) + 5
	for i := range n {
		if err := os.WriteFile(filepath.Join(files, "f"+itoa(int64(i))), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Put(context.Background(), fsys, files, "/files", PutOptions{})
	if !errors.As(err, &se) || se.NeedInodes != int64(n)+1 || se.FreeInodes != int64(n)-5 {
		t.Fatalf("%d empty files: %v", n, err)
	}
	if _, err := fsys.Namei("/files"); err == nil {
		t.Error("the refused put made /files")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
