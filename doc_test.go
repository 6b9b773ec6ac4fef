package fiberdb_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestModuleDoc: `go doc github.com/fiberdb/fiberdb` finds a package doc
// that points to every package (issue 13). The packages are the rows of the
// README's package table, and that table lists every library package of
// the module, so that a new package cannot be left out of either.
func TestModuleDoc(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	listed := readmePackages(t, string(readme))
	require.ElementsMatch(t, libraryPackages(t), listed, "the README's package table lists every library package")

	out, err := exec.CommandContext(t.Context(), "go", "doc", "github.com/fiberdb/fiberdb").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, pkg := range listed {
		// go doc wraps lines, so a path may end one.
		named := regexp.MustCompile(`github\.com/fiberdb/fiberdb/` + regexp.QuoteMeta(pkg) + `\s`)
		require.Regexp(t, named, string(out), "go doc names %s", pkg)
	}
}

// packageRow is a row of a README table whose first cell is code: | `name` | … |.
var packageRow = regexp.MustCompile("^\\| `(\\w+)` \\|")

// readmePackages returns the first cells of the README's package table, the
// one under "| package | what it does |".
func readmePackages(t *testing.T, readme string) []string {
	t.Helper()
	_, table, ok := strings.Cut(readme, "\n| package | what it does |\n|---|---|\n")
	require.True(t, ok, "README.md has a package table")
	var pkgs []string
	for line := range strings.SplitSeq(table, "\n") {
		m := packageRow.FindStringSubmatch(line)
		if m == nil {
			break
		}
		pkgs = append(pkgs, m[1])
	}
	return pkgs
}

// libraryPackages lists the module's top-level directories holding a
// package to import: not programs (cmd, examples), benchmarks or internal.
func libraryPackages(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	var pkgs []string
	for _, e := range entries {
		switch name := e.Name(); {
		case !e.IsDir(), name == "cmd", name == "examples", name == "bench", name == "internal", strings.HasPrefix(name, "."):
		default:
			sources, err := filepath.Glob(filepath.Join(name, "*.go"))
			require.NoError(t, err)
			for _, s := range sources {
				if !strings.HasSuffix(s, "_test.go") {
					pkgs = append(pkgs, name)
					break
				}
			}
		}
	}
	return pkgs
}
