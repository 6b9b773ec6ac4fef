package bench_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/benchapp"
	"github.com/fiberdb/fiberdb/tenancy"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

// poolSize is pool_max_conns of every pool, baseline or fiberdb.
const poolSize = 4

// nowhere is a DSN no benchmark ever dials: pools connect lazily.
const nowhere = "postgres://bench@127.0.0.1:1/none"

var tenants = benchapp.Tenants

// BenchmarkNoDB is a route that never touches the database: bare Fiber, Fiber
// with a middleware that only calls c.Next (the floor for any middleware),
// and fiberdb resolving one of three tenants by Host. Every app sets
// EnableTrustedProxyCheck, as a production app (and cmd/demo) must. "paired"
// alternates bare and fiberdb in chunks of 256 requests and reports both, the
// difference (extra-ns/op) and bare/fiberdb (ratio).
func BenchmarkNoDB(b *testing.B) {
	b.Run("bare", func(b *testing.B) { serve(b, newDriver(noDBApp(nil), "acme.localhost")) })
	b.Run("passthrough", func(b *testing.B) {
		serve(b, newDriver(noDBApp(func(c *fiber.Ctx) error { return c.Next() }), "acme.localhost"))
	})
	b.Run("fiberdb", func(b *testing.B) {
		serve(b, newDriver(noDBApp(fiberdb.New(fiberdb.Config{Engines: nowhereEngines(b)})), "acme.localhost"))
	})
	b.Run("paired", func(b *testing.B) {
		bare := newDriver(noDBApp(nil), "acme.localhost")
		fdb := newDriver(noDBApp(fiberdb.New(fiberdb.Config{Engines: nowhereEngines(b)})), "acme.localhost")
		paired(b, 256, "bare", bare.next, "fiberdb", fdb.next)
		bare.check(b)
		fdb.check(b)
	})
}

// BenchmarkSelect1 runs SELECT 1 per request, one request at a time: a
// hand-written handler that uses a pgxpool.Pool directly (pool.QueryRow
// acquires and releases inside), against fiberdb.Conn. Both use the very
// same pools (the baseline takes them from Engines.Engine), so the same
// server connections serve both and only the code path differs. The -3
// variants rotate the Host over three tenants: a hand-written map from
// c.Hostname() to pool, against fiberdb's resolver. "paired" and "paired-3"
// alternate baseline and fiberdb request by request and report both, and
// pgxpool/fiberdb (ratio: fiberdb's relative throughput). "pgxconn" and
// "paired-conn" use the second baseline, benchapp.PgxconnApp: a hand-written
// handler that holds one connection for the request, as fiberdb does.
func BenchmarkSelect1(b *testing.B) {
	b.Run("pgxpool", func(b *testing.B) {
		serve(b, newDriver(pgxpoolApp(b, openTenants(b, "acme")), "acme.localhost"))
	})
	b.Run("pgxconn", func(b *testing.B) {
		serve(b, newDriver(pgxconnApp(b, openTenants(b, "acme")), "acme.localhost"))
	})
	b.Run("fiberdb", func(b *testing.B) {
		serve(b, newDriver(benchapp.FiberdbApp(openTenants(b, "acme")), "acme.localhost"))
	})
	b.Run("pgxpool-3", func(b *testing.B) {
		serve(b, newDriver(pgxpoolApp(b, openTenants(b, tenants...)), hosts()...))
	})
	b.Run("fiberdb-3", func(b *testing.B) {
		serve(b, newDriver(benchapp.FiberdbApp(openTenants(b, tenants...)), hosts()...))
	})
	one := []string{"acme.localhost"}
	b.Run("paired", func(b *testing.B) { pairedSelect1(b, "pgxpool", pgxpoolApp, []string{"acme"}, one) })
	b.Run("paired-conn", func(b *testing.B) { pairedSelect1(b, "pgxconn", pgxconnApp, []string{"acme"}, one) })
	b.Run("paired-3", func(b *testing.B) { pairedSelect1(b, "pgxpool", pgxpoolApp, tenants, hosts()) })
}

// pairedSelect1 alternates the baseline that app builds and fiberdb, request
// by request, on the same engines (the named tenants), over hosts.
func pairedSelect1(b *testing.B, name string, app func(testing.TB, *fiberdb.Engines) *fiber.App, names, hosts []string) {
	b.Helper()
	e := openTenants(b, names...)
	base := newDriver(app(b, e), hosts...)
	fdb := newDriver(benchapp.FiberdbApp(e), hosts...)
	paired(b, 1, name, base.next, "fiberdb", fdb.next)
	base.check(b)
	fdb.check(b)
}

