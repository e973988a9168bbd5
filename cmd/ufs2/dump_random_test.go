package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/testutil"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

var dumpSeed = flag.Uint64("dump-seed", 0, "seed of TestDumpRestoreRandomChain (0: from the clock)")

// TestDumpRestoreRandomChain is a chain of levels 0 to 3 with random
// changes between them (files created, rewritten, truncated, renamed,
// hard-linked and removed; directories made, renamed across the tree and
// removed; modes, owners and extended attributes changed): after each
// level's restore -r the tree is the image's as ufs2 get extracts it.
// Odd seeds restore into a second image (restore --into) and compare
// what get extracts of it. The seed is printed; -dump-seed repeats a run.
func TestDumpRestoreRandomChain(t *testing.T) {
	seed := *dumpSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (repeat with -dump-seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	src := t.TempDir()
	spec := testutil.Small()
	spec.BigFileSize = 256 << 10
	testutil.MakeTree(t, src, spec)
	dir, img := newDumpImage(t, src)
	dd := filepath.Join(dir, "dumpdates")
	out := t.TempDir()
	// every other seed restores into an image instead (restore --into)
	into := ""
	if seed%2 == 1 {
		into = filepath.Join(dir, "restored.img")
		mustUFS2(t, dir, "newfs", "-n", "-s", "128m", into)
		t.Cleanup(func() { fsckImage(t, into) })
		t.Logf("restoring into %s", into)
	}
	for level := 0; level <= 3; level++ {
		if level > 0 {
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			changed := 0
			editImage(t, img, func(fsys *ufs.FS) { changed = randomChanges(t, fsys, rng, 25) })
			if changed < 10 {
				t.Fatalf("level %d: only %d changes made", level, changed)
			}
		}
		df := filepath.Join(dir, fmt.Sprintf("level%d.dump", level))
		mustUFS2(t, dir, "dump", fmt.Sprintf("-%du", level), "-D", dd, "-f", df, "disk.img")
		want := filepath.Join(t.TempDir(), "want")
		mustUFS2(t, dir, "get", img, "/", want)
		if into != "" {
			mustUFS2(t, dir, "restore", "-r", "--into", into, "-f", df)
			out = filepath.Join(t.TempDir(), "got")
			mustUFS2(t, dir, "get", into, "/", out)
			symtabAside(t, out, true)
		} else {
			if level > 0 {
				symtabAside(t, out, false)
			}
			restoreInto(t, out, df, nil)
		}
		testutil.AssertSameTree(t, want, out, fullCompare)
		if t.Failed() {
			t.Fatalf("level %d differs (seed %d)", level, seed)
		}
	}
}

// randomChanges tries n random changes to fsys and returns how many it
// made.
func randomChanges(t *testing.T, fsys *ufs.FS, rng *rand.Rand, n int) (made int) {
	t.Helper()
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// the names of the tree, directories apart
	var files, dirs []string
	var walk func(ino ondisk.Ino, p string)
	walk = func(ino ondisk.Ino, p string) {
		var sub []ufs.Dirent
		fsys.ReadDir(ino, func(d ufs.Dirent) bool {
			if d.Name == "." || d.Name == ".." {
				return true
			}
			switch d.Type {
			case ondisk.DTDir:
				sub = append(sub, d)
			case ondisk.DTReg:
				files = append(files, path.Join(p, d.Name))
			}
			return true
		})
		for _, d := range sub {
			cp := path.Join(p, d.Name)
			dirs = append(dirs, cp)
			walk(d.Ino, cp)
		}
	}
	for i := range n {
		// listed again after each change: renames move whole subtrees
		files, dirs = nil, []string{"/"}
		walk(ondisk.RootIno, "/")
		if len(files) == 0 {
			break
		}
		made++
		f, d := pick(files), pick(dirs)
		fi, err := fsys.Namei(f)
		di, derr := fsys.Namei(d)
		if err != nil || derr != nil {
			made-- // renamed or removed by an earlier change
			continue
		}
		name := fmt.Sprintf("r%d-%d", rng.IntN(1e6), i)
		pd, pn := path.Split(f)
		pino, _ := fsys.Namei(pd)
		switch rng.IntN(10) {
		case 0: // new file, maybe sparse
			ino, err := fsys.Create(di, name, 0o644, uint32(rng.IntN(3)), 0)
			must("create", err)
			_, err = fsys.WriteAt(ino, make([]byte, rng.IntN(50000)+1), int64(rng.IntN(3))*70000)
			must("write", err)
		case 1: // rewrite part of a file
			b := []byte(fmt.Sprint("changed ", i))
			_, err := fsys.WriteAt(fi, b, int64(rng.IntN(20000)))
			must("write", err)
		case 2: // truncate
			sz := uint64(rng.IntN(3000))
			_, err := fsys.Setattr(fi, ufs.SetAttr{Size: &sz})
			must("truncate", err)
		case 3: // rename a file
			must("rename", fsys.Rename(pino, pn, di, name, ufs.RenameFlags{}))
		case 4: // hard link
			if err := fsys.Link(fi, di, name); errorsIsTooManyLinks(err) {
				made--
			} else {
				must("link", err)
			}
		case 5: // remove a file name
			must("unlink", fsys.Unlink(pino, pn))
		case 6: // metadata only
			mode := uint16(rng.IntN(0o1000))
			uid := uint32(rng.IntN(1000))
			_, err := fsys.Setattr(fi, ufs.SetAttr{Mode: &mode, UID: &uid})
			must("setattr", err)
		case 7: // extended attribute
			must("setxattr", fsys.SetXattr(fi, ondisk.ExtattrNamespaceUser, "k", []byte(name), ufs.XattrFlags{}))
		case 8: // new directory with a file
			nd, err := fsys.Mkdir(di, name, 0o750, 0, 0)
			must("mkdir", err)
			_, err = fsys.Create(nd, "inside", 0o600, 0, 0)
			must("create", err)
		case 9: // move a directory elsewhere (not under itself)
			if d == "/" {
				made--
				continue
			}
			to := pick(dirs)
			ti, err := fsys.Namei(to)
			dd, dn := path.Split(d)
			ddi, derr := fsys.Namei(dd)
			if to == d || len(to) > len(d) && to[:len(d)+1] == d+"/" || err != nil || derr != nil {
				made--
				continue
			}
			must("rename dir", fsys.Rename(ddi, dn, ti, name, ufs.RenameFlags{}))
		}
	}
	return made
}

func errorsIsTooManyLinks(err error) bool { return errors.Is(err, ufs.ErrTooManyLinks) }
