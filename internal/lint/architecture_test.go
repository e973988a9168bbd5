package lint

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tableRow matches a row of ARCHITECTURE.md's package table and captures
// the package: "| engine | `ufs` | ...".
var tableRow = regexp.MustCompile("^\\| [^|]+ \\| `([a-z0-9/]+)` \\|")

// TestArchitectureListsLayers checks that the package table of
// ARCHITECTURE.md names the layers of imports_test.go, in the same order,
// so that the page and the rule it describes cannot drift apart.
func TestArchitectureListsLayers(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := strings.TrimSuffix(strings.TrimSpace(string(out)), "/go.mod")
	text, err := os.ReadFile(root + "/ARCHITECTURE.md")
	if err != nil {
		t.Fatalf("reading the architecture page: %v", err)
	}
	var listed []string
	for _, line := range strings.Split(string(text), "\n") {
		if m := tableRow.FindStringSubmatch(line); m != nil {
			listed = append(listed, m[1])
		}
	}
	if !slices.Equal(listed, layers) {
		t.Errorf("ARCHITECTURE.md's package table lists\n  %q\nbut layers in imports_test.go is\n  %q\nchange both together", listed, layers)
	}
}