// BenchmarkLease is fiberdb's own cost per request that uses the database,
// without the round trip that dominates (and adds noise to) Select1: the
// handler only takes its connection and answers. The baseline acquires from
// the same pool and releases in a defer, by hand; fiberdb resolves the
// tenant, acquires through fiberdb.Conn and releases after the handler.
// "paired" alternates them in chunks of 256 requests and reports fiberdb's
// extra-ns/op, the number the HTTP comparison multiplies by its request rate.
func BenchmarkLease(b *testing.B) {
	e := openTenants(b, "acme")
	pool, err := e.Engine("acme")
	if err != nil {
		b.Fatal(err)
	}
	pools, err := benchapp.PoolsByHost(e)
	if err != nil {
		b.Fatal(err)
	}
	acquire := benchapp.NewApp()
	acquire.Get("/", func(c *fiber.Ctx) error {
		conn, err := pool.Acquire(c.UserContext())
		if err != nil {
			return err
		}
		defer conn.Release()
		return c.SendString("ok")
	})
	lease := benchapp.NewApp()
	lease.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	lease.Get("/", func(c *fiber.Ctx) error {
		if _, err := fiberdb.Conn(c); err != nil {
			return err
		}
		return c.SendString("ok")
	})
	base := newDriver(acquire, "acme.localhost")
	fdb := newDriver(lease, "acme.localhost")
	b.Run("pgxconn", func(b *testing.B) { serve(b, base) })
	b.Run("fiberdb", func(b *testing.B) { serve(b, fdb) })
	b.Run("paired", func(b *testing.B) { paired(b, 256, "pgxconn", base.next, "fiberdb", fdb.next) })
	b.Run("paired-cold", func(b *testing.B) {
		paired(b, 1, "pgxconn", func() { evictCaches(); base.next() }, "fiberdb", func() { evictCaches(); fdb.next() })
	})
	// One side alone, each request after an eviction, for cachesim.sh, which
	// runs them under valgrind and counts what they touch: their times mean
	// nothing.
	b.Run("cold-pgxconn", func(b *testing.B) { serveCold(b, base) })
	b.Run("cold-fiberdb", func(b *testing.B) { serveCold(b, fdb) })
	b.Run("cold-minimal", func(b *testing.B) { serveCold(b, newDriver(benchapp.MinimalLeaseApp(pools), "acme.localhost")) })
	base.check(b)
	fdb.check(b)
	if n := pool.Stat().AcquiredConns(); n != 0 {
		b.Fatalf("%d connections still acquired", n)
	}
}

// evictBuf is what evictCaches writes.
var evictBuf = make([]byte, 2<<20)

// evictCaches writes one byte in each cache line of 2 MiB, as a request's
// network I/O and the database's work do between two requests over HTTP:
// on the benchmark machine that leaves the next request's data and code out
// of the fast caches. Lease/paired-cold runs Lease/paired that way, one
// request per eviction: its extra-ns/op is fiberdb's cost when each request
// starts cold, several times the warm one, which is what the HTTP
// comparison sees. Both sides' times include the eviction, so only
// extra-ns/op means anything there.
func evictCaches() {
	for i := 0; i < len(evictBuf); i += 64 {
		evictBuf[i]++
	}
}

// BenchmarkResolver is tenancy.FromConfig's Host resolver alone, with 10 and
// with 10,000 engines configured; requests rotate over 10 hosts spread over
// the configured range. "paired" alternates the two in chunks of 4096 calls
// and reports hosts=10 / hosts=10000 as ratio (1 means no cost for size).
func BenchmarkResolver(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run("hosts="+strconv.Itoa(n), func(b *testing.B) {
			resolve := resolver(b, n)
			b.ReportAllocs()
			for b.Loop() {
				resolve()
			}
		})
	}
	b.Run("paired", func(b *testing.B) {
		paired(b, 4096, "hosts10", resolver(b, 10), "hosts10000", resolver(b, 10_000))
	})
}

// resolver returns a call of FromConfig's resolver, configured with n hosts,
// on the next of 10 requests.
func resolver(b *testing.B, n int) func() {
	b.Helper()
	engines := map[string]any{"default": nowhere}
	// Names of one length for every n, so that only the number of tenants
	// differs between the variants, not the bytes hashed and compared.
	tenant := func(i int) string { return fmt.Sprintf("t%05d", i) }
	for i := range n {
		name := tenant(i)
		engines[name] = map[string]any{"url": nowhere, "hosts": []any{name + ".example.com"}}
	}
	resolve := tenancy.FromConfig(load(b, engines))
	app := benchapp.NewApp()
	cs := make([]*fiber.Ctx, 10)
	for i := range cs {
		c := app.AcquireCtx(requestCtx(tenant(i*n/10) + ".example.com"))
		if _, err := resolve(c); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { app.ReleaseCtx(c) })
		cs[i] = c
	}
	i := 0
	return func() {
		_, _ = resolve(cs[i]) //nolint:errcheck // every host was checked above
		i++
		if i == len(cs) {
			i = 0
		}
	}
}

// serve calls d once per iteration, then checks the responses.
func serve(b *testing.B, d *driver) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		d.next()
	}
	d.check(b)
}

// serveCold is serve with the caches evicted before each request.
func serveCold(b *testing.B, d *driver) {
	b.Helper()
	for b.Loop() {
		evictCaches()
		d.next()
	}
	d.check(b)
}

