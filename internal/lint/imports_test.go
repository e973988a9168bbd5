package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ufs2/ufs2"

// layers lists the project's packages top to bottom, as ARCHITECTURE.md does.
// A package belongs to the first layer that is its path or a prefix
// directory of it (tools/dumpfs is in "tools"). A package may import
// packages of its own layer and of the layers below it, never above.
var layers = []string{
	"internal/crashtest", // crash-consistency tests over the whole stack (test only)
	"cmd/ufs2",
	"tools",
	"mount",
	"dump",
	"fsck",
	"newfs",
	"dmfs",
	"snapshot",
	"ufs",
	"alloc",
	"softdep",
	"internal/bcache",
	"internal/blockdev",
	"ondisk",
}

// onlyMay lists, for project packages with a stricter rule than their
// layer's, the only project layers they may import (besides their own).
var onlyMay = map[string][]string{
	// fsck reads the device through ondisk directly, never through ufs.
	"fsck": {"internal/blockdev", "ondisk"},
	// ondisk is the format alone.
	"ondisk": {},
	// testutil is a helper for tests, below everything it tests.
	"internal/testutil": {"internal/blockdev", "ondisk"},
	// The lint tests read the tree; they import nothing of it.
	"internal/lint": {},
}

// strictInCodeOnly lists packages of onlyMay whose _test.go files follow
// the plain layer rule instead: fsck's tests may build images with newfs and
// open repaired ones with ufs, which its code may never do.
var strictInCodeOnly = []string{"fsck"}

// testOnly lists project packages that only _test.go files may import.
var testOnly = []string{"internal/testutil", "internal/crashtest"}

// thirdParty gives, for an import-path prefix outside the project, the
// only layer allowed to import it.
var thirdParty = map[string]string{
	"github.com/urfave/cli":     "cmd/ufs2",
	"github.com/hanwen/go-fuse": "mount",
}

// layerOf returns the layer of a module-relative package path and its
// index in layers; index -1 for the packages of onlyMay outside layers;
// ok false for a package the rules do not know.
func layerOf(pkg string) (layer string, index int, ok bool) {
	for i, l := range layers {
		if pkg == l || strings.HasPrefix(pkg, l+"/") {
			return l, i, true
		}
	}
	for l := range onlyMay {
		if pkg == l || strings.HasPrefix(pkg, l+"/") {
			return l, -1, true
		}
	}
	return "", 0, false
}

// hasPrefixPath reports whether path is prefix or lies under it.
func hasPrefixPath(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// checkImports returns one message per import that pkg (a module-relative
// path such as "fsck" or "cmd/ufs2") may not make. imports are full
// import paths of its non-test files, testImports those of its _test.go
// files (in-package and external).
func checkImports(pkg string, imports, testImports []string) []string {
	layer, index, ok := layerOf(pkg)
	if !ok {
		return []string{fmt.Sprintf("package %s is in no layer: add it to layers in internal/lint/imports_test.go and to ARCHITECTURE.md", pkg)}
	}
	var msgs []string
	check := func(imp string, inTest bool) {
		where := ""
		if inTest {
			where = " (in a _test.go file)"
		}
		for prefix, owner := range thirdParty {
			if hasPrefixPath(imp, prefix) && layer != owner {
				msgs = append(msgs, fmt.Sprintf("%s imports %s%s: only %s may import %s", pkg, imp, where, owner, prefix))
			}
		}
		if !hasPrefixPath(imp, module) {
			return
		}
		dep := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
		depLayer, depIndex, ok := layerOf(dep)
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("%s imports %s%s, which is in no layer: add it to layers in internal/lint/imports_test.go and to ARCHITECTURE.md", pkg, imp, where))
			return
		case depLayer == layer:
			return // within a layer, and a package's tests importing the package
		case slices.ContainsFunc(testOnly, func(p string) bool { return hasPrefixPath(dep, p) }):
			if !inTest {
				msgs = append(msgs, fmt.Sprintf("%s imports %s: only _test.go files may import it", pkg, imp))
			}
			return
		}
		if allowed, strict := onlyMay[layer]; strict && !(inTest && slices.Contains(strictInCodeOnly, layer)) {
			if !slices.Contains(allowed, depLayer) {
				rule := "may import nothing of the project"
				if len(allowed) > 0 {
					rule = "may import only " + strings.Join(allowed, " and ")
				}
				msgs = append(msgs, fmt.Sprintf("%s imports %s%s: %s %s", pkg, imp, where, layer, rule))
			}
			return
		}
		if depIndex <= index {
			msgs = append(msgs, fmt.Sprintf("%s imports %s%s: %s is not below %s in the layers of ARCHITECTURE.md", pkg, imp, where, depLayer, layer))
		}
	}
	for _, imp := range imports {
		check(imp, false)
	}
	for _, imp := range testImports {
		check(imp, true)
	}
	return msgs
}

