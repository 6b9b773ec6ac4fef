package lifecycle_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/lifecycle"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

// schema is a tenant schema in tern's format: a down part, a template, a
// second file that depends on the first.
var schema = fstest.MapFS{
	"001_widgets.sql": {Data: []byte(`CREATE TABLE widgets (id bigint PRIMARY KEY, name text NOT NULL);
---- create above / drop below ----
DROP TABLE widgets;
`)},
	"002_gadgets.sql": {Data: []byte(`CREATE TABLE gadgets (id bigint PRIMARY KEY);
INSERT INTO widgets VALUES (1, '{{ "first" | upper }}');
`)},
}

func loadSchema(t *testing.T) *lifecycle.Migrations {
	t.Helper()
	m, err := lifecycle.LoadMigrations(schema)
	require.NoError(t, err)
	require.Equal(t, int64(2), m.Latest())
	return m
}

// tenants makes a configuration of "default" and n tenant engines t00…,
// each with a database of its own, and returns it with the engines' urls.
func tenants(t *testing.T, n int) (conf *config.Config, urls map[string]string) {
	t.Helper()
	urls = map[string]string{config.DefaultEngine: fiberdbtest.Database(t)}
	for i := range n {
		urls[fmt.Sprintf("t%02d", i)] = fiberdbtest.Database(t)
	}
	return load(t, urls), urls
}

func load(t *testing.T, urls map[string]string) *config.Config {
	t.Helper()
	flat := map[string]any{}
	for name, u := range urls {
		flat[config.DefaultKey+"."+name] = u
	}
	return loadFlat(t, flat)
}

// loadFlat loads a configuration from flat koanf keys.
func loadFlat(t *testing.T, flat map[string]any) *config.Config {
	t.Helper()
	conf, err := config.Load(koanfOf(t, flat))
	require.NoError(t, err)
	return conf
}

// koanfOf returns a koanf instance holding flat keys.
func koanfOf(t *testing.T, flat map[string]any) *koanf.Koanf {
	t.Helper()
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(flat, "."), nil))
	return k
}

