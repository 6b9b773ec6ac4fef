package fiberdb_test

// Fault tests: PostgreSQL stopped and restarted under traffic, an
// unresponsive server, a backend killed mid-request, statement timeouts,
// cancelled queries, a request connection used from a goroutine after the
// request ended, and setup errors. Each asserts the HTTP outcome and that no
// connection stays acquired.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// faultWait bounds every wait in these tests: a request, a poll, a restart.
// Reaching it means something hung, which is the failure under test.
const faultWait = 30 * time.Second

// served is one app.Test outcome, gathered off the test goroutine.
type served struct {
	status int
	body   string
	err    error
}

// serve runs req through app.Test without a timeout and never touches t, so
// any goroutine may call it.
func serve(app *fiber.App, req *http.Request) served {
	resp, err := app.Test(req, -1)
	if err != nil {
		return served{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return served{status: resp.StatusCode, body: string(b), err: err}
}

// serveAsync serves req on another goroutine, for handlers that wait for
// the test.
func serveAsync(app *fiber.App, req *http.Request) <-chan served {
	ch := make(chan served, 1)
	go func() { ch <- serve(app, req) }()
	return ch
}

// await returns the outcome of serveAsync, failing the test if the request
// has not completed within faultWait.
func await(t *testing.T, ch <-chan served) served {
	t.Helper()
	select {
	case s := <-ch:
		require.NoError(t, s.err)
		return s
	case <-time.After(faultWait):
		t.Fatalf("request still running after %s", faultWait)
		return served{}
	}
}

// poll calls cond on the test goroutine until it is true, failing the test
// after faultWait.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(faultWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %s: %s", faultWait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// faultApp is an app with recover (counting panics) before fiberdb.
func faultApp(cfg fiberdb.Config, panics *atomic.Int64) *fiber.App {
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Use(fiberrecover.New(fiberrecover.Config{
		EnableStackTrace:  true,
		StackTraceHandler: func(*fiber.Ctx, any) { panics.Add(1) },
	}))
	app.Use(fiberdb.New(cfg))
	return app
}

// closeEngines closes e, failing the test rather than hang if a connection
// is still acquired. Calling it again, or after another Close, is a no-op.
func closeEngines(t *testing.T, e *fiberdb.Engines) {
	t.Helper()
	closeWithin(t, e)
}

// adminConn is a superuser session on the shared server, outside any pool.
func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), fiberdbtest.Server(t).URL())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	})
	return conn
}

// backendGone reports whether no server session has pid any more.
func backendGone(t *testing.T, admin *pgx.Conn, pid int32) bool {
	t.Helper()
	var n int
	require.NoError(t, admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n))
	return n == 0
}

// backendRunning reports whether session pid is running a statement that
// contains like (an SQL LIKE pattern).
func backendRunning(t *testing.T, admin *pgx.Conn, pid int32, like string) bool {
	t.Helper()
	var n int
	require.NoError(t, admin.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE $2", pid, like).Scan(&n))
	return n == 1
}

// probe is what a request sees of its connection's state.
type probe struct {
	PID     int32  `json:"pid"`
	InTx    bool   `json:"in_tx"`
	Timeout string `json:"timeout"`
}

// probeRoute answers GET /probe with the connection's pid, whether a
// transaction that wrote something is still open on it, and its
// statement_timeout.
func probeRoute(app *fiber.App) {
	app.Get("/probe", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		var p probe
		err = db.QueryRow(c.UserContext(), `SELECT pg_backend_pid(), txid_current_if_assigned() IS NOT NULL,
			current_setting('statement_timeout')`).Scan(&p.PID, &p.InTx, &p.Timeout)
		if err != nil {
			return err
		}
		return c.JSON(p)
	})
}

func getProbe(t *testing.T, app *fiber.App, host string) probe {
	t.Helper()
	s := await(t, serveAsync(app, request(fiber.MethodGet, host, "/probe")))
	require.Equal(t, fiber.StatusOK, s.status, s.body)
	var p probe
	require.NoError(t, json.Unmarshal([]byte(s.body), &p), s.body)
	return p
}

// privateServer starts a PostgreSQL server of the test's own, for tests that
// stop it; the shared one serves every other test. Closing it at the end
// must leave no process and no directory behind.
func privateServer(t *testing.T) *fiberdbtest.Postgres {
	t.Helper()
	fiberdbtest.Server(t) // skips, or fails under CI=true, without PostgreSQL
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := fiberdbtest.StartPostgres(ctx)
	if errors.Is(err, fiberdbtest.ErrNoPostgres) && os.Getenv("CI") != "true" {
		t.Skipf("no PostgreSQL binaries to start a private server: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		pid, dir := pg.PID(), pg.Dir()
		require.NoError(t, pg.Close())
		require.Zero(t, pg.PID())
		if pid != 0 {
			require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the server process is gone")
		}
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, fs.ErrNotExist, "the server's directory is removed")
	})
	return pg
}

