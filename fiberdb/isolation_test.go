package fiberdb_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// isolate enters test isolation and rolls it back at cleanup, before the
// leak check and Close that openEngines registered.
func isolate(t *testing.T, e *fiberdb.Engines) {
	t.Helper()
	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rollback()) })
}

func todoApp(e *fiberdb.Engines) *fiber.App {
	app := newApp(fiberdb.Config{Engines: e})
	app.Post("/todos", func(c *fiber.Ctx) (err error) {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() {
			if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
				err = errors.Join(err, rbErr)
			}
		}()
		if _, err := tx.Exec(ctx, "INSERT INTO todo (title) VALUES ($1)", c.Query("title")); err != nil {
			return err
		}
		if c.Query("commit") == "no" {
			return nil
		}
		return tx.Commit(ctx)
	})
	app.Delete("/todos/:id", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		_, err = db.Exec(c.UserContext(), "DELETE FROM todo WHERE id = $1", c.Params("id"))
		return err
	})
	app.Get("/todos/count", func(c *fiber.Ctx) error {
		n, err := connScalar[int](c, "SELECT count(*) FROM todo")
		if err != nil {
			return err
		}
		return c.JSON(n)
	})
	return app
}

func todoCount(t *testing.T, app *fiber.App) string {
	t.Helper()
	status, body := get(t, app, "default.test", "/todos/count")
	require.Equal(t, fiber.StatusOK, status, body)
	return body
}

// TestIsolation ports Flask-SQLAlchemy-Lite's test_isolation.
//
//nolint:tparallel // the subtests run in order: each must see the one before rolled back
func TestIsolation(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")
	exec(t, e, "default", "INSERT INTO todo (title) VALUES ('setup')") // present at the start of each block
	app := todoApp(e)

	t.Run("sees the setup item, adds one", func(t *testing.T) {
		isolate(t, e)
		status, _ := fiberdbtest.Do(t, app, request(fiber.MethodPost, "default.test", "/todos?title=new"))
		require.Equal(t, fiber.StatusOK, status)
		require.Equal(t, "2", todoCount(t, app), "a later request sees the committed row")
	})
	t.Run("does not see the added item, deletes the setup item", func(t *testing.T) {
		isolate(t, e)
		require.Equal(t, "1", todoCount(t, app))
		status, _ := fiberdbtest.Do(t, app, request(fiber.MethodDelete, "default.test", "/todos/1"))
		require.Equal(t, fiber.StatusOK, status)
		require.Equal(t, "0", todoCount(t, app))
	})
	require.Equal(t, 1, count(t, e, "default", "SELECT count(*) FROM todo"), "the deleted setup item is back")
	require.Equal(t, 1, count(t, e, "default", "SELECT count(*) FROM todo WHERE id = 1"))
}

// TestIsolationAppNotRequired ports test_app_ctx_not_required: isolation
// starts before any app or request exists.
func TestIsolationAppNotRequired(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")

	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)
	require.NoError(t, rollback())

	rollback, err = e.TestIsolation(t.Context())
	require.NoError(t, err)
	app := todoApp(e) // the app is built inside isolation
	status, _ := fiberdbtest.Do(t, app, request(fiber.MethodPost, "default.test", "/todos?title=x"))
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "1", todoCount(t, app))
	require.NoError(t, rollback())
	require.NoError(t, rollback(), "rollback is idempotent")

	require.Equal(t, "0", todoCount(t, app))
}

func TestIsolationUncommittedWorkIsDiscarded(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")
	isolate(t, e)
	app := todoApp(e)
	status, _ := fiberdbtest.Do(t, app, request(fiber.MethodPost, "default.test", "/todos?title=x&commit=no"))
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "0", todoCount(t, app))
}

func TestIsolationFailedStatementDoesNotPoisonTheTest(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")
	isolate(t, e)
	app := todoApp(e)
	app.Get("/fail", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		_, err = db.Exec(c.UserContext(), "SELECT 1/0")
		return err
	})
	status, _ := get(t, app, "default.test", "/fail")
	require.Equal(t, fiber.StatusInternalServerError, status)
	status, _ = fiberdbtest.Do(t, app, request(fiber.MethodPost, "default.test", "/todos?title=x"))
	require.Equal(t, fiber.StatusOK, status, "the outer transaction survived the failed request")
	require.Equal(t, "1", todoCount(t, app))
}