// withCatalog loads flat and the catalog's rows from the landlord database
// at central, as cmd/fiberdb does.
func withCatalog(t *testing.T, flat map[string]any, central string) *config.Config {
	t.Helper()
	k := koanfOf(t, flat)
	require.NoError(t, k.Load(catalog.Provider(t.Context(), connect(t, central)), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	return conf
}

// requireUpToDate migrates tenants again and requires that nothing was left
// to apply.
func requireUpToDate(t *testing.T, conf *config.Config, m *lifecycle.Migrations, tenants ...string) {
	t.Helper()
	results, err := lifecycle.Migrate(t.Context(), conf, m, lifecycle.Options{Tenants: tenants})
	require.NoError(t, err)
	for _, r := range results {
		require.True(t, r.UpToDate(), r.Tenant)
	}
}

// closeAll ends every session on the database at dsn but the caller's: a
// template must have none.
func closeAll(t *testing.T, dsn string) {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	testkit.Query[bool](t, fiberdbtest.Server(t).URL(),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", strings.TrimPrefix(u.Path, "/"))
}

// connect opens a connection that the test closes when it ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// tables lists the tables of the database at dsn.
func tables(t *testing.T, dsn string) []string {
	t.Helper()
	return testkit.Query[string](t, dsn,
		"SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
}

// versionRows counts goose's version rows: a run with nothing to apply
// writes none.
func versionRows(t *testing.T, dsn string) int {
	t.Helper()
	return testkit.Query[int](t, dsn, "SELECT count(*)::int FROM goose_db_version")[0]
}

// sessions counts the server sessions on the database at dsn: none may
// outlive a run.
func sessions(t *testing.T, dsn string) int {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	return testkit.Query[int](t, fiberdbtest.Server(t).URL(),
		"SELECT count(*)::int FROM pg_stat_activity WHERE datname = $1", strings.TrimPrefix(u.Path, "/"))[0]
}

// recorder collects the Progress steps; Migrate serializes its calls, and
// -race checks that it does.
type recorder struct{ steps []lifecycle.Step }

func (r *recorder) step(s lifecycle.Step) { r.steps = append(r.steps, s) }

func (r *recorder) kinds(k lifecycle.StepKind) (tenants []string) {
	for _, s := range r.steps {
		if s.Kind == k {
			tenants = append(tenants, s.Tenant)
		}
	}
	return tenants
}

func TestMigrateEveryTenantInParallel(t *testing.T) {
	t.Parallel()
	conf, urls := tenants(t, 12)
	m := loadSchema(t)

	var first recorder
	results, err := lifecycle.Migrate(t.Context(), conf, m, lifecycle.Options{Parallel: 4, Progress: first.step})
	require.NoError(t, err)
	require.Len(t, results, 12)
	for i, r := range results {
		require.Equal(t, fmt.Sprintf("t%02d", i), r.Tenant, "sorted by name")
		require.NoError(t, r.Err)
		require.Equal(t, int64(0), r.From)
		require.Equal(t, int64(2), r.To)
		require.False(t, r.UpToDate())
		require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, urls[r.Tenant]))
		require.Equal(t, []string{"FIRST"}, testkit.Query[string](t, urls[r.Tenant], "SELECT name FROM widgets"), "tern's templates ran")
	}
	require.Len(t, first.kinds(lifecycle.StepMigration), 24)
	require.Len(t, first.kinds(lifecycle.StepDone), 12)
	require.Empty(t, tables(t, urls[config.DefaultEngine]), "the landlord is not a tenant")

	// Nothing to apply: no migration runs, no version row is written.
	var second recorder
	results, err = lifecycle.Migrate(t.Context(), conf, m, lifecycle.Options{Progress: second.step})
	require.NoError(t, err)
	for _, r := range results {
		require.True(t, r.UpToDate(), r.Tenant)
		require.Equal(t, int64(2), r.To)
		require.Equal(t, 3, versionRows(t, urls[r.Tenant]), "goose's version 0, then 1 and 2")
	}
	require.Empty(t, second.kinds(lifecycle.StepMigration))
	require.Len(t, second.kinds(lifecycle.StepDone), 12)

	// A run leaves no session behind on any tenant's database.
	for name, dsn := range urls {
		require.Zero(t, sessions(t, dsn), name)
	}
}

func TestMigrateFailedTenantFailsAlone(t *testing.T) {
	t.Parallel()
	conf, urls := tenants(t, 4)
	// t02 already has a table the first migration creates.
	_, err := connect(t, urls["t02"]).Exec(t.Context(), "CREATE TABLE widgets (id int)")
	require.NoError(t, err)

	results, err := lifecycle.Migrate(t.Context(), conf, loadSchema(t), lifecycle.Options{Parallel: 1})
	require.ErrorIs(t, err, lifecycle.ErrFailed)
	require.EqualError(t, err, "migration failed: 1 of 4 tenants")
	for _, r := range results {
		if r.Tenant != "t02" {
			require.NoError(t, r.Err, r.Tenant)
			require.Equal(t, int64(2), r.To, "tenants after the failed one still run")
			continue
		}
		var pgErr *pgconn.PgError
		require.ErrorAs(t, r.Err, &pgErr)
		require.Equal(t, "42P07", pgErr.Code) // duplicate_table
		require.Equal(t, `001_widgets.sql: ERROR: relation "widgets" already exists (SQLSTATE 42P07)`, r.Err.Error())
		require.Equal(t, int64(0), r.From)
		require.Equal(t, int64(0), r.To)
	}
}

func TestMigrateKeepsWhatCommittedBeforeAFailure(t *testing.T) {
	t.Parallel()
	conf, urls := tenants(t, 1)
	_, err := connect(t, urls["t00"]).Exec(t.Context(), "CREATE TABLE gadgets (id int)")
	require.NoError(t, err)

	results, err := lifecycle.Migrate(t.Context(), conf, loadSchema(t))
	require.ErrorIs(t, err, lifecycle.ErrFailed)
	r := results[0]
	require.Equal(t, int64(0), r.From)
	require.Equal(t, int64(1), r.To, "001 committed in its own transaction")
	require.ErrorContains(t, r.Err, "002_gadgets.sql: ")
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, urls["t00"]))
	require.Equal(t, []int{0}, testkit.Query[int](t, urls["t00"], "SELECT count(*)::int FROM widgets"), "002's insert rolled back with it")
}

func TestMigrateUnreachableTenantFailsAlone(t *testing.T) {
	t.Parallel()
	urls := map[string]string{
		config.DefaultEngine: fiberdbtest.Database(t),
		"ok":                 fiberdbtest.Database(t),
		"gone":               fiberdbtest.Server(t).ConnString("no_such_database"),
	}
	results, err := lifecycle.Migrate(t.Context(), load(t, urls), loadSchema(t))
	require.ErrorIs(t, err, lifecycle.ErrFailed)
	require.Equal(t, "gone", results[0].Tenant)
	require.Equal(t, int64(-1), results[0].From, "no version could be read")
	require.ErrorContains(t, results[0].Err, `database "no_such_database" does not exist`)
	require.NoError(t, results[1].Err)
}

