package lifecycle_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/lifecycle"
)

// gate is the advisory lock that gatedRuns' migration waits for: a test
// holding it keeps every run inside that migration, under its tenant's lock.
const gate = 42

// gatedRuns is one migration that records the session that ran it in the
// table runs of its schema, then waits, still in its transaction, until
// the gate is free.
var gatedRuns = fstest.MapFS{
	"001_runs.sql": {Data: fmt.Appendf(nil, "CREATE TABLE runs (pid int);\nINSERT INTO runs VALUES (pg_backend_pid());\nSELECT pg_advisory_xact_lock_shared(%d);\n", gate)},
}

// Sessions that wait for the gate ($1), and idle ones whose last query was
// goose's poll for a migration lock that another session holds.
const (
	gateWaiters = "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
	lockPollers = "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND query = 'SELECT pg_try_advisory_lock($1)'"
)

// closeGate takes the gate on a connection of the test's, in the database
// at dsn, and returns that connection; closing it opens the gate.
func closeGate(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	holder := connect(t, dsn)
	_, err := holder.Exec(t.Context(), "SELECT pg_advisory_lock($1)", gate)
	require.NoError(t, err)
	return holder
}

// openGate frees the gate that holder took.
func openGate(t *testing.T, holder *pgx.Conn) {
	t.Helper()
	_, err := holder.Exec(t.Context(), "SELECT pg_advisory_unlock($1)", gate)
	require.NoError(t, err)
}

// waitFor polls the count query in the database at dsn, on the test's
// goroutine, until it answers want.
func waitFor(t *testing.T, dsn string, want int, query string, args ...any) {
	t.Helper()
	conn := connect(t, dsn)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var got int
		require.NoError(t, conn.QueryRow(ctx, query, args...).Scan(&got), "waiting for %d of %s", want, query)
		if got == want {
			return
		}
		select {
		case <-ctx.Done():
			require.Equal(t, want, got, query)
			return
		case <-tick.C:
		}
	}
}

// migrated is what a Migrate call running on another goroutine returned.
type migrated struct {
	results []lifecycle.Result
	err     error
}

// migrateAsync runs Migrate on a goroutine of its own; the channel gets its
// return values.
func migrateAsync(t *testing.T, conf *config.Config, m *lifecycle.Migrations, o lifecycle.Options) <-chan migrated {
	t.Helper()
	done := make(chan migrated, 1)
	go func() {
		results, err := lifecycle.Migrate(t.Context(), conf, m, o)
		done <- migrated{results, err}
	}()
	return done
}

// TestMigrateRowLevelSecurityTenantsShareOneRun is S5 of the review: a pool
// engine and the row-level-security tenants of its pool (pool and settings,
// no search_path) share its tables and its version table. Each got a run of
// its own, under the same lock: one applied the migrations while the others
// queued behind it, then reported "0 → 0, up to date". Now one run migrates
// them all and each reports its outcome; a schema tenant of the same pool
// still runs on its own.
func TestMigrateRowLevelSecurityTenantsShareOneRun(t *testing.T) {
	t.Parallel()
	saas := fiberdbtest.Database(t)
	engines := map[string]any{
		config.DefaultEngine: fiberdbtest.Database(t),
		"saas":               saas,
		"acme":               map[string]any{"pool": "saas", "search_path": "acme"},
	}
	for _, name := range []string{"r1", "r2", "r3"} {
		engines[name] = map[string]any{"pool": "saas", "settings": map[string]any{"app.tenant": name}}
	}
	conf, err := config.Load(koanfOf(t, map[string]any{config.DefaultKey: engines}))
	require.NoError(t, err)
	m, err := lifecycle.LoadMigrations(gatedRuns)
	require.NoError(t, err)

	holder := closeGate(t, saas)
	var rec recorder
	done := migrateAsync(t, conf, m, lifecycle.Options{Parallel: 5, Progress: rec.step})
	// Two runs are in the migration, under their locks: the shared one and
	// acme's. Every tenant has started by then (the shared run reports its
	// tenants' starts before it connects), and no session polls for a lock
	// that a sibling holds.
	waitFor(t, saas, 2, gateWaiters, gate)
	require.Equal(t, []int{0}, testkit.Query[int](t, saas, lockPollers))
	openGate(t, holder)
	got := <-done
	require.NoError(t, got.err)

	shared := []string{"r1", "r2", "r3", "saas"}
	sharedWith := map[string][]string{ // each tenant's Shared: the others
		"r1": {"r2", "r3", "saas"}, "r2": {"r1", "r3", "saas"},
		"r3": {"r1", "r2", "saas"}, "saas": {"r1", "r2", "r3"},
	}
	require.Len(t, got.results, 5)
	require.Equal(t, "acme", got.results[0].Tenant)
	require.Nil(t, got.results[0].Shared, "a schema tenant has tables of its own")
	for i, r := range got.results {
		require.NoError(t, r.Err, r.Tenant)
		require.Equal(t, int64(0), r.From, r.Tenant)
		require.Equal(t, int64(1), r.To, r.Tenant)
		require.False(t, r.UpToDate(), r.Tenant)
		if i > 0 {
			require.Equal(t, shared[i-1], r.Tenant)
			require.Equal(t, sharedWith[r.Tenant], r.Shared)
			require.Equal(t, got.results[1].Duration, r.Duration, "one run's Result")
		}
	}
	require.Equal(t, []int{1}, testkit.Query[int](t, saas, "SELECT count(*)::int FROM public.runs"), "migrated once")
	require.Equal(t, []int{1}, testkit.Query[int](t, saas, "SELECT count(*)::int FROM acme.runs"))
	require.ElementsMatch(t, []string{"acme", "r1"}, rec.kinds(lifecycle.StepMigration), "one report per run, for its first tenant")
	require.ElementsMatch(t, append([]string{"acme"}, shared...), rec.kinds(lifecycle.StepStart))
	require.ElementsMatch(t, append([]string{"acme"}, shared...), rec.kinds(lifecycle.StepDone))

	// Nothing left: every tenant of the shared run is up to date at 1.
	results, err := lifecycle.Migrate(t.Context(), conf, m, lifecycle.Options{Tenants: []string{"r2", "saas"}})
	require.NoError(t, err)
	for _, r := range results {
		require.True(t, r.UpToDate(), r.Tenant)
		require.Equal(t, int64(1), r.To, r.Tenant)
	}
	require.Equal(t, []string{"saas"}, results[0].Shared, "-tenants r2,saas: r2 shares with saas alone")
}

