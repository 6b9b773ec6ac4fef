package config

import (
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Bounds of the pool options. Counts above them would make pgx allocate
// for them up front (pgxpool sizes channels by pool_max_conns, pgx a map per
// connection by each cache capacity) or open that many connections at once
// when the pool is created; periods below them close connections faster
// than requests can use them.
const (
	maxPoolConns     = 10_000
	maxEagerConns    = 100 // pool_min_conns and pool_min_idle_conns
	maxCacheCapacity = 10_000
	minPeriod        = time.Second            // lifetime, idle time, health check period
	minTimeout       = 100 * time.Millisecond // connect and ping timeouts
)

// poolOptions are the per-engine options Load knows, each applied onto the
// pgxpool.Config that pgxpool.ParseConfig built from the engine's url. An
// option is applied when its key is present, even when its value is zero.
// The same functions check the pool_* parameters of a url.
var poolOptions = map[string]func(pc *pgxpool.Config, v any) error{
	"pool_max_conns":                intOption(1, maxPoolConns, func(pc *pgxpool.Config, n int32) { pc.MaxConns = n }),
	"pool_min_conns":                intOption(0, maxEagerConns, func(pc *pgxpool.Config, n int32) { pc.MinConns = n }),
	"pool_min_idle_conns":           intOption(0, maxEagerConns, func(pc *pgxpool.Config, n int32) { pc.MinIdleConns = n }),
	"pool_max_conn_lifetime":        durationOption(minPeriod, true, func(pc *pgxpool.Config, d time.Duration) { pc.MaxConnLifetime = d }),
	"pool_max_conn_lifetime_jitter": durationOption(0, false, func(pc *pgxpool.Config, d time.Duration) { pc.MaxConnLifetimeJitter = d }),
	"pool_max_conn_idle_time":       durationOption(minPeriod, false, func(pc *pgxpool.Config, d time.Duration) { pc.MaxConnIdleTime = d }),
	// pgxpool feeds this to time.NewTicker, which panics on zero.
	"pool_health_check_period": durationOption(minPeriod, false, func(pc *pgxpool.Config, d time.Duration) { pc.HealthCheckPeriod = d }),
	"pool_ping_timeout":        durationOption(minTimeout, true, func(pc *pgxpool.Config, d time.Duration) { pc.PingTimeout = d }),
	"connect_timeout":          durationOption(minTimeout, true, func(pc *pgxpool.Config, d time.Duration) { pc.ConnConfig.ConnectTimeout = d }),
	"statement_cache_capacity": intOption(0, maxCacheCapacity, func(pc *pgxpool.Config, n int32) {
		pc.ConnConfig.StatementCacheCapacity = int(n)
	}),
	"description_cache_capacity": intOption(0, maxCacheCapacity, func(pc *pgxpool.Config, n int32) {
		pc.ConnConfig.DescriptionCacheCapacity = int(n)
	}),
	"default_query_exec_mode": execModeOption,
}

// PoolOptions returns the names of the per-engine pool options, sorted.
func PoolOptions() []string {
	names := make([]string, 0, len(poolOptions))
	for name := range poolOptions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func intOption(least, most int32, set func(*pgxpool.Config, int32)) func(*pgxpool.Config, any) error {
	return func(pc *pgxpool.Config, v any) error {
		n, err := toInt(v)
		if err != nil {
			return errNotInt
		}
		if n < int64(least) || n > int64(most) {
			return decodeError("must be between " + strconv.Itoa(int(least)) + " and " + strconv.Itoa(int(most)))
		}
		set(pc, int32(n)) //nolint:gosec // G115: n is range-checked just above
		return nil
	}
}

// durationOption reads a duration of at least least; zeroOff also accepts 0,
// which turns the option off.
func durationOption(least time.Duration, zeroOff bool, set func(*pgxpool.Config, time.Duration)) func(*pgxpool.Config, any) error {
	return func(pc *pgxpool.Config, v any) error {
		d, err := toDuration(v)
		if err != nil {
			return err
		}
		switch {
		case d == 0 && zeroOff:
		case d < least && zeroOff:
			return decodeError("must be 0 (off) or at least " + least.String())
		case d < least:
			return decodeError("must be at least " + least.String())
		}
		set(pc, d)
		return nil
	}
}

var execModes = map[string]pgx.QueryExecMode{
	"cache_statement": pgx.QueryExecModeCacheStatement,
	"cache_describe":  pgx.QueryExecModeCacheDescribe,
	"describe_exec":   pgx.QueryExecModeDescribeExec,
	"exec":            pgx.QueryExecModeExec,
	"simple_protocol": pgx.QueryExecModeSimpleProtocol,
}

func execModeOption(pc *pgxpool.Config, v any) error {
	s, _ := toString(v)
	mode, ok := execModes[s]
	if !ok {
		return errors.New("must be one of cache_statement, cache_describe, describe_exec, exec, simple_protocol")
	}
	pc.ConnConfig.DefaultQueryExecMode = mode
	return nil
}
