package fiberdb_test

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/pgbouncer"
)

// TestSharedPoolBehindPgBouncerNeverCross is TestSharedPoolTenantsNeverCross
// behind a real PgBouncer in transaction mode, with fewer server
// connections (2) than the client pool has (4): consecutive transactions of
// one client connection run on different server connections, which is where
// a session-level SET would hand one tenant's search_path or setting to
// another. PgBouncer 1.18 has no protocol-level prepared statements, so the
// modes are those that need none.
func TestSharedPoolBehindPgBouncerNeverCross(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"exec", "simple_protocol", "cache_describe"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := openBehindPgBouncer(t, mode)
			neverCross(t, crossingApp(e))
			noLeftovers(t, e, 2)
		})
	}
}

// TestSharedPoolBehindPgBouncerMultiStatementExec is
// TestSharedPoolMultiStatementExec behind PgBouncer 1.18 in transaction
// mode, under exec mode, which README advises there: the transaction of its
// own that such an Exec takes is one server connection's, simple query
// included.
func TestSharedPoolBehindPgBouncerMultiStatementExec(t *testing.T) {
	t.Parallel()
	multiStatementExec(t, openBehindPgBouncer(t, "exec"))
}

// openBehindPgBouncer opens the engines of sharedEngines, under exec mode
// mode, behind a PgBouncer in transaction mode with 2 server connections
// for the client pool's 4. It skips the test where PgBouncer is not
// installed, unless CI is set.
func openBehindPgBouncer(t *testing.T, mode string) *fiberdb.Engines {
	t.Helper()
	dsn, role := sharedDatabase(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	b, err := pgbouncer.Start(t.Context(), &pgbouncer.Options{
		Server: fiberdbtest.Server(t).URL(), Users: []string{role},
		PoolMode: "transaction", DefaultPoolSize: 2,
	})
	if errors.Is(err, pgbouncer.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	opts := map[string]any{"default_query_exec_mode": mode, "pool_max_conns": 4}
	return openConf(t, loadConf(t, sharedEngines(b.URL(strings.TrimPrefix(u.Path, "/")), opts)))
}