// TestFaultServerStoppedAndRestarted stops PostgreSQL under traffic from
// several clients, checks that the outage answers 503 (never a hang or a
// panic), then starts it again and checks that the same Engines serve again.
func TestFaultServerStoppedAndRestarted(t *testing.T) {
	t.Parallel()
	pg := privateServer(t)
	names := []string{"acme", "globex"}
	engines := map[string]any{}
	for _, name := range append([]string{"default"}, names...) {
		require.NoError(t, pg.CreateDatabase(t.Context(), name, ""))
		engines[name] = map[string]any{
			"url": pg.ConnString(name), "hosts": []any{name + ".test"},
			"pool_max_conns": 4, "connect_timeout": "1s",
		}
	}
	e := openConf(t, loadConf(t, engines))
	pools := map[string]*pgxpool.Pool{}
	var maxConns int32
	for _, name := range names {
		pool, err := e.Engine(name)
		require.NoError(t, err)
		pools[name] = pool
		maxConns += pool.Config().MaxConns
	}

	// A refused connect fails at once, so the outage answers fast whatever the
	// AcquireTimeout (TestFaultUnresponsiveServerAnswers503 covers a server
	// that never answers); this one only has to outlast connecting under load
	// after the restart.
	var panics atomic.Int64
	var lastConnErr atomic.Value
	app := faultApp(fiberdb.Config{Engines: e, AcquireTimeout: 2 * time.Second}, &panics)
	app.Get("/", func(c *fiber.Ctx) error {
		if _, err := fiberdb.Conn(c); err != nil {
			lastConnErr.Store(err.Error())
			return err
		}
		return sendDatabase(c)
	})

	// Phases, each request tagged with the one current when it was sent.
	const (
		running  = iota // server up
		stopping        // Stop called: sessions are being ended
		stopped         // Stop has returned: nothing can succeed
		drained         // and no pool holds a connection: only 503 is left
	)
	var phase atomic.Int32
	type outcome struct {
		phase  int32
		tenant string
		served
	}
	var sent [4]atomic.Int64
	traffic := func(clients int, stop <-chan struct{}) (wait func() [][]outcome) {
		results := make([][]outcome, clients)
		var wg sync.WaitGroup
		for w := range clients {
			wg.Go(func() {
				for i := range 5000 { // a bound, should stop never come
					select {
					case <-stop:
						return
					default:
					}
					tenant := names[(w+i)%len(names)]
					ph := phase.Load()
					s := serve(app, request(fiber.MethodGet, tenant+".test", "/"))
					results[w] = append(results[w], outcome{ph, tenant, s})
					sent[ph].Add(1)
				}
			})
		}
		return func() [][]outcome {
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(faultWait):
				t.Fatalf("clients still waiting for responses after %s: a request hangs", faultWait)
			}
			return results
		}
	}

	stop := make(chan struct{})
	wait := traffic(6, stop)
	poll(t, "traffic before the outage", func() bool { return sent[running].Load() >= 30 })
	phase.Store(stopping)
	require.NoError(t, pg.Stop())
	phase.Store(stopped)
	poll(t, "dead connections flushed from the pools", func() bool {
		for _, pool := range pools {
			// Connects still under way are bound to fail: count the others.
			if st := pool.Stat(); st.TotalConns()-st.ConstructingConns() != 0 {
				return false
			}
		}
		return true
	})
	phase.Store(drained)
	poll(t, "traffic during the outage", func() bool { return sent[drained].Load() >= 60 })
	close(stop)
	results := wait()

	statuses := map[int32]map[int]int{running: {}, stopping: {}, stopped: {}, drained: {}}
	failed := 0 // 500s, whatever the phase
	for _, rs := range results {
		for _, r := range rs {
			require.NoError(t, r.err)
			statuses[r.phase][r.status]++
			if r.status == fiber.StatusInternalServerError {
				failed++
			}
			if r.status == fiber.StatusOK {
				require.Equal(t, r.tenant, r.body, "a request reached another tenant's database")
			}
			if r.status == fiber.StatusServiceUnavailable {
				require.Equal(t, "database unavailable", r.body)
			}
		}
	}
	t.Logf("statuses by phase (running, stopping, stopped, drained): %v", statuses)
	require.Positive(t, statuses[running][fiber.StatusOK])
	for _, ph := range []int32{running, stopping} {
		for status := range statuses[ph] {
			require.Contains(t, []int{fiber.StatusOK, fiber.StatusInternalServerError, fiber.StatusServiceUnavailable}, status)
		}
	}
	for status := range statuses[stopped] {
		require.Contains(t, []int{fiber.StatusInternalServerError, fiber.StatusServiceUnavailable}, status)
	}
	// A connection open when the server stopped fails the one query it is
	// running or next runs (500) and is destroyed; no new one can open, so
	// there are at most MaxConns such failures in all. Every other failure
	// is a 503.
	require.LessOrEqual(t, failed, int(maxConns))
	require.Equal(t, map[int]int{fiber.StatusServiceUnavailable: int(sent[drained].Load())}, statuses[drained],
		"once no connection is left, every request answers 503")
	require.Zero(t, panics.Load())
	fiberdbtest.NoLeaks(t, e)

	// Back up: the same process, Engines and pools recover on their own.
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	require.NoError(t, pg.Start(ctx))
	poll(t, "a request to succeed after the restart", func() bool {
		return serve(app, request(fiber.MethodGet, "acme.test", "/")).status == fiber.StatusOK
	})
	phase.Store(running)
	sent[running].Store(0)
	stop = make(chan struct{})
	wait = traffic(6, stop)
	poll(t, "traffic after the restart", func() bool { return sent[running].Load() >= 60 })
	close(stop)
	for _, rs := range wait() {
		for _, r := range rs {
			require.NoError(t, r.err)
			require.Equal(t, fiber.StatusOK, r.status, "%s (last acquire error: %v)", r.body, lastConnErr.Load())
			require.Equal(t, r.tenant, r.body)
		}
	}
	for name, pool := range pools {
		again, err := e.Engine(name)
		require.NoError(t, err)
		require.Same(t, pool, again)
	}
	require.Zero(t, panics.Load())
	fiberdbtest.NoLeaks(t, e)
}