func TestMigrateLimitedTenants(t *testing.T) {
	t.Parallel()
	conf, urls := tenants(t, 3)
	results, err := lifecycle.Migrate(t.Context(), conf, loadSchema(t), lifecycle.Options{Tenants: []string{"t02", "t00", "t02"}})
	require.NoError(t, err)
	require.Len(t, results, 2)
	require.Equal(t, "t00", results[0].Tenant)
	require.Equal(t, "t02", results[1].Tenant)
	require.Empty(t, tables(t, urls["t01"]), "t01 was not asked for")
}

func TestMigrateUnknownTenants(t *testing.T) {
	t.Parallel()
	conf, urls := tenants(t, 1)
	for _, names := range [][]string{{"t00", "nope", "default"}} {
		results, err := lifecycle.Migrate(t.Context(), conf, loadSchema(t), lifecycle.Options{Tenants: names})
		require.ErrorIs(t, err, lifecycle.ErrUnknownTenant)
		require.EqualError(t, err, `unknown tenant "default": the landlord engine is not a tenant`+"\n"+
			`unknown tenant "nope": 'SQLALCHEMY_ENGINES["nope"]' is not defined`)
		require.Nil(t, results)
	}
	require.Empty(t, tables(t, urls["t00"]), "nothing ran")
}

// TestMigrateTenantsNeverWaitForEachOther holds t00's migration lock, as a
// run migrating t00 elsewhere would: t01 still migrates, and t00 follows once
// the lock is free.
func TestMigrateTenantsNeverWaitForEachOther(t *testing.T) {
	t.Parallel()
	conf, urls := tenants(t, 2)
	m := loadSchema(t)
	holder := connect(t, urls["t00"])
	_, err := holder.Exec(t.Context(), "SELECT pg_advisory_lock($1)", lifecycle.LockID(""))
	require.NoError(t, err)

	var mu sync.Mutex
	var order []string
	_, err = lifecycle.Migrate(t.Context(), conf, m, lifecycle.Options{Parallel: 2, Progress: func(s lifecycle.Step) {
		if s.Kind != lifecycle.StepDone {
			return
		}
		mu.Lock()
		order = append(order, s.Tenant)
		mu.Unlock()
		if s.Tenant == "t01" {
			// t01 finished while t00 waits for its lock: free it.
			if _, uerr := holder.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lifecycle.LockID("")); uerr != nil {
				panic(uerr)
			}
		}
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"t01", "t00"}, order)
}

func TestMigrateCanceled(t *testing.T) {
	t.Parallel()
	conf, _ := tenants(t, 3)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	results, err := lifecycle.Migrate(ctx, conf, loadSchema(t), lifecycle.Options{Parallel: 1})
	require.ErrorIs(t, err, lifecycle.ErrFailed)
	for _, r := range results {
		require.ErrorIs(t, r.Err, context.Canceled)
	}
}

// TestMigrateLeavesNoGoroutine is not parallel: goleak sees every goroutine.
func TestMigrateLeavesNoGoroutine(t *testing.T) {
	conf, _ := tenants(t, 3)
	m := loadSchema(t)
	baseline := goleak.IgnoreCurrent()
	_, err := lifecycle.Migrate(t.Context(), conf, m)
	require.NoError(t, err)
	_, err = lifecycle.Migrate(t.Context(), conf, m)
	require.NoError(t, err)
	goleak.VerifyNone(t, baseline)
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	_, err := lifecycle.LoadMigrations(fstest.MapFS{"README": {Data: []byte("no migrations")}})
	require.ErrorIs(t, err, lifecycle.ErrNoMigrations)

	_, err = lifecycle.LoadMigrations(fstest.MapFS{"001_a.sql": {Data: []byte("SELECT 1")}, "003_c.sql": {Data: []byte("SELECT 1")}})
	require.ErrorContains(t, err, "Missing migration 2")

	m, err := lifecycle.LoadMigrations(schema)
	require.NoError(t, err)
	require.Equal(t, "002_gadgets.sql", m.Name(2))
	require.Empty(t, m.Name(3))
}
