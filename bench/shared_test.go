package bench_test

import (
	"testing"

	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/benchapp"
)

// BenchmarkSharedPool runs SELECT 1 per request through fiberdb, one
// request at a time, alternating an engine with a pool of its own ("own")
// and a tenant that shares another engine's pool ("shared": engine key pool,
// with a search_path and a setting, so that its every statement travels
// behind set_config in one batch). Both pools have poolSize connections.
// ratio is own/shared: the shared tenant's throughput relative to an own
// pool's, measured in the same run.
func BenchmarkSharedPool(b *testing.B) {
	own, shared := sharedDrivers(b, poolSize)
	paired(b, 1, "own", own.next, "shared", shared.next)
	own.check(b)
	shared.check(b)
}

// sharedDrivers opens an engine with a pool of its own ("own") and a tenant
// that shares engine saas's pool ("acme", with a search_path and a setting,
// so that its every statement travels behind set_config in one batch), both
// pools of size connections, and returns a driver of fiberdb's app for each.
func sharedDrivers(tb testing.TB, size int) (own, shared *driver) {
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
	app := benchapp.FiberdbApp(open(tb, engines))
	return newDriver(app, "own.localhost"), newDriver(app, "acme.localhost")
}
