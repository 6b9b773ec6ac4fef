//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts only hold without it.

package bench_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
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
