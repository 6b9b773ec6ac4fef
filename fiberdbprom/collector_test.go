package fiberdbprom_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbprom"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

// poolMetrics are the per-engine metric names, in exposition order.
var poolMetrics = []string{
	"fiberdb_pool_acquire_duration_seconds_total",
	"fiberdb_pool_acquired_conns",
	"fiberdb_pool_acquires_total",
	"fiberdb_pool_canceled_acquires_total",
	"fiberdb_pool_constructing_conns",
	"fiberdb_pool_empty_acquire_wait_seconds_total",
	"fiberdb_pool_empty_acquires_total",
	"fiberdb_pool_idle_conns",
	"fiberdb_pool_max_conns",
	"fiberdb_pool_max_idle_destroys_total",
	"fiberdb_pool_max_lifetime_destroys_total",
	"fiberdb_pool_new_conns_total",
	"fiberdb_pool_total_conns",
}

func TestCollectorAfterTrafficToThreeTenants(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "pool_max_conns=3", "default", "acme", "globex", "initech")
	app := newApp(fiberdb.Config{Engines: e, Authorize: func(c *fiber.Ctx, _ string) error {
		if c.Get("X-Deny") != "" {
			return errors.New("denied")
		}
		return nil
	}})
	app.Get("/db", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		var one int
		if err := db.QueryRow(c.UserContext(), "SELECT 1").Scan(&one); err != nil {
			return err
		}
		return c.SendString(fiberdb.Tenant(c))
	})
	app.Get("/nodb", func(c *fiber.Ctx) error { return c.SendString(fiberdb.Tenant(c)) })

	usedConn := map[string]int{}
	for _, r := range []struct {
		host, path string
		status     int
	}{
		{"acme.test", "/db", 200},
		{"acme.test", "/db", 200},
		{"acme.test", "/db", 200},
		{"globex.test", "/db", 200},
		{"globex.test", "/db", 200},
		{"initech.test", "/db", 200},
		{"initech.test", "/nodb", 200}, // resolved, acquires nothing
		{"nobody.test", "/db", 404},
		{"bad%host", "/db", 400},
	} {
		status, body := fiberdbtest.Do(t, app, request(r.host, r.path))
		require.Equal(t, r.status, status, "%s%s: %s", r.host, r.path, body)
		if r.path == "/db" && status == 200 {
			usedConn[body]++
		}
	}
	denied := request("globex.test", "/db")
	denied.Header.Set("X-Deny", "1")
	status, _ := fiberdbtest.Do(t, app, denied)
	require.Equal(t, fiber.StatusForbidden, status)
	fiberdbtest.NoLeaks(t, e)

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(fiberdbprom.NewCollector(e)))

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP fiberdb_resolutions_total Tenant resolutions by the fiberdb middleware, by outcome; engine is set only for outcome="resolved".
# TYPE fiberdb_resolutions_total counter
fiberdb_resolutions_total{engine="",outcome="failed"} 0
fiberdb_resolutions_total{engine="",outcome="malformed"} 1
fiberdb_resolutions_total{engine="",outcome="no_tenant"} 0
fiberdb_resolutions_total{engine="",outcome="refused"} 1
fiberdb_resolutions_total{engine="",outcome="unknown_tenant"} 1
fiberdb_resolutions_total{engine="acme",outcome="resolved"} 3
fiberdb_resolutions_total{engine="default",outcome="resolved"} 0
fiberdb_resolutions_total{engine="globex",outcome="resolved"} 2
fiberdb_resolutions_total{engine="initech",outcome="resolved"} 2
# HELP fiberdb_pool_max_conns Maximum size of the engine's pool (pool_max_conns).
# TYPE fiberdb_pool_max_conns gauge
fiberdb_pool_max_conns{engine="acme"} 3
fiberdb_pool_max_conns{engine="globex"} 3
fiberdb_pool_max_conns{engine="initech"} 3
# HELP fiberdb_pool_acquired_conns Connections currently acquired from the engine's pool.
# TYPE fiberdb_pool_acquired_conns gauge
fiberdb_pool_acquired_conns{engine="acme"} 0
fiberdb_pool_acquired_conns{engine="globex"} 0
fiberdb_pool_acquired_conns{engine="initech"} 0
# HELP fiberdb_pool_canceled_acquires_total Acquires from the engine's pool whose context ended before a connection came.
# TYPE fiberdb_pool_canceled_acquires_total counter
fiberdb_pool_canceled_acquires_total{engine="acme"} 0
fiberdb_pool_canceled_acquires_total{engine="globex"} 0
fiberdb_pool_canceled_acquires_total{engine="initech"} 0
`), "fiberdb_resolutions_total", "fiberdb_pool_max_conns", "fiberdb_pool_acquired_conns",
		"fiberdb_pool_canceled_acquires_total"))

	families := gather(t, reg)
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	require.ElementsMatch(t, append([]string{"fiberdb_resolutions_total", "fiberdb_open_pools", "fiberdb_pool_evictions_total"},
		poolMetrics...), names, "no budget metrics without max_total_conns")
	for _, name := range poolMetrics {
		// default was never used, so its pool never opened: a scrape opens
		// none (thousands of idle tenants would otherwise each get a pool).
		require.Equal(t, []string{"acme", "globex", "initech"}, engineLabels(families[name]), name)
	}
	require.NotContains(t, e.Stats().Pools, "default", "the scrapes opened no pool")
	require.Equal(t, 3.0, families["fiberdb_open_pools"].GetMetric()[0].GetGauge().GetValue())

	require.Equal(t, map[string]int{"acme": 3, "globex": 2, "initech": 1}, usedConn)
	for _, engine := range []string{"acme", "globex", "initech"} {
		acquires := value(t, families, "fiberdb_pool_acquires_total", engine)
		require.GreaterOrEqual(t, acquires, float64(usedConn[engine]), engine)
		total := value(t, families, "fiberdb_pool_total_conns", engine)
		require.Equal(t, value(t, families, "fiberdb_pool_idle_conns", engine)+
			value(t, families, "fiberdb_pool_constructing_conns", engine), total, engine)
		if usedConn[engine] > 0 {
			require.GreaterOrEqual(t, value(t, families, "fiberdb_pool_new_conns_total", engine), 1.0, engine)
			require.Positive(t, value(t, families, "fiberdb_pool_acquire_duration_seconds_total", engine), engine)
		} else {
			require.Zero(t, value(t, families, "fiberdb_pool_new_conns_total", engine), engine)
		}
	}

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestCollectorNeverAcquires(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: an acquire would fail, and count as one.
	conf := loadConf(t, map[string]any{
		"default": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
		"acme":    "postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
	})
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	defer e.Close()
	c := fiberdbprom.NewCollector(e)

	for range 3 {
		// No pool is open, so no pool series: open_pools, pool_evictions_total,
		// two resolved and five other outcomes.
		require.Equal(t, 2+2+5, testutil.CollectAndCount(c))
	}
	require.Empty(t, e.Stats().Pools, "the scrapes opened no pool, so none could acquire")
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestCollectorConcurrentScrapes(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "", "default", "acme")
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		_, err = db.Exec(c.UserContext(), "SELECT 1")
		return err
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(fiberdbprom.NewCollector(e))

	const requests, scrapers = 20, 4
	var wg sync.WaitGroup
	errs := make(chan error, requests+scrapers)
	for range scrapers {
		wg.Go(func() {
			for range 10 {
				if _, err := reg.Gather(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range requests {
		wg.Go(func() {
			resp, err := app.Test(request("acme.test", "/"), -1)
			if err != nil {
				errs <- err
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	fiberdbtest.NoLeaks(t, e)
	families := gather(t, reg)
	require.Equal(t, float64(requests), resolved(t, families, "acme"))
	require.GreaterOrEqual(t, value(t, families, "fiberdb_pool_acquires_total", "acme"), float64(requests))
}

func TestCollectorNamespace(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, map[string]any{"default": "postgres://nobody@127.0.0.1:1/none"})
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	defer e.Close()

	c := fiberdbprom.NewCollector(e, fiberdbprom.Options{Namespace: "shop"})
	require.Equal(t, 1, testutil.CollectAndCount(c, "shop_open_pools"))
	require.Equal(t, 6, testutil.CollectAndCount(c, "shop_resolutions_total"))
	require.Zero(t, testutil.CollectAndCount(c, "fiberdb_open_pools"))
}

func TestNewCollectorPanicsWithoutEngines(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "fiberdbprom: NewCollector requires Engines", func() { fiberdbprom.NewCollector(nil) })
}

// openEngines opens one engine per name, each on a fresh database, routed by
// the host "<name>.test"; params, if any, are added to every DSN's query.
func openEngines(t *testing.T, params string, names ...string) *fiberdb.Engines {
	t.Helper()
	engines := map[string]any{}
	for _, name := range names {
		dsn := fiberdbtest.Database(t)
		if params != "" {
			dsn += "&" + params // Database's DSN already has a query
		}
		engines[name] = map[string]any{"url": dsn, "hosts": []any{name + ".test"}}
	}
	e, err := fiberdb.Open(t.Context(), loadConf(t, engines))
	require.NoError(t, err)
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { e.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Engines.Close did not return in 10s: a connection is still acquired")
		}
	})
	t.Cleanup(func() { fiberdbtest.NoLeaks(t, e) })
	return e
}

// loadConf loads engines, and settings under FIBERDB when given.
func loadConf(t *testing.T, engines map[string]any, settings ...map[string]any) *config.Config {
	t.Helper()
	k := koanf.New(".")
	m := map[string]any{config.DefaultKey: engines}
	if len(settings) > 0 {
		m[config.DefaultSettingsKey] = settings[0]
	}
	require.NoError(t, k.Load(confmap.Provider(m, ""), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	return conf
}

// newApp is a Fiber app with recover before fiberdb, as the README advises.
func newApp(cfg fiberdb.Config) *fiber.App {
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Use(fiberrecover.New())
	app.Use(fiberdb.New(cfg))
	return app
}

func request(host, path string) *http.Request {
	req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, path, http.NoBody)
	req.Host = host
	return req
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	families := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		families[mf.GetName()] = mf
	}
	return families
}

func engineLabels(mf *dto.MetricFamily) []string {
	var engines []string
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "engine" {
				engines = append(engines, l.GetValue())
			}
		}
	}
	return engines
}

// value returns the value of the series of metric name labelled engine.
func value(t *testing.T, families map[string]*dto.MetricFamily, name, engine string) float64 {
	t.Helper()
	mf, ok := families[name]
	require.True(t, ok, name)
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == engine {
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	require.Failf(t, "no series", "%s{engine=%q}", name, engine)
	return 0
}

func resolved(t *testing.T, families map[string]*dto.MetricFamily, engine string) float64 {
	t.Helper()
	for _, m := range families["fiberdb_resolutions_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["outcome"] == fiberdbprom.OutcomeResolved && labels["engine"] == engine {
			return m.GetCounter().GetValue()
		}
	}
	require.Failf(t, "no series", "resolved %q", engine)
	return 0
}

// Issue 14: the budget, its waits and evictions, and 429s by tenant.
func TestCollectorBudgetAndBusyTenants(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, map[string]any{
		"default": fiberdbtest.Database(t),
		"acme":    map[string]any{"url": fiberdbtest.Database(t), "hosts": []any{"acme.test"}},
	}, map[string]any{"max_total_conns": 1, "tenant_max_concurrency": 1})
	e := fiberdbtest.Open(t, conf)
	db, release, err := e.Acquire(t.Context(), "acme")
	require.NoError(t, err)
	_, err = db.Exec(t.Context(), "select 1")
	require.NoError(t, err)
	_, _, err = e.Acquire(t.Context(), "acme")
	require.ErrorIs(t, err, fiberdb.ErrTenantBusy)
	require.NoError(t, release())

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(fiberdbprom.NewCollector(e))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP fiberdb_budget_max_conns FIBERDB.max_total_conns: the most server connections all pools may have open.
# TYPE fiberdb_budget_max_conns gauge
fiberdb_budget_max_conns 1
# HELP fiberdb_budget_conns Server connections open or being opened now, across all pools.
# TYPE fiberdb_budget_conns gauge
fiberdb_budget_conns 1
# HELP fiberdb_budget_peak_conns The most server connections open at once since Open.
# TYPE fiberdb_budget_peak_conns gauge
fiberdb_budget_peak_conns 1
# HELP fiberdb_tenant_busy_total Acquires refused because the tenant was at FIBERDB.tenant_max_concurrency (429).
# TYPE fiberdb_tenant_busy_total counter
fiberdb_tenant_busy_total{engine="acme"} 1
`), "fiberdb_budget_max_conns", "fiberdb_budget_conns", "fiberdb_budget_peak_conns", "fiberdb_tenant_busy_total"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}
