package fiberdbtest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

func TestPostgresLifecycle(t *testing.T) {
	t.Parallel()
	fiberdbtest.Server(t) // fails under CI=true, skips elsewhere, when there is no PostgreSQL
	ctx := t.Context()
	pg, err := fiberdbtest.StartPostgres(ctx)
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

func TestTemplateAndDatabase(t *testing.T) {
	t.Parallel()
	var setups int
	var mu sync.Mutex
	setup := func(ctx context.Context, conn *pgx.Conn) error {
		mu.Lock()
		setups++
		mu.Unlock()
		_, err := conn.Exec(ctx, `CREATE TABLE todo (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text);
			INSERT INTO todo (title) VALUES ('from template')`)
		return err
	}
	// Templates live as long as the test binary: a name of this run's own
	// keeps -count=N runs from sharing one.
	name := fmt.Sprintf("fiberdbtest_tpl_%d", time.Now().UnixNano())
	tpl := fiberdbtest.Template(t, name, setup)
	require.Equal(t, tpl, fiberdbtest.Template(t, name, setup))

	a := fiberdbtest.Database(t, fiberdbtest.DatabaseOptions{Template: tpl})
	b := fiberdbtest.Database(t, fiberdbtest.DatabaseOptions{Template: tpl})
	require.NotEqual(t, a, b)
	ctx := t.Context()
	ca, err := pgx.Connect(ctx, a)
	require.NoError(t, err)
	defer func() { require.NoError(t, ca.Close(ctx)) }()
	cb, err := pgx.Connect(ctx, b)
	require.NoError(t, err)
	defer func() { require.NoError(t, cb.Close(ctx)) }()

	_, err = ca.Exec(ctx, "INSERT INTO todo (title) VALUES ('only in a')")
	require.NoError(t, err)
	var na, nb int
	require.NoError(t, ca.QueryRow(ctx, "SELECT count(*) FROM todo").Scan(&na))
	require.NoError(t, cb.QueryRow(ctx, "SELECT count(*) FROM todo").Scan(&nb))
	require.Equal(t, 2, na)
	require.Equal(t, 1, nb, "databases copied from one template are independent")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, setups, "setup runs once per template")
}

func TestRequestBuilders(t *testing.T) {
	t.Parallel()
	app := fiber.New()
	app.Post("/echo", func(c *fiber.Ctx) error {
		return c.SendString(c.Hostname() + " " + c.Get("X-Tenant") + " " + string(c.Body()))
	})
	status, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodPost, "acme.localhost", "/echo", strings.NewReader("hi")))
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "acme.localhost  hi", body)
	status, body = fiberdbtest.Do(t, app, fiberdbtest.HeaderRequest(fiber.MethodPost, "X-Tenant", "globex", "/echo", nil))
	require.Equal(t, fiber.StatusOK, status)
	require.Equal(t, "localhost globex ", body)
}

// isolated is one database, with an app on it, that outlives the subtests
// of TestIsolationAcrossTests.
var isolated struct {
	once    sync.Once
	engines *fiberdb.Engines
	app     *fiber.App
	err     error
}

func isolatedApp(t *testing.T) (*fiberdb.Engines, *fiber.App) {
	t.Helper()
	pg := fiberdbtest.Server(t)
	isolated.once.Do(func() {
		ctx := context.Background()
		if isolated.err = pg.CreateDatabase(ctx, "fiberdbtest_isolation", ""); isolated.err != nil {
			return
		}
		k := koanf.New(".")
		if isolated.err = k.Load(confmap.Provider(map[string]any{
			"SQLALCHEMY_ENGINES": map[string]any{"default": pg.ConnString("fiberdbtest_isolation")},
		}, ""), nil); isolated.err != nil {
			return
		}
		conf, err := config.Load(k)
		if err != nil {
			isolated.err = err
			return
		}
		e, err := fiberdb.Open(ctx, conf)
		if err != nil {
			isolated.err = err
			return
		}
		pool, _ := e.Default() //nolint:errcheck // "default" is configured just above
		if _, isolated.err = pool.Exec(ctx, "CREATE TABLE todo (title text)"); isolated.err != nil {
			return
		}
		app := fiber.New()
		app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
		app.Post("/todos", func(c *fiber.Ctx) error {
			db, err := fiberdb.Conn(c)
			if err != nil {
				return err
			}
			tx, err := db.Begin(c.UserContext())
			if err != nil {
				return err
			}
			if _, err := tx.Exec(c.UserContext(), "INSERT INTO todo VALUES ($1)", c.Query("title")); err != nil {
				return err
			}
			return tx.Commit(c.UserContext())
		})
		app.Get("/todos/count", func(c *fiber.Ctx) error {
			db, err := fiberdb.Conn(c)
			if err != nil {
				return err
			}
			var n int
			if err := db.QueryRow(c.UserContext(), "SELECT count(*) FROM todo").Scan(&n); err != nil {
				return err
			}
			return c.JSON(n)
		})
		isolated.engines, isolated.app = e, app
	})
	require.NoError(t, isolated.err)
	return isolated.engines, isolated.app
}

func isolate(t *testing.T, e *fiberdb.Engines) {
	t.Helper()
	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, rollback())
		fiberdbtest.NoLeaks(t, e)
	})
}

// TestIsolationAcrossTests: a handler commits inside one test's isolation,
// and the next test does not see the row. They are subtests so that their
// order holds under -shuffle.
func TestIsolationAcrossTests(t *testing.T) { //nolint:paralleltest // the subtests share one database in order
	e, app := isolatedApp(t)
	t.Run("handler commits", func(t *testing.T) {
		isolate(t, e)
		status, _ := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodPost, "localhost", "/todos?title=committed", nil))
		require.Equal(t, fiber.StatusOK, status)
		_, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodGet, "localhost", "/todos/count", nil))
		require.Equal(t, "1", body, "the commit is visible within the test")
	})
	t.Run("next test does not see it", func(t *testing.T) {
		isolate(t, e)
		_, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodGet, "localhost", "/todos/count", nil))
		require.Equal(t, "0", body, "the previous test's committed row was rolled back")
	})
}
