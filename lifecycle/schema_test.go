package lifecycle_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/lifecycle"
)

// ternLock is jackc/tern's fixed advisory lock key: fiberdb never takes it.
const ternLock = 9628173550095224

// schemaTenants makes "default", a pool engine "saas" and n schema tenants
// s00… ({pool: saas, search_path: s00}), plus "Mixed Case" in a schema of
// that name, which only a quoted identifier reaches.
func schemaTenants(t *testing.T, n int) (conf *config.Config, saas string) {
	t.Helper()
	saas = fiberdbtest.Database(t)
	flat := map[string]any{
		config.DefaultKey + ".default":           fiberdbtest.Database(t),
		config.DefaultKey + ".saas":              saas,
		config.DefaultKey + ".mixed.pool":        "saas",
		config.DefaultKey + ".mixed.search_path": "Mixed Case",
	}
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		flat[config.DefaultKey+"."+name+".pool"] = "saas"
		flat[config.DefaultKey+"."+name+".search_path"] = name
	}
	return loadFlat(t, flat), saas
}

func TestMigrateSchemaTenants(t *testing.T) {
	t.Parallel()
	conf, saas := schemaTenants(t, 6)
	m := loadSchema(t)
	// tern would queue every tenant of this database behind this lock.
	holder := connect(t, saas)
	_, err := holder.Exec(t.Context(), "SELECT pg_advisory_lock($1)", int64(ternLock))
	require.NoError(t, err)

	results, err := lifecycle.Migrate(t.Context(), conf, m, lifecycle.Options{Parallel: 4})
	require.NoError(t, err)
	require.Len(t, results, 8, "mixed, s00…s05, and saas itself")
	for _, r := range results {
		require.NoError(t, r.Err, r.Tenant)
		require.Equal(t, int64(2), r.To, r.Tenant)
	}
	want := []string{`Mixed Case.gadgets`, `Mixed Case.goose_db_version`, `Mixed Case.widgets`, "public.gadgets", "public.goose_db_version", "public.widgets"}
	for i := range 6 {
		s := fmt.Sprintf("s%02d", i)
		want = append(want, s+".gadgets", s+".goose_db_version", s+".widgets")
	}
	require.ElementsMatch(t, want, tables(t, saas))

	// Each schema keeps its own version: a second run finds them all done.
	results, err = lifecycle.Migrate(t.Context(), conf, m)
	require.NoError(t, err)
	for _, r := range results {
		require.True(t, r.UpToDate(), r.Tenant)
	}
	require.Equal(t, []int{3}, testkit.Query[int](t, saas, `SELECT count(*)::int FROM "Mixed Case".goose_db_version`))
}

// TestMigrateSchemaTenantsNeverWaitForEachOther holds s00's lock in the
// database all the tenants share: s01 migrates meanwhile.
func TestMigrateSchemaTenantsNeverWaitForEachOther(t *testing.T) {
	t.Parallel()
	conf, saas := schemaTenants(t, 2)
	holder := connect(t, saas)
	_, err := holder.Exec(t.Context(), "SELECT pg_advisory_lock($1)", lifecycle.LockID("s00"))
	require.NoError(t, err)

	var mu sync.Mutex
	var order []string
	_, err = lifecycle.Migrate(t.Context(), conf, loadSchema(t), lifecycle.Options{
		Tenants:  []string{"s00", "s01"},
		Parallel: 2,
		Progress: func(s lifecycle.Step) {
			if s.Kind != lifecycle.StepDone {
				return
			}
			mu.Lock()
			order = append(order, s.Tenant)
			mu.Unlock()
			if s.Tenant == "s01" {
				if _, uerr := holder.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lifecycle.LockID("s00")); uerr != nil {
					panic(uerr)
				}
			}
		},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"s01", "s00"}, order)
}

// createSchemaWaits counts the sessions whose CREATE SCHEMA waits for
// another transaction.
const createSchemaWaits = "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'CREATE SCHEMA%'"

// TestMigrateSchemaCreatedMeanwhile: another session (another deploy's
// run, or AddTenant) creates a new schema tenant's schema while the run
// creates it too. CREATE SCHEMA IF NOT EXISTS is not safe against that:
// when both sessions find no schema, the later insert into pg_namespace
// waits for the earlier transaction and fails with a unique violation
// (23505) once it commits. An open transaction that created the schema
// holds the race open here, however long the run takes to get there.
func TestMigrateSchemaCreatedMeanwhile(t *testing.T) {
	t.Parallel()
	conf, saas := schemaTenants(t, 1)
	tx, err := connect(t, saas).Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "CREATE SCHEMA s00")
	require.NoError(t, err)

	done := migrateAsync(t, conf, loadSchema(t), lifecycle.Options{Tenants: []string{"s00"}})
	// The run's CREATE SCHEMA waits for the other transaction.
	waitFor(t, saas, 1, createSchemaWaits)
	require.NoError(t, tx.Commit(t.Context()))
	got := <-done
	require.NoError(t, got.results[0].Err)
	require.NoError(t, got.err)
	require.Equal(t, int64(2), got.results[0].To)
	require.Contains(t, tables(t, saas), "s00.widgets")
}

// TestMigrateSchemaTenantSearchPath (review S3): a schema tenant's
// migrations resolve names as its requests do, in its schema, then
// pg_temp (fiberdb's prelude), so that a temporary table never shadows one
// of the schema's.
func TestMigrateSchemaTenantSearchPath(t *testing.T) {
	t.Parallel()
	conf, saas := schemaTenants(t, 1)
	m, err := lifecycle.LoadMigrations(fstest.MapFS{
		"001_path.sql": {Data: []byte("CREATE TABLE seen AS SELECT current_setting('search_path') AS path;\n")},
	})
	require.NoError(t, err)
	results, err := lifecycle.Migrate(t.Context(), conf, m, lifecycle.Options{Tenants: []string{"s00", "mixed"}})
	require.NoError(t, err)
	for _, r := range results {
		require.NoError(t, r.Err, r.Tenant)
	}
	require.Equal(t, []string{`"s00", pg_temp`}, testkit.Query[string](t, saas, "SELECT path FROM s00.seen"))
	require.Equal(t, []string{`"Mixed Case", pg_temp`}, testkit.Query[string](t, saas, `SELECT path FROM "Mixed Case".seen`))
}
