package fiberdb

import "github.com/jackc/pgx/v5/pgxpool"

// Stats is a picture of an [Engines] at one moment, from [Engines.Stats].
type Stats struct {
	// Pools holds the statistics of every open pool, by engine. An engine
	// whose pool is not open (never used, or closed as idle) is absent.
	Pools map[string]*pgxpool.Stat
	// OpenPools counts the open pools.
	OpenPools int
	// Draining holds the statistics of pools that are closing, by engine:
	// evicted, retired by Apply, or shut by Close, until every connection
	// is back. A connection still acquired here is held by a request or a
	// caller that has not finished.
	Draining map[string]*pgxpool.Stat
	// PoolEvictions counts pools closed by FIBERDB.max_open_pools or
	// pool_idle_timeout since Open.
	PoolEvictions uint64
	// TenantBusy counts, by engine, the acquires refused by
	// FIBERDB.tenant_max_concurrency (429) since Open, or since the Apply
	// that last replaced the engine, which starts its count again (as a
	// Prometheus counter reset); engines with none are absent.
	TenantBusy map[string]uint64
	// Budget describes FIBERDB.max_total_conns; its zero value means the
	// budget is off.
	Budget BudgetStats
}

// BudgetStats describes the connection budget (FIBERDB.max_total_conns).
type BudgetStats struct {
	// Max is max_total_conns; 0 means no budget.
	Max int
	// InUse counts the server connections open or being opened now.
	InUse int
	// Peak is the most InUse has been since Open.
	Peak int
	// Waiting counts acquires waiting for a connection to free now.
	Waiting int
	// Waits counts acquires that found the budget spent and waited.
	Waits uint64
	// Timeouts counts waits that ended without a connection (503).
	Timeouts uint64
	// Evictions counts idle connections closed to make room for another
	// pool's.
	Evictions uint64
}