// TestMigrateReadsTheVersionAnotherRunApplied is S5's other half: two
// deploys migrate one tenant at once. The second reads version 0 and waits
// for the tenant's lock while the first applies the migration; then it
// finds nothing left to apply. Its Result said 0 → 0, up to date, although
// the tenant moved to 1 meanwhile; it reads the version again now.
func TestMigrateReadsTheVersionAnotherRunApplied(t *testing.T) {
	t.Parallel()
	conf, urls := tenants(t, 1)
	db := urls["t00"]
	m, err := lifecycle.LoadMigrations(gatedRuns)
	require.NoError(t, err)

	holder := closeGate(t, db)
	first := migrateAsync(t, conf, m, lifecycle.Options{})
	waitFor(t, db, 1, gateWaiters, gate) // the first run is in the migration, under the lock
	second := migrateAsync(t, conf, m, lifecycle.Options{})
	waitFor(t, db, 1, lockPollers) // the second has read version 0 and polls for the lock
	openGate(t, holder)

	for _, got := range []migrated{<-first, <-second} {
		require.NoError(t, got.err)
		r := got.results[0]
		require.Equal(t, int64(0), r.From)
		require.Equal(t, int64(1), r.To, "the version after the run, whichever run applied it")
		require.False(t, r.UpToDate())
	}
	require.Equal(t, []int{1}, testkit.Query[int](t, db, "SELECT count(*)::int FROM runs"), "applied once")
}

// Two own-pool engines on one database whose urls set different
// search_paths (a run-time parameter config.Load accepts) migrate different
// tables, so they are not one run: a key without the parameters ran only the
// first and reported the other as migrated with it.
func TestMigrateURLSearchPathTenantsAreNotOneRun(t *testing.T) {
	t.Parallel()
	db := fiberdbtest.Database(t)
	_, err := connect(t, db).Exec(t.Context(), "CREATE SCHEMA a; CREATE SCHEMA b")
	require.NoError(t, err)
	sep := "?"
	if strings.Contains(db, "?") {
		sep = "&"
	}
	conf := load(t, map[string]string{
		config.DefaultEngine: fiberdbtest.Database(t),
		"a":                  db + sep + "search_path=a",
		"b":                  db + sep + "search_path=b",
	})
	results, err := lifecycle.Migrate(t.Context(), conf, loadSchema(t), lifecycle.Options{Tenants: []string{"a", "b"}})
	require.NoError(t, err)
	for _, r := range results {
		require.NoError(t, r.Err, r.Tenant)
		require.Nil(t, r.Shared, r.Tenant)
	}
	got := tables(t, db)
	require.Contains(t, got, "a.widgets")
	require.Contains(t, got, "b.widgets")
}
