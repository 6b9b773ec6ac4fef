package fiberdb_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestModuleDoc: `go doc github.com/fiberdb/fiberdb` finds a package doc
// that points to every package (issue 13).
func TestModuleDoc(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "doc", "github.com/fiberdb/fiberdb").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, pkg := range []string{"config", "tenancy", "fiberdb", "fiberdbtest", "pgserver", "fiberdbprom"} {
		require.True(t, strings.Contains(string(out), "github.com/fiberdb/fiberdb/"+pkg+" "), "go doc names %s:\n%s", pkg, out)
	}
}
