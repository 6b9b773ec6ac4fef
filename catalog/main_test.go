package catalog_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) {
	// Start the shared server before any test takes its goroutine baseline.
	// An error comes back from fiberdbtest.Server in each test.
	if _, err := fiberdbtest.SharedServer(); err != nil {
		fmt.Fprintln(os.Stderr, "catalog tests:", err)
	}
	fiberdbtest.Main(m)
}

// landlord returns a pool on a new database holding the catalog, and the
// database's connection string.
func landlord(t *testing.T) (pool *pgxpool.Pool, dsn string) {
	t.Helper()
	dsn = fiberdbtest.Database(t)
	pool, err := pgxpool.New(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, catalog.Install(t.Context(), pool))
	return pool, dsn
}

// connector opens listener connections named name, so that a test can find
// them in pg_stat_activity.
func connector(dsn, name string) func(ctx context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		cc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cc.RuntimeParams["application_name"] = name
		return pgx.ConnectConfig(ctx, cc)
	}
}

// waitFor receives from ch, failing the test after a generous bound: the
// bound only keeps a broken test from hanging.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
