package fiberdb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// soakKinds are the ways a soak request ends, each with the status it must
// get: a plain success, a returned error, a panic, a transaction left open,
// and a statement cancelled by the handler's own deadline.
var soakKinds = []struct {
	path   string
	status int
}{
	{"/ok", fiber.StatusOK},
	{"/error", fiber.StatusTeapot},
	{"/panic", fiber.StatusInternalServerError},
	{"/open-tx", fiber.StatusAccepted},
	{"/slow", fiber.StatusGatewayTimeout},
}

const (
	soakClients  = 16
	soakRequests = 10240 // per test run, spread evenly over kinds and tenants
)

// soakTally is what one client saw, kept on its own goroutine and read by the
// test goroutine after every client has finished.
type soakTally struct {
	byKind [5]map[int]int // status counts per soakKinds index
	wrong  []string       // responses that carried another tenant's marker
	errs   []error        // app.Test failures
}

// TestSoak drives 10,240 mixed requests over three tenants from 16
// concurrent clients, then checks that every request got its status and only
// its own tenant's data, that nothing left open was committed, and that no
// connection stays acquired and no goroutine outlives the engines.
//
// It is not parallel: the goroutine check compares against a snapshot, which
// another test running at the same time would spoil. Skipped with -short.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped with -short")
	}
	fiberdbtest.Server(t) // its process watcher is not ours to count
	baseline := goleak.IgnoreCurrent()
	begin := time.Now()

	tenants := []string{"acme", "globex", "initech"}
	engines := map[string]any{}
	for _, name := range append([]string{"default"}, tenants...) {
		engines[name] = map[string]any{
			// A cancelled statement's session would sleep on after its
			// connection is destroyed; this makes the server notice sooner.
			"url":            fiberdbtest.Database(t) + "&client_connection_check_interval=50",
			"hosts":          []any{name + ".test"},
			"pool_max_conns": 8,
		}
	}
	e, err := fiberdb.Open(t.Context(), loadConf(t, engines))
	require.NoError(t, err)
	t.Cleanup(func() { closeEngines(t, e) }) // a no-op after the Close below

	exec(t, e, "default", "CREATE TABLE tenants (name text PRIMARY KEY)")
	for _, name := range tenants {
		pool, err := e.Default()
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), "INSERT INTO tenants VALUES ($1)", name)
		require.NoError(t, err)
	}
	for _, name := range e.Names() {
		exec(t, e, name, "CREATE TABLE marker (tenant text NOT NULL); CREATE TABLE scratch (tenant text NOT NULL, n int NOT NULL)")
		pool, err := e.Engine(name)
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), "INSERT INTO marker VALUES ($1)", name)
		require.NoError(t, err)
	}

	var panics, foreign atomic.Int64
	var lastConnErr atomic.Value // for the failure message, should a request get no connection
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Use(fiberrecover.New(fiberrecover.Config{EnableStackTrace: true, StackTraceHandler: func(*fiber.Ctx, any) { panics.Add(1) }}))
	// Sixteen clients share pools of eight, so requests do wait for a
	// connection; the timeout is generous because a 503 on a starved CI
	// machine is not what this test is about (TestExhaustedPoolAnswers503 is).
	app.Use(fiberdb.New(fiberdb.Config{Engines: e, AcquireTimeout: 10 * time.Second}))
	app.Get("/:kind", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			lastConnErr.Store(err.Error())
			return err
		}
		ctx := c.UserContext()
		marker, err := scalar[string](ctx, db, "SELECT tenant FROM marker")
		if err != nil {
			return err
		}
		c.Set("X-Marker", marker) // kept on error and panic responses too
		if marker != fiberdb.Tenant(c) {
			foreign.Add(1)
		}
		switch c.Params("kind") {
		case "ok":
			land, err := fiberdb.ConnFor(c, "default")
			if err != nil {
				return err
			}
			known, err := scalar[bool](ctx, land, "SELECT EXISTS (SELECT FROM tenants WHERE name = $1)", marker)
			if err != nil {
				return err
			}
			if !known {
				return fiber.NewError(fiber.StatusConflict, "tenant unknown to the landlord")
			}
			return c.SendString(marker)
		case "error":
			return fiber.NewError(fiber.StatusTeapot, "soak error")
		case "panic":
			panic("soak panic")
		case "open-tx":
			tx, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO scratch VALUES ($1, $2)", marker, c.QueryInt("n")); err != nil {
				return err
			}
			return c.SendStatus(fiber.StatusAccepted) // never committed
		case "slow":
			qctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			_, err := db.Exec(qctx, "SELECT pg_sleep(1)")
			if errors.Is(err, context.DeadlineExceeded) {
				return fiber.NewError(fiber.StatusGatewayTimeout, "query cancelled")
			}
			return err
		}
		return fiber.ErrNotFound
	})

	tallies := make([]soakTally, soakClients)
	trafficStart := time.Now()
	var wg sync.WaitGroup
	for w := range soakClients {
		wg.Go(func() {
			tl := &tallies[w]
			for k := range tl.byKind {
				tl.byKind[k] = map[int]int{}
			}
			for i := range soakRequests / soakClients {
				k, tenant := soakRequest(w, i, tenants)
				req := request(fiber.MethodGet, tenant+".test", soakKinds[k].path+"?n="+strconv.Itoa(i))
				resp, err := app.Test(req, -1)
				if err != nil {
					tl.errs = append(tl.errs, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close() // an in-memory body
				if err != nil {
					tl.errs = append(tl.errs, err)
					continue
				}
				tl.byKind[k][resp.StatusCode]++
				if got := resp.Header.Get("X-Marker"); got != tenant || (k == 0 && string(body) != tenant) {
					tl.wrong = append(tl.wrong, fmt.Sprintf("%s%s: marker %q, body %q", tenant, soakKinds[k].path, got, body))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(trafficStart)

	perKind := soakRequests / len(soakKinds)
	for k, kind := range soakKinds {
		total := map[int]int{}
		for _, tl := range tallies {
			for status, n := range tl.byKind[k] {
				total[status] += n
			}
		}
		require.Equal(t, map[int]int{kind.status: perKind}, total, "%s (last acquire error: %v)", kind.path, lastConnErr.Load())
	}
	for _, tl := range tallies {
		require.Empty(t, tl.errs)
		require.Empty(t, tl.wrong, "a request saw another tenant's data")
	}
	require.Zero(t, foreign.Load(), "a handler read another tenant's marker")
	require.EqualValues(t, perKind, panics.Load())

	sentTo := map[string]uint64{}
	for w := range soakClients {
		for i := range soakRequests / soakClients {
			_, tenant := soakRequest(w, i, tenants)
			sentTo[tenant]++
		}
	}
	stats := e.ResolveStats()
	for _, name := range tenants {
		require.Equal(t, sentTo[name], stats.Resolved[name], name)
	}
	fiberdbtest.NoLeaks(t, e)
	for _, name := range tenants {
		require.Zero(t, count(t, e, name, "SELECT count(*) FROM scratch"), "%s: a transaction left open was committed", name)
	}

	closeEngines(t, e)
	poll(t, "no server session left on the soak databases", func() bool { return activity(t, engines) == 0 })
	// fasthttp starts one goroutine per process, on its first request, that
	// refreshes the Date header for good; it holds no pool or connection.
	goleak.VerifyNone(t, baseline, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
	t.Logf("%d requests from %d clients served in %s (%.0f/s); whole test %s",
		soakRequests, soakClients, elapsed.Round(time.Millisecond), float64(soakRequests)/elapsed.Seconds(), time.Since(begin).Round(time.Millisecond))
}

// soakRequest is request i of client w: every kind in turn, each group of
// kinds for the next tenant.
func soakRequest(w, i int, tenants []string) (kind int, tenant string) {
	return i % len(soakKinds), tenants[(w+i/len(soakKinds))%len(tenants)]
}
