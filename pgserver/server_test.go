package pgserver_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/pgserver"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

func TestPostgresLifecycle(t *testing.T) {
	t.Parallel()
	fiberdbtest.Server(t) // fails under CI=true, skips elsewhere, when there is no PostgreSQL
	ctx := t.Context()
	pg, err := pgserver.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	require.NotZero(t, pg.PID())
	require.DirExists(t, pg.Dir())

	conn, err := pgx.Connect(ctx, pg.URL())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	pid := pg.PID()
	require.NoError(t, pg.Stop())
	require.Zero(t, pg.PID())
	require.NoDirExists(t, fmt.Sprintf("/proc/%d", pid), "the server process is gone")
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = pgx.Connect(cctx, pg.URL())
	require.Error(t, err, "a stopped server refuses connections")

	require.NoError(t, pg.Start(ctx))
	conn, err = pgx.Connect(ctx, pg.URL())
	require.NoError(t, err)
	var v int
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, 42, v, "data survives a restart")
	require.NoError(t, conn.Close(ctx))

	dir := pg.Dir()
	require.NoError(t, pg.Close())
	require.NoError(t, pg.Close(), "Close is idempotent")
	require.NoDirExists(t, dir)
}

func TestServerAsRootRunsAsPostgres(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only meaningful as root")
	}
	pg := fiberdbtest.Server(t)
	if pg.PID() == 0 {
		t.Skip("the shared server is external")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pg.PID()))
	require.NoError(t, err)
	require.NotRegexp(t, `(?m)^Uid:\s+0\s`, string(status), "PostgreSQL refuses root; the helper must drop privileges")
}

// TestConnStringHasQuery: tests add parameters with "&name=value" to any
// ConnString (issue 13: a FIBERDB_TEST_DATABASE_URL without "?" broke them).
func TestConnStringHasQuery(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for _, tc := range []struct{ url, want string }{
		{"postgres://u@db:5432/postgres", "postgres://u@db:5432/acme?sslmode=prefer"},
		{"postgresql://u@db/postgres?sslmode=disable", "postgresql://u@db/acme?sslmode=disable"},
	} {
		pg, err := pgserver.Connect(tc.url)
		require.NoError(t, err)
		require.Equal(t, tc.want, pg.ConnString("acme"))
	}
	t.Setenv("PGSSLMODE", "require")
	pg, err := pgserver.Connect("postgres://u@db/postgres")
	require.NoError(t, err)
	require.Equal(t, "postgres://u@db/acme?sslmode=require", pg.ConnString("acme"), "what pgx would have used")
}

// TestDropTemplate: DropDatabase drops a template database too (issue 13:
// "cannot drop a template database" on the second run).
func TestDropTemplate(t *testing.T) {
	t.Parallel()
	pg := fiberdbtest.Server(t)
	ctx := t.Context()
	name := "pgserver_tpl_" + strconv.FormatInt(time.Now().UnixNano(), 10)
	require.NoError(t, pg.CreateDatabase(ctx, name, ""))
	require.NoError(t, pg.SetTemplate(ctx, name, true))
	require.NoError(t, pg.DropDatabase(ctx, name))
	require.NoError(t, pg.DropDatabase(ctx, name), "a missing database is not an error")
	require.NoError(t, pg.CreateDatabase(ctx, name, ""), "the name is free again")
	require.NoError(t, pg.DropDatabase(ctx, name))
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	fiberdbtest.Server(t) // fails under CI=true, skips elsewhere, when there is no PostgreSQL
	ctx := t.Context()
	pg, err := pgserver.Start(ctx, pgserver.Options{MaxConnections: 20})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	show := func() string {
		conn, err := pgx.Connect(ctx, pg.URL())
		require.NoError(t, err)
		defer conn.Close(ctx)
		var v string
		require.NoError(t, conn.QueryRow(ctx, "SHOW max_connections").Scan(&v))
		return v
	}
	require.Equal(t, "20", show())
	require.NoError(t, pg.Stop())
	require.NoError(t, pg.Start(ctx))
	require.Equal(t, "20", show(), "a restart keeps the setting")
}
