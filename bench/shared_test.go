package bench_test

import (
	"testing"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/benchapp"
)

// BenchmarkSharedPool runs SELECT 1 per request, one request at a time,
// through an engine with a pool of its own ("own"), a tenant that shares
// another engine's pool ("shared": engine key pool, with a search_path and a
// setting, so that its every statement travels behind set_config in one
// batch), and the same batch written by hand on that pool, without fiberdb
// ("byhand", benchapp.PgxbatchApp). All pools have poolSize connections.
// Each sub-benchmark alternates two of them in the same run and reports
// ratio, the first's time over the second's:
//
//   - shared: own/shared, the shared tenant's rate against an own pool's;
//   - byhand: own/byhand, what sending the settings with every statement
//     costs, whoever writes it (the floor of shared);
//   - fiberdb: byhand/shared, what fiberdb's code adds to that.
func BenchmarkSharedPool(b *testing.B) {
	e, own, shared := sharedDrivers(b, poolSize)
	pool, err := e.Engine("saas")
	if err != nil {
		b.Fatal(err)
	}
	byHand := newDriver(benchapp.PgxbatchApp(pool), "saas.localhost")
	b.Run("shared", func(b *testing.B) { paired(b, 1, "own", own.next, "shared", shared.next) })
	b.Run("byhand", func(b *testing.B) { paired(b, 1, "own", own.next, "byhand", byHand.next) })
	b.Run("fiberdb", func(b *testing.B) { paired(b, 1, "byhand", byHand.next, "shared", shared.next) })
	own.check(b)
	shared.check(b)
	byHand.check(b)
}

// sharedDrivers opens an engine with a pool of its own ("own") and a tenant
// that shares engine saas's pool ("acme", with a search_path and a setting,
// so that its every statement travels behind set_config in one batch), both
// pools of size connections, and returns the engines and a driver of
// fiberdb's app for each.
func sharedDrivers(tb testing.TB, size int) (e *fiberdb.Engines, own, shared *driver) {
	tb.Helper()
	engines := map[string]any{"default": map[string]any{"url": fiberdbtest.Database(tb), "pool_max_conns": size}}
	for _, name := range []string{"own", "saas"} {
		engines[name] = map[string]any{
			"url": fiberdbtest.Database(tb), "pool_max_conns": size, "hosts": []any{name + ".localhost"},
		}
	}
	engines["acme"] = map[string]any{
		"pool": "saas", "search_path": "acme", "settings": map[string]any{"app.tenant": "acme"},
		"hosts": []any{"acme.localhost"},
	}
	e = open(tb, engines)
	app := benchapp.FiberdbApp(e)
	return e, newDriver(app, "own.localhost"), newDriver(app, "acme.localhost")
}
