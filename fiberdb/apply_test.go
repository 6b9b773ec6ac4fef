package fiberdb_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// Tests of Engines.Apply (issue 15): the engine set changes while requests
// run, and each request sees one config.

// dbApp answers GET / with the database its request's connection is on.
func dbApp(e *fiberdb.Engines) *fiber.App {
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(c *fiber.Ctx) error {
		name, err := connScalar[string](c, "select current_database()")
		if err != nil {
			return err
		}
		return c.SendString(fiberdb.Tenant(c) + " " + name)
	})
	return app
}

// looseConf loads engines, which need not include "default".
func looseConf(t *testing.T, engines map[string]any) *config.Config {
	t.Helper()
	conf, err := config.Load(confKoanf(t, engines), config.Options{AllowEmpty: true})
	require.NoError(t, err)
	return conf
}

func withEngines(engines map[string]any, names ...string) map[string]any {
	m := map[string]any{}
	for _, n := range names {
		m[n] = engines[n]
	}
	return m
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	pc, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	return pc.ConnConfig.Database
}

func TestApplyAddsAndRemovesEngines(t *testing.T) {
	t.Parallel()
	all := engineMaps(t, nil, "t0", "t1")
	e := openConf(t, looseConf(t, withEngines(all, "t0")))
	app := dbApp(e)

	status, _ := get(t, app, "t1.test", "/")
	require.Equal(t, fiber.StatusNotFound, status)

	require.NoError(t, e.Apply(t.Context(), looseConf(t, all)))
	status, body := get(t, app, "t1.test", "/")
	require.Equal(t, fiber.StatusOK, status, "an added engine serves at once")
	require.Equal(t, "t1 "+dbName(t, dsnOf(t, all, "t1")), body)
	require.Equal(t, []string{"t0", "t1"}, e.Names())
	require.Contains(t, e.Config().Engines, "t1")

	require.NoError(t, e.Apply(t.Context(), looseConf(t, withEngines(all, "t0"))))
	status, _ = get(t, app, "t1.test", "/")
	require.Equal(t, fiber.StatusNotFound, status, "a removed engine answers 404")
	_, err := e.Engine("t1")
	require.ErrorIs(t, err, fiberdb.ErrEngineNotDefined)
	require.Eventually(t, func() bool { return len(e.Stats().Draining) == 0 }, 5*time.Second, 5*time.Millisecond,
		"its pool closed")
	require.Equal(t, []string{"t0"}, e.Names())
}

func TestApplyLetsAHeldConnectionFinish(t *testing.T) {
	t.Parallel()
	all := engineMaps(t, nil, "t0", "t1")
	e := openConf(t, looseConf(t, all))
	exec(t, e, "t1", "create table marks (n int)")

	holding, finish := make(chan struct{}), make(chan struct{})
	var finished sync.Once
	t.Cleanup(func() { finished.Do(func() { close(finish) }) }) // a failed assertion must not strand the handler
	app := newApp(fiberdb.Config{Engines: e})
	app.Post("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		if _, err = db.Exec(c.UserContext(), "insert into marks values (1)"); err != nil {
			return err
		}
		close(holding)
		<-finish
		_, err = db.Exec(c.UserContext(), "insert into marks values (2)")
		return err
	})

	done := make(chan int, 1)
	go func() {
		resp, err := app.Test(request(fiber.MethodPost, "t1.test", "/"), -1)
		if err != nil {
			done <- 0
			return
		}
		_ = resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-holding
	require.NoError(t, e.Apply(t.Context(), looseConf(t, withEngines(all, "t0"))))
	status, _ := fiberdbtest.Do(t, app, request(fiber.MethodPost, "t1.test", "/"))
	require.Equal(t, fiber.StatusNotFound, status, "new requests to the removed engine: 404")
	require.Contains(t, e.Stats().Draining, "t1", "its pool waits for the request holding a connection")

	finished.Do(func() { close(finish) })
	require.Equal(t, fiber.StatusOK, <-done, "the request in flight finishes normally")
	require.Eventually(t, func() bool { return len(e.Stats().Draining) == 0 }, 5*time.Second, 5*time.Millisecond,
		"then the pool closes")

	var n int
	conn, err := pgxpool.New(t.Context(), dsnOf(t, all, "t1"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.QueryRow(t.Context(), "select count(*) from marks").Scan(&n))
	require.Equal(t, 2, n, "its work was kept")
}

// Regression (review R3): a request that resolved its tenant before Apply
// removed it, and asks for its connection after, answers the 404 a new
// request gets, through the ErrorHandler, not a 500 quoting the config key.
func TestApplyRemovingAResolvedTenantAnswers404(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"Conn", "ConnFor of its tenant"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			all := engineMaps(t, nil, "t0", "t1")
			e := openConf(t, looseConf(t, all))
			resolved, goOn := make(chan struct{}), make(chan struct{})
			var released sync.Once
			t.Cleanup(func() { released.Do(func() { close(goOn) }) }) // a failed assertion must not strand the handler
			var connErr error
			app := newApp(fiberdb.Config{Engines: e})
			app.Get("/", func(c *fiber.Ctx) error {
				close(resolved)
				<-goOn
				if via == "Conn" {
					_, connErr = fiberdb.Conn(c)
				} else {
					_, connErr = fiberdb.ConnFor(c, fiberdb.Tenant(c))
				}
				return connErr
			})

			type answer struct {
				status int
				body   string
				err    error
			}
			done := make(chan answer, 1)
			go func() {
				resp, err := app.Test(request(fiber.MethodGet, "t1.test", "/"), -1)
				if err != nil {
					done <- answer{err: err}
					return
				}
				body, err := io.ReadAll(resp.Body)
				done <- answer{resp.StatusCode, string(body), errors.Join(err, resp.Body.Close())}
			}()
			<-resolved
			require.NoError(t, e.Apply(t.Context(), looseConf(t, withEngines(all, "t0"))))
			released.Do(func() { close(goOn) })
			got := <-done
			require.NoError(t, got.err)

			require.ErrorIs(t, connErr, fiberdb.ErrEngineNotDefined, "the handler sees the engine is gone")
			status, body := get(t, app, "t1.test", "/")
			require.Equal(t, fiber.StatusNotFound, status, "a new request for the removed tenant")
			require.Equal(t, answer{status: status, body: body}, got, "the request in flight answers the same")
		})
	}
}