// TestFaultUnresponsiveServerAnswers503 points an engine at a server that
// accepts TCP connections and never answers: the request must give up at
// AcquireTimeout, well before the connect timeout, with a 503.
func TestFaultUnresponsiveServerAnswers503(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu       sync.Mutex
		accepted []net.Conn
		acceptWG sync.WaitGroup
	)
	acceptWG.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, conn)
			mu.Unlock()
		}
	})
	conf := loadConf(t, map[string]any{"default": map[string]any{
		"url":             "postgres://u@" + ln.Addr().String() + "/x?sslmode=disable",
		"connect_timeout": "10m", // only AcquireTimeout can end the wait
	}})
	e := openConf(t, conf)
	// Runs before openConf's Close: the hanging connect then fails at once.
	t.Cleanup(func() {
		require.NoError(t, ln.Close())
		acceptWG.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range accepted {
			require.NoError(t, c.Close())
		}
	})

	var panics atomic.Int64
	app := faultApp(fiberdb.Config{Engines: e, AcquireTimeout: 200 * time.Millisecond}, &panics)
	var connErr error
	app.Get("/", func(c *fiber.Ctx) error { _, connErr = fiberdb.Conn(c); return connErr })

	s := await(t, serveAsync(app, request(fiber.MethodGet, "x.test", "/")))
	require.Equal(t, fiber.StatusServiceUnavailable, s.status)
	require.Equal(t, "database unavailable", s.body)
	require.ErrorIs(t, connErr, fiberdb.ErrUnavailable)
	require.ErrorIs(t, connErr, context.DeadlineExceeded, "AcquireTimeout ended the wait")
	require.Zero(t, panics.Load())
	fiberdbtest.NoLeaks(t, e)
}

// TestFaultBackendTerminated kills the request's server session with
// pg_terminate_backend, between two statements and during one: that request
// fails, the broken connection is destroyed, and the next request gets a
// new one.
//
//nolint:tparallel // rows share a one-connection pool and count its connections
func TestFaultBackendTerminated(t *testing.T) {
	t.Parallel()
	e := openConf(t, loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default")))
	exec(t, e, "default", "CREATE TABLE items (name text)")
	pool, err := e.Default()
	require.NoError(t, err)
	admin := adminConn(t)

	victimPID := make(chan int32, 1)
	proceed := make(chan struct{})
	var victimErr error
	var panics atomic.Int64
	app := faultApp(fiberdb.Config{Engines: e}, &panics)
	probeRoute(app)
	app.Get("/victim", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		pid, err := scalar[int32](ctx, db, "SELECT pg_backend_pid()")
		if err != nil {
			return err
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, "INSERT INTO items VALUES ('victim')"); err != nil {
			return err
		}
		victimPID <- pid
		if c.Query("during") == "" {
			<-proceed
			_, victimErr = tx.Exec(ctx, "SELECT 1")
		} else {
			_, victimErr = tx.Exec(ctx, "SELECT pg_sleep(60)")
		}
		return victimErr
	})

	for _, during := range []bool{false, true} {
		name := "between two statements"
		if during {
			name = "during a statement"
		}
		t.Run(name, func(t *testing.T) {
			victimErr = nil
			before := getProbe(t, app, "default.test")
			newConns := pool.Stat().NewConnsCount()

			target := "/victim"
			if during {
				target += "?during=1"
			}
			res := serveAsync(app, request(fiber.MethodGet, "default.test", target))
			pid := <-victimPID
			require.Equal(t, before.PID, pid, "the pool's only connection")
			if during {
				poll(t, "the statement to start", func() bool { return backendRunning(t, admin, pid, "SELECT pg_sleep%") })
			}
			var killed bool
			require.NoError(t, admin.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&killed))
			require.True(t, killed)
			poll(t, "the backend to exit", func() bool { return backendGone(t, admin, pid) })
			if !during {
				close(proceed)
			}

			s := await(t, res)
			require.Equal(t, fiber.StatusInternalServerError, s.status, s.body)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, victimErr, &pgErr)
			require.Equal(t, "57P01", pgErr.Code, "admin_shutdown: %v", victimErr)
			fiberdbtest.NoLeaks(t, e)

			after := getProbe(t, app, "default.test")
			require.NotEqual(t, pid, after.PID, "the broken connection is not reused")
			require.False(t, after.InTx)
			require.Equal(t, newConns+1, pool.Stat().NewConnsCount(), "one new connection replaced it")
			require.EqualValues(t, 1, pool.Stat().TotalConns(), "the broken one was destroyed")
			require.Zero(t, count(t, e, "default", "SELECT count(*) FROM items"), "the killed transaction never committed")
		})
	}
	require.Zero(t, panics.Load())
}

// TestFaultStatementTimeout runs a statement past statement_timeout, set in
// the engine's url and set locally in a transaction: the request fails with
// SQLSTATE 57014, and the same connection serves the next request clean.
//
//nolint:tparallel // rows share one-connection pools and compare their pids
func TestFaultStatementTimeout(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, map[string]any{"pool_max_conns": 1}, "default", "dsn", "local")
	m, ok := engines["dsn"].(map[string]any)
	require.True(t, ok)
	m["url"] = dsnOf(t, engines, "dsn") + "&statement_timeout=100"
	e := openConf(t, loadConf(t, engines))
	for _, name := range e.Names() {
		exec(t, e, name, "CREATE TABLE items (name text)")
	}

	var queryErr error
	var panics atomic.Int64
	app := faultApp(fiberdb.Config{Engines: e}, &panics)
	probeRoute(app)
	app.Get("/slow", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		if fiberdb.Tenant(c) == "local" {
			if _, err = tx.Exec(ctx, "SELECT set_config('statement_timeout', '100', true)"); err != nil {
				return err
			}
		}
		if _, err = tx.Exec(ctx, "INSERT INTO items VALUES ('slow')"); err != nil {
			return err
		}
		_, queryErr = tx.Exec(ctx, "SELECT pg_sleep(5)")
		return queryErr // the aborted transaction is left for fiberdb
	})

	for _, tt := range []struct{ engine, timeoutAfter string }{
		{"dsn", "100ms"},
		{"local", "0"},
	} {
		t.Run(tt.engine, func(t *testing.T) {
			host := tt.engine + ".test"
			before := getProbe(t, app, host)
			queryErr = nil
			s := await(t, serveAsync(app, request(fiber.MethodGet, host, "/slow")))
			require.Equal(t, fiber.StatusInternalServerError, s.status, s.body)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, queryErr, &pgErr)
			require.Equal(t, "57014", pgErr.Code, "query_canceled: %v", queryErr)
			fiberdbtest.NoLeaks(t, e)

			after := getProbe(t, app, host)
			require.Equal(t, before.PID, after.PID, "a cancelled statement leaves a reusable connection")
			require.False(t, after.InTx, "the aborted transaction was rolled back")
			require.Equal(t, tt.timeoutAfter, after.Timeout, "a local setting ends with its transaction")
			require.Zero(t, count(t, e, tt.engine, "SELECT count(*) FROM items"))
		})
	}
	require.Zero(t, panics.Load())
}

