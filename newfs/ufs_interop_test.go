package newfs

// This test belongs to the engine (package ufs) but lives here because it
// needs an image with the superblock at 65536, which only this package
// makes (Debian's makefs puts a UFS2 superblock at 8192, where sleuthkit
// does not look), and internal/lint lets ufs's tests import nothing above
// ufs.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// engineImage formats a sparse image file of size bytes with newfs's
// defaults and opens it read-write with the engine.
func engineImage(t *testing.T, size int64) (string, *ufs.FS) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "engine.img")
	dev, err := blockdev.Open(path, blockdev.Options{Create: true, CreateSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Format(context.Background(), dev, DefaultParams()); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	if fsys.ReadOnly() {
		t.Fatalf("engine opened newfs's image read-only: %s", fsys.ReadOnlyReason())
	}
	return path, fsys
}

// putTree copies host directory src into directory dir of the engine:
// contents (all-zero blocks left as holes), modes, owners, times,
// symlinks and hard links.
func putTree(t *testing.T, fsys *ufs.FS, dir ondisk.Ino, src string, links map[uint64]ondisk.Ino) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(src, e.Name())
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if ino, ok := links[st.Ino]; ok {
			if err := fsys.Link(ino, dir, e.Name()); err != nil {
				t.Fatalf("link %s: %v", p, err)
			}
			continue
		}
		perm := uint16(st.Mode & 0o7777)
		var ino ondisk.Ino
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			ino, err = fsys.Mkdir(dir, e.Name(), perm, st.Uid, st.Gid)
			if err == nil {
				putTree(t, fsys, ino, p, links)
			}
		case syscall.S_IFLNK:
			var target string
			if target, err = os.Readlink(p); err == nil {
				ino, err = fsys.Symlink(dir, e.Name(), target, st.Uid, st.Gid)
			}
		case syscall.S_IFREG:
			if ino, err = fsys.Create(dir, e.Name(), perm, st.Uid, st.Gid); err == nil {
				err = putData(fsys, ino, p, st.Size)
			}
			if st.Nlink > 1 {
				links[st.Ino] = ino
			}
		default:
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			mt := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
			at := time.Unix(st.Atim.Sec, st.Atim.Nsec)
			if _, err := fsys.Setattr(ino, ufs.SetAttr{Mode: &perm, Mtime: &mt, Atime: &at}); err != nil {
				t.Fatalf("%s: setattr: %v", p, err)
			}
		}
	}
}

// putData copies a host file, skipping all-zero 64 KiB runs (holes);
// Truncate sets the size, allocating the last block.
func putData(fsys *ufs.FS, ino ondisk.Ino, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	for off := int64(0); ; {
		n, err := io.ReadFull(f, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := fsys.WriteAt(ino, buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return fsys.Truncate(ino, uint64(size))
}

// hostPaths lists a host tree as fls -r -p -u names it: "d/r path".
func hostPaths(t *testing.T, root string) []string {
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		kind := "r/r"
		switch {
		case d.IsDir():
			kind = "d/d"
		case d.Type()&os.ModeSymlink != 0:
			kind = "l/l"
		}
		out = append(out, kind+" "+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// flsPaths runs fls -r -p -u and keeps "type path" of each line, less
// sleuthkit's virtual entries ("V/V $OrphanFiles").
func flsPaths(t *testing.T, img string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(testutil.Fls(t, img, "-r", "-p", "-u")))
	for sc.Scan() {
		line := sc.Text()
		kind, rest, ok := strings.Cut(line, " ")
		_, path, ok2 := strings.Cut(rest, ":\t")
		if !ok || !ok2 {
			t.Fatalf("fls line %q", line)
		}
		if kind == "V/V" {
			continue
		}
		out = append(out, kind+" "+path)
	}
	sort.Strings(out)
	return out
}

// TestEngineTreeSleuthkit writes a host tree (files of 0 to 40 KiB across
// fragment and block boundaries, a 64 MiB sparse file, symlinks, hard
// links, unusual modes) through the engine into a newfs image, removes
// every other file and writes the tree again under another name, then
// checks with Debian's sleuthkit: fls lists exactly the tree and
// tsk_recover extracts the same bytes. The engine's own summaries must
// agree with the maps.
func TestEngineTreeSleuthkit(t *testing.T) {
	spec := testutil.Small()
	spec.SparseSize = 64 << 20
	src := t.TempDir()
	testutil.MakeTree(t, src, spec)
	img, fsys := engineImage(t, 512<<20)
	root := fsys.Root()
	host := t.TempDir() // what the image should hold
	copyTree := func(name string) {
		dst := filepath.Join(host, name)
		if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		d, err := fsys.Mkdir(root, name, 0o755, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		putTree(t, fsys, d, src, map[uint64]ondisk.Ino{})
	}
	copyTree("one")
	// Remove every other regular file of "one", in the image and on the
	// host.
	i := 0
	err := filepath.WalkDir(filepath.Join(host, "one"), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if i++; i%2 == 0 {
			return nil
		}
		rel, _ := filepath.Rel(host, p)
		ino, err := fsys.Namei(filepath.Dir(rel))
		if err != nil {
			return err
		}
		if err := fsys.Unlink(ino, filepath.Base(rel)); err != nil {
			return err
		}
		return os.Remove(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	copyTree("two")
	if ds, err := fsys.Check(); err != nil || len(ds) > 0 {
		t.Fatalf("alloc.Check: %v %v", ds, err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(hostPaths(t, host), "d/d .snap")
	sort.Strings(want)
	got := flsPaths(t, img)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fls lists %d entries, the tree has %d", len(got), len(want))
		gs := map[string]bool{}
		for _, g := range got {
			gs[g] = true
		}
		ws := map[string]bool{}
		for _, w := range want {
			ws[w] = true
			if !gs[w] {
				t.Errorf("missing from fls: %s", w)
			}
		}
		for _, g := range got {
			if !ws[g] {
				t.Errorf("extra in fls: %s", g)
			}
		}
	}
	rec := t.TempDir()
	testutil.TskRecover(t, img, rec)
	testutil.AssertSameTree(t, host, rec, testutil.ContentOnly())
}

// TestEngineManyFiles puts 20,000 small files in 200 directories into a
// newfs image through the engine and times it; fls must list them all.
func TestEngineManyFiles(t *testing.T) {
	img, fsys := engineImage(t, 1<<30)
	start := time.Now()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096/16+1)
	for d := range 200 {
		dir, err := fsys.Mkdir(fsys.Root(), "d"+itoa3(d), 0o755, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for f := range 100 {
			ino, err := fsys.Create(dir, "f"+itoa3(f), 0o644, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.WriteAt(ino, data[:(d*100+f)%4097], 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	made := time.Since(start)
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("20,000 files in %v, %v with Close", made, time.Since(start))
	if n := len(flsPaths(t, img)); n != 200+20000+1 {
		t.Errorf("fls lists %d entries, want %d", n, 200+20000+1)
	}
}

func itoa3(v int) string {
	return string([]byte{byte('0' + v/100%10), byte('0' + v/10%10), byte('0' + v%10)})
}
