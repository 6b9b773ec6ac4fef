package fiberdb_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/tenancy"
)

func TestNewPanicsWithoutEngines(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "fiberdb: New requires Config.Engines", func() { fiberdb.New() })
	require.PanicsWithValue(t, "fiberdb: New requires Config.Engines", func() { fiberdb.New(fiberdb.Config{}) })
}

func TestRouteWithoutConnAcquiresNothing(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString(fiberdb.Tenant(c)) })

	status, body := get(t, app, "acme.test", "/")
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "acme", body)
	for _, name := range e.Names() {
		pool, err := e.Engine(name)
		require.NoError(t, err)
		require.Zero(t, pool.Stat().AcquireCount(), name)
	}
}

func TestConnIsLazyAndStable(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	app := newApp(fiberdb.Config{Engines: e})

	type seen struct {
		sameConn, sameAsConnFor, landlordDiffers, landlordStable bool
		pidTenant, pidAgain, pidLandlord                         int32
		dbTenant, dbLandlord                                     string
		errs                                                     []error
	}
	var got seen
	app.Get("/", func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		a, err1 := fiberdb.Conn(c)
		b, err2 := fiberdb.Conn(c)
		viaName, err3 := fiberdb.ConnFor(c, fiberdb.Tenant(c))
		land, err4 := fiberdb.ConnFor(c, "default")
		land2, err5 := fiberdb.ConnFor(c, "default")
		got.errs = []error{err1, err2, err3, err4, err5}
		if errors.Join(got.errs...) != nil {
			return errors.Join(got.errs...)
		}
		got.sameConn, got.sameAsConnFor = a == b, a == viaName
		got.landlordDiffers, got.landlordStable = a != land, land == land2
		var errs [5]error
		got.pidTenant, errs[0] = scalar[int32](ctx, a, "SELECT pg_backend_pid()")
		got.pidAgain, errs[1] = scalar[int32](ctx, b, "SELECT pg_backend_pid()")
		got.pidLandlord, errs[2] = scalar[int32](ctx, land, "SELECT pg_backend_pid()")
		got.dbTenant, errs[3] = scalar[string](ctx, a, "SELECT current_database()")
		got.dbLandlord, errs[4] = scalar[string](ctx, land, "SELECT current_database()")
		if err := errors.Join(errs[:]...); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	})

	status, _ := get(t, app, "acme.test", "/")
	require.Equal(t, fiber.StatusNoContent, status)
	require.True(t, got.sameConn, "Conn returns the same connection on repeat")
	require.True(t, got.sameAsConnFor, "ConnFor(c, Tenant(c)) is Conn(c)")
	require.True(t, got.landlordDiffers)
	require.True(t, got.landlordStable)
	require.Equal(t, got.pidTenant, got.pidAgain)
	require.NotEqual(t, got.pidTenant, got.pidLandlord)
	require.NotEqual(t, got.dbTenant, got.dbLandlord, "each engine is its own database")

	acme, err := e.Engine("acme")
	require.NoError(t, err)
	require.EqualValues(t, 1, acme.Stat().AcquireCount(), "one acquire for three calls")
}

func TestResolverRunsOncePerRequest(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	var calls atomic.Int32
	inner := tenancy.FromConfig(e.Config())
	app := newApp(fiberdb.Config{Engines: e, Resolver: func(c *fiber.Ctx) (string, error) {
		calls.Add(1)
		return inner(c)
	}})
	app.Get("/", func(c *fiber.Ctx) error {
		for range 3 {
			if _, err := fiberdb.Conn(c); err != nil {
				return err
			}
			_ = fiberdb.Tenant(c)
		}
		return nil
	})
	status, _ := get(t, app, "acme.test", "/")
	require.Equal(t, fiber.StatusOK, status)
	require.EqualValues(t, 1, calls.Load())
}