// TestFaultContextDeadline cancels a handler's statement with its own
// context deadline, inside a transaction: the request fails with the
// deadline error and the connection is never handed out dirty.
func TestFaultContextDeadline(t *testing.T) {
	t.Parallel()
	// client_connection_check_interval lets the server notice the abandoned
	// statement's closed socket instead of sleeping it out.
	engines := engineMaps(t, map[string]any{"pool_max_conns": 1}, "default")
	m, ok := engines["default"].(map[string]any)
	require.True(t, ok)
	m["url"] = dsnOf(t, engines, "default") + "&client_connection_check_interval=100"
	e := openConf(t, loadConf(t, engines))
	exec(t, e, "default", "CREATE TABLE items (name text)")
	admin := adminConn(t)

	var (
		queryErr error
		pid      int32
		panics   atomic.Int64
	)
	app := faultApp(fiberdb.Config{Engines: e}, &panics)
	probeRoute(app)
	app.Get("/slow", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		if pid, err = scalar[int32](ctx, db, "SELECT pg_backend_pid()"); err != nil {
			return err
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, "INSERT INTO items VALUES ('cancelled')"); err != nil {
			return err
		}
		qctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, queryErr = tx.Exec(qctx, "SELECT pg_sleep(5)")
		return queryErr
	})

	s := await(t, serveAsync(app, request(fiber.MethodGet, "default.test", "/slow")))
	require.Equal(t, fiber.StatusInternalServerError, s.status, s.body)
	require.ErrorIs(t, queryErr, context.DeadlineExceeded)
	fiberdbtest.NoLeaks(t, e)

	after := getProbe(t, app, "default.test")
	require.False(t, after.InTx, "no transaction carried over")
	if after.PID == pid {
		t.Log("the cancelled connection was cleaned and reused")
	}
	poll(t, "the abandoned session to end", func() bool { return backendGone(t, admin, pid) })
	require.Zero(t, count(t, e, "default", "SELECT count(*) FROM items"), "the cancelled transaction never committed")
	require.Zero(t, panics.Load())
}

// queryEndTracer reports, from inside the statement's Exec (so before the
// request connection's lock is let go), that a statement matching sql ended.
type queryEndTracer struct {
	sql  string
	done *atomic.Bool
}

type traceSQLKey struct{}

func (tr queryEndTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceSQLKey{}, data.SQL)
}

func (tr queryEndTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if sql, _ := ctx.Value(traceSQLKey{}).(string); sql == tr.sql { //nolint:errcheck // a missing value is not this statement
		tr.done.Store(true)
	}
}

// openTraced opens conf with tracer on every engine, with openConf's cleanups.
func openTraced(t *testing.T, conf *config.Config, tracer pgx.QueryTracer) *fiberdb.Engines {
	t.Helper()
	e, err := fiberdb.Open(t.Context(), conf, fiberdb.OpenOptions{
		Tracer: func(string) pgx.QueryTracer { return tracer },
	})
	require.NoError(t, err)
	t.Cleanup(func() { closeEngines(t, e) })
	t.Cleanup(func() { fiberdbtest.NoLeaks(t, e) })
	return e
}

// holdAdvisoryLock takes session advisory lock key on a session of the
// test's own, and returns the function that lets it go.
func holdAdvisoryLock(t *testing.T, dsn string, key int64) (unlock func()) {
	t.Helper()
	holder, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = holder.Close(context.Background()) })
	_, err = holder.Exec(t.Context(), "SELECT pg_advisory_lock($1)", key)
	require.NoError(t, err)
	return func() {
		_, err := holder.Exec(t.Context(), "SELECT pg_advisory_unlock($1)", key)
		require.NoError(t, err)
	}
}