func TestIsolationSerializesConcurrentRequests(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")
	isolate(t, e)
	app := todoApp(e)

	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := app.Test(request(fiber.MethodPost, "default.test", "/todos?title=c"), -1)
			if err == nil {
				statuses[i] = resp.StatusCode
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for i, s := range statuses {
		require.Equal(t, fiber.StatusOK, s, "request %d", i)
	}
	require.Equal(t, "20", todoCount(t, app))
}

func TestIsolationAcquireOutsideRequests(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	exec(t, e, "acme", "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")
	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)

	db, release, err := e.Acquire(t.Context(), "acme")
	require.NoError(t, err)
	_, err = db.Exec(t.Context(), "INSERT INTO todo (title) VALUES ('direct')")
	require.NoError(t, err)
	require.NoError(t, release())
	require.NoError(t, release(), "release is idempotent")
	_, err = db.Exec(t.Context(), "SELECT 1")
	require.ErrorIs(t, err, fiberdb.ErrConnReleased)

	app := todoApp(e)
	status, body := get(t, app, "acme.test", "/todos/count")
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "1", body, "a request sees what test code wrote in isolation")

	_, err = e.TestIsolation(t.Context())
	require.ErrorIs(t, err, fiberdb.ErrIsolationActive)

	require.NoError(t, rollback())
	require.Equal(t, 0, count(t, e, "acme", "SELECT count(*) FROM todo"))
}

func TestAcquireOutsideIsolation(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE todo (title text)")
	db, release, err := e.Acquire(t.Context(), "default")
	require.NoError(t, err)
	tx, err := db.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "INSERT INTO todo VALUES ('x')")
	require.NoError(t, err)
	require.NoError(t, release(), "release rolls back the open transaction")
	require.Equal(t, 0, count(t, e, "default", "SELECT count(*) FROM todo"))

	_, _, err = e.Acquire(t.Context(), "nope")
	require.ErrorIs(t, err, fiberdb.ErrEngineNotDefined)
}

func TestCloseEndsIsolation(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, nil, "default"))
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	_, err = e.TestIsolation(context.Background())
	require.NoError(t, err)
	closeWithin(t, e) // would block on the pinned connection otherwise
}

// Regression (review): under isolation, a request that left rows unread left
// the pinned connection busy, so every later request and the rollback failed.
func TestIsolationUnreadRowsDoNotBreakTheTest(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")
	isolate(t, e)
	app := todoApp(e)
	var leftOpen pgx.Rows
	app.Get("/unread", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		leftOpen, err = db.Query(c.UserContext(), "SELECT generate_series(1, 1000)") //nolint:rowserrcheck,sqlclosecheck // left unread on purpose
		return err
	})
	var unscanned pgx.Row
	app.Get("/unscanned", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		unscanned = db.QueryRow(c.UserContext(), "SELECT generate_series(1, 1000)")
		return nil
	})
	for i, path := range []string{"/unread", "/unscanned"} {
		status, body := get(t, app, "default.test", path)
		require.Equal(t, fiber.StatusOK, status, body)
		status, _ = fiberdbtest.Do(t, app, request(fiber.MethodPost, "default.test", "/todos?title=after"))
		require.Equal(t, fiber.StatusOK, status, "%s: the pinned connection is usable again", path)
		require.Equal(t, strconv.Itoa(i+1), todoCount(t, app), path)
	}
	require.False(t, leftOpen.Next(), "the rows ended with their request")
	require.ErrorIs(t, unscanned.Scan(new(int)), fiberdb.ErrConnReleased, "the row ended with its request")
}