//nolint:tparallel // the group waits for its parallel rows before the final check
func TestResolutionFailuresStopTheRequest(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	var handlerRan atomic.Bool
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(*fiber.Ctx) error { handlerRan.Store(true); return nil })

	tests := []struct {
		name   string
		host   string
		status int
		body   string
	}{
		{"unknown host", "evil.test", fiber.StatusNotFound, "unknown tenant"},
		{"malformed host", "bad%host", fiber.StatusBadRequest, "malformed tenant"},
	}
	t.Run("requests", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				status, body := get(t, app, tt.host, "/")
				require.Equal(t, tt.status, status)
				require.Equal(t, tt.body, body)
			})
		}
	})
	require.False(t, handlerRan.Load(), "no route handler runs when resolution fails")
}

func TestResolverNamingUnknownEngineIs404(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	app := newApp(fiberdb.Config{Engines: e, Resolver: tenancy.Fixed("nope")})
	app.Get("/", func(*fiber.Ctx) error { return nil })
	status, _ := get(t, app, "x.test", "/")
	require.Equal(t, fiber.StatusNotFound, status)
}

func TestTenantIsTheConfigsString(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	// A resolver that returns a string built from the request, as a careless
	// custom resolver might: Tenant must still hand out the config's copy.
	app := newApp(fiberdb.Config{Engines: e, Resolver: func(c *fiber.Ctx) (string, error) {
		return c.Get("X-Engine"), nil
	}})
	var tenant string
	app.Get("/", func(c *fiber.Ctx) error { tenant = fiberdb.Tenant(c); return nil })
	req := request(fiber.MethodGet, "x.test", "/")
	req.Header.Set("X-Engine", "acme")
	status, _ := fiberdbtest.Do(t, app, req)
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "acme", tenant)
	require.Equal(t, e.Config().Engines["acme"].Name, tenant)
}

//nolint:tparallel // the subtests share the handler's recorded errors
func TestConnOutsideMiddleware(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{Engines: e, Next: func(c *fiber.Ctx) bool { return c.Path() == "/skipped" }}))
	var errs [3]error
	var tenant string
	record := func(c *fiber.Ctx) error {
		_, errs[0] = fiberdb.Conn(c)
		_, errs[1] = fiberdb.ConnFor(c, "default")
		tenant = fiberdb.Tenant(c)
		return nil
	}
	app.Get("/skipped", record)
	bare := fiber.New()
	bare.Get("/", record)

	for name, tc := range map[string]struct {
		app  *fiber.App
		path string
	}{"skipped by Next": {app, "/skipped"}, "never registered": {bare, "/"}} {
		t.Run(name, func(t *testing.T) {
			errs = [3]error{}
			status, _ := get(t, tc.app, "x.test", tc.path)
			require.Equal(t, fiber.StatusOK, status)
			require.ErrorIs(t, errs[0], fiberdb.ErrNotRegistered)
			require.ErrorIs(t, errs[1], fiberdb.ErrNotRegistered)
			require.Empty(t, tenant)
		})
	}
}

func TestConnForUndefinedEngine(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	app := newApp(fiberdb.Config{Engines: e})
	var err error
	app.Get("/", func(c *fiber.Ctx) error { _, err = fiberdb.ConnFor(c, "nope"); return nil })
	status, _ := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusOK, status)
	require.ErrorIs(t, err, fiberdb.ErrEngineNotDefined)
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["nope"]' was not defined.`)
}

// A handler that names an engine never configured has a bug: the request
// answers the app's 500, not a 404 that would pass for the client's mistake.
func TestConnForUndefinedEngineIsNotA404(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(c *fiber.Ctx) error { _, err := fiberdb.ConnFor(c, "nope"); return err })
	status, _ := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusInternalServerError, status)
}

