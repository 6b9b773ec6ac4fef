package main_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemoDoesNotImportTestHelpers: the demo starts PostgreSQL through
// pgserver, not through the test helpers (issue 12). No package of this
// module that the demo links imports testing, testify or fiberdbtest.
// (testing itself is in the demo's deps all the same: Fiber v2's utils
// package imports it for its assertion helpers, as it does in any Fiber app.)
func TestDemoDoesNotImportTestHelpers(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps",
		"-f", "{{.ImportPath}}:{{range .Imports}} {{.}}{{end}}", ".").Output()
	require.NoError(t, err)
	var linksPgserver bool
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), ":")
		linksPgserver = linksPgserver || pkg == "github.com/fiberdb/fiberdb/pgserver"
		if !strings.HasPrefix(pkg, "github.com/fiberdb/fiberdb") {
			continue
		}
		for imp := range strings.FieldsSeq(imports) {
			switch {
			case imp == "testing", strings.HasPrefix(imp, "github.com/stretchr/testify"),
				imp == "github.com/fiberdb/fiberdb/fiberdbtest":
				t.Errorf("%s, linked into cmd/demo, imports %s", pkg, imp)
			}
		}
	}
	require.True(t, linksPgserver, "the demo starts PostgreSQL with pgserver")
}
