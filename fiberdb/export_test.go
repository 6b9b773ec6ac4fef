package fiberdb

import (
	"context"
	"time"
)

// Hooks for the tests in package fiberdb_test, which drive the coarse clock
// that max_open_pools and pool_idle_timeout read instead of waiting for it.

// AdvanceClock moves e's coarse clock one step, so that the next acquire
// counts as later than the last one.
func AdvanceClock(e *Engines) { e.pools.clock.Add(1) }

// ReapIdle moves e's coarse clock by d and runs the idle timeout's check,
// as the reaper does on each tick.
func ReapIdle(e *Engines, d time.Duration) {
	ps := e.pools
	ps.clock.Add(int64(d))
	ps.closeIdleSince(ps.clock.Load() - int64(ps.idle))
}

// Decay halves e's use counts and marks the most used pools spared, as the
// reaper does every second under a budget.
func Decay(e *Engines) { e.pools.decay() }

// OpenPool opens the named engine's pool as an acquire would, without
// taking a connection from it.
func OpenPool(ctx context.Context, e *Engines, name string) error {
	eng, err := e.lookup(name)
	if err != nil {
		return err
	}
	eng.refs.Add(1)
	defer eng.unref()
	e.pools.touch(eng)
	_, err = e.pools.open(ctx, eng)
	return err
}

// PreludeOf returns the SQL and arguments of the prelude of a tenant that
// sets search_path to schema and the given settings.
func PreludeOf(schema string, settings map[string]string) (sql string, args []any) {
	p := newPrelude(schema, settings, nil)
	return p.sql, p.args
}