func TestCheckImports(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	tests := []struct {
		pkg          string
		imports      []string
		testImports  []string
		wantProblems []string // one substring per expected message, in order
	}{
		{"cmd/ufs2", []string{"github.com/urfave/cli/v2", m("tools/dumpfs"), m("mount"), m("ondisk"), "fmt"}, nil, nil},
		{"tools/dumpfs", []string{m("tools/internal/table"), m("ufs"), m("ondisk")}, []string{m("internal/testutil"), m("tools/dumpfs"), m("newfs")}, nil},
		{"mount", []string{"github.com/hanwen/go-fuse/v2/fs", m("ufs"), m("snapshot")}, []string{"github.com/hanwen/go-fuse/v2/posixtest"}, nil},
		{"ufs", []string{m("alloc"), m("softdep"), m("internal/bcache"), m("internal/blockdev"), m("ondisk")}, nil, nil},
		{"ondisk", []string{"encoding/binary", "hash/crc32"}, []string{m("internal/testutil")}, nil},
		{"fsck", []string{m("ondisk"), m("internal/blockdev")}, []string{m("internal/testutil")}, nil},

		{"ufs", []string{m("snapshot")}, nil, []string{"ufs imports " + m("snapshot") + ": snapshot is not below ufs"}},
		{"alloc", nil, []string{m("ufs")}, []string{"alloc imports " + m("ufs") + " (in a _test.go file): ufs is not below alloc"}},
		{"ondisk", []string{m("internal/blockdev")}, nil, []string{"ondisk may import nothing of the project"}},
		{"fsck", []string{m("ondisk")}, []string{m("newfs"), m("ufs")}, nil},
		{"fsck", []string{m("ufs"), m("alloc"), m("softdep"), m("internal/bcache"), m("ondisk")}, nil, []string{
			"fsck imports " + m("ufs") + ": fsck may import only internal/blockdev and ondisk",
			"imports " + m("alloc"), "imports " + m("softdep"), "imports " + m("internal/bcache")}},
		{"ufs", []string{m("internal/testutil")}, nil, []string{"only _test.go files may import it"}},
		{"internal/testutil", []string{m("ondisk"), m("internal/blockdev"), m("ufs")}, nil, []string{"internal/testutil may import only internal/blockdev and ondisk"}},
		{"tools", []string{"github.com/urfave/cli/v2"}, nil, []string{"only cmd/ufs2 may import github.com/urfave/cli"}},
		{"ufs", nil, []string{"github.com/hanwen/go-fuse/v2/fuse"}, []string{"(in a _test.go file): only mount may import github.com/hanwen/go-fuse"}},
		{"internal/blockdev", []string{m("internal/bcache")}, nil, []string{"internal/bcache is not below internal/blockdev"}},
		{"cmd/other", nil, nil, []string{"package cmd/other is in no layer"}},
		{"ufs", []string{m("internal/frob")}, nil, []string{m("internal/frob") + ", which is in no layer"}},
		{"internal/lint", nil, []string{m("ondisk")}, []string{"internal/lint may import nothing of the project"}},
	}
	for _, tt := range tests {
		got := checkImports(tt.pkg, tt.imports, tt.testImports)
		ok := len(got) == len(tt.wantProblems)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.Contains(got[i], tt.wantProblems[i])
		}
		if !ok {
			t.Errorf("checkImports(%s, %q, %q) =\n  %q\nwant messages containing\n  %q", tt.pkg, tt.imports, tt.testImports, got, tt.wantProblems)
		}
	}
}

// listedPackage is the part of "go list -json" output the test reads.
type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// TestImportDirection checks every package of the module, whichever of
// the layers exist so far.
func TestImportDirection(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found on PATH: %v", err)
	}
	modOut, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	modFile := strings.TrimSpace(string(modOut))
	if modFile == "" || modFile == "/dev/null" {
		t.Fatalf("not inside a module (go env GOMOD = %q)", modFile)
	}
	cmd := exec.Command(gobin, "list", "-e", "-json", "./...")
	cmd.Dir = strings.TrimSuffix(modFile, "/go.mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -e -json ./...: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	n := 0
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if p.Error != nil {
			// Another package's problem (a syntax error mid-edit, say):
			// its imports may be incomplete, but go build reports it.
			t.Logf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if !hasPrefixPath(p.ImportPath, module) {
			continue
		}
		n++
		pkg := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, msg := range checkImports(pkg, p.Imports, append(p.TestImports, p.XTestImports...)) {
			t.Error(msg)
		}
	}
	if n == 0 {
		t.Fatal("go list found no package of the module")
	}
	t.Logf("checked %d packages", n)
}
