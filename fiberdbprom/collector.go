// Package fiberdbprom exports fiberdb's pool and tenant-resolution statistics
// as Prometheus metrics.
//
// It lives apart from fiberdb so that the core does not depend on the
// Prometheus client. [NewCollector] reads [fiberdb.Engines.Stats] and
// [fiberdb.Engines.ResolveStats] at scrape time: it keeps no state of its own,
// never opens a pool, never acquires a connection and never touches the
// network, so a scrape works (and is cheap) even while a database is down or
// a pool exhausted.
//
// Mount it with promhttp, as the package example shows:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(fiberdbprom.NewCollector(engines))
//	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
package fiberdbprom

import (
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fiberdb/fiberdb/fiberdb"
)

// Resolution outcomes, the values of the "outcome" label of
// <namespace>_resolutions_total. Only OutcomeResolved has an engine label
// value; the others have engine="".
const (
	OutcomeResolved      = "resolved"       // the request reached an engine
	OutcomeNoTenant      = "no_tenant"      // 400: the request named no tenant
	OutcomeMalformed     = "malformed"      // 400: the tenant could not be read safely
	OutcomeUnknownTenant = "unknown_tenant" // 404: the tenant is not configured
	OutcomeRefused       = "refused"        // 403: Config.Authorize refused the tenant
	OutcomeFailed        = "failed"         // any other resolver error
)

// Options configures [NewCollector].
type Options struct {
	// Namespace prefixes every metric name: <Namespace>_pool_idle_conns.
	//
	// Optional. Default: "fiberdb"
	Namespace string
}

