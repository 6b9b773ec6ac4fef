package pgbouncer_test

import (
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/pgbouncer"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

func TestStartServesTransactionMode(t *testing.T) {
	t.Parallel()
	pg := fiberdbtest.Server(t)
	b, err := pgbouncer.Start(t.Context(), &pgbouncer.Options{Server: pg.URL()})
	if errors.Is(err, pgbouncer.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	require.NoError(t, err)

	cc, err := pgx.ParseConfig(b.URL("postgres"))
	require.NoError(t, err)
	// PgBouncer 1.18 has no protocol-level prepared statements.
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn, err := pgx.ConnectConfig(t.Context(), cc)
	require.NoError(t, err)
	var db string
	require.NoError(t, conn.QueryRow(t.Context(), "select current_database()").Scan(&db))
	require.Equal(t, "postgres", db)
	require.NoError(t, conn.Close(t.Context()))

	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "closing twice is safe")
	_, err = os.Stat(b.Dir())
	require.ErrorIs(t, err, os.ErrNotExist, "its directory is removed")
}
