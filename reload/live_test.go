package reload_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/reload"
)

// live is an app under test: a landlord database holding the catalog, a
// config file, and a Reloader whose Apply records every config it gets.
type live struct {
	pool    *pgxpool.Pool
	dsn     string
	file    string
	applied chan *config.Config
	results chan error
	logs    testkit.LogBuffer
}

// newLive makes the landlord database and the config file. Tests adjust
// the returned reload.Config and pass it to start.
func newLive(t *testing.T) (*live, reload.Config) {
	t.Helper()
	l := &live{
		dsn:     fiberdbtest.Database(t),
		file:    filepath.Join(t.TempDir(), "fiberdb.yaml"),
		applied: make(chan *config.Config, 1000),
		results: make(chan error, 1000),
	}
	pool, err := pgxpool.New(t.Context(), l.dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	l.pool = pool
	require.NoError(t, catalog.Install(t.Context(), pool))
	l.write(t, "central")

	logger := l.logs.Logger()
	return l, reload.Config{
		Load: loader(l.file, l.pool, logger),
		Apply: func(_ context.Context, conf *config.Config) error {
			l.applied <- conf
			return nil
		},
		File:     l.file,
		Catalog:  &catalog.Listener{Connect: l.connector("reload-listener"), ReconnectDelay: 10 * time.Millisecond, Logger: logger},
		Logger:   logger,
		OnReload: func(err error) { l.results <- err },
	}
}

// loader is the app's own Load: a fresh koanf each time, from the file,
// then the catalog.
func loader(path string, landlord *pgxpool.Pool, logger *slog.Logger) func(ctx context.Context) (*config.Config, error) {
	return func(ctx context.Context) (*config.Config, error) {
		k := koanf.New(".")
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, err
		}
		if err := k.Load(catalog.Provider(ctx, landlord, catalog.ProviderOptions{Logger: logger}), nil); err != nil {
			return nil, err
		}
		return config.Load(k)
	}
}

// write replaces the config file in place, with default's database.
func (l *live) write(t *testing.T, database string) {
	t.Helper()
	require.NoError(t, os.WriteFile(l.file, fileYAML(database), 0o600))
}

// fileYAML is a config file whose default engine uses database.
func fileYAML(database string) []byte {
	return []byte("SQLALCHEMY_ENGINES:\n  default: postgres://app@127.0.0.1:5432/" + database + "\n")
}

func (l *live) connector(name string) func(ctx context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		cc, err := pgx.ParseConfig(l.dsn)
		if err != nil {
			return nil, err
		}
		cc.RuntimeParams["application_name"] = name
		return pgx.ConnectConfig(ctx, cc)
	}
}

// running checks the test for goroutine leaks, makes a live app, lets
// adjust change its reload.Config, and runs its Reloader until the test ends.
func running(t *testing.T, adjust func(cfg *reload.Config)) *live {
	t.Helper()
	testkit.NoGoroutineLeaks(t)
	l, cfg := newLive(t)
	if adjust != nil {
		adjust(&cfg)
	}
	runReloader(t, &cfg)
	return l
}

// fileOnly watches the file alone.
func fileOnly(cfg *reload.Config) { cfg.Catalog = nil }

// runReloader runs a Reloader until the test ends.
func runReloader(t *testing.T, cfg *reload.Config) {
	t.Helper()
	r := reload.New(*cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// await returns the first applied config that satisfies ok, failing the
// test if none came within d.
func (l *live) await(t *testing.T, d time.Duration, what string, ok func(*config.Config) bool) *config.Config {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case conf := <-l.applied:
			if ok(conf) {
				return conf
			}
		case <-deadline.C:
			t.Fatalf("no config with %s was applied within %v; log:\n%s", what, d, l.logs.String())
		}
	}
}

// awaitError returns the next failed reload's error.
func (l *live) awaitError(t *testing.T) error {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case err := <-l.results:
			if err != nil {
				return err
			}
		case <-deadline.C:
			t.Fatalf("no reload failed; log:\n%s", l.logs.String())
		}
	}
}

// settle waits until the startup reloads are done and drains them.
func (l *live) settle(t *testing.T) {
	t.Helper()
	l.await(t, 30*time.Second, "the startup reload", func(*config.Config) bool { return true })
}

func has(name string) func(*config.Config) bool {
	return func(c *config.Config) bool { _, ok := c.Engines[name]; return ok }
}