func TestApplyChangesAnEnginesURL(t *testing.T) {
	t.Parallel()
	dbs := engineMaps(t, nil, "a", "b")
	first := map[string]any{"acme": map[string]any{"url": dsnOf(t, dbs, "a"), "hosts": []any{"acme.test"}}}
	second := map[string]any{"acme": map[string]any{"url": dsnOf(t, dbs, "b"), "hosts": []any{"acme.test"}}}
	e := openConf(t, looseConf(t, first))
	app := dbApp(e)

	_, body := get(t, app, "acme.test", "/")
	require.Equal(t, "acme "+dbName(t, dsnOf(t, dbs, "a")), body)
	old, err := e.Engine("acme")
	require.NoError(t, err)

	require.NoError(t, e.Apply(t.Context(), looseConf(t, second)))
	_, body = get(t, app, "acme.test", "/")
	require.Equal(t, "acme "+dbName(t, dsnOf(t, dbs, "b")), body, "a changed url gets a new pool")
	pool, err := e.Engine("acme")
	require.NoError(t, err)
	require.NotSame(t, old, pool)
	require.Eventually(t, func() bool { return old.Ping(t.Context()) != nil }, 5*time.Second, 5*time.Millisecond,
		"the old pool, handed out before, closes once drained")
}

// A direct_url is for migrations, which fiberdb's pools never use, so a
// change to it alone must not drain the engine's pool.
func TestApplyChangesOnlyAnEnginesDirectURL(t *testing.T) {
	t.Parallel()
	dbs := engineMaps(t, nil, "a", "b", "c")
	acme := func(direct string) map[string]any {
		return map[string]any{"acme": map[string]any{"url": dsnOf(t, dbs, "a"), "direct_url": direct, "hosts": []any{"acme.test"}}}
	}
	e := openConf(t, looseConf(t, acme(dsnOf(t, dbs, "b"))))
	app := dbApp(e)
	_, body := get(t, app, "acme.test", "/")
	require.Equal(t, "acme "+dbName(t, dsnOf(t, dbs, "a")), body)
	old, err := e.Engine("acme")
	require.NoError(t, err)

	require.NoError(t, e.Apply(t.Context(), looseConf(t, acme(dsnOf(t, dbs, "c")))))
	_, body = get(t, app, "acme.test", "/")
	require.Equal(t, "acme "+dbName(t, dsnOf(t, dbs, "a")), body, "requests still reach the url's database")
	pool, err := e.Engine("acme")
	require.NoError(t, err)
	require.Same(t, old, pool, "a changed direct_url keeps the pool")
	require.Equal(t, dbName(t, dsnOf(t, dbs, "c")), e.Config().DirectConfig("acme").Database, "the new direct_url is served")
}

