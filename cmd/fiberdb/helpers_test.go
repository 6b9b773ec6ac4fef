package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
)

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// fiberdb runs bin with args in a clean environment (no FIBERDB_
// configuration of the caller's) plus env.
func fiberdb(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || strings.HasPrefix(name, "FIBERDB_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// writeConfig writes a fiberdb.yaml with these engines into dir and returns
// its path.
func writeConfig(t *testing.T, dir string, urls map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("SQLALCHEMY_ENGINES:\n")
	for name, u := range urls {
		fmt.Fprintf(&b, "  %s: %q\n", name, u)
	}
	path := filepath.Join(dir, "fiberdb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

// writeMigrations writes tern migration files into a new directory of dir.
func writeMigrations(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	d := filepath.Join(dir, "migrations")
	require.NoError(t, os.Mkdir(d, 0o755))
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(d, name), []byte(body), 0o600))
	}
	return d
}

func exec1(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer func() { require.NoError(t, conn.Close(context.Background())) }()
	_, err = conn.Exec(t.Context(), sql)
	require.NoError(t, err)
}

// tables lists the tables of the database at dsn.
func tables(t *testing.T, dsn string) []string {
	t.Helper()
	return testkit.Query[string](t, dsn,
		"SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
}

// newTenants makes a config of "default" and n tenants t00… with databases
// of their own, and returns their urls.
func newTenants(t *testing.T, n int) map[string]string {
	t.Helper()
	urls := map[string]string{"default": fiberdbtest.Database(t)}
	for i := range n {
		urls[fmt.Sprintf("t%02d", i)] = fiberdbtest.Database(t)
	}
	return urls
}