// TestReleaseOnEveryPath drives each way a handler can end, with and
// without a transaction left open, and checks that the connection came back,
// the transaction was rolled back, and nothing is left in Locals.
//
//nolint:tparallel // the subtests share the probe middleware's record
func TestReleaseOnEveryPath(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	exec(t, e, "acme", "CREATE TABLE items (name text)")

	var afterNext struct {
		connErr  error
		tenant   string
		panicked bool
	}
	app := fiber.New()
	app.Use(func(c *fiber.Ctx) error {
		// Runs after fiberdb's release on every path, a panic included: the
		// request state must be gone by then.
		defer func() {
			afterNext.panicked = recover() != nil
			_, afterNext.connErr = fiberdb.Conn(c)
			afterNext.tenant = fiberdb.Tenant(c)
		}()
		return c.Next()
	})
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))

	insert := func(c *fiber.Ctx, tx bool, rawBegin bool) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		switch {
		case tx:
			t, beginErr := db.Begin(ctx)
			if beginErr != nil {
				return beginErr
			}
			_, err = t.Exec(ctx, "INSERT INTO items VALUES ($1)", c.Path())
			return err
		case rawBegin:
			if _, err = db.Exec(ctx, "BEGIN"); err != nil {
				return err
			}
		}
		_, err = db.Exec(ctx, "INSERT INTO items VALUES ($1)", c.Path())
		return err
	}
	app.Get("/ok", func(c *fiber.Ctx) error { return insert(c, false, false) })
	app.Get("/ok-tx", func(c *fiber.Ctx) error { return insert(c, true, false) })
	app.Get("/ok-raw-begin", func(c *fiber.Ctx) error { return insert(c, false, true) })
	app.Get("/error-tx", func(c *fiber.Ctx) error {
		if err := insert(c, true, false); err != nil {
			return err
		}
		return fiber.NewError(fiber.StatusTeapot, "handler error")
	})
	app.Get("/panic-tx", func(c *fiber.Ctx) error {
		if err := insert(c, true, false); err != nil {
			return err
		}
		panic("handler panic")
	})
	app.Get("/failed-tx", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		tx, err := db.Begin(c.UserContext())
		if err != nil {
			return err
		}
		_, err = tx.Exec(c.UserContext(), "SELECT 1/0") // leaves the transaction aborted
		return err
	})
	app.Get("/committed", func(c *fiber.Ctx) (err error) {
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
		if _, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1)", c.Path()); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})

	acme, err := e.Engine("acme")
	require.NoError(t, err)
	tests := []struct {
		path   string
		status int
		kept   bool // the row outlives the request
	}{
		{"/ok", fiber.StatusOK, true},
		{"/ok-tx", fiber.StatusOK, false},
		{"/ok-raw-begin", fiber.StatusOK, false},
		{"/error-tx", fiber.StatusTeapot, false},
		{"/panic-tx", fiber.StatusOK, false}, // the outer recover swallowed it
		{"/failed-tx", fiber.StatusInternalServerError, false},
		{"/committed", fiber.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			afterNext.connErr, afterNext.tenant = nil, "unset"
			status, _ := get(t, app, "acme.test", tt.path)
			require.Equal(t, tt.status, status)
			require.Equal(t, tt.path == "/panic-tx", afterNext.panicked)
			fiberdbtest.NoLeaks(t, e) // polls: a destroyed connection counts until it has closed
			require.ErrorIs(t, afterNext.connErr, fiberdb.ErrNotRegistered, "Locals entry removed")
			require.Empty(t, afterNext.tenant)
			want := 0
			if tt.kept {
				want = 1
			}
			require.Equal(t, want, count(t, e, "acme", "SELECT count(*) FROM items WHERE name = $1", tt.path))
		})
	}
	// Every rollback left its connection reusable: none was destroyed.
	require.EqualValues(t, 1, acme.Stat().NewConnsCount(), "a rolled-back connection is reused, not replaced")
}

func TestPanicWithRecoverMiddleware(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	exec(t, e, "default", "CREATE TABLE items (name text)")
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		tx, err := db.Begin(c.UserContext())
		if err != nil {
			return err
		}
		if _, err := tx.Exec(c.UserContext(), "INSERT INTO items VALUES ('x')"); err != nil {
			return err
		}
		panic("boom")
	})
	status, _ := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusInternalServerError, status)
	require.Zero(t, count(t, e, "default", "SELECT count(*) FROM items"))
}