// TestFaultConnUsedAfterRequest has a handler hand its connection to a
// goroutine that is still running a statement when the handler returns.
// The release waits for that statement; everything the goroutine tries
// afterwards answers ErrConnReleased; nothing panics and the connection
// goes back clean.
func TestFaultConnUsedAfterRequest(t *testing.T) {
	t.Parallel()
	const blocked = "SELECT pg_advisory_xact_lock(4242)"
	var queryDone atomic.Bool
	engines := engineMaps(t, map[string]any{"pool_max_conns": 1}, "default")
	e := openTraced(t, loadConf(t, engines), queryEndTracer{sql: blocked, done: &queryDone})
	admin := adminConn(t)
	// The test holds the advisory lock, so the goroutine's statement blocks
	// until the test lets it go.
	unlock := holdAdvisoryLock(t, dsnOf(t, engines, "default"), 4242)

	var (
		releasedWithQueryDone bool
		panics                atomic.Int64
	)
	pidCh := make(chan int32, 1)
	letReturn := make(chan struct{})
	released := make(chan struct{})
	type late struct{ first, exec, queryRow, query, begin, batch, copyFrom error }
	lateCh := make(chan late, 1)

	app := fiber.New()
	app.Use(fiberrecover.New(fiberrecover.Config{EnableStackTrace: true, StackTraceHandler: func(*fiber.Ctx, any) { panics.Add(1) }}))
	app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		if c.Path() == "/" {
			// fiberdb, registered after this, has released by now.
			releasedWithQueryDone = queryDone.Load()
			close(released)
		}
		return err
	})
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	probeRoute(app)
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		pid, err := scalar[int32](c.UserContext(), db, "SELECT pg_backend_pid()")
		if err != nil {
			return err
		}
		go func() {
			var l late
			// Contexts of its own: the request's may be gone.
			ctx := context.Background()
			_, l.first = db.Exec(ctx, blocked)
			<-released
			_, l.exec = db.Exec(ctx, "SELECT 1")
			l.queryRow = db.QueryRow(ctx, "SELECT 1").Scan(new(int))
			rows, qerr := db.Query(ctx, "SELECT 1") //nolint:rowserrcheck // there are no rows: only the error counts
			if rows != nil {
				rows.Close()
			}
			l.query = qerr
			_, l.begin = db.Begin(ctx)
			br := db.SendBatch(ctx, &pgx.Batch{})
			l.batch = br.Close()
			_, l.copyFrom = db.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"a"}, pgx.CopyFromRows(nil))
			lateCh <- l
		}()
		pidCh <- pid
		<-letReturn
		return c.SendString(strconv.Itoa(int(pid)))
	})

	res := serveAsync(app, request(fiber.MethodGet, "default.test", "/"))
	pid := <-pidCh
	poll(t, "the goroutine's statement to block", func() bool { return backendRunning(t, admin, pid, blocked) })
	close(letReturn)
	unlock()

	s := await(t, res)
	require.Equal(t, fiber.StatusOK, s.status, s.body)
	var l late
	select {
	case l = <-lateCh:
	case <-time.After(faultWait):
		t.Fatal("the goroutine never finished")
	}
	require.NoError(t, l.first, "the statement in progress when the request ended completed")
	require.True(t, releasedWithQueryDone, "the release waited for the statement in progress")
	for name, err := range map[string]error{
		"Exec": l.exec, "QueryRow": l.queryRow, "Query": l.query, "Begin": l.begin,
		"SendBatch": l.batch, "CopyFrom": l.copyFrom,
	} {
		require.ErrorIs(t, err, fiberdb.ErrConnReleased, name)
	}
	require.Zero(t, panics.Load())
	fiberdbtest.NoLeaks(t, e)

	after := getProbe(t, app, "default.test")
	require.Equal(t, pid, after.PID, "the connection went back to the pool clean")
	require.False(t, after.InTx)
}

// TestFaultSetupErrorsLeaveNothing checks that failed setups leave no pool,
// connection or goroutine behind. It is not parallel: the goroutine check
// compares against a snapshot taken while no other test runs.
func TestFaultSetupErrorsLeaveNothing(t *testing.T) {
	fiberdbtest.Server(t) // its process watcher is not ours to count
	baseline := goleak.IgnoreCurrent()

	t.Run("config errors open nothing", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			engines map[string]any
			err     error
			msg     string
		}{
			{
				"engine without url",
				map[string]any{"default": map[string]any{"pool_max_conns": 2}},
				config.ErrNoURL,
				`'SQLALCHEMY_ENGINES["default"]["url"]' must be defined.`,
			},
			{
				"unknown pool option",
				map[string]any{"default": map[string]any{"url": "postgres://u@127.0.0.1:1/x", "pool_max_conn": 2}},
				config.ErrInvalidOption, `'SQLALCHEMY_ENGINES["default"]["pool_max_conn"]' is not a known option (did you mean "pool_max_conns"?).`,
			},
		} {
			t.Run(tt.name, func(t *testing.T) {
				conf, err := config.Load(confKoanf(t, tt.engines))
				require.Nil(t, conf)
				require.ErrorIs(t, err, tt.err)
				require.EqualError(t, err, tt.msg)
			})
		}
	})

	t.Run("Open without a config", func(t *testing.T) {
		e, err := fiberdb.Open(t.Context(), nil)
		require.Nil(t, e)
		require.EqualError(t, err, "open engines: nil config")
	})

	t.Run("Open failing on the second engine", func(t *testing.T) {
		// pool_min_conns makes the first pool connect on its own, so a pool
		// left open would keep goroutines and a server session.
		engines := engineMaps(t, map[string]any{"pool_min_conns": 1}, "a", "b", "default")
		conf := loadConf(t, engines)
		boom := errors.New("boom")
		var configured []string
		e, err := fiberdb.Open(t.Context(), conf, fiberdb.OpenOptions{Configure: func(engine string, _ *pgxpool.Config) error {
			configured = append(configured, engine)
			if engine == "b" {
				return boom
			}
			return nil
		}})
		require.Nil(t, e)
		require.ErrorIs(t, err, boom)
		require.EqualError(t, err, `open engine "b": boom`)
		require.Equal(t, []string{"a", "b"}, configured)
		poll(t, "no session left on the databases", func() bool { return activity(t, engines) == 0 })
	})

	t.Run("pools of an unreachable server", func(t *testing.T) {
		conf := loadConf(t, map[string]any{"default": map[string]any{
			"url": "postgres://u@127.0.0.1:1/x?sslmode=disable", "pool_min_conns": 2,
		}})
		e, err := fiberdb.Open(t.Context(), conf)
		require.NoError(t, err)
		var panics atomic.Int64
		app := faultApp(fiberdb.Config{Engines: e, AcquireTimeout: time.Second}, &panics)
		app.Get("/", func(c *fiber.Ctx) error { _, err := fiberdb.Conn(c); return err })
		defer closeEngines(t, e)
		s := serve(app, request(fiber.MethodGet, "x.test", "/"))
		require.NoError(t, s.err)
		require.Equal(t, fiber.StatusServiceUnavailable, s.status, s.body)
		fiberdbtest.NoLeaks(t, e)
		require.Zero(t, panics.Load())
	})

	// fasthttp starts one goroutine per process, on its first request, that
	// refreshes the Date header for good; it holds no pool or connection.
	goleak.VerifyNone(t, baseline, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

// TestFaultResultsReadAfterRequest hands the results of the request
// connection, not the connection itself, to code that outlives the handler:
// rows read by a body stream writer, a row scanned by a goroutine, batch
// results read late, and rows a goroutine is still iterating while the
// request ends. Each must answer ErrConnReleased (or finish before the
// release), never race the release that destroys a busy connection.
//
//nolint:tparallel // rows share a one-connection pool and check it is idle after each
func TestFaultResultsReadAfterRequest(t *testing.T) {
	t.Parallel()
	e := openConf(t, loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default")))
	const total = 100000
	const series = "SELECT g FROM generate_series(1, 100000) g"

	type late struct {
		n   int
		err error
	}
	var (
		released chan struct{}
		lateCh   chan late
		panics   atomic.Int64
	)
	app := fiber.New()
	app.Use(fiberrecover.New(fiberrecover.Config{EnableStackTrace: true, StackTraceHandler: func(*fiber.Ctx, any) { panics.Add(1) }}))
	app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		if c.Path() != "/probe" {
			close(released) // fiberdb, registered after this, has released by now
		}
		return err
	})
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	probeRoute(app)
	count := func(rows pgx.Rows) late {
		var l late
		for rows.Next() {
			l.n++
		}
		rows.Close()
		l.err = rows.Err()
		return l
	}
	app.Get("/stream", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		rows, err := db.Query(c.UserContext(), series) //nolint:rowserrcheck // count checks rows.Err
		if err != nil {
			return err
		}
		// fasthttp runs the writer on its own goroutine, after the handler.
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			<-released
			l := count(rows)
			_, _ = fmt.Fprintf(w, "%d", l.n) // the test reads l, not the body
			lateCh <- l
		})
		return nil
	})
	app.Get("/row", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		row := db.QueryRow(c.UserContext(), "SELECT 1")
		go func() {
			<-released
			var v int
			lateCh <- late{n: v, err: row.Scan(&v)}
		}()
		return nil
	})
	app.Get("/batch", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue("SELECT 1")
		b.Queue(series)
		br := db.SendBatch(c.UserContext(), b)
		go func() {
			<-released
			_, err := br.Exec()
			rows, qerr := br.Query() //nolint:rowserrcheck // count checks rows.Err
			l := late{err: errors.Join(err, qerr, br.Close())}
			if rows != nil {
				l.n = count(rows).n
			}
			lateCh <- l
		}()
		return nil
	})
	app.Get("/racing", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		rows, err := db.Query(c.UserContext(), series) //nolint:rowserrcheck // count checks rows.Err
		if err != nil {
			return err
		}
		started := make(chan struct{})
		go func() {
			rows.Next() // one row in hand before the request ends
			close(started)
			l := count(rows)
			l.n++
			lateCh <- l
		}()
		<-started
		return nil
	})

	for _, tt := range []struct {
		path    string
		racing  bool
		wantErr error
	}{
		{path: "/stream", wantErr: fiberdb.ErrConnReleased},
		{path: "/row", wantErr: fiberdb.ErrConnReleased},
		{path: "/batch", wantErr: fiberdb.ErrConnReleased},
		{path: "/racing", racing: true},
	} {
		t.Run(tt.path, func(t *testing.T) {
			released, lateCh = make(chan struct{}), make(chan late, 1)
			before := getProbe(t, app, "default.test")
			s := await(t, serveAsync(app, request(fiber.MethodGet, "default.test", tt.path)))
			require.Equal(t, fiber.StatusOK, s.status, s.body)
			var l late
			select {
			case l = <-lateCh:
			case <-time.After(faultWait):
				t.Fatal("the late reader never finished")
			}
			if tt.racing {
				// Either the reader won and read everything, or the release
				// cut it off; nothing in between, and never a race.
				if l.err == nil {
					require.Equal(t, total, l.n)
				} else {
					require.ErrorIs(t, l.err, fiberdb.ErrConnReleased)
				}
			} else {
				require.ErrorIs(t, l.err, tt.wantErr)
			}
			require.Zero(t, panics.Load())
			fiberdbtest.NoLeaks(t, e)
			after := getProbe(t, app, "default.test")
			require.False(t, after.InTx)
			if l.err != nil {
				require.NotEqual(t, before.PID, after.PID, "a connection with unread results is destroyed")
			}
		})
	}
}