func lacks(name string) func(*config.Config) bool {
	return func(c *config.Config) bool { _, ok := c.Engines[name]; return !ok }
}

func database(name string) func(*config.Config) bool {
	return func(c *config.Config) bool { return c.Engines["default"].PoolConfig().ConnConfig.Database == name }
}

// The promise: a catalog row inserted, updated and deleted takes
// effect within 2 s.
const promised = 2 * time.Second

func TestCatalogRowsGoLiveWithinTwoSeconds(t *testing.T) { // not parallel: goleak needs the package to itself
	l := running(t, nil)
	l.settle(t)
	ctx := t.Context()

	require.NoError(t, catalog.Put(ctx, l.pool, catalog.Tenant{Name: "acme", URL: "postgres://app@127.0.0.1:5432/acme", Hosts: []string{"acme.example.com"}}))
	l.await(t, promised, "acme", has("acme"))

	require.NoError(t, catalog.Put(ctx, l.pool, catalog.Tenant{Name: "acme", URL: "postgres://app@127.0.0.1:5432/acme", Hosts: []string{"acme.example.org"}}))
	l.await(t, promised, "acme's new host", func(c *config.Config) bool {
		return has("acme")(c) && slices.Equal(c.Engines["acme"].Hosts, []string{"acme.example.org"})
	})

	_, err := l.pool.Exec(ctx, `UPDATE fiberdb_tenants SET options = '{"pool_max_conns": 9}'`)
	require.NoError(t, err)
	l.await(t, promised, "acme's new pool size", func(c *config.Config) bool {
		return has("acme")(c) && c.Engines["acme"].PoolConfig().MaxConns == 9
	})

	require.NoError(t, catalog.Delete(ctx, l.pool, "acme"))
	l.await(t, promised, "acme gone", lacks("acme"))
}

func TestBadCatalogRowIsLoggedAndIgnored(t *testing.T) { // not parallel: goleak needs the package to itself
	l := running(t, nil)
	l.settle(t)

	_, err := l.pool.Exec(t.Context(), `INSERT INTO fiberdb_tenants (name, url, options) VALUES
		('bad', 'postgres://app:s3cret@127.0.0.1:5432/bad', '{"pool_max_conns": "many"}'),
		('good', 'postgres://app@127.0.0.1:5432/good', '{}')`)
	require.NoError(t, err)
	conf := l.await(t, promised, "good", has("good"))
	require.Equal(t, []string{"default", "good"}, conf.Names())

	logs := l.logs.String()
	require.Contains(t, logs, `msg="fiberdb: catalog row ignored" row="fiberdb_tenants[\"bad\"]"`)
	require.Contains(t, logs, `fiberdb_tenants[\"bad\"][\"pool_max_conns\"]'`)
	require.NotContains(t, logs, "s3cret")
}

