package fiberdb_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// engineMaps gives each named engine a fresh database and host
// "<name>.test"; extra options are merged into every engine's map.
func engineMaps(t *testing.T, extra map[string]any, names ...string) map[string]any {
	t.Helper()
	engines := map[string]any{}
	for _, name := range names {
		e := map[string]any{"url": fiberdbtest.Database(t), "hosts": []any{name + ".test"}}
		for k, v := range extra {
			e[k] = v
		}
		engines[name] = e
	}
	return engines
}

func confKoanf(t *testing.T, engines map[string]any, settings ...map[string]any) *koanf.Koanf {
	t.Helper()
	k := koanf.New(".")
	m := map[string]any{config.DefaultKey: engines}
	if len(settings) > 0 && settings[0] != nil {
		m[config.DefaultSettingsKey] = settings[0]
	}
	require.NoError(t, k.Load(confmap.Provider(m, ""), nil))
	return k
}

func loadConf(t *testing.T, engines map[string]any) *config.Config {
	t.Helper()
	conf, err := config.Load(confKoanf(t, engines))
	require.NoError(t, err)
	return conf
}

// openConf opens conf and registers, in build order, a Close that fails the
// test rather than hang, and a leak check that runs before it.
func openConf(t *testing.T, conf *config.Config) *fiberdb.Engines {
	t.Helper()
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	t.Cleanup(func() { closeWithin(t, e) })
	t.Cleanup(func() { fiberdbtest.NoLeaks(t, e) })
	return e
}

func openEngines(t *testing.T, names ...string) *fiberdb.Engines {
	t.Helper()
	return openConf(t, loadConf(t, engineMaps(t, nil, names...)))
}

func closeWithin(t *testing.T, e *fiberdb.Engines) {
	t.Helper()
	const d = 10 * time.Second
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("Engines.Close did not return within %s: a connection is still acquired", d)
	}
}

// newApp is a Fiber app with recover before fiberdb, as the README advises.
func newApp(cfg fiberdb.Config) *fiber.App {
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Use(fiberrecover.New())
	app.Use(fiberdb.New(cfg))
	return app
}

func request(method, host, path string) *http.Request {
	req := httptest.NewRequest(method, path, http.NoBody)
	req.Host = host
	return req
}

func get(t *testing.T, app *fiber.App, host, path string) (status int, body string) {
	t.Helper()
	return fiberdbtest.Do(t, app, request(fiber.MethodGet, host, path))
}

// exec runs sql on engine outside any request.
func exec(t *testing.T, e *fiberdb.Engines, engine, sql string) {
	t.Helper()
	pool, err := e.Engine(engine)
	require.NoError(t, err)
	_, err = pool.Exec(t.Context(), sql)
	require.NoError(t, err)
}

func count(t *testing.T, e *fiberdb.Engines, engine, sql string, args ...any) int {
	t.Helper()
	pool, err := e.Engine(engine)
	require.NoError(t, err)
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

func scalar[T any](ctx context.Context, db fiberdb.DBTX, sql string, args ...any) (T, error) {
	var v T
	err := db.QueryRow(ctx, sql, args...).Scan(&v)
	return v, err
}

// dsnOf returns the url engineMaps gave engine.
func dsnOf(t *testing.T, engines map[string]any, engine string) string {
	t.Helper()
	m, ok := engines[engine].(map[string]any)
	require.True(t, ok, engine)
	dsn, ok := m["url"].(string)
	require.True(t, ok, engine)
	return dsn
}

// connScalar runs sql on the request's connection (fiberdb.Conn) and
// returns its one value.
func connScalar[T any](c *fiber.Ctx, sql string) (T, error) {
	db, err := fiberdb.Conn(c)
	if err != nil {
		var zero T
		return zero, err
	}
	return scalar[T](c.UserContext(), db, sql)
}

// sendDatabase is a handler that answers the name of the database its
// request's connection (fiberdb.Conn) is on.
func sendDatabase(c *fiber.Ctx) error {
	name, err := connScalar[string](c, "SELECT current_database()")
	if err != nil {
		return err
	}
	return c.SendString(name)
}
