//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts only hold without it.

package bench_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/internal/benchapp"
)

// TestNoDBAllocs guards the hot path's allocation count, which is
// deterministic (no timing is asserted): the middleware on a route that never
// touches the database allocates nothing. (A request that carries an
// X-Forwarded-Host costs one allocation in Fiber's own proxy-trust check,
// which formats the peer's IP; fiberdb skips that check when the header is
// absent.)
func TestNoDBAllocs(t *testing.T) {
	d := newDriver(noDBApp(fiberdb.New(fiberdb.Config{Engines: nowhereEngines(t)})), "acme.localhost")
	allocs := testing.AllocsPerRun(1000, d.next)
	d.check(t)
	require.Zero(t, allocs, "allocations per request")
}

// TestDBAllocs: a request that takes its connection and runs one QueryRow
// allocates one object in fiberdb, the handle that tells this request's
// holder from a later request's (states are pooled); the hand-written
// baseline, pool.Acquire and Release, allocates nothing.
func TestDBAllocs(t *testing.T) {
	e := openTenants(t, "acme")
	d := newDriver(benchapp.FiberdbApp(e), "acme.localhost")
	fdb := testing.AllocsPerRun(200, d.next)
	d.check(t)
	pool, err := e.Engine("acme")
	require.NoError(t, err)
	base := newDriver(benchapp.PgxconnApp(pool), "acme.localhost")
	baseline := testing.AllocsPerRun(200, base.next)
	base.check(t)
	require.Equal(t, baseline+1, fdb, "allocations per request, against the baseline's")
}

// TestSharedDBAllocs guards a shared-pool tenant's SELECT 1: at most 25
// allocations more than an own pool's request (31 before its batch, queries
// and rows became one). Most are pgx's batch against its plain query: its
// pipeline keeps its state in container/list elements.
func TestSharedDBAllocs(t *testing.T) {
	_, own, shared := sharedDrivers(t, 1)
	ownAllocs := testing.AllocsPerRun(200, own.next)
	sharedAllocs := testing.AllocsPerRun(200, shared.next)
	own.check(t)
	shared.check(t)
	require.LessOrEqual(t, sharedAllocs, ownAllocs+25, "allocations per request, against an own pool's")
}