// Regression (review): rolling back while a lease held the pinned connection
// gave up after a while and leaked that connection, so Close hung, and a
// second rollback reported success.
func TestIsolationRollbackWhileLeaseHeld(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, nil, "default"))
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	exec(t, e, "default", "CREATE TABLE todo (title text)")
	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)

	db, release, err := e.Acquire(t.Context(), "default")
	require.NoError(t, err)
	_, err = db.Exec(t.Context(), "INSERT INTO todo VALUES ('held')")
	require.NoError(t, err)

	err = rollback() // waits its bounded while for the lease, then leaves the closing to it
	require.Error(t, err)
	require.Equal(t, err, rollback(), "a second rollback reports the first one's outcome")

	require.NoError(t, release()) // ends the lease, which rolls back and releases the pin
	fiberdbtest.NoLeaks(t, e)
	closeWithin(t, e)
	require.Zero(t, countAfterClose(t, conf), "the held lease's write was rolled back")
}

// countAfterClose counts todo rows through a fresh pool, as e is closed.
func countAfterClose(t *testing.T, conf *config.Config) int {
	t.Helper()
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	defer e.Close()
	return count(t, e, "default", "SELECT count(*) FROM todo")
}

// Regression (issue 12): a second TestIsolation while one is active blocked,
// waiting for a connection of a pool the first one holds. It must answer
// ErrIsolationActive at once: here its context is already cancelled, so any
// wait would fail with context.Canceled instead.
func TestIsolationActiveAnswersAtOnce(t *testing.T) {
	t.Parallel()
	e := openConf(t, loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default", "acme")))
	isolate(t, e)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.TestIsolation(ctx)
	require.ErrorIs(t, err, fiberdb.ErrIsolationActive)
	require.NotErrorIs(t, err, context.Canceled)
}

// Of two TestIsolation calls racing, exactly one wins; after its rollback,
// isolation can start again.
func TestIsolationConcurrentCalls(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	var (
		wg        sync.WaitGroup
		errs      [2]error
		rollbacks [2]func() error
	)
	for i := range 2 {
		wg.Go(func() { rollbacks[i], errs[i] = e.TestIsolation(t.Context()) })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
			require.NoError(t, rollbacks[i]())
		} else {
			require.ErrorIs(t, err, fiberdb.ErrIsolationActive)
		}
	}
	require.Equal(t, 1, won)
	isolate(t, e)
}

// A handler's batch that begins its own transaction (Batch.BeginTx) failed
// under test isolation: pgx refuses one inside a transaction, and every
// lease there is a savepoint. It now runs in a nested savepoint, committed
// or rolled back through br.Tx() as on a pool, and the results the handler
// queued line up as they would there.
func TestIsolationBatchBeginTx(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE items (name text)")
	isolate(t, e)
	app := newApp(fiberdb.Config{Engines: e})
	app.Post("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		b.Queue("INSERT INTO items VALUES ($1)", c.Query("name"))
		b.Queue("SELECT count(*) FROM items")
		br := db.SendBatch(c.UserContext(), b)
		if _, err := br.Exec(); err != nil { // BEGIN
			return errors.Join(err, br.Close())
		}
		if _, err := br.Exec(); err != nil { // INSERT
			return errors.Join(err, br.Close())
		}
		var n int
		if err := br.QueryRow().Scan(&n); err != nil {
			return errors.Join(err, br.Close())
		}
		if err := br.Close(); err != nil {
			return err
		}
		if c.Query("commit") != "" {
			if err := br.Tx().Commit(c.UserContext()); err != nil {
				return err
			}
		}
		return c.SendString(strconv.Itoa(n)) // left open without commit: the release rolls it back
	})
	for _, tc := range []struct{ query, want string }{
		{"?name=a&commit=1", "1"},
		{"?name=b", "2"},          // sees its own insert, never committed
		{"?name=c&commit=1", "2"}, // b was rolled back at its request's end
	} {
		s := serve(app, request(fiber.MethodPost, "default.test", "/"+tc.query))
		require.NoError(t, s.err)
		require.Equal(t, fiber.StatusOK, s.status, s.body)
		require.Equal(t, tc.want, s.body, tc.query)
	}
	db, release, err := e.Acquire(t.Context(), "default") // a savepoint on the pin; the bare pool (count) is outside the isolation
	require.NoError(t, err)
	n, err := scalar[int](t.Context(), db, "SELECT count(*) FROM items")
	require.NoError(t, err)
	require.NoError(t, release())
	require.Equal(t, 2, n, "a and c, within the isolation")
}