func TestLostListenerReloadsInFull(t *testing.T) { // not parallel: goleak needs the package to itself
	l := running(t, nil)
	l.settle(t)
	ctx := t.Context()

	// A change the listener cannot hear, as if it were made while the
	// listener was disconnected.
	_, err := l.pool.Exec(ctx, `ALTER TABLE fiberdb_tenants DISABLE TRIGGER fiberdb_tenants_notify;
		INSERT INTO fiberdb_tenants (name, url) VALUES ('unheard', 'postgres://app@127.0.0.1:5432/unheard');
		ALTER TABLE fiberdb_tenants ENABLE TRIGGER fiberdb_tenants_notify`)
	require.NoError(t, err)

	var killed int
	require.NoError(t, l.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'reload-listener' AND datname = current_database()`).Scan(&killed))
	require.Equal(t, 1, killed)
	l.await(t, promised, "the unheard row, after reconnecting", has("unheard"))
	require.Contains(t, l.logs.String(), "catalog listener lost its connection; reconnecting")

	// And the new connection hears changes again.
	require.NoError(t, catalog.Delete(ctx, l.pool, "unheard"))
	l.await(t, promised, "unheard gone", lacks("unheard"))
}

func TestFileChangesReload(t *testing.T) { // not parallel: goleak needs the package to itself
	l := running(t, fileOnly)
	l.settle(t)

	l.write(t, "edited")
	l.await(t, promised, "the edited file", database("edited"))

	// An editor's or a deploy tool's save: write aside, rename over.
	tmp := l.file + ".tmp"
	require.NoError(t, os.WriteFile(tmp, fileYAML("renamed"), 0o600))
	require.NoError(t, os.Rename(tmp, l.file))
	l.await(t, promised, "the renamed file", database("renamed"))

	// rm && cp: koanf's watch ends with the removal; the reloader re-arms
	// when the file is back.
	require.NoError(t, os.Remove(l.file))
	l.write(t, "recreated")
	l.await(t, promised, "the recreated file", database("recreated"))

	// The watch works again after the re-arm.
	l.write(t, "again")
	l.await(t, promised, "the file edited after re-arming", database("again"))

	// A removal long enough to be seen, then the file is back.
	require.NoError(t, os.Remove(l.file))
	l.awaitLog(t, "config file missing; reloading when it is back")
	l.write(t, "back")
	l.await(t, promised, "the file back", database("back"))
}

// awaitLog waits until the log holds s.
func (l *live) awaitLog(t *testing.T, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(l.logs.String(), s) }, 30*time.Second, 10*time.Millisecond)
}

func TestBadFileIsLoggedAndIgnored(t *testing.T) { // not parallel: goleak needs the package to itself
	l := running(t, fileOnly)
	l.settle(t)

	require.NoError(t, os.WriteFile(l.file, []byte("SQLALCHEMY_ENGINES: [unclosed\n"), 0o600))
	require.ErrorContains(t, l.awaitError(t), "reload: load: yaml:")

	require.NoError(t, os.WriteFile(l.file, []byte("SQLALCHEMY_ENGINES:\n  default: {pool_max_conns: 2}\n"), 0o600))
	err := l.awaitError(t)
	require.ErrorIs(t, err, config.ErrNoURL)
	require.ErrorContains(t, err, `'SQLALCHEMY_ENGINES["default"]["url"]' must be defined.`)
	require.Contains(t, l.logs.String(), `msg="fiberdb: reload failed; the running config keeps serving"`)
	require.Empty(t, l.applied, "a bad file is never applied")

	l.write(t, "fixed")
	l.await(t, promised, "the fixed file", database("fixed"))
}

func TestSignalReloads(t *testing.T) { // not parallel: goleak needs the package to itself
	l := running(t, func(cfg *reload.Config) {
		cfg.File, cfg.Catalog = "", nil
		cfg.Signals = []os.Signal{syscall.SIGHUP}
	})
	l.settle(t)

	// Without a watch, only the signal makes the edit live.
	l.write(t, "hup")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	l.await(t, promised, "the file read after SIGHUP", database("hup"))
	require.Contains(t, l.logs.String(), `msg="fiberdb: reload requested" signal=hangup`)
}

func TestMissingFileAtStart(t *testing.T) { // not parallel: goleak needs the package to itself
	l := running(t, func(cfg *reload.Config) {
		fileOnly(cfg)
		require.NoError(t, os.Remove(cfg.File))
	})
	require.ErrorContains(t, l.awaitError(t), "no such file or directory")

	l.write(t, "late")
	l.await(t, promised, "the file that appeared", database("late"))
}

func TestConfigMapSymlinkSwapReloads(t *testing.T) { // not parallel: goleak needs the package to itself
	// Kubernetes mounts a ConfigMap as fiberdb.yaml → ..data/fiberdb.yaml,
	// ..data → a timestamped directory, and updates it by swapping ..data.
	var dir string
	l := running(t, func(cfg *reload.Config) {
		fileOnly(cfg)
		dir = filepath.Dir(cfg.File)
		require.NoError(t, os.Remove(cfg.File))
		require.NoError(t, os.Mkdir(filepath.Join(dir, "v1"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "v1", "fiberdb.yaml"), fileYAML("v1"), 0o600))
		require.NoError(t, os.Symlink("v1", filepath.Join(dir, "..data")))
		require.NoError(t, os.Symlink(filepath.Join("..data", "fiberdb.yaml"), cfg.File))
	})
	l.await(t, 30*time.Second, "v1", database("v1"))

	require.NoError(t, os.Mkdir(filepath.Join(dir, "v2"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "v2", "fiberdb.yaml"), fileYAML("v2"), 0o600))
	require.NoError(t, os.Symlink("v2", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	l.await(t, promised, "v2, after the swap", database("v2"))
}
