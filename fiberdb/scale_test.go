package fiberdb_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// Tests of FIBERDB.max_total_conns, max_open_pools, pool_idle_timeout and
// tenant_max_concurrency (issue 14). They connect as a role that is not a
// superuser and has a connection limit equal to the budget: a superuser may
// use the reserved slots, which would hide a refusal, and a limited role makes
// the server refuse (SQLSTATE 53300) any connection past the budget, so a
// budget that leaked would fail these tests with a connect error.

// limitedRole creates a login role, not a superuser, that the server lets
// hold at most limit connections. It is dropped when the test ends, after
// the engines that use it closed (cleanups run last-in, first-out).
func limitedRole(t *testing.T, limit int) string {
	t.Helper()
	pg := fiberdbtest.Server(t)
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	role := "lim_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(t.Context(), pg.URL())
	require.NoError(t, err)
	defer admin.Close(context.WithoutCancel(t.Context()))
	_, err = admin.Exec(t.Context(), fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER CONNECTION LIMIT %d",
		pgx.Identifier{role}.Sanitize(), limit))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	return role
}

// asRole returns dsn with its user replaced by role.
func asRole(t *testing.T, dsn, role string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.User(role)
	return u.String()
}

// withSSLMode returns dsn with its sslmode set to mode.
func withSSLMode(t *testing.T, dsn, mode string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("sslmode", mode)
	u.RawQuery = q.Encode()
	return u.String()
}

// scaleEngines opens n tenant engines t0…t(n-1), each on its own database,
// connecting as role, with settings under FIBERDB and opts on every engine.
func scaleEngines(t *testing.T, n int, role string, settings, opts map[string]any) *fiberdb.Engines {
	t.Helper()
	return scaleEnginesSSL(t, n, role, "disable", settings, opts)
}

// scaleEnginesSSL is scaleEngines connecting with sslmode.
func scaleEnginesSSL(t *testing.T, n int, role, sslmode string, settings, opts map[string]any) *fiberdb.Engines {
	t.Helper()
	engines := map[string]any{}
	for i := range n {
		dsn := withSSLMode(t, asRole(t, fiberdbtest.Database(t), role), sslmode)
		m := map[string]any{"url": dsn, "hosts": []any{fmt.Sprintf("t%d.test", i)}}
		for k, v := range opts {
			m[k] = v
		}
		engines[fmt.Sprintf("t%d", i)] = m
	}
	conf, err := config.Load(confKoanf(t, engines, settings), config.Options{AllowEmpty: true})
	require.NoError(t, err)
	return openConf(t, conf)
}

// use runs one statement on engine through Engines.Acquire and releases.
func use(ctx context.Context, e *fiberdb.Engines, engine, sql string) error {
	db, release, err := e.Acquire(ctx, engine)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, sql)
	return errors.Join(err, release())
}

func TestOpenOpensNoPool(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 0) // any connection at all would be refused
	e := scaleEngines(t, 3, role, map[string]any{"max_total_conns": 2}, nil)
	s := e.Stats()
	require.Empty(t, s.Pools, "Open opens no pool")
	require.Zero(t, s.OpenPools)
	require.Zero(t, s.Budget.InUse)
}

