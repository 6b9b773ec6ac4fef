package fiberdbtest_test

import (
	"context"
	"fmt"
	"net/http"
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
	"github.com/fiberdb/fiberdb/pgserver"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

// TestAliases: fiberdbtest's server API is pgserver's under its old names.
func TestAliases(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, fiberdbtest.ErrNoPostgres, pgserver.ErrNoBinaries)
	pg, err := fiberdbtest.ConnectPostgres("postgres://u@127.0.0.1:1/x")
	require.NoError(t, err)
	require.IsType(t, (*pgserver.Server)(nil), pg)
	_, err = fiberdbtest.StartPostgres(t.Context(), fiberdbtest.PostgresOptions{BinDir: t.TempDir()})
	require.Error(t, err, "an empty bin dir holds no initdb")
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

// TestRequestBodyParser: a body gets a Content-Type BodyParser understands
// (issue 13: a POST to a BodyParser handler answered 422).
func TestRequestBodyParser(t *testing.T) {
	t.Parallel()
	type todo struct {
		Title string `json:"title" form:"title"`
	}
	app := fiber.New()
	app.Post("/todos", func(c *fiber.Ctx) error {
		var in todo
		if err := c.BodyParser(&in); err != nil {
			return err
		}
		return c.SendString(string(c.Request().Header.ContentType()) + " " + in.Title)
	})
	for _, tc := range []struct{ name, body, want string }{
		{"json object", `{"title":"Buy milk"}`, "application/json Buy milk"},
		{"form", "title=Buy+milk", "application/x-www-form-urlencoded Buy milk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, req := range []*http.Request{
				fiberdbtest.HostRequest(fiber.MethodPost, "acme.localhost", "/todos", strings.NewReader(tc.body)),
				fiberdbtest.HeaderRequest(fiber.MethodPost, "X-Tenant", "acme", "/todos", strings.NewReader(tc.body)),
			} {
				status, body := fiberdbtest.Do(t, app, req)
				require.Equal(t, fiber.StatusOK, status, body)
				require.Equal(t, tc.want, body)
			}
		})
	}
	t.Run("plain text is not parsed", func(t *testing.T) {
		t.Parallel()
		req := fiberdbtest.HostRequest(fiber.MethodPost, "acme.localhost", "/todos", strings.NewReader("Buy milk"))
		require.Equal(t, fiber.MIMETextPlainCharsetUTF8, req.Header.Get(fiber.HeaderContentType))
	})
	t.Run("the caller's type wins", func(t *testing.T) {
		t.Parallel()
		req := fiberdbtest.HostRequest(fiber.MethodPost, "acme.localhost", "/todos", strings.NewReader(`{"title":"x"}`))
		req.Header.Set(fiber.HeaderContentType, fiber.MIMETextPlain)
		status, _ := fiberdbtest.Do(t, app, req)
		require.Equal(t, fiber.StatusUnprocessableEntity, status, "BodyParser does not read text/plain")
	})
	t.Run("no body, no type", func(t *testing.T) {
		t.Parallel()
		req := fiberdbtest.HostRequest(fiber.MethodGet, "acme.localhost", "/todos", nil)
		require.Empty(t, req.Header.Get(fiber.HeaderContentType))
	})
}

// isolatedApp opens an app on a database of its own, with a todo table.
func isolatedApp(t *testing.T) (*fiberdb.Engines, *fiber.App) {
	t.Helper()
	dsn := fiberdbtest.Database(t)
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(map[string]any{
		"SQLALCHEMY_ENGINES": map[string]any{"default": dsn},
	}, ""), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	e := fiberdbtest.Open(t, conf)
	pool, err := e.Default()
	require.NoError(t, err)
	_, err = pool.Exec(t.Context(), "CREATE TABLE todo (title text)")
	require.NoError(t, err)
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
	return e, app
}

// TestIsolationAcrossTests: a handler commits inside one test's isolation,
// and the next test does not see the row. They are subtests so that their
// order holds under -shuffle.
func TestIsolationAcrossTests(t *testing.T) { //nolint:paralleltest // the subtests share one database in order
	e, app := isolatedApp(t)
	t.Run("handler commits", func(t *testing.T) {
		t.Cleanup(func() { fiberdbtest.NoLeaks(t, e) }) // runs after the rollback
		fiberdbtest.Isolate(t, e)
		status, _ := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodPost, "localhost", "/todos?title=committed", nil))
		require.Equal(t, fiber.StatusOK, status)
		_, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodGet, "localhost", "/todos/count", nil))
		require.Equal(t, "1", body, "the commit is visible within the test")
	})
	t.Run("next test does not see it", func(t *testing.T) {
		t.Cleanup(func() { fiberdbtest.NoLeaks(t, e) }) // runs after the rollback
		fiberdbtest.Isolate(t, e)
		_, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodGet, "localhost", "/todos/count", nil))
		require.Equal(t, "0", body, "the previous test's committed row was rolled back")
	})
}
