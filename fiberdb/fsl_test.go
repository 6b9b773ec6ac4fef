package fiberdb_test

// Ports of Flask-SQLAlchemy-Lite's tests/test_engine.py and
// tests/test_session.py (sessions become request connections, binds become
// tenant routing). Ported elsewhere in this package:
//
//	test_default_engine               TestEngineAccessors
//	test_undefined_engine             TestEngineAccessors
//	test_engines_require_app_context  TestConnOutsideMiddleware ("never registered")
//	test_engines_require_init         TestConnOutsideMiddleware
//	test_sessionmaker_require_*       TestConnOutsideMiddleware
//	test_default_session              TestConnIsLazyAndStable
//	test_multiple_sessions            TestConnIsLazyAndStable
//	test_cleanup_sessions             TestReleaseOnEveryPath
//	test_isolation                    TestIsolation
//	test_app_ctx_not_required         TestIsolationAppNotRequired
//	test_abort.py                     TestOneOr404
//
// Not applicable: async engines and sessions (Go has no sync/async split),
// SQLite and MySQL defaults, test_init_twice_fails (a Fiber app has no
// extension registry; two middlewares may share one *Engines), and
// sessionmaker configuration (pgx has no session options).

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestFSLDefaultRequired(t *testing.T) {
	t.Parallel()
	_, err := config.Load(confKoanf(t, map[string]any{}))
	require.ErrorIs(t, err, config.ErrNoEngines)
	require.ErrorContains(t, err, "must be defined")
}

func TestFSLDisableDefaultRequired(t *testing.T) {
	t.Parallel()
	conf, err := config.Load(confKoanf(t, map[string]any{}), config.Options{AllowEmpty: true})
	require.NoError(t, err)
	e := openConf(t, conf)
	require.Empty(t, e.Names())
}

func TestFSLMultipleEngines(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "a")
	require.Len(t, e.Names(), 2)
	a, err := e.Engine("a")
	require.NoError(t, err)
	require.Equal(t, 1, count(t, e, "a", "SELECT 1"))
	require.NotNil(t, a)
}

func TestFSLConfigEngineOptions(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, map[string]any{"pool_max_conns": 3, "pool_max_conn_idle_time": "90s"}, "default")
	e := openConf(t, loadConf(t, engines))
	pool, err := e.Default()
	require.NoError(t, err)
	require.EqualValues(t, 3, pool.Config().MaxConns)
	require.Equal(t, 90*time.Second, pool.Config().MaxConnIdleTime)
}

func TestFSLInitEngineOptions(t *testing.T) {
	t.Parallel()
	k := confKoanf(t, map[string]any{
		"default": map[string]any{"url": fiberdbtest.Database(t), "pool_max_conns": 2},
		"a":       fiberdbtest.Database(t),
	})
	conf, err := config.Load(k, config.Options{EngineDefaults: map[string]any{"pool_max_conns": 7}})
	require.NoError(t, err)
	e := openConf(t, conf)
	a, err := e.Engine("a")
	require.NoError(t, err)
	require.EqualValues(t, 7, a.Config().MaxConns, "init options are the default")
	def, err := e.Default()
	require.NoError(t, err)
	require.EqualValues(t, 2, def.Config().MaxConns, "config overrides init options")
}

func TestFSLURLType(t *testing.T) {
	t.Parallel()
	dsn := fiberdbtest.Database(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	database := strings.TrimPrefix(u.Path, "/")
	forms := map[string]any{
		"string":         dsn,
		"map with url":   map[string]any{"url": dsn},
		"map of url map": map[string]any{"url": map[string]any{"host": u.Hostname(), "port": u.Port(), "user": u.User.Username(), "database": database, "params": map[string]any{"sslmode": "disable"}}},
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := openConf(t, loadConf(t, map[string]any{"default": form}))
			pool, err := e.Default()
			require.NoError(t, err)
			var got string
			require.NoError(t, pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&got))
			require.Equal(t, database, got)
		})
	}
}

func TestFSLNoURL(t *testing.T) {
	t.Parallel()
	_, err := config.Load(confKoanf(t, map[string]any{"default": map[string]any{}}))
	require.ErrorIs(t, err, config.ErrNoURL)
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["default"]["url"]' must be defined.`)
}

func TestFSLSessionmaker(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default")
	db, release, err := e.Acquire(t.Context(), "default")
	require.NoError(t, err)
	n, err := scalar[int](t.Context(), db, "SELECT 1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, release())
}

func TestFSLMultipleApps(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, nil, "default"))
	first := openConf(t, conf)
	second := openConf(t, conf)
	p1, err := first.Default()
	require.NoError(t, err)
	p2, err := second.Default()
	require.NoError(t, err)
	require.NotSame(t, p1, p2, "each Open has its own pools")
}

func TestFSLSessionBind(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, nil, "default", "acme")
	e := openConf(t, loadConf(t, engines))
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", sendDatabase)
	for _, engine := range []string{"default", "acme"} {
		u, err := url.Parse(dsnOf(t, engines, engine))
		require.NoError(t, err)
		status, body := get(t, app, engine+".test", "/")
		require.Equal(t, fiber.StatusOK, status)
		require.Equal(t, strings.TrimPrefix(u.Path, "/"), body, "%s.test is bound to engine %s", engine, engine)
	}
}

func TestFSLSessionBindsInvalidEngine(t *testing.T) {
	t.Parallel()
	k := confKoanf(t, map[string]any{"default": "postgres://u@h/db"}, map[string]any{"tenants": []any{"a"}})
	_, err := config.Load(k)
	require.ErrorIs(t, err, config.ErrUndefinedEngine)
	require.ErrorContains(t, err, `'SQLALCHEMY_ENGINES["a"]' was not defined`)
}