// States are pooled, so a later request usually holds the very lease (and,
// with one pooled connection, the very server connection) a kept handle
// points to. The kept handle must still answer ErrConnReleased, and must not
// disturb the request that holds them now. (The first request leaves its row
// unscanned, so its server connection is destroyed; the later ones share one.)
func TestKeptHandleCannotReachALaterRequest(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default"))
	e := openConf(t, conf)
	app := newApp(fiberdb.Config{Engines: e})
	var (
		kept    fiberdb.DBTX
		keptRow pgx.Row
		served  int
	)
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		err = db.QueryRow(c.UserContext(), "SELECT 1").Scan(new(int))
		if err != nil {
			return err
		}
		served++
		if kept == nil {
			kept, keptRow = db, db.QueryRow(c.UserContext(), "SELECT 1")
			return nil
		}
		ctx := c.UserContext()
		if _, err = kept.Exec(ctx, "SELECT 1"); !errors.Is(err, fiberdb.ErrConnReleased) {
			return fmt.Errorf("kept Exec: %w", err)
		}
		if err = keptRow.Scan(new(int)); !errors.Is(err, fiberdb.ErrConnReleased) {
			return fmt.Errorf("kept row: %w", err)
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := kept.Begin(ctx); !errors.Is(err, fiberdb.ErrConnReleased) {
			return fmt.Errorf("kept Begin: %w", err)
		}
		return tx.Commit(ctx) // this request's own transaction was untouched
	})
	for range 5 {
		status, body := get(t, app, "default.test", "/")
		require.Equal(t, fiber.StatusOK, status, body)
	}
	pool, err := e.Default()
	require.NoError(t, err)
	require.Zero(t, pool.Stat().AcquiredConns())
	require.Equal(t, 5, served)
}

func TestUseAfterRelease(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	app := newApp(fiberdb.Config{Engines: e})
	var kept fiberdb.DBTX
	var keptTx pgx.Tx
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		kept = db
		keptTx, err = db.Begin(c.UserContext())
		return err
	})
	status, _ := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusOK, status)
	require.NotNil(t, kept)

	ctx := t.Context()
	_, err := kept.Exec(ctx, "SELECT 1")
	require.ErrorIs(t, err, fiberdb.ErrConnReleased)
	rows, err := kept.Query(ctx, "SELECT 1") //nolint:rowserrcheck,sqlclosecheck // there are no rows: asserted nil below
	require.Nil(t, rows)
	require.ErrorIs(t, err, fiberdb.ErrConnReleased)
	require.ErrorIs(t, kept.QueryRow(ctx, "SELECT 1").Scan(new(int)), fiberdb.ErrConnReleased)
	_, err = kept.Begin(ctx)
	require.ErrorIs(t, err, fiberdb.ErrConnReleased)
	_, err = kept.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"a"}, pgx.CopyFromRows(nil))
	require.ErrorIs(t, err, fiberdb.ErrConnReleased)
	br := kept.SendBatch(ctx, &pgx.Batch{})
	_, err = br.Exec()
	require.ErrorIs(t, err, fiberdb.ErrConnReleased)
	require.ErrorIs(t, br.Close(), fiberdb.ErrConnReleased)
	// The transaction the handler left open was rolled back, so it is closed.
	_, err = keptTx.Exec(ctx, "SELECT 1")
	require.ErrorIs(t, err, pgx.ErrTxClosed)
}

func TestStreamWriterGetsErrConnReleased(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	released := make(chan struct{})
	app := fiber.New()
	app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		close(released) // fiberdb, registered after this, has released by now
		return err
	})
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	streamErr := make(chan error, 1)
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		// fasthttp starts the writer at once, on its own goroutine, and reads
		// it while writing the response: it can outlive the release.
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			<-released
			_, err := db.Exec(context.Background(), "SELECT 1")
			if _, werr := w.WriteString("done"); werr != nil {
				err = errors.Join(err, werr)
			}
			streamErr <- err
		})
		return nil
	})
	status, body := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "done", body)
	require.ErrorIs(t, <-streamErr, fiberdb.ErrConnReleased)
}

