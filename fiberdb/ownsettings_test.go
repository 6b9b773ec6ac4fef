package fiberdb_test

import (
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
)

// search_path and settings on an engine with a pool of its own: they apply
// to every transaction of its requests and acquires, as on a tenant that
// shares a pool. They once applied only to the latter, and fiberdb migrate
// honoured them for both, so an own-pool engine's requests ran in another
// schema than its migrations.

// ownSettingsQuery answers the row of the unqualified table items, which
// exists in schema acme and, with another value, in public, and the
// setting app.tenant ("" when unset).
const ownSettingsQuery = "select (select name from items) || ' ' || coalesce(current_setting('app.tenant', true), '')"

// acquiredString runs sql, which answers one string, on a connection to
// engine from Engines.Acquire, and releases it.
func acquiredString(t *testing.T, e *fiberdb.Engines, engine, sql string) string {
	t.Helper()
	db, release, err := e.Acquire(t.Context(), engine)
	require.NoError(t, err)
	v, err := scalar[string](t.Context(), db, sql)
	require.NoError(t, err)
	require.NoError(t, release())
	return v
}

func ownSettingsEngines(t *testing.T) (engines, acme map[string]any) {
	t.Helper()
	engines = engineMaps(t, nil, "default", "acme")
	acme, ok := engines["acme"].(map[string]any)
	require.True(t, ok)
	acme["search_path"] = "acme"
	acme["settings"] = map[string]any{"app.tenant": "acme"}
	return engines, acme
}

func TestOwnPoolEngineAppliesSearchPathAndSettings(t *testing.T) {
	t.Parallel()
	engines, acme := ownSettingsEngines(t)
	e := openConf(t, loadConf(t, engines))
	exec(t, e, "acme", `create schema acme;
		create table acme.items (name text); insert into acme.items values ('in acme');
		create table public.items (name text); insert into public.items values ('in public')`)

	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(c *fiber.Ctx) error {
		v, err := connScalar[string](c, ownSettingsQuery)
		if err != nil {
			return err
		}
		return c.SendString(v)
	})
	status, body := get(t, app, "acme.test", "/")
	require.Equal(t, fiber.StatusOK, status, body)
	require.Equal(t, "in acme acme", body, "a request")

	acquired := func() string {
		t.Helper()
		return acquiredString(t, e, "acme", ownSettingsQuery)
	}
	require.Equal(t, "in acme acme", acquired(), "Engines.Acquire")

	// Apply sees a change of settings alone: the engine is replaced.
	acme["settings"] = map[string]any{"app.tenant": "acme-2"}
	require.NoError(t, e.Apply(t.Context(), loadConf(t, engines)))
	require.Equal(t, "in acme acme-2", acquired(), "after Apply changed settings")
	delete(acme, "settings")
	delete(acme, "search_path")
	require.NoError(t, e.Apply(t.Context(), loadConf(t, engines)))
	require.Equal(t, "in public ", acquired(), "after Apply removed both")
}

// Under test isolation every lease of a pool shares one connection and one
// outer transaction, so set_config lasts past the lease: the pool engine's
// own settings must not reach a tenant of its pool that sets none, nor the
// other way round.
func TestOwnPoolEngineSettingsUnderTestIsolation(t *testing.T) {
	t.Parallel()
	// With globex, a tenant of acme's pool sets the parameter too; without
	// it, only the pool engine does.
	for _, withGlobex := range []bool{true, false} {
		t.Run(map[bool]string{true: "tenant sets it too", false: "only the pool engine sets it"}[withGlobex], func(t *testing.T) {
			t.Parallel()
			ownSettingsUnderIsolation(t, withGlobex)
		})
	}
}

func ownSettingsUnderIsolation(t *testing.T, withGlobex bool) {
	t.Helper()
	engines, _ := ownSettingsEngines(t)
	engines["plain"] = map[string]any{"pool": "acme"}
	order := []string{"acme", "plain", "acme", "plain"}
	if withGlobex {
		engines["globex"] = map[string]any{"pool": "acme", "settings": map[string]any{"app.tenant": "globex"}}
		order = []string{"acme", "plain", "globex", "plain", "acme"}
	}
	e := openConf(t, loadConf(t, engines))
	exec(t, e, "acme", "create table public.items (name text); insert into public.items values ('in public')")

	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)
	defer func() { require.NoError(t, rollback()) }()
	setting := func(engine string) string {
		t.Helper()
		return acquiredString(t, e, engine, "select coalesce(current_setting('app.tenant', true), '')")
	}
	for _, engine := range order {
		want := map[string]string{"acme": "acme", "globex": "globex", "plain": ""}[engine]
		require.Equal(t, want, setting(engine), engine)
	}
}

// A tenant that Apply adds to a pool pinned by TestIsolation leases from the
// pin, where set_config outlasts its lease: what it sets must be reset for
// the pool's other engines, as for the tenants that were there when
// isolation began. It once leaked to every later lease on the pin.
func TestApplyDuringTestIsolationResetsANewTenantsSettings(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, nil, "default", "saas")
	engines["initech"] = map[string]any{"pool": "saas", "settings": map[string]any{"app.tenant": "initech"}}
	e := openConf(t, loadConf(t, engines))
	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)

	engines["hooli"] = map[string]any{"pool": "saas", "settings": map[string]any{"app.user": "hooli-admin"}}
	require.NoError(t, e.Apply(t.Context(), loadConf(t, engines)))
	read := func(engine string) string {
		t.Helper()
		return acquiredString(t, e, engine,
			"select coalesce(current_setting('app.tenant', true), '') || '|' || coalesce(current_setting('app.user', true), '')")
	}
	require.Equal(t, "|hooli-admin", read("hooli"))
	require.Equal(t, "initech|", read("initech"), "after hooli")
	require.Equal(t, "|", read("saas"), "after hooli")
	require.NoError(t, rollback())
	require.Equal(t, "|hooli-admin", read("hooli"), "after isolation")
}

// What a tenant set stays on the pinned connection until the isolation
// ends, so an Apply that removes the tenant must not stop the pool's other
// engines from resetting it: the pool engine read the removed tenant's
// setting and schema once the recomputed preludes left them out.
func TestApplyDuringTestIsolationKeepsResettingARemovedTenantsSettings(t *testing.T) {
	t.Parallel()
	engines := engineMaps(t, nil, "default", "saas")
	engines["initech"] = map[string]any{"pool": "saas", "settings": map[string]any{"app.tenant": "initech"}}
	engines["acme"] = map[string]any{"pool": "saas", "search_path": "acme"}
	e := openConf(t, loadConf(t, engines))
	exec(t, e, "saas", "CREATE SCHEMA acme")
	rollback, err := e.TestIsolation(t.Context())
	require.NoError(t, err)
	defer func() { require.NoError(t, rollback()) }()
	read := func(engine string) string {
		t.Helper()
		return acquiredString(t, e, engine,
			"select coalesce(current_setting('app.tenant', true), '') || '|' || current_setting('search_path')")
	}
	const unset = `|"$user", public`
	require.Equal(t, unset, read("saas"))
	require.Equal(t, `|"acme", pg_temp`, read("acme"))
	require.Equal(t, `initech|"$user", public`, read("initech")) // the last lease on the pin

	delete(engines, "initech")
	delete(engines, "acme")
	require.NoError(t, e.Apply(t.Context(), loadConf(t, engines)))
	require.Equal(t, unset, read("saas"), "after an Apply removed initech and acme")
}