// NewCollector returns a collector of e's metrics. Every pool metric has an
// "engine" label, one series per engine whose pool is open (pools open on
// first use and may close again: FIBERDB.max_open_pools, pool_idle_timeout;
// a reopened pool's counters start again from zero, which Prometheus' rate
// treats as a counter reset). A tenant that shares another engine's pool
// (engine key pool) has no series of its own: its connections count once,
// in the pool engine's; its resolutions and 429s carry its own name:
//
//	fiberdb_pool_acquired_conns                    gauge    connections in use
//	fiberdb_pool_idle_conns                        gauge    connections idle in the pool
//	fiberdb_pool_constructing_conns                gauge    connections being opened
//	fiberdb_pool_total_conns                       gauge    acquired + idle + constructing
//	fiberdb_pool_max_conns                         gauge    pool_max_conns
//	fiberdb_pool_acquires_total                    counter  successful acquires
//	fiberdb_pool_acquire_duration_seconds_total    counter  time spent in successful acquires
//	fiberdb_pool_empty_acquires_total              counter  acquires that had to wait for a connection
//	fiberdb_pool_empty_acquire_wait_seconds_total  counter  time those acquires waited
//	fiberdb_pool_canceled_acquires_total           counter  acquires whose context ended first
//	fiberdb_pool_new_conns_total                   counter  connections opened
//	fiberdb_pool_max_lifetime_destroys_total       counter  connections closed for pool_max_conn_lifetime
//	fiberdb_pool_max_idle_destroys_total           counter  connections closed for pool_max_conn_idle_time
//
// and the middleware's tenant resolutions, summed over every middleware built
// on e, are
//
//	fiberdb_resolutions_total{outcome="resolved",engine="acme"}
//	fiberdb_resolutions_total{outcome="unknown_tenant",engine=""}
//
// with the outcomes named by the Outcome constants; every series is present
// from the first scrape, zero or not, for the engines e serves now (they
// follow [fiberdb.Engines.Apply]).
//
// The engine set as a whole reports
//
//	fiberdb_open_pools                  gauge    pools open now
//	fiberdb_pool_evictions_total        counter  pools closed by max_open_pools or pool_idle_timeout
//	fiberdb_tenant_busy_total{engine}   counter  acquires refused by tenant_max_concurrency (429)
//
// and, when FIBERDB.max_total_conns is set, the connection budget:
//
//	fiberdb_budget_max_conns            gauge    max_total_conns
//	fiberdb_budget_conns                gauge    server connections open or opening now
//	fiberdb_budget_peak_conns           gauge    the most there have been since Open
//	fiberdb_budget_waiting              gauge    acquires waiting for a connection to free
//	fiberdb_budget_waits_total          counter  acquires that found the budget spent and waited
//	fiberdb_budget_timeouts_total       counter  waits that ended without a connection (503)
//	fiberdb_budget_evictions_total      counter  idle connections closed to make room
//
// The collector is safe for concurrent scrapes. It builds its metrics from
// [fiberdb.Engines.Stats] at scrape time: it never opens a pool nor acquires
// a connection. Register it once per registry.
func NewCollector(e *fiberdb.Engines, opts ...Options) prometheus.Collector {
	if e == nil {
		panic("fiberdbprom: NewCollector requires Engines")
	}
	ns := "fiberdb"
	if len(opts) > 0 && opts[0].Namespace != "" {
		ns = opts[0].Namespace
	}
	c := &collector{engines: e}
	engine := []string{"engine"}
	poolMetric := func(name, help string, kind prometheus.ValueType, value func(*pgxpool.Stat) float64) {
		c.pool = append(c.pool, poolMetric{
			desc:  prometheus.NewDesc(prometheus.BuildFQName(ns, "pool", name), help, engine, nil),
			kind:  kind,
			value: value,
		})
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	poolMetric("acquired_conns", "Connections currently acquired from the engine's pool.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })
	poolMetric("idle_conns", "Connections currently idle in the engine's pool.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) })
	poolMetric("constructing_conns", "Connections currently being opened for the engine's pool.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) })
	poolMetric("total_conns", "Connections in the engine's pool: acquired, idle and constructing.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) })
	poolMetric("max_conns", "Maximum size of the engine's pool (pool_max_conns).", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })
	poolMetric("acquires_total", "Successful acquires from the engine's pool.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) })
	poolMetric("acquire_duration_seconds_total", "Total time spent in successful acquires from the engine's pool.", counter,
		func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() })
	poolMetric("empty_acquires_total", "Successful acquires that waited because the engine's pool had no idle connection.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })
	poolMetric("empty_acquire_wait_seconds_total", "Total time acquires waited for a connection when the engine's pool had none idle.", counter,
		func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() })
	poolMetric("canceled_acquires_total", "Acquires from the engine's pool whose context ended before a connection came.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) })
	poolMetric("new_conns_total", "Connections opened by the engine's pool.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) })
	poolMetric("max_lifetime_destroys_total", "Connections the engine's pool closed for exceeding pool_max_conn_lifetime.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) })
	poolMetric("max_idle_destroys_total", "Connections the engine's pool closed for exceeding pool_max_conn_idle_time.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) })

	c.resolutions = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "resolutions_total"),
		"Tenant resolutions by the fiberdb middleware, by outcome; engine is set only for outcome=\"resolved\".",
		[]string{"outcome", "engine"}, nil)
	c.busy = prometheus.NewDesc(prometheus.BuildFQName(ns, "tenant", "busy_total"),
		"Acquires refused because the tenant was at FIBERDB.tenant_max_concurrency (429).", engine, nil)
	setMetric := func(subsystem, name, help string, kind prometheus.ValueType, value func(*fiberdb.Stats) float64) {
		c.set = append(c.set, setMetric{
			desc:  prometheus.NewDesc(prometheus.BuildFQName(ns, subsystem, name), help, nil, nil),
			kind:  kind,
			value: value,
		})
	}
	setMetric("", "open_pools", "Pools open now.", gauge,
		func(s *fiberdb.Stats) float64 { return float64(s.OpenPools) })
	setMetric("pool", "evictions_total", "Pools closed by FIBERDB.max_open_pools or pool_idle_timeout.", counter,
		func(s *fiberdb.Stats) float64 { return float64(s.PoolEvictions) })
	c.budgetFrom = len(c.set)
	setMetric("budget", "max_conns", "FIBERDB.max_total_conns: the most server connections all pools may have open.", gauge,
		func(s *fiberdb.Stats) float64 { return float64(s.Budget.Max) })
	setMetric("budget", "conns", "Server connections open or being opened now, across all pools.", gauge,
		func(s *fiberdb.Stats) float64 { return float64(s.Budget.InUse) })
	setMetric("budget", "peak_conns", "The most server connections open at once since Open.", gauge,
		func(s *fiberdb.Stats) float64 { return float64(s.Budget.Peak) })
	setMetric("budget", "waiting", "Acquires waiting now for a server connection to free.", gauge,
		func(s *fiberdb.Stats) float64 { return float64(s.Budget.Waiting) })
	setMetric("budget", "waits_total", "Acquires that found the budget spent and waited.", counter,
		func(s *fiberdb.Stats) float64 { return float64(s.Budget.Waits) })
	setMetric("budget", "timeouts_total", "Budget waits that ended without a connection (503).", counter,
		func(s *fiberdb.Stats) float64 { return float64(s.Budget.Timeouts) })
	setMetric("budget", "evictions_total", "Idle connections closed to make room for another pool's.", counter,
		func(s *fiberdb.Stats) float64 { return float64(s.Budget.Evictions) })
	return c
}

type collector struct {
	engines     *fiberdb.Engines
	pool        []poolMetric
	set         []setMetric // c.set[budgetFrom:] only with a budget
	budgetFrom  int
	resolutions *prometheus.Desc
	busy        *prometheus.Desc
}

// setMetric is a metric of the engine set as a whole.
type setMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*fiberdb.Stats) float64
}

type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

// Describe sends every metric's descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.pool {
		ch <- m.desc
	}
	for _, m := range c.set {
		ch <- m.desc
	}
	ch <- c.resolutions
	ch <- c.busy
}

// Collect sends the current value of every series.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.engines.Stats()
	for _, name := range slices.Sorted(maps.Keys(st.Pools)) {
		for _, m := range c.pool {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st.Pools[name]), name)
		}
	}
	set := c.set
	if st.Budget.Max == 0 {
		set = set[:c.budgetFrom]
	}
	for _, m := range set {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&st))
	}
	for name, n := range st.TenantBusy {
		ch <- prometheus.MustNewConstMetric(c.busy, prometheus.CounterValue, float64(n), name)
	}

	rs := c.engines.ResolveStats()
	for name, n := range rs.Resolved {
		ch <- prometheus.MustNewConstMetric(c.resolutions, prometheus.CounterValue, float64(n), OutcomeResolved, name)
	}
	for _, o := range []struct {
		outcome string
		n       uint64
	}{
		{OutcomeNoTenant, rs.NoTenant},
		{OutcomeMalformed, rs.Malformed},
		{OutcomeUnknownTenant, rs.UnknownTenant},
		{OutcomeRefused, rs.Refused},
		{OutcomeFailed, rs.Failed},
	} {
		ch <- prometheus.MustNewConstMetric(c.resolutions, prometheus.CounterValue, float64(o.n), o.outcome, "")
	}
}