func TestApplyMovesAHost(t *testing.T) {
	t.Parallel()
	dbs := engineMaps(t, nil, "t0", "t1")
	hosts := func(t0, t1 []any) map[string]any {
		return map[string]any{
			"t0": map[string]any{"url": dsnOf(t, dbs, "t0"), "hosts": t0},
			"t1": map[string]any{"url": dsnOf(t, dbs, "t1"), "hosts": t1},
		}
	}
	e := openConf(t, looseConf(t, hosts([]any{"t0.test", "shared.test"}, []any{"t1.test"})))
	app := dbApp(e)
	_, body := get(t, app, "shared.test", "/")
	require.Equal(t, "t0 "+dbName(t, dsnOf(t, dbs, "t0")), body)

	require.NoError(t, e.Apply(t.Context(), looseConf(t, hosts([]any{"t0.test"}, []any{"t1.test", "shared.test"}))))
	_, body = get(t, app, "shared.test", "/")
	require.Equal(t, "t1 "+dbName(t, dsnOf(t, dbs, "t1")), body, "the default resolver follows Apply")
}

func TestApplyUnderTrafficKeepsUnchangedEngines(t *testing.T) {
	t.Parallel()
	all := engineMaps(t, nil, "t0", "t1", "x")
	e := openConf(t, looseConf(t, withEngines(all, "t0", "t1")))
	app := dbApp(e)
	before := map[string]*pgxpool.Pool{}
	for _, name := range []string{"t0", "t1"} {
		pool, err := e.Engine(name)
		require.NoError(t, err)
		before[name] = pool
	}
	confs := []*config.Config{looseConf(t, all), looseConf(t, withEngines(all, "t0", "t1"))}

	var failed, served atomic.Int64
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			host := []string{"t0.test", "t1.test"}[i%2]
			for ctx.Err() == nil {
				resp, err := app.Test(request(fiber.MethodGet, host, "/"), -1)
				if err != nil || resp.StatusCode != fiber.StatusOK {
					failed.Add(1)
				} else {
					served.Add(1)
				}
				if resp != nil {
					_ = resp.Body.Close()
				}
			}
		})
	}
	for i := range 30 {
		require.NoError(t, e.Apply(t.Context(), confs[i%2]))
		time.Sleep(2 * time.Millisecond) // let requests interleave with the next switch
	}
	stop()
	wg.Wait()
	require.Zero(t, failed.Load(), "unchanged engines see no error while Apply runs")
	require.Positive(t, served.Load())
	for name, pool := range before {
		now, err := e.Engine(name)
		require.NoError(t, err)
		require.Same(t, pool, now, "an unchanged engine keeps its pool")
	}
}

func TestApplyRefusesBadConfigs(t *testing.T) {
	t.Parallel()
	all := engineMaps(t, nil, "t0")
	e := openConf(t, looseConf(t, all))

	require.EqualError(t, e.Apply(t.Context(), nil), "apply: nil config")
	require.ErrorIs(t, e.Apply(t.Context(), &config.Config{Engines: map[string]*config.Engine{"t0": {Name: "t0"}}}),
		config.ErrNotLoaded, "a hand-built config")

	configureErr := errors.New("no tracer for you")
	e2, err := fiberdb.Open(t.Context(), looseConf(t, all), fiberdb.OpenOptions{
		Configure: func(engine string, _ *pgxpool.Config) error {
			if engine == "t1" {
				return configureErr
			}
			return nil
		},
	})
	require.NoError(t, err)
	defer e2.Close()
	more := engineMaps(t, nil, "t1")
	more["t0"] = all["t0"]
	require.ErrorIs(t, e2.Apply(t.Context(), looseConf(t, more)), configureErr)
	require.Equal(t, []string{"t0"}, e2.Names(), "a failed Apply changes nothing")
}

// A lease of an engine that Apply retired keeps its QueryTimeout: the
// reaper forgets a retired engine only once nothing holds it and its pool
// has closed, however many Applies run meanwhile.
func TestApplyKeepsARetiredLeasesQueryTimeout(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, nil, "default", "acme")
	e := openConf(t, loadConf(t, engines))
	leased, proceed := make(chan struct{}), make(chan struct{})
	var queryErr error
	// The bound runs from the lease's start: long enough for the Applies
	// below to finish before it, on a loaded machine too.
	app := newApp(fiberdb.Config{Engines: e, QueryTimeout: 2 * time.Second})
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		close(leased)
		<-proceed
		_, queryErr = db.Exec(c.UserContext(), "select pg_sleep(30)")
		return queryErr
	})
	res := serveAsync(app, request(fiber.MethodGet, "acme.test", "/"))
	<-leased
	acme, ok := engines["acme"].(map[string]any)
	require.True(t, ok)
	for i := range 5 { // each replaces acme, and each add prunes the reaper's list
		acme["pool_max_conns"] = 2 + i%2
		require.NoError(t, e.Apply(t.Context(), loadConf(t, engines)))
	}
	close(proceed)
	s := await(t, res)
	require.Equal(t, fiber.StatusInternalServerError, s.status, s.body)
	require.True(t, pgconn.Timeout(queryErr), "the sleep ran unbounded: %v", queryErr)
}
