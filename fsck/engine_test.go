package fsck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/newfs"
	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// engineTree opens the image with the engine, read-write as a mount would,
// and walks it: path -> mode and content digest, the same shape as
// img.tree. It fails the test if the engine refuses the image or any read.
func engineTree(t *testing.T, b []byte) map[string]fileState {
	t.Helper()
	fs, err := ufs.Open(blockdev.NewMemBytes(b), ufs.Options{})
	if err != nil {
		t.Fatalf("engine refuses the repaired image: %v", err)
	}
	defer fs.Close()
	if fs.ReadOnly() {
		t.Fatalf("engine opens the repaired image read-only: %s", fs.ReadOnlyReason())
	}
	out := map[string]fileState{}
	var walk func(dir ondisk.Ino, prefix string, depth int)
	walk = func(dir ondisk.Ino, prefix string, depth int) {
		if depth > 64 {
			t.Fatalf("directory loop at %q", prefix)
		}
		type ent struct {
			name string
			ino  ondisk.Ino
		}
		var ents []ent
		if err := fs.ReadDir(dir, func(d ufs.Dirent) bool {
			if d.Name != "." && d.Name != ".." {
				ents = append(ents, ent{d.Name, d.Ino})
			}
			return true
		}); err != nil {
			t.Fatalf("engine readdir %q: %v", prefix, err)
		}
		for _, e := range ents {
			p := prefix + e.name
			st, err := fs.Stat(e.ino)
			if err != nil {
				t.Fatalf("engine stat %q: %v", p, err)
			}
			state := fileState{ino: e.ino, mode: st.Mode}
			switch st.Type() {
			case ondisk.IFDIR:
				out[p] = state
				walk(e.ino, p+"/", depth+1)
				continue
			case ondisk.IFLNK:
				target, err := fs.Readlink(e.ino)
				if err != nil {
					t.Fatalf("engine readlink %q: %v", p, err)
				}
				state.sum = sha256.Sum256([]byte(target))
			default:
				h := sha256.New()
				buf := make([]byte, 1<<16)
				for off := int64(0); off < int64(st.Size); {
					n, err := fs.ReadAt(e.ino, buf, off)
					h.Write(buf[:n])
					off += int64(n)
					if err == io.EOF || n == 0 {
						break
					}
					if err != nil {
						t.Fatalf("engine read %q: %v", p, err)
					}
				}
				copy(state.sum[:], h.Sum(nil))
			}
			out[p] = state
		}
	}
	walk(ondisk.RootIno, "", 0)
	return out
}

// TestRepairedImagesOpenInEngine: after -y, the engine opens every damaged
// and repaired image read-write and reads every file the damage did not
// touch with the same contents as before the damage.
func TestRepairedImagesOpenInEngine(t *testing.T) {
	for _, dmg := range damages {
		t.Run(dmg.name, func(t *testing.T) {
			orig := image(t, dmg.spec)
			before := engineTree(t, orig)
			b := bytes.Clone(orig)
			touched := dmg.apply(t, openImg(t, b))
			for run := 0; run < 2; run++ {
				opts := Options{Mode: Yes, Force: true}
				if run == 0 {
					opts.AltSuperblock = dmg.alt
				}
				rep, fixed, out, err := check(t, b, opts)
				if err != nil {
					t.Fatalf("fsck -y: %v\n%s", err, out)
				}
				b = fixed
				if rep.ExitCode == ExitOK {
					break
				}
			}
			after := engineTree(t, b)
			for p, st := range before {
				if isTouched(p, touched) {
					continue
				}
				got, ok := after[p]
				switch {
				case !ok:
					t.Errorf("%s: gone after repair", p)
				case got.mode != st.mode || got.sum != st.sum:
					t.Errorf("%s: engine reads it differently after repair", p)
				}
			}
		})
	}
}

// TestEngineFilledImageClean: an image filled and churned through the
// engine (creates, writes over holes and indirect ranges, truncates,
// renames, links, removals, xattrs, symlinks) checks clean with -n -f.
func TestEngineFilledImageClean(t *testing.T) {
	m := blockdev.NewMem(64 << 20)
	if _, err := newfs.Format(context.Background(), m, newfs.DefaultParams()); err != nil {
		t.Fatal(err)
	}
	fs, err := ufs.Open(m, ufs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	root := fs.Root()
	var files []ondisk.Ino
	dirs := []ondisk.Ino{root}
	must := func(err error) {
		t.Helper()
		if err != nil && !errors.Is(err, ufs.ErrNoSpace) {
			t.Fatal(err)
		}
	}
	for i := 0; i < 40; i++ {
		d, err := fs.Mkdir(dirs[rng.IntN(len(dirs))], fmt.Sprintf("d%d", i), 0o755, 0, 0)
		must(err)
		dirs = append(dirs, d)
	}
	for i := 0; i < 600; i++ {
		dir := dirs[rng.IntN(len(dirs))]
		name := fmt.Sprintf("f%d", i)
		ino, err := fs.Create(dir, name, 0o644, uint32(i%3), 0)
		must(err)
		files = append(files, ino)
		data := bytes.Repeat([]byte{byte(i)}, rng.IntN(50000))
		off := int64(0)
		if i%17 == 0 {
			off = int64(rng.IntN(40)) << 20 // into the indirect ranges, leaving a hole
		}
		_, err = fs.WriteAt(ino, data, off)
		must(err)
		if i%5 == 0 {
			must(fs.Truncate(ino, uint64(rng.IntN(30000))))
		}
		if i%11 == 0 {
			must(fs.SetXattr(ino, ondisk.ExtattrNamespaceUser, "tag", []byte(name), ufs.XattrFlags{}))
		}
		if i%13 == 0 {
			must(fs.Link(ino, dirs[rng.IntN(len(dirs))], "l"+name))
		}
		if i%19 == 0 {
			_, err := fs.Symlink(dir, "s"+name, string(bytes.Repeat([]byte("x"), 20+rng.IntN(200))), 0, 0)
			must(err)
		}
	}
	for i := 0; i < 200; i++ {
		src := rng.IntN(len(dirs))
		err := fs.Rename(dirs[src], fmt.Sprintf("d%d", src-1), dirs[rng.IntN(len(dirs))], fmt.Sprintf("r%d", i), ufs.RenameFlags{})
		if err != nil && !errors.Is(err, ufs.ErrNotFound) && !errors.Is(err, ufs.ErrInvalid) && !errors.Is(err, ufs.ErrExist) && !errors.Is(err, ufs.ErrNotEmpty) {
			t.Fatalf("rename: %v", err)
		}
	}
	// Remove every third file, found by listing: renames above moved some
	// directories, so names are looked up afresh.
	removed := 0
	for _, dir := range dirs {
		var victims []string
		n := 0
		if err := fs.ReadDir(dir, func(d ufs.Dirent) bool {
			if d.Type == ondisk.DTReg {
				if n%3 == 0 {
					victims = append(victims, d.Name)
				}
				n++
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		for _, name := range victims {
			if err := fs.Unlink(dir, name); err != nil {
				t.Fatalf("unlink %s: %v", name, err)
			}
			removed++
		}
	}
	if removed == 0 || len(files) == 0 {
		t.Fatal("the workload removed nothing")
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	mustBeClean(t, m.Bytes(), "engine-filled image")
}
