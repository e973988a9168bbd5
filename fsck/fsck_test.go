package fsck

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/internal/testutil"
)

// Images are made once per test binary and copied by each test.
var (
	imagesMu sync.Mutex
	images   = map[string][]byte{}
)

type imageSpec struct {
	name  string
	tree  func() testutil.TreeSpec
	opts  testutil.MakefsOptions
	hash  bool // enable check-hashes after makefs
	empty bool // an empty source tree
}

func smallTree() testutil.TreeSpec {
	s := testutil.Small()
	s.BigFileSize = 200 << 10 // reaches into the single indirect block
	return s
}

var (
	specSmall = imageSpec{name: "small", tree: smallTree, opts: testutil.MakefsOptions{Version: 2, Size: "8m"}}
	specMulti = imageSpec{name: "multi", tree: smallTree,
		opts: testutil.MakefsOptions{Version: 2, Size: "12m", Extra: []string{"-o", "maxbpcg=256,density=4096"}}}
	specHash  = imageSpec{name: "hash", tree: smallTree, opts: testutil.MakefsOptions{Version: 2, Size: "8m"}, hash: true}
	specBig   = imageSpec{name: "big32k", tree: smallTree, opts: testutil.MakefsOptions{Version: 2, Size: "16m", Bsize: 32768, Fsize: 4096}}
	specEmpty = imageSpec{name: "empty", empty: true, opts: testutil.MakefsOptions{Version: 2}}
)

// image returns a fresh copy of the image spec describes.
func image(t testing.TB, spec imageSpec) []byte {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if b, ok := images[spec.name]; ok {
		return bytes.Clone(b)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if !spec.empty {
		testutil.MakeTree(t, src, spec.tree())
	}
	path := filepath.Join(dir, "img")
	testutil.MakefsWith(t, src, path, spec.opts)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if spec.hash {
		openImg(t, b).enableCheckHashes()
	}
	images[spec.name] = b
	return bytes.Clone(b)
}

// check runs Check over a copy of b in memory and returns the report, the
// bytes after and the transcript.
func check(t testing.TB, b []byte, opts Options) (*Report, []byte, string, error) {
	t.Helper()
	dev := blockdev.NewMemBytes(b)
	var d blockdev.Device = dev
	if opts.Mode == No {
		d = dev.ReadOnlyView()
	}
	var out strings.Builder
	opts.Output = &out
	rep, err := Check(context.Background(), d, opts)
	if rep == nil {
		t.Fatalf("Check returned no report: %v", err)
	}
	// A check never tries to write: every repair asks first, and -n
	// answers no (a write it drops would be a path that did not ask).
	if opts.Mode == No && rep.refusedWrites != 0 {
		t.Errorf("fsck -n tried %d writes\n%s", rep.refusedWrites, out.String())
	}
	return rep, dev.Bytes(), out.String(), err
}

// mustBeClean asserts that a forced -n check finds nothing.
func mustBeClean(t testing.TB, b []byte, what string) {
	t.Helper()
	rep, after, out, err := check(t, b, Options{Mode: No, Force: true})
	if err != nil || rep.ExitCode != ExitOK || len(rep.Problems) != 0 {
		t.Fatalf("%s: fsck -n -f: exit %d, err %v, %d problems:\n%s", what, rep.ExitCode, err, len(rep.Problems), out)
	}
	if !bytes.Equal(after, b) {
		t.Fatalf("%s: fsck -n changed the image", what)
	}
}

func TestCleanImages(t *testing.T) {
	for _, spec := range []imageSpec{specSmall, specMulti, specHash, specBig, specEmpty} {
		t.Run(spec.name, func(t *testing.T) {
			b := image(t, spec)
			mustBeClean(t, b, spec.name)
			rep, _, out, err := check(t, b, Options{Mode: No, Force: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"** Phase 1 - Check Blocks and Sizes", "** Phase 5 - Check Cyl groups", "files,", "fragmentation)"} {
				if !strings.Contains(out, want) {
					t.Errorf("transcript lacks %q:\n%s", want, out)
				}
			}
			m := openImg(t, b)
			if rep.Summary.FreeBlocks != m.sb.Cstotal.Nbfree || rep.Summary.FreeFrags != m.sb.Cstotal.Nffree {
				t.Errorf("summary %+v disagrees with the superblock's %+v", rep.Summary, m.sb.Cstotal)
			}
			// -y on a clean filesystem changes nothing either.
			rep, after, out, err := check(t, b, Options{Mode: Yes, Force: true})
			if err != nil || rep.ExitCode != ExitOK || len(rep.Problems) != 0 {
				t.Fatalf("fsck -y: exit %d err %v:\n%s", rep.ExitCode, err, out)
			}
			if !bytes.Equal(after, b) {
				t.Errorf("fsck -y changed a clean image")
			}
		})
	}
}

func TestPreenSkipsClean(t *testing.T) {
	b := image(t, specSmall)
	rep, _, out, err := check(t, b, Options{Mode: Preen})
	if err != nil || !rep.Skipped || rep.ExitCode != ExitOK {
		t.Fatalf("preen of a clean fs: skipped=%v exit %d err %v\n%s", rep.Skipped, rep.ExitCode, err, out)
	}
	if !strings.Contains(out, "FILE SYSTEM CLEAN; SKIPPING CHECKS") {
		t.Errorf("transcript: %s", out)
	}
	rep, _, _, err = check(t, b, Options{Mode: Preen, Force: true})
	if err != nil || rep.Skipped || rep.ExitCode != ExitOK {
		t.Fatalf("preen -f: skipped=%v exit %d err %v", rep.Skipped, rep.ExitCode, err)
	}
}

func TestBadOptions(t *testing.T) {
	b := image(t, specEmpty)
	for _, o := range []Options{{Mode: Mode(7)}, {AltSuperblock: -1}} {
		if _, err := Check(context.Background(), blockdev.NewMemBytes(b), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
