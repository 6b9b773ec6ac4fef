package fiberdb_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// Regression tests (review R2): FIBERDB.tenant_max_concurrency counts one
// tenant's own requests. What else keeps the tenant's pool open, a
// TestIsolation pin or the requests of the tenants that share the pool,
// is no request of the tenant's and must not take its places.

// quotaEngines opens engines under FIBERDB.tenant_max_concurrency quota.
func quotaEngines(t *testing.T, engines map[string]any, quota int) *fiberdb.Engines {
	t.Helper()
	settings := map[string]any{"tenant_max_concurrency": quota}
	conf, err := config.Load(confKoanf(t, engines, settings), config.Options{AllowEmpty: true})
	require.NoError(t, err)
	return openConf(t, conf)
}

// acquireOrBusy acquires a connection to engine and registers its release;
// it returns the acquire's error.
func acquireOrBusy(t *testing.T, e *fiberdb.Engines, engine string) error {
	t.Helper()
	_, release, err := e.Acquire(t.Context(), engine)
	if err == nil {
		t.Cleanup(func() { require.NoError(t, release()) })
	}
	return err
}

func TestTenantQuotaDoesNotCountTheTestIsolationPin(t *testing.T) {
	t.Parallel()
	e := quotaEngines(t, engineMaps(t, nil, "default"), 1)
	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rollback()) }) // after the releases acquireOrBusy registers

	_, release, err := e.Acquire(t.Context(), "default")
	require.NoError(t, err, "the pin is not one of the tenant's requests")
	_, _, err = e.Acquire(t.Context(), "default")
	require.ErrorIs(t, err, fiberdb.ErrTenantBusy, "the lease is: the quota of one is taken")
	require.NoError(t, release())
	require.NoError(t, acquireOrBusy(t, e, "default"), "its place is given back")
	require.EqualValues(t, map[string]uint64{"default": 1}, e.Stats().TenantBusy)
}

func TestTenantQuotaDoesNotCountTenantsSharingThePool(t *testing.T) {
	t.Parallel()
	engines := map[string]any{
		"saas":   map[string]any{"url": fiberdbtest.Database(t), "pool_max_conns": 5},
		"acme":   map[string]any{"pool": "saas", "search_path": "acme"},
		"globex": map[string]any{"pool": "saas", "search_path": "globex"},
	}
	e := quotaEngines(t, engines, 2)

	require.NoError(t, acquireOrBusy(t, e, "acme"))
	require.NoError(t, acquireOrBusy(t, e, "globex"))
	require.NoError(t, acquireOrBusy(t, e, "saas"), "acme and globex are not requests of the pool engine's")
	require.NoError(t, acquireOrBusy(t, e, "acme"), "nor is saas's or globex's one of acme's")
	require.ErrorIs(t, acquireOrBusy(t, e, "acme"), fiberdb.ErrTenantBusy, "acme's own two are")
	require.NoError(t, acquireOrBusy(t, e, "saas"), "saas has one place left")
	require.EqualValues(t, map[string]uint64{"acme": 1}, e.Stats().TenantBusy)
}
