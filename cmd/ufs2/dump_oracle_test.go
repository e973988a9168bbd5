package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ufs2/ufs2/dump"
	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// fbsdTools is the directory of FreeBSD's dump and restore built for Linux
// (/work/shared/oracles/fbsd-tools); the oracle test runs only with it, by
// hand: CI has no FreeBSD sources to build them from.
var fbsdTools = flag.String("fbsd-tools", "", "`DIR` holding FreeBSD's dump and restore built for Linux: run TestDumpFreeBSDOracle")

// TestDumpFreeBSDOracle checks the format against FreeBSD's own tools:
// FreeBSD's dump of an image is the same stream as ours, record for
// record, but for the headers' dates, device names and checksums; our
// restore rebuilds the tree from FreeBSD's dump and FreeBSD's restore
// from ours (without extended attributes, which its Linux build cannot
// set).
func TestDumpFreeBSDOracle(t *testing.T) {
	if *fbsdTools == "" {
		t.Skip("by hand only: go test ./cmd/ufs2 -run Oracle -fbsd-tools DIR (see /work/shared/oracles/fbsd-tools)")
	}
	src := dumpTree(t)
	dir, img := newDumpImage(t, src)
	ours, theirs := filepath.Join(dir, "ours.dump"), filepath.Join(dir, "theirs.dump")
	mustUFS2(t, dir, "dump", "-0u", "-D", filepath.Join(dir, "dd"), "-f", ours, "./disk.img")
	cmd := exec.Command(filepath.Join(*fbsdTools, "dump"), "-0", "-D", filepath.Join(dir, "fbdd"), "-f", theirs, "./disk.img")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("FreeBSD dump: %v\n%s", err, out)
	}
	compareStreams(t, ours, theirs)

	out := t.TempDir()
	restoreInto(t, out, theirs, nil)
	testutil.AssertSameTree(t, src, out, fullCompare)
	assertSameXattrs(t, src, out)

	fb := t.TempDir()
	cmd = exec.Command(filepath.Join(*fbsdTools, "restore"), "-rf", ours)
	cmd.Dir = fb
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("FreeBSD restore: %v\n%s", err, out)
	}
	symtabAside(t, fb, true)
	testutil.AssertSameTree(t, src, fb, fullCompare)

	// and FreeBSD's restore takes our level 1 on top
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	files := someFiles(t, src)
	editImage(t, img, func(fsys *ufs.FS) {
		d, n := filepath.Split(files[0])
		if err := fsys.Rename(namei(t, fsys, d), n, namei(t, fsys, "/"), "renamed", ufs.RenameFlags{}); err != nil {
			t.Fatal(err)
		}
		d, n = filepath.Split(files[1])
		if err := fsys.Unlink(namei(t, fsys, d), n); err != nil {
			t.Fatal(err)
		}
		ino, err := fsys.Create(namei(t, fsys, "/"), "new", 0o644, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.WriteAt(ino, []byte("level 1"), 0); err != nil {
			t.Fatal(err)
		}
	})
	ours1 := filepath.Join(dir, "ours1.dump")
	mustUFS2(t, dir, "dump", "-1u", "-D", filepath.Join(dir, "dd"), "-f", ours1, "./disk.img")
	// the same incremental from FreeBSD's dump: -T the level 0's date
	b, err := os.ReadFile(filepath.Join(dir, "dd"))
	if err != nil {
		t.Fatal(err)
	}
	date := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0][56:])
	ours1T, theirs1 := filepath.Join(dir, "ours1T.dump"), filepath.Join(dir, "theirs1.dump")
	mustUFS2(t, dir, "dump", "-1", "-T", date, "-f", ours1T, "./disk.img")
	cmd = exec.Command(filepath.Join(*fbsdTools, "dump"), "-1", "-T", date, "-f", theirs1, "./disk.img")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("FreeBSD dump -1: %v\n%s", err, out)
	}
	compareStreams(t, ours1T, theirs1)
	want := filepath.Join(t.TempDir(), "want")
	mustUFS2(t, dir, "get", img, "/", want)
	symtabAside(t, fb, false)
	cmd = exec.Command(filepath.Join(*fbsdTools, "restore"), "-rf", ours1)
	cmd.Dir = fb
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("FreeBSD restore of level 1: %v\n%s", err, out)
	}
	symtabAside(t, fb, true)
	testutil.AssertSameTree(t, want, fb, fullCompare)
}

// compareStreams compares two dumps record for record, but for the
// headers' dates, device and host names and checksums.
func compareStreams(t *testing.T, ours, theirs string) {
	t.Helper()
	a, _ := os.ReadFile(ours)
	b, _ := os.ReadFile(theirs)
	if len(a) != len(b) {
		t.Errorf("our dump has %d bytes, FreeBSD's %d", len(a), len(b))
	}
	diffRecs := 0
	shortLink := -1 // the size of the fast symlink whose record is next
	for i := 0; i+dump.TPBsize <= min(len(a), len(b)); i += dump.TPBsize {
		ra, rb := bytes.Clone(a[i:i+dump.TPBsize]), bytes.Clone(b[i:i+dump.TPBsize])
		if shortLink >= 0 {
			// FreeBSD's dump copies the target into a stack buffer it
			// never clears: only the target and its NUL are meaningful.
			clear(ra[shortLink+1:])
			clear(rb[shortLink+1:])
			shortLink = -1
		}
		var h dump.Header
		h.Decode(ra)
		if dump.CheckRecord(ra) == nil && h.Type == dump.TSInode && h.Mode&ondisk.IFMT == ondisk.IFLNK && h.Size < ondisk.MaxSymlinkLen {
			shortLink = int(h.Size)
		}
		if dump.CheckRecord(ra) == nil && dump.CheckRecord(rb) == nil {
			for _, r := range [][]byte{ra, rb} {
				clear(r[28:32])   // c_checksum
				clear(r[760:824]) // c_dev
				clear(r[824:888]) // c_host
				clear(r[896:904]) // c_date
				clear(r[4:8])     // c_old_date
			}
		}
		if !bytes.Equal(ra, rb) {
			if diffRecs++; diffRecs <= 5 {
				t.Errorf("record %d differs from FreeBSD's", i/dump.TPBsize)
			}
		}
	}
	t.Logf("%d records compared, %d differ", min(len(a), len(b))/dump.TPBsize, diffRecs)

}
