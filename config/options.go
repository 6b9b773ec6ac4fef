package config

import (
	"errors"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// minPeriod is the shortest lifetime, idle time or check period accepted:
// anything shorter closes connections faster than requests can use them.
const minPeriod = time.Second

// poolOptions are the per-engine options Load knows, each applied onto the
// pgxpool.Config that pgxpool.ParseConfig built from the engine's url. An
// option is applied when its key is present, even when its value is zero.
var poolOptions = map[string]func(pc *pgxpool.Config, v any) error{
	"pool_max_conns":                intOption(1, func(pc *pgxpool.Config, n int32) { pc.MaxConns = n }),
	"pool_min_conns":                intOption(0, func(pc *pgxpool.Config, n int32) { pc.MinConns = n }),
	"pool_min_idle_conns":           intOption(0, func(pc *pgxpool.Config, n int32) { pc.MinIdleConns = n }),
	"pool_max_conn_lifetime":        durationOption(0, func(pc *pgxpool.Config, d time.Duration) { pc.MaxConnLifetime = d }),
	"pool_max_conn_lifetime_jitter": durationOption(0, func(pc *pgxpool.Config, d time.Duration) { pc.MaxConnLifetimeJitter = d }),
	"pool_max_conn_idle_time":       durationOption(0, func(pc *pgxpool.Config, d time.Duration) { pc.MaxConnIdleTime = d }),
	// pgxpool feeds this to time.NewTicker, which panics on zero.
	"pool_health_check_period": durationOption(time.Millisecond, func(pc *pgxpool.Config, d time.Duration) { pc.HealthCheckPeriod = d }),
	"pool_ping_timeout":        durationOption(0, func(pc *pgxpool.Config, d time.Duration) { pc.PingTimeout = d }),
	"connect_timeout":          durationOption(0, func(pc *pgxpool.Config, d time.Duration) { pc.ConnConfig.ConnectTimeout = d }),
	"statement_cache_capacity": intOption(0, func(pc *pgxpool.Config, n int32) { pc.ConnConfig.StatementCacheCapacity = int(n) }),
	"description_cache_capacity": intOption(0, func(pc *pgxpool.Config, n int32) {
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

func intOption(least int32, set func(*pgxpool.Config, int32)) func(*pgxpool.Config, any) error {
	return func(pc *pgxpool.Config, v any) error {
		n, err := toInt(v)
		if err != nil {
			return errNotInt
		}
		if n < int64(least) || n > math.MaxInt32 {
			return decodeError("must be between " + strconv.Itoa(int(least)) + " and " + strconv.Itoa(math.MaxInt32))
		}
		set(pc, int32(n)) //nolint:gosec // G115: n is range-checked just above
		return nil
	}
}

func durationOption(least time.Duration, set func(*pgxpool.Config, time.Duration)) func(*pgxpool.Config, any) error {
	return func(pc *pgxpool.Config, v any) error {
		d, err := toDuration(v)
		if err != nil {
			return err
		}
		if d < least {
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