// TestFaultHandlesOutliveReusedStates decides issue 12's "gen" question:
// Conn is called on the request's goroutine only (its documented contract,
// Fiber's for every Ctx method), and the connection it returns is what other
// goroutines keep. Here every request hands its connection to a goroutine
// that keeps using it after the request ended, while later requests reuse
// the pooled request states (and so the very leases those goroutines point
// at). Under -race: no race, every late call answers ErrConnReleased and
// never reaches a later request's connection, and no pool slot leaks.
func TestFaultHandlesOutliveReusedStates(t *testing.T) {
	t.Parallel()
	e := openConf(t, loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 2}, "default")))
	var (
		late   sync.WaitGroup
		odd    atomic.Int64 // late calls that neither ran on their own lease nor answered ErrConnReleased
		panics atomic.Int64
	)
	app := faultApp(fiberdb.Config{Engines: e}, &panics)
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		if _, err := db.Exec(c.UserContext(), "SELECT 1"); err != nil {
			return err
		}
		ended := make(chan struct{})
		late.Go(func() {
			<-ended
			for range 20 {
				var pid int32
				err := db.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid)
				if err != nil && !errors.Is(err, fiberdb.ErrConnReleased) {
					odd.Add(1)
				}
			}
		})
		// The goroutine starts once the handler is done with c; fiberdb
		// releases right after, so some late calls race the release.
		defer close(ended)
		return c.SendString("ok")
	})
	var clients sync.WaitGroup
	statuses := make([][]int, 4)
	for w := range statuses {
		clients.Go(func() {
			for range 50 {
				statuses[w] = append(statuses[w], serve(app, request(fiber.MethodGet, "default.test", "/")).status)
			}
		})
	}
	clients.Wait()
	late.Wait()
	for _, ss := range statuses {
		for _, s := range ss {
			require.Equal(t, fiber.StatusOK, s)
		}
	}
	require.Zero(t, odd.Load(), "a late call reached a connection that was not its own")
	require.Zero(t, panics.Load())
	fiberdbtest.NoLeaks(t, e)
}