func TestBudgetHeldUnderConcurrentTraffic(t *testing.T) {
	t.Parallel()
	// sslmode=prefer, pgx's default, against a server without TLS makes
	// every connect two sockets in a row: the TLS request the server
	// refuses, then the plain connection. The second must not lose the
	// first's slot to another waiter, or waiters hand slots round and none
	// connects.
	for _, sslmode := range []string{"disable", "prefer"} {
		t.Run("sslmode="+sslmode, func(t *testing.T) {
			t.Parallel()
			const budget, tenants, clients = 6, 40, 24
			role := limitedRole(t, budget)
			e := scaleEnginesSSL(t, tenants, role, sslmode, map[string]any{"max_total_conns": budget}, map[string]any{"pool_max_conns": 4})

			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				wg.Go(func() {
					for i := range 8 {
						ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
						err := use(ctx, e, fmt.Sprintf("t%d", (c*7+i*3)%tenants), "select pg_sleep(0.002)")
						cancel()
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) {
					t.Errorf("the server refused a connection (SQLSTATE %s): the budget let too many through", pgErr.Code)
				} else {
					t.Error(err)
				}
			}
			s := e.Stats()
			require.LessOrEqual(t, s.Budget.Peak, budget, "server connections never exceed max_total_conns")
			require.Equal(t, budget, s.Budget.Peak, "and the budget was used in full")
			require.Positive(t, s.Budget.Evictions, "idle connections of other pools made room")
		})
	}
}

func TestBudgetEvictsAnIdleConnectionAtOnce(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 1)
	e := scaleEngines(t, 2, role, map[string]any{"max_total_conns": 1}, nil)
	require.NoError(t, use(t.Context(), e, "t0", "select 1")) // t0 keeps an idle connection
	require.NoError(t, use(t.Context(), e, "t1", "select 1"))
	s := e.Stats()
	require.EqualValues(t, 1, s.Budget.Evictions, "t0's idle connection made room")
	require.Zero(t, s.Budget.Waits, "without waiting")
	require.Zero(t, s.Pools["t0"].IdleConns())
}

func TestBudgetExhaustedAnswers503WithRetryAfter(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 1)
	e := scaleEngines(t, 2, role, map[string]any{"max_total_conns": 1}, nil)
	// Long enough that the acquire reaches the budget's wait, which then
	// times out, even on a loaded machine.
	app := newApp(fiberdb.Config{Engines: e, AcquireTimeout: time.Second})
	app.Get("/", selectOne)

	db, release, err := e.Acquire(t.Context(), "t0") // the only connection, busy
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, release()) }) // idempotent: a failed assertion must not strand it
	_, err = db.Exec(t.Context(), "select 1")
	require.NoError(t, err)

	resp, err := app.Test(request(fiber.MethodGet, "t1.test", "/"), -1)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, fiber.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get(fiber.HeaderRetryAfter))
	require.EqualValues(t, 1, e.Stats().Budget.Timeouts)

	require.NoError(t, release())
	status, _ := get(t, app, "t1.test", "/")
	require.Equal(t, fiber.StatusOK, status, "once t0's connection is idle, t1 takes its slot")
}

func TestBudgetWaiterGetsReleasedConnection(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 1)
	e := scaleEngines(t, 2, role, map[string]any{"max_total_conns": 1}, nil)
	db, release, err := e.Acquire(t.Context(), "t0")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, release()) })
	_, err = db.Exec(t.Context(), "select 1")
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- use(t.Context(), e, "t1", "select 1") }()
	require.Eventually(t, func() bool { return e.Stats().Budget.Waiting == 1 }, 5*time.Second, time.Millisecond,
		"t1 waits while t0 holds the only connection")
	require.NoError(t, release())
	require.NoError(t, <-done, "t0's release wakes t1, which takes its slot")
}

func TestMaxOpenPoolsClosesLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 10)
	e := scaleEngines(t, 3, role, map[string]any{"max_open_pools": 2}, nil)
	for _, name := range []string{"t0", "t1", "t0", "t2"} {
		require.NoError(t, use(t.Context(), e, name, "select 1"))
		fiberdb.AdvanceClock(e) // a coarse clock tick between uses, so that LRU can tell them apart
	}
	s := e.Stats()
	require.Equal(t, 2, s.OpenPools)
	require.Contains(t, s.Pools, "t0", "t0 was used after t1")
	require.Contains(t, s.Pools, "t2")
	require.NotContains(t, s.Pools, "t1", "the least recently used pool closed")
	require.EqualValues(t, 1, s.PoolEvictions)

	require.NoError(t, use(t.Context(), e, "t1", "select 1"), "a closed pool reopens on the next use")
}

func TestMaxOpenPoolsNeverClosesAPoolInUse(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 10)
	e := scaleEngines(t, 2, role, map[string]any{"max_open_pools": 1}, nil)
	db, release, err := e.Acquire(t.Context(), "t0")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, release()) })

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = use(ctx, e, "t1", "select 1")
	require.ErrorIs(t, err, fiberdb.ErrUnavailable, "t1 waits for room and gives up: t0's pool is in use")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = db.Exec(t.Context(), "select 1")
	require.NoError(t, err, "t0's connection still works")

	done := make(chan error, 1)
	go func() { done <- use(t.Context(), e, "t1", "select 1") }()
	require.NoError(t, release())
	require.NoError(t, <-done, "t0's pool, idle now, makes room")
	require.NotContains(t, e.Stats().Pools, "t0")
}