func TestExhaustedPoolAnswers503(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default"))
	e := openConf(t, conf)
	pool, err := e.Default()
	require.NoError(t, err)
	held, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	defer held.Release()

	app := newApp(fiberdb.Config{Engines: e, AcquireTimeout: 100 * time.Millisecond})
	var connErr error
	app.Get("/", func(c *fiber.Ctx) error {
		_, connErr = fiberdb.Conn(c)
		return connErr
	})
	status, body := get(t, app, "default.test", "/")
	require.Equal(t, fiber.StatusServiceUnavailable, status)
	require.Equal(t, "database unavailable", body)
	require.ErrorIs(t, connErr, fiberdb.ErrUnavailable)
	var acqErr *fiberdb.AcquireError
	require.ErrorAs(t, connErr, &acqErr)
	require.Equal(t, "default", acqErr.Engine)
	require.EqualValues(t, 1, pool.Stat().CanceledAcquireCount(), "the acquire gave up at its deadline")
}

func TestUnreachableServerAnswers503(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: the connect fails, fast.
	conf := loadConf(t, map[string]any{"default": "postgres://u@127.0.0.1:1/x?sslmode=disable"})
	e := openConf(t, conf)
	app := newApp(fiberdb.Config{Engines: e, AcquireTimeout: time.Second})
	var connErr error
	app.Get("/", func(c *fiber.Ctx) error { _, connErr = fiberdb.Conn(c); return connErr })
	status, _ := get(t, app, "x.test", "/")
	require.Equal(t, fiber.StatusServiceUnavailable, status)
	require.ErrorIs(t, connErr, fiberdb.ErrUnavailable)
}

func TestCustomErrorHandler(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	var seen []error
	app := newApp(fiberdb.Config{Engines: e, ErrorHandler: func(c *fiber.Ctx, err error) error {
		seen = append(seen, err)
		_, connErr := fiberdb.Conn(c)
		seen = append(seen, connErr)
		return c.Status(fiber.StatusTeapot).JSON(fiber.Map{"error": "no tenant here"})
	}})
	app.Get("/", func(*fiber.Ctx) error { return nil })
	status, body := get(t, app, "nobody.test", "/")
	require.Equal(t, fiber.StatusTeapot, status)
	require.JSONEq(t, `{"error":"no tenant here"}`, body)
	require.Len(t, seen, 2)
	require.ErrorIs(t, seen[0], tenancy.ErrUnknownTenant)
	require.ErrorIs(t, seen[1], fiberdb.ErrNotRegistered, "the ErrorHandler cannot use a request conn")
}

func TestAuthorizeRefuses(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme", "globex")
	app := newApp(fiberdb.Config{
		Engines:  e,
		Resolver: tenancy.ByHeader("X-Tenant", []string{"acme", "globex"}),
		Authorize: func(c *fiber.Ctx, engine string) error {
			if c.Get("X-User-Tenant") != engine {
				return errors.New("principal does not belong to tenant")
			}
			return nil
		},
	})
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString(fiberdb.Tenant(c)) })
	for _, tt := range []struct {
		name, header, user string
		status             int
	}{
		{"principal matches", "acme", "acme", fiber.StatusOK},
		{"principal of another tenant", "acme", "globex", fiber.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request(fiber.MethodGet, "x.test", "/")
			req.Header.Set("X-Tenant", tt.header)
			req.Header.Set("X-User-Tenant", tt.user)
			status, _ := fiberdbtest.Do(t, app, req)
			require.Equal(t, tt.status, status)
		})
	}
}

func TestNestedMiddlewareKeepsOuterState(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	var outerTenant string
	app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		outerTenant = fiberdb.Tenant(c)
		return err
	})
	app.Use(fiberdb.New(fiberdb.Config{Engines: e, Resolver: tenancy.Fixed("default")}))
	var innerTenant string
	app.Get("/", func(c *fiber.Ctx) error { innerTenant = fiberdb.Tenant(c); return nil })
	status, _ := get(t, app, "acme.test", "/")
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "default", innerTenant)
	require.Equal(t, "acme", outerTenant)
}