// Regression (issue 12): nothing bounded a request's database work. With
// QueryTimeout, a statement that runs too long and a backend that stopped
// answering (SIGSTOP) both end the request with a timeout, the connection is
// closed rather than reused, and nothing leaks. QueryTimeouts lifts the
// bound for one engine.
//
//nolint:tparallel // rows share one-connection pools and compare their pids
func TestFaultQueryTimeout(t *testing.T) {
	t.Parallel()
	e := openConf(t, loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default", "unbounded")))
	admin := adminConn(t)
	var (
		queryErr error
		pidCh    = make(chan int32, 1)
		proceed  = make(chan struct{})
		panics   atomic.Int64
	)
	app := faultApp(fiberdb.Config{
		Engines:       e,
		QueryTimeout:  200 * time.Millisecond,
		QueryTimeouts: map[string]time.Duration{"unbounded": -1},
	}, &panics)
	probeRoute(app)
	app.Get("/sleep", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		pid, err := scalar[int32](c.UserContext(), db, "SELECT pg_backend_pid()")
		if err != nil {
			return err
		}
		pidCh <- pid
		if c.Query("wait") != "" {
			<-proceed
		}
		_, queryErr = db.Exec(c.UserContext(), "SELECT pg_sleep($1::float8)", c.Query("s"))
		return queryErr
	})

	t.Run("a statement past the bound", func(t *testing.T) {
		before := getProbe(t, app, "default.test")
		s := await(t, serveAsync(app, request(fiber.MethodGet, "default.test", "/sleep?s=60")))
		<-pidCh
		require.Equal(t, fiber.StatusInternalServerError, s.status, s.body)
		require.True(t, pgconn.Timeout(queryErr), "%v", queryErr)
		fiberdbtest.NoLeaks(t, e)
		after := getProbe(t, app, "default.test")
		require.NotEqual(t, before.PID, after.PID, "the timed-out connection was closed, not reused")
		poll(t, "the abandoned backend to go", func() bool { return backendGone(t, admin, before.PID) })
	})

	t.Run("a stopped backend", func(t *testing.T) {
		res := serveAsync(app, request(fiber.MethodGet, "default.test", "/sleep?s=0&wait=1"))
		pid := <-pidCh
		// A stopped backend answers nothing, not even a cancel request: only
		// the socket deadline ends the wait.
		require.NoError(t, syscall.Kill(int(pid), syscall.SIGSTOP))
		t.Cleanup(func() { _ = syscall.Kill(int(pid), syscall.SIGCONT) }) //nolint:errcheck // a no-op once continued
		proceed <- struct{}{}
		s := await(t, res)
		require.NoError(t, syscall.Kill(int(pid), syscall.SIGCONT))
		require.Equal(t, fiber.StatusInternalServerError, s.status, s.body)
		require.True(t, pgconn.Timeout(queryErr), "%v", queryErr)
		fiberdbtest.NoLeaks(t, e)
	})

	t.Run("an engine without a bound", func(t *testing.T) {
		s := await(t, serveAsync(app, request(fiber.MethodGet, "unbounded.test", "/sleep?s=0.5")))
		<-pidCh
		require.Equal(t, fiber.StatusOK, s.status, s.body)
		fiberdbtest.NoLeaks(t, e)
	})
	require.Zero(t, panics.Load())
}

// Regression (issue 12): shutdown waited as long as a running query. Close
// waits CloseTimeout for acquired connections, then stops the statements
// still running on them and returns.
func TestFaultCloseIsBounded(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, nil, "default"))
	e, err := fiberdb.Open(t.Context(), conf, fiberdb.OpenOptions{CloseTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	admin := adminConn(t)
	db, release, err := e.Acquire(t.Context(), "default")
	require.NoError(t, err)
	pid, err := scalar[int32](t.Context(), db, "SELECT pg_backend_pid()")
	require.NoError(t, err)
	sleepErr := make(chan error, 1)
	go func() {
		_, execErr := db.Exec(context.Background(), "SELECT pg_sleep(60)")
		sleepErr <- errors.Join(execErr, release())
	}()
	poll(t, "the statement to start", func() bool { return backendRunning(t, admin, pid, "SELECT pg_sleep%") })

	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(faultWait):
		t.Fatalf("Close still waiting after %s for a running statement", faultWait)
	}
	err = <-sleepErr
	require.True(t, pgconn.Timeout(err), "the running statement was stopped: %v", err)
	poll(t, "the stopped statement's backend to go", func() bool { return backendGone(t, admin, pid) })
	pool, err := e.Default()
	require.NoError(t, err)
	require.Zero(t, pool.Stat().TotalConns(), "the pool is closed")
}