func TestPinnedPoolIsNeverEvicted(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 10)
	e := scaleEngines(t, 2, role, map[string]any{"max_open_pools": 1, "pool_idle_timeout": "1s"}, nil)
	pool, err := e.Engine("t0") // handed out: its holder may use it at any time
	require.NoError(t, err)
	fiberdb.ReapIdle(e, time.Hour)
	require.NoError(t, use(t.Context(), e, "t1", "select 1"), "a pinned pool does not count against max_open_pools")
	require.NoError(t, pool.Ping(t.Context()), "the pinned pool is still open")
}

func TestIdlePoolClosesAndReopens(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 10)
	e := scaleEngines(t, 2, role, map[string]any{"pool_idle_timeout": "1m"}, nil)
	require.NoError(t, use(t.Context(), e, "t0", "select 1"))
	require.NoError(t, use(t.Context(), e, "t1", "select 1"))

	db, release, err := e.Acquire(t.Context(), "t1") // in use: must survive the timeout
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, release()) })
	fiberdb.ReapIdle(e, time.Minute)
	s := e.Stats()
	require.NotContains(t, s.Pools, "t0", "idle for the timeout: closed")
	require.Contains(t, s.Pools, "t1", "in use: kept open")
	_, err = db.Exec(t.Context(), "select 1")
	require.NoError(t, err)
	require.NoError(t, release())

	require.NoError(t, use(t.Context(), e, "t0", "select 1"), "the next request reopens it")
	require.Contains(t, e.Stats().Pools, "t0")
}

func TestTenantOverQuotaGets429AtOnce(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 10)
	e := scaleEngines(t, 2, role, map[string]any{"tenant_max_concurrency": 2, "max_total_conns": 10}, nil)
	app := newApp(fiberdb.Config{Engines: e, AcquireTimeout: time.Minute})
	app.Get("/", selectOne)

	var releases []func() error
	for range 2 {
		_, release, err := e.Acquire(t.Context(), "t0")
		require.NoError(t, err)
		releases = append(releases, release)
	}
	resp, err := app.Test(request(fiber.MethodGet, "t0.test", "/"), -1)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, fiber.StatusTooManyRequests, resp.StatusCode, "at once, although AcquireTimeout is a minute")
	require.Equal(t, "1", resp.Header.Get(fiber.HeaderRetryAfter))

	status, _ := get(t, app, "t1.test", "/")
	require.Equal(t, fiber.StatusOK, status, "other tenants are served")
	require.EqualValues(t, map[string]uint64{"t0": 1}, e.Stats().TenantBusy)

	for _, release := range releases {
		require.NoError(t, release())
	}
	status, _ = get(t, app, "t0.test", "/")
	require.Equal(t, fiber.StatusOK, status)
}

// Issue 14: Open of 10,000 engines opens no pool and no server connection
// (bench/README.md has its time). Every engine points at one real database,
// so a connection would show in pg_stat_activity.
func TestOpenTenThousandEnginesConnectsNothing(t *testing.T) {
	t.Parallel()
	db := engineMaps(t, nil, "db")
	dsn := dsnOf(t, db, "db")
	engines := make(map[string]any, 10000)
	for i := range 10000 {
		engines[fmt.Sprintf("t%d", i)] = map[string]any{"url": dsn, "hosts": []any{fmt.Sprintf("t%d.example.com", i)}}
	}
	conf, err := config.Load(confKoanf(t, engines), config.Options{AllowEmpty: true})
	require.NoError(t, err)
	e := openConf(t, conf)
	require.Len(t, e.Names(), 10000)
	require.Empty(t, e.Stats().Pools)
	require.Zero(t, activity(t, db), "no server connection")

	app := dbApp(e)
	status, _ := get(t, app, "t9999.example.com", "/")
	require.Equal(t, fiber.StatusOK, status)
	require.Len(t, e.Stats().Pools, 1, "the one tenant used has a pool, the 9,999 others none")
}

