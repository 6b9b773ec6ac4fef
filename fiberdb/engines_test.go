package fiberdb_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// activity counts server sessions on the databases behind engines, seen
// from a connection of the test's own.
func activity(t *testing.T, engines map[string]any) int {
	t.Helper()
	var dbs []string
	for name := range engines {
		u, err := url.Parse(dsnOf(t, engines, name))
		require.NoError(t, err)
		dbs = append(dbs, strings.TrimPrefix(u.Path, "/"))
	}
	pool, err := pgxpool.New(t.Context(), fiberdbtest.Server(t).URL())
	require.NoError(t, err)
	defer pool.Close()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1)", dbs).Scan(&n))
	return n
}

func TestOpenConnectsNothing(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, nil, "default", "acme", "globex")
	e := openConf(t, loadConf(t, engines))

	require.Zero(t, activity(t, engines), "Open must not connect")
	for _, name := range e.Names() {
		pool, err := e.Engine(name)
		require.NoError(t, err)
		require.Zero(t, pool.Stat().TotalConns(), name)
	}

	// The same probe sees a connection once one is used, so the zero above
	// is not a blind spot.
	require.Equal(t, 1, count(t, e, "acme", "SELECT 1"))
	require.Equal(t, 1, activity(t, engines))
}

func TestOpenSucceedsWhileServerIsDown(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: Open must still succeed, as pools connect lazily.
	conf := loadConf(t, map[string]any{"default": "postgres://u@127.0.0.1:1/x?connect_timeout=1"})
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	e.Close()
}

func TestOpenFailureClosesEarlierPools(t *testing.T) {
	t.Parallel()
	// pool_min_conns makes every pool hold a connection of its own accord,
	// so a pool left open would show up in pg_stat_activity for good.
	engines := engineMaps(t, map[string]any{"pool_min_conns": 1}, "a", "b", "default")
	conf := loadConf(t, engines)
	boom := errors.New("boom")
	var configured []string

	e, err := fiberdb.Open(t.Context(), conf, fiberdb.OpenOptions{
		Configure: func(engine string, _ *pgxpool.Config) error {
			configured = append(configured, engine)
			if engine != "default" {
				return nil
			}
			// Wait until pools a and b really hold connections.
			deadline := time.Now().Add(10 * time.Second)
			for activity(t, engines) < 2 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			return boom
		},
	})
	require.Nil(t, e)
	require.ErrorIs(t, err, boom)
	require.EqualError(t, err, `open engine "default": boom`)
	require.Equal(t, []string{"a", "b", "default"}, configured, "engines are opened in name order")
	require.Eventually(t, func() bool { return activity(t, engines) == 0 }, 10*time.Second, 20*time.Millisecond,
		"the pools opened before the failure must be closed")
}

func TestOpenNilConfig(t *testing.T) {
	t.Parallel()
	e, err := fiberdb.Open(context.Background(), nil)
	require.Nil(t, e)
	require.Error(t, err)
}

func TestEngineAccessors(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "b", "a")

	require.Equal(t, []string{"a", "b", "default"}, e.Names())
	names := e.Names()
	names[0] = "mutated"
	require.Equal(t, []string{"a", "b", "default"}, e.Names(), "Names returns a copy")

	def, err := e.Default()
	require.NoError(t, err)
	same, err := e.Engine("default")
	require.NoError(t, err)
	require.Same(t, def, same)

	a, err := e.Engine("a")
	require.NoError(t, err)
	require.NotSame(t, def, a)

	_, err = e.Engine("missing")
	require.ErrorIs(t, err, fiberdb.ErrEngineNotDefined)
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["missing"]' was not defined.`)
}

func TestDefaultNotDefined(t *testing.T) {
	t.Parallel()
	k := confKoanf(t, map[string]any{"acme": fiberdbtest.Database(t)})
	conf, err := config.Load(k, config.Options{AllowEmpty: true})
	require.NoError(t, err)
	e := openConf(t, conf)
	_, err = e.Default()
	require.ErrorIs(t, err, fiberdb.ErrEngineNotDefined)
	require.EqualError(t, err, `'SQLALCHEMY_ENGINES["default"]' was not defined.`)
}

func TestCloseTwiceAndBlocksOnAcquired(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, nil, "default"))
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	pool, err := e.Default()
	require.NoError(t, err)
	conn, err := pool.Acquire(t.Context())
	require.NoError(t, err)

	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a connection was acquired")
	case <-time.After(100 * time.Millisecond):
	}
	conn.Release()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the connection was released")
	}
	e.Close() // a second Close returns at once
	_, err = pool.Acquire(t.Context())
	require.Error(t, err, "a closed pool refuses Acquire")
}

func TestCloseOnShutdownHook(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, nil, "default"))
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	app := newApp(fiberdb.Config{Engines: e})
	app.Hooks().OnShutdown(func() error { e.Close(); return nil })
	require.Equal(t, 1, count(t, e, "default", "SELECT 1"))

	require.NoError(t, app.Shutdown())
	pool, err := e.Default()
	require.NoError(t, err)
	_, err = pool.Acquire(t.Context())
	require.Error(t, err, "OnShutdown closed the pools")
}

// Regression (issue 12): Open with a hand-built config panicked on a nil
// pool configuration. It answers config.ErrNotLoaded instead.
func TestOpenHandBuiltConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		conf *config.Config
	}{
		{"engine not built by Load", &config.Config{Key: config.DefaultKey, Engines: map[string]*config.Engine{
			"default": {Name: "default"},
		}}},
		{"nil engine", &config.Config{Key: config.DefaultKey, Engines: map[string]*config.Engine{"default": nil}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := fiberdb.Open(t.Context(), tt.conf)
			require.Nil(t, e)
			require.ErrorIs(t, err, config.ErrNotLoaded)
		})
	}
}

// Config hands out a copy: changing it changes nothing in the Engines, nor
// in the next copy.
func TestConfigIsACopy(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	conf := e.Config()
	require.Equal(t, []string{"acme.test"}, conf.Engines["acme"].Hosts)
	conf.Engines["acme"].Hosts[0] = "evil.test"
	delete(conf.Engines, "default")
	again := e.Config()
	require.Equal(t, []string{"acme.test"}, again.Engines["acme"].Hosts)
	require.Contains(t, again.Engines, "default")
	require.NotSame(t, conf, again)
}

// Regression (issue 12): describe_exec behind PgBouncer in transaction mode
// returned other requests' results. fiberdb cannot tell whether a pooler is
// in front, so Open warns, once per engine that uses it, and only for it.
func TestOpenWarnsOfDescribeExec(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, nil, "default", "safe")
	m, ok := engines["default"].(map[string]any)
	require.True(t, ok)
	m["default_query_exec_mode"] = "describe_exec"
	var buf bytes.Buffer
	e, err := fiberdb.Open(t.Context(), loadConf(t, engines), fiberdb.OpenOptions{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { closeWithin(t, e) })
	logged := buf.String()
	require.Equal(t, 1, strings.Count(logged, "level=WARN"), logged)
	require.Contains(t, logged, "describe_exec")
	require.Contains(t, logged, "engine=default")
	require.NotContains(t, logged, "engine=safe")
}