// paired times base and cand in alternation, chunk calls at a time, swapping
// which goes first every iteration so that neither always runs on a warmer
// cache, and reports each one's time per call (as <name>-ns/op), cand's
// extra time per call (extra-ns/op), and base/cand (ratio: cand's throughput
// relative to base), all measured in the same run. Its own ns/op is the time
// of one chunk of each.
func paired(b *testing.B, chunk int, baseName string, base func(), candName string, cand func()) {
	b.Helper()
	timed := func(f func()) time.Duration {
		start := time.Now()
		for range chunk {
			f()
		}
		return time.Since(start)
	}
	var tBase, tCand time.Duration
	iters := 0
	for b.Loop() {
		if iters%2 == 0 {
			tBase += timed(base)
			tCand += timed(cand)
		} else {
			tCand += timed(cand)
			tBase += timed(base)
		}
		iters++
	}
	calls := float64(iters * chunk)
	b.ReportMetric(float64(tBase.Nanoseconds())/calls, baseName+"-ns/op")
	b.ReportMetric(float64(tCand.Nanoseconds())/calls, candName+"-ns/op")
	b.ReportMetric(float64((tCand-tBase).Nanoseconds())/calls, "extra-ns/op")
	b.ReportMetric(float64(tBase)/float64(tCand), "ratio")
}

// driver serves requests through an app's handler, in-process, on reused
// request contexts: one per host, in rotation.
type driver struct {
	h    fasthttp.RequestHandler
	ctxs []*fasthttp.RequestCtx
	i    int
}

// newDriver returns a driver for app with one request context per host,
// each already served once (which opens the pools' first connections).
func newDriver(app *fiber.App, hosts ...string) *driver {
	d := &driver{h: app.Handler()}
	for _, host := range hosts {
		fctx := requestCtx(host)
		d.h(fctx)
		d.ctxs = append(d.ctxs, fctx)
	}
	return d
}

func (d *driver) next() {
	d.h(d.ctxs[d.i])
	d.i++
	if d.i == len(d.ctxs) {
		d.i = 0
	}
}

// check fails b unless every host's last response was 200 "ok".
func (d *driver) check(tb testing.TB) {
	tb.Helper()
	for _, fctx := range d.ctxs {
		if code, body := fctx.Response.StatusCode(), string(fctx.Response.Body()); code != fiber.StatusOK || body != "ok" {
			tb.Fatalf("%s: status %d: %s", fctx.Request.Host(), code, body)
		}
	}
}

func requestCtx(host string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(fiber.MethodGet)
	req.SetRequestURI("/")
	req.Header.SetHost(host)
	fctx := new(fasthttp.RequestCtx)
	fctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return fctx
}

func hosts() []string {
	hs := make([]string, len(tenants))
	for i, t := range tenants {
		hs[i] = t + ".localhost"
	}
	return hs
}

// noDBApp answers "ok" on GET /, behind mw when it is not nil.
func noDBApp(mw fiber.Handler) *fiber.App {
	app := benchapp.NewApp()
	if mw != nil {
		app.Use(mw)
	}
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return app
}

// nowhereEngines are a default engine and the tenants, routed by
// "<name>.localhost", whose pools would connect to nothing.
func nowhereEngines(tb testing.TB) *fiberdb.Engines {
	tb.Helper()
	engines := map[string]any{"default": nowhere}
	for _, t := range tenants {
		engines[t] = map[string]any{"url": nowhere, "hosts": []any{t + ".localhost"}}
	}
	return open(tb, engines)
}

// openTenants opens a default engine and the named tenants, each on its own
// fresh database, routed by "<name>.localhost", every pool poolSize large.
func openTenants(tb testing.TB, names ...string) *fiberdb.Engines {
	tb.Helper()
	engines := map[string]any{"default": map[string]any{"url": fiberdbtest.Database(tb), "pool_max_conns": poolSize}}
	for _, name := range names {
		engines[name] = map[string]any{
			"url": fiberdbtest.Database(tb), "pool_max_conns": poolSize, "hosts": []any{name + ".localhost"},
		}
	}
	return open(tb, engines)
}

func open(tb testing.TB, engines map[string]any) *fiberdb.Engines {
	tb.Helper()
	e, err := benchapp.Open(context.Background(), engines)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	return e
}

func load(tb testing.TB, engines map[string]any) *config.Config {
	tb.Helper()
	conf, err := benchapp.Load(engines)
	if err != nil {
		tb.Fatal(err)
	}
	return conf
}

// pgxpoolApp is benchapp.PgxpoolApp on e's only tenant, or
// benchapp.PgxpoolHostApp over its tenants.
func pgxpoolApp(tb testing.TB, e *fiberdb.Engines) *fiber.App {
	tb.Helper()
	pools, err := benchapp.PoolsByHost(e)
	if err != nil {
		tb.Fatal(err)
	}
	if len(pools) == 1 {
		return benchapp.PgxpoolApp(pools["acme.localhost"])
	}
	return benchapp.PgxpoolHostApp(pools)
}

// pgxconnApp is benchapp.PgxconnApp on e's acme pool.
func pgxconnApp(tb testing.TB, e *fiberdb.Engines) *fiber.App {
	tb.Helper()
	pool, err := e.Engine("acme")
	if err != nil {
		tb.Fatal(err)
	}
	return benchapp.PgxconnApp(pool)
}