// Under a budget, the eviction spares the most used pools (up to half the
// budget's connections) and takes a less used pool's idle connection, even
// one idle for longer; a waiter that has waited half its time takes a
// spared pool's idle connection when no other is idle.
func TestBudgetSparesTheMostUsedPool(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 4)
	e := scaleEngines(t, 4, role, map[string]any{"max_total_conns": 4}, map[string]any{"pool_max_conns": 2})
	ctx := t.Context()
	hold := func(engine string) func() error {
		db, release, err := e.Acquire(ctx, engine)
		require.NoError(t, err)
		_, err = db.Exec(ctx, "select 1")
		require.NoError(t, err)
		return release
	}
	// t1 then t0 take two connections each, which go idle; t0 is then used
	// far more, and most recently. t1 is used last so that recency alone
	// would evict t0's.
	for _, engine := range []string{"t0", "t1"} {
		r1, r2 := hold(engine), hold(engine)
		require.NoError(t, errors.Join(r1(), r2()))
	}
	for range 20 {
		require.NoError(t, use(ctx, e, "t0", "select 1"))
	}
	require.NoError(t, use(ctx, e, "t1", "select 1"))
	fiberdb.Decay(e) // the reaper's second: t0 is the most used

	release2 := hold("t2") // over budget: evicts
	s := e.Stats()
	require.Equal(t, 2, int(s.Pools["t0"].IdleConns()), "the most used pool is spared")
	require.Equal(t, 1, int(s.Pools["t1"].IdleConns()), "the less used pool's idle connection made room")

	// t1's last idle connection goes to t3; t2 and t3 keep theirs busy. Now
	// only t0 has idle connections: a new acquire waits rather than take
	// one, and takes one once it has waited half its time
	// (budgetWaiter.impatient has the timing, under synctest).
	release3 := hold("t3")
	t.Cleanup(func() { require.NoError(t, errors.Join(release2(), release3())) })
	require.Equal(t, 2, int(e.Stats().Pools["t0"].IdleConns()))
	waits := e.Stats().Budget.Waits
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	db, release, err := e.Acquire(waitCtx, "t1")
	require.NoError(t, err, "an idle connection of a spared pool serves a waiter rather than letting it fail")
	_, err = db.Exec(ctx, "select 1")
	require.NoError(t, errors.Join(err, release()))
	require.Equal(t, waits+1, e.Stats().Budget.Waits, "it waited: t0's connections were spared at first")
	require.Equal(t, 1, int(e.Stats().Pools["t0"].IdleConns()))
}

// selectOne is a handler that runs select 1 on its request's connection.
func selectOne(c *fiber.Ctx) error {
	db, err := fiberdb.Conn(c)
	if err != nil {
		return err
	}
	_, err = db.Exec(c.UserContext(), "select 1")
	return err
}

// An Apply that retires an engine makes room under max_open_pools at once,
// while the requests that hold its pool's connections finish: an acquire
// waiting for room woke only when the last of them let go.
func TestMaxOpenPoolsRoomFromARetiredPool(t *testing.T) {
	t.Parallel()
	role := limitedRole(t, 10)
	engines := map[string]any{}
	for i := range 2 {
		engines[fmt.Sprintf("t%d", i)] = withSSLMode(t, asRole(t, fiberdbtest.Database(t), role), "disable")
	}
	load := func() *config.Config {
		t.Helper()
		conf, err := config.Load(confKoanf(t, engines, map[string]any{"max_open_pools": 1}), config.Options{AllowEmpty: true})
		require.NoError(t, err)
		return conf
	}
	e := openConf(t, load())
	_, release, err := e.Acquire(t.Context(), "t0") // t0's pool, in use, is the one allowed
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, release()) })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		done <- use(ctx, e, "t1", "select 1")
	}()
	select {
	case err := <-done:
		t.Fatalf("t1 got room while t0's pool was open and in use: %v", err)
	case <-time.After(200 * time.Millisecond): // t1 waits (or has not started yet: then it finds room below)
	}
	delete(engines, "t0")
	require.NoError(t, e.Apply(t.Context(), load()))
	require.NoError(t, <-done, "the Apply's retirement of t0 made room")
}