// Regression (issue 12): an idle pooled connection whose session the server
// ended (pg_terminate_backend, here; a restart does it to all of them) cost
// the next request that drew it a 500. Its first statement fails before it
// ran, so fiberdb takes another connection and runs it again: 200.
//
//nolint:tparallel // rows share a one-connection pool and compare its pids
func TestFaultIdleSessionEndedIsRetried(t *testing.T) {
	t.Parallel()
	e := openConf(t, loadConf(t, engineMaps(t, map[string]any{"pool_max_conns": 1}, "default")))
	admin := adminConn(t)
	var panics atomic.Int64
	app := faultApp(fiberdb.Config{Engines: e}, &panics)
	probeRoute(app)
	for _, first := range []string{"QueryRow", "Exec", "Query", "Begin"} {
		t.Run(first, func(t *testing.T) {
			route := "/first/" + first
			app.Get(route, func(c *fiber.Ctx) error {
				db, err := fiberdb.Conn(c)
				if err != nil {
					return err
				}
				ctx := c.UserContext()
				switch first {
				case "Exec":
					_, err = db.Exec(ctx, "SELECT 1")
				case "Query":
					var rows pgx.Rows
					if rows, err = db.Query(ctx, "SELECT 1"); err == nil {
						_, err = pgx.CollectRows(rows, pgx.RowTo[int32])
					}
				case "Begin":
					var tx pgx.Tx
					if tx, err = db.Begin(ctx); err == nil {
						err = tx.Rollback(ctx)
					}
				default:
					_, err = scalar[int32](ctx, db, "SELECT 1")
				}
				if err != nil {
					return err
				}
				return c.SendString("ok")
			})
			idle := getProbe(t, app, "default.test").PID
			var killed bool
			require.NoError(t, admin.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", idle).Scan(&killed))
			require.True(t, killed)
			poll(t, "the backend to exit", func() bool { return backendGone(t, admin, idle) })

			s := await(t, serveAsync(app, request(fiber.MethodGet, "default.test", route)))
			require.Equal(t, fiber.StatusOK, s.status, s.body)
			require.NotEqual(t, idle, getProbe(t, app, "default.test").PID)
			fiberdbtest.NoLeaks(t, e)
		})
	}

	// A first statement the server was running when an administrator ended
	// its session is not run again: the error took longer than a reply
	// already waiting on the socket.
	t.Run("a running first statement", func(t *testing.T) {
		var sleepErr error
		unbounded := faultApp(fiberdb.Config{Engines: e, QueryTimeout: -1}, &panics)
		unbounded.Get("/", func(c *fiber.Ctx) error {
			db, err := fiberdb.Conn(c)
			if err != nil {
				return err
			}
			_, sleepErr = db.Exec(c.UserContext(), "SELECT pg_sleep(60)")
			return sleepErr
		})
		res := serveAsync(unbounded, request(fiber.MethodGet, "default.test", "/"))
		pool, err := e.Default()
		require.NoError(t, err)
		var pid int32
		poll(t, "the statement to start", func() bool {
			// Running for 10× the retry window, so that its end can never
			// pass for a session that was already over.
			err := admin.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity
				WHERE datname = $1 AND query = 'SELECT pg_sleep(60)' AND state = 'active'
				AND now() - query_start > interval '250 milliseconds'`,
				pool.Config().ConnConfig.Database).Scan(&pid)
			return err == nil
		})
		var killed bool
		require.NoError(t, admin.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&killed))
		s := await(t, res)
		require.Equal(t, fiber.StatusInternalServerError, s.status, s.body)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, sleepErr, &pgErr)
		require.Equal(t, "57P01", pgErr.Code)
		fiberdbtest.NoLeaks(t, e)
	})
	require.Zero(t, panics.Load())
}

// TestFaultRestartUnderLoad is issue 12's acceptance run: 32 clients over 3
// tenants while PostgreSQL stops and starts again. Before, every pooled
// connection cost one 500 after the restart (its session had ended while it
// sat idle). Now no response is a 500: 200 while up, 503 while down, and 200
// again once it is back. The counts are logged for the README.
func TestFaultRestartUnderLoad(t *testing.T) {
	t.Parallel()
	pg := privateServer(t)
	tenants := []string{"acme", "globex", "initech"}
	engines := map[string]any{}
	for _, name := range append([]string{"default"}, tenants...) {
		require.NoError(t, pg.CreateDatabase(t.Context(), name, ""))
		engines[name] = map[string]any{
			"url": pg.ConnString(name), "hosts": []any{name + ".test"},
			"pool_max_conns": 8, "connect_timeout": "1s",
		}
	}
	e := openConf(t, loadConf(t, engines))
	var panics atomic.Int64
	app := faultApp(fiberdb.Config{Engines: e, AcquireTimeout: 2 * time.Second}, &panics)
	app.Get("/", sendDatabase)

	// A request counts in a phase when it started and ended in it; those
	// that span a stop or a start, or run while the server starts, count as
	// "around".
	const (
		up = iota
		down
		back
		around
	)
	var (
		phase  atomic.Int32
		counts [4][600]atomic.Int64 // by phase and status
		wrong  atomic.Int64         // a 200 from another tenant's database
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tenant := tenants[(w+i)%len(tenants)]
				ph := phase.Load()
				s := serve(app, request(fiber.MethodGet, tenant+".test", "/"))
				if phase.Load() != ph {
					ph = around
				}
				if s.err != nil || s.status >= 600 {
					counts[ph][599].Add(1)
					continue
				}
				if s.status == fiber.StatusOK && s.body != tenant {
					wrong.Add(1)
				}
				counts[ph][s.status].Add(1)
			}
		})
	}
	total := func(ph int) int64 {
		var n int64
		for i := range counts[ph] {
			n += counts[ph][i].Load()
		}
		return n
	}
	poll(t, "traffic while up", func() bool { return counts[up][fiber.StatusOK].Load() >= 500 })
	require.NoError(t, pg.Stop())
	phase.Store(down)
	poll(t, "traffic while down", func() bool { return total(down) >= 500 })
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	phase.Store(around) // the server accepts connections before Start returns
	require.NoError(t, pg.Start(ctx))
	phase.Store(back)
	poll(t, "traffic once back", func() bool { return counts[back][fiber.StatusOK].Load() >= 2000 })
	close(stop)
	wg.Wait()

	summary := map[string]map[int]int64{}
	for ph, name := range []string{"up", "down", "back", "around"} {
		summary[name] = map[int]int64{}
		for status := range counts[ph] {
			if n := counts[ph][status].Load(); n != 0 {
				summary[name][status] = n
			}
		}
	}
	t.Logf("responses by phase and status: %v", summary)
	for _, name := range []string{"up", "down", "back", "around"} {
		require.Zero(t, summary[name][fiber.StatusInternalServerError], "500s while %s", name)
		require.Zero(t, summary[name][599], "transport errors while %s", name)
	}
	require.Equal(t, map[int]int64{fiber.StatusServiceUnavailable: total(down)}, summary["down"], "only 503 while down")
	require.Zero(t, wrong.Load(), "a request reached another tenant's database")
	require.Zero(t, panics.Load())
	fiberdbtest.NoLeaks(t, e)
}
