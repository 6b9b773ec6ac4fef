package fiberdb_test

import (
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
)

// Regression (review): a transaction begun by Batch.BeginTx was neither
// tracked nor guarded. Kept past its request, its Commit committed the next
// request's work on the same pooled connection.
func TestBatchTxClosedWithItsRequest(t *testing.T) {
	t.Parallel()
	e := openConf(t, loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default")))
	exec(t, e, "default", "CREATE TABLE items (name text)")
	app := newApp(fiberdb.Config{Engines: e})
	var kept pgx.Tx
	app.Get("/batch", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		b.Queue("INSERT INTO items VALUES ('batch')")
		br := db.SendBatch(c.UserContext(), b)
		kept = br.Tx()
		return br.Close() // the transaction stays open: never committed
	})
	app.Get("/open-tx", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		tx, err := db.Begin(c.UserContext())
		if err != nil {
			return err
		}
		_, err = tx.Exec(c.UserContext(), "INSERT INTO items VALUES ('uncommitted')")
		return err // never committed either
	})

	status, _ := get(t, app, "default.test", "/batch")
	require.Equal(t, fiber.StatusOK, status)
	require.NotNil(t, kept)
	require.Nil(t, kept.Conn(), "the underlying connection is never handed out")
	status, _ = get(t, app, "default.test", "/open-tx")
	require.Equal(t, fiber.StatusOK, status)

	err := kept.Commit(t.Context())
	require.ErrorIs(t, err, fiberdb.ErrConnReleased)
	require.ErrorIs(t, err, pgx.ErrTxClosed)
	require.Zero(t, count(t, e, "default", "SELECT count(*) FROM items"), "neither request's work was committed")
}

// Regression (review): transactions from Begin were pgx's own, so their rows
// escaped the guard and raced the release.
func TestTxAfterRelease(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	app := newApp(fiberdb.Config{Engines: e})
	var tx pgx.Tx
	var rows pgx.Rows
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		if tx, err = db.Begin(c.UserContext()); err != nil {
			return err
		}
		rows, err = tx.Query(c.UserContext(), "SELECT generate_series(1, 1000)") //nolint:rowserrcheck,sqlclosecheck // read after the request, on purpose
		return err
	})
	status, _ := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusOK, status)

	ctx := t.Context()
	require.False(t, rows.Next(), "rows left open end with their request")
	require.ErrorIs(t, rows.Err(), fiberdb.ErrConnReleased)
	for name, err := range map[string]error{
		"Exec":     func() error { _, err := tx.Exec(ctx, "SELECT 1"); return err }(),
		"QueryRow": tx.QueryRow(ctx, "SELECT 1").Scan(new(int)),
		"Begin":    func() error { _, err := tx.Begin(ctx); return err }(),
		"Prepare":  func() error { _, err := tx.Prepare(ctx, "p", "SELECT 1"); return err }(),
		"Commit":   tx.Commit(ctx),
		"Rollback": tx.Rollback(ctx),
		"Batch":    tx.SendBatch(ctx, &pgx.Batch{}).Close(),
	} {
		require.ErrorIs(t, err, fiberdb.ErrConnReleased, name)
		require.ErrorIs(t, err, pgx.ErrTxClosed, name)
	}
	require.Nil(t, tx.Conn())
}

// Regression (review): after release, a Batch.BeginTx batch answered a nil
// Tx, so the usual `defer br.Tx().Rollback(ctx)` panicked.
func TestBatchTxAfterReleaseIsClosedNotNil(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	app := newApp(fiberdb.Config{Engines: e})
	var kept fiberdb.DBTX
	app.Get("/", func(c *fiber.Ctx) error {
		var err error
		kept, err = fiberdb.Conn(c)
		return err
	})
	status, _ := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusOK, status)

	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	br := kept.SendBatch(t.Context(), b)
	require.NotNil(t, br.Tx())
	require.ErrorIs(t, br.Tx().Rollback(t.Context()), pgx.ErrTxClosed)
	require.ErrorIs(t, br.Close(), fiberdb.ErrConnReleased)
}
