package lifecycle_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/lifecycle"
)

// newName returns a database name of its own for this test, dropped when
// it ends.
func newName(t *testing.T) string {
	t.Helper()
	name := "tenant_" + strings.ToLower(rand.Text()[:10])
	pg := fiberdbtest.Server(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, pg.DropDatabase(ctx, name))
	})
	return name
}

func TestAddTenant(t *testing.T) {
	t.Parallel()
	pg := fiberdbtest.Server(t)
	central, saas := fiberdbtest.Database(t), fiberdbtest.Database(t)
	urls := map[string]string{config.DefaultEngine: central, "saas": saas, "existing": fiberdbtest.Database(t)}
	conf := load(t, urls)
	m := loadSchema(t)
	name := newName(t)

	res, err := lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: name, Hosts: []string{"New.Example.com"}}, m)
	require.NoError(t, err)
	require.Equal(t, int64(0), res.From)
	require.Equal(t, int64(2), res.To)
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, pg.ConnString(name)))
	require.Equal(t, []string{name + " " + pg.ConnString(name) + " {new.example.com} {}"},
		testkit.Query[string](t, central, "SELECT concat_ws(' ', name, url, hosts, options) FROM fiberdb_tenants"))

	// A shared-pool tenant: its schema in saas's database, migrated there.
	res, err = lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: "Schema-Tenant", Pool: "saas"}, m)
	require.NoError(t, err)
	require.Equal(t, int64(2), res.To)
	require.Equal(t, []string{"Schema-Tenant.gadgets", "Schema-Tenant.goose_db_version", "Schema-Tenant.widgets"}, tables(t, saas))
	require.Equal(t, []string{`{"pool": "saas", "search_path": "Schema-Tenant"}`},
		testkit.Query[string](t, central, "SELECT options::text FROM fiberdb_tenants WHERE name = 'Schema-Tenant'"))

	// The rows load as engines that Migrate finds up to date.
	flat := map[string]any{}
	for n, u := range urls {
		flat[config.DefaultKey+"."+n] = u
	}
	withRows := withCatalog(t, flat, central)
	requireUpToDate(t, withRows, m, name, "Schema-Tenant")
	saasUser := conf.DirectConfig("saas").User

	for _, tc := range []struct {
		tenant lifecycle.Tenant
		target error
		msg    string
	}{
		{lifecycle.Tenant{Name: "no/slash"}, lifecycle.ErrInvalidTenant, "a name is 1 to 63 of A-Z, a-z, 0-9, _ and -"},
		{lifecycle.Tenant{Name: strings.Repeat("x", 64)}, lifecycle.ErrInvalidTenant, "a name is"},
		{lifecycle.Tenant{Name: "fresh", Hosts: []string{"bad host"}}, lifecycle.ErrInvalidTenant, `host "bad host" is not a host name`},
		{lifecycle.Tenant{Name: "fresh", Pool: "nope"}, lifecycle.ErrInvalidTenant, `pool "nope" is not an engine with a url of its own`},
		{lifecycle.Tenant{Name: "fresh", Pool: "saas", Template: "x"}, lifecycle.ErrInvalidTenant, "a template copies a database"},
		// Review S4: a schema named like the pool's user would capture the
		// unqualified names of the pool's tenants without a search_path.
		{lifecycle.Tenant{Name: saasUser, Pool: "saas"}, lifecycle.ErrInvalidTenant, `pool "saas" connects as user "` + saasUser + `"`},
		{lifecycle.Tenant{Name: "existing"}, lifecycle.ErrTenantExists, `the configuration defines engine "existing"`},
		{lifecycle.Tenant{Name: "default"}, lifecycle.ErrTenantExists, `the configuration defines engine "default"`},
		{lifecycle.Tenant{Name: name}, lifecycle.ErrTenantExists, `the configuration defines engine "` + name + `"`},
		{lifecycle.Tenant{Name: "fresh", Hosts: []string{"new.example.com"}}, lifecycle.ErrTenantExists, `host "new.example.com" is routed to engine "` + name + `"`},
	} {
		_, aerr := lifecycle.AddTenant(t.Context(), withRows, tc.tenant, m)
		require.ErrorIs(t, aerr, tc.target, tc.tenant.Name)
		require.ErrorContains(t, aerr, tc.msg)
	}
	// Given a configuration without the catalog's rows, the table still says no.
	_, err = lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: name}, m)
	require.ErrorIs(t, err, lifecycle.ErrTenantExists)
	require.ErrorContains(t, err, "the catalog table has it")
	require.Equal(t, []int{2}, testkit.Query[int](t, central, "SELECT count(*)::int FROM fiberdb_tenants"), "nothing was added")
	require.Equal(t, []int{0}, testkit.Query[int](t, saas, "SELECT count(*)::int FROM pg_namespace WHERE nspname = $1", saasUser),
		"no schema named like the pool's user was created")
}

func TestAddTenantFromTemplate(t *testing.T) {
	t.Parallel()
	pg := fiberdbtest.Server(t)
	central := fiberdbtest.Database(t)
	conf := load(t, map[string]string{config.DefaultEngine: central})
	m := loadSchema(t)
	// A template already at version 1, with a row of reference data.
	tpl := newName(t)
	require.NoError(t, pg.CreateDatabase(t.Context(), tpl, ""))
	tplConf := load(t, map[string]string{config.DefaultEngine: central, "tpl": pg.ConnString(tpl)})
	one, err := lifecycle.LoadMigrations(fstest.MapFS{"001_widgets.sql": schema["001_widgets.sql"]})
	require.NoError(t, err)
	_, err = lifecycle.Migrate(t.Context(), tplConf, one, lifecycle.Options{Tenants: []string{"tpl"}})
	require.NoError(t, err)
	_, err = connect(t, pg.ConnString(tpl)).Exec(t.Context(), "INSERT INTO widgets VALUES (7, 'reference')")
	require.NoError(t, err)
	closeAll(t, pg.ConnString(tpl))

	name := newName(t)
	res, err := lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: name, Template: tpl}, m)
	require.NoError(t, err)
	require.Equal(t, int64(1), res.From, "the template's version")
	require.Equal(t, int64(2), res.To)
	require.Equal(t, []string{"FIRST", "reference"}, testkit.Query[string](t, pg.ConnString(name), "SELECT name FROM widgets ORDER BY name"))
}

func TestAddTenantFailedMigrationAddsNoRow(t *testing.T) {
	t.Parallel()
	central := fiberdbtest.Database(t)
	conf := load(t, map[string]string{config.DefaultEngine: central})
	bad, err := lifecycle.LoadMigrations(fstest.MapFS{"001_bad.sql": {Data: []byte("CREATE TABLE x (id int); SELECT 1/0;")}})
	require.NoError(t, err)
	name := newName(t)

	res, err := lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: name}, bad)
	require.ErrorContains(t, err, `add tenant "`+name+`": database "`+name+`" created, but neither migrated nor added to the catalog: 001_bad.sql: ERROR: division by zero (SQLSTATE 22012)`)
	require.Equal(t, int64(0), res.To)
	require.Equal(t, []int{0}, testkit.Query[int](t, central, "SELECT count(*)::int FROM fiberdb_tenants"))

	// The database stays, so the name stays taken until it is dropped.
	_, err = lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: name}, bad)
	require.ErrorIs(t, err, lifecycle.ErrTenantExists)
	require.ErrorContains(t, err, `database "`+name+`" exists`)
}

// Review of direct_url: with a landlord of a shared pool, which Load
// accepts, AddTenant installed the catalog table in the pool engine's
// database and then panicked; before direct_url it refused.
func TestAddTenantRefusesALandlordWithAPool(t *testing.T) {
	t.Parallel()
	saas := fiberdbtest.Database(t)
	conf := loadFlat(t, map[string]any{
		config.DefaultKey + ".default.pool": "saas",
		config.DefaultKey + ".saas":         saas,
	})
	for _, tc := range []struct {
		name    string
		tenant  lifecycle.Tenant
		dsn     string // where AddTenant must not have made the tenant
		created string // counts, given the tenant's name, what AddTenant made
	}{
		{
			name:    "a database tenant",
			tenant:  lifecycle.Tenant{Name: newName(t)},
			dsn:     fiberdbtest.Server(t).URL(),
			created: "SELECT count(*)::int FROM pg_database WHERE datname = $1",
		},
		{
			name:    "a schema tenant",
			tenant:  lifecycle.Tenant{Name: "acme", Pool: "saas"},
			dsn:     saas,
			created: "SELECT count(*)::int FROM pg_namespace WHERE nspname = $1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := lifecycle.AddTenant(t.Context(), conf, tc.tenant, loadSchema(t))
			require.EqualError(t, err, `add tenant "`+tc.tenant.Name+`": 'SQLALCHEMY_ENGINES["default"]' must be defined with a url: the catalog lives there`)
			require.Equal(t, int64(-1), res.To)
			require.Equal(t, []int{0}, testkit.Query[int](t, tc.dsn, tc.created, tc.tenant.Name))
			require.Empty(t, tables(t, saas), "no catalog table, no tenant table")
		})
	}
}

// A tenant's url is the landlord's with the tenant's database. A landlord
// URL that names its database in a dbname or database parameter, which pgx
// prefers to the path, once gave every tenant the landlord's database.
func TestWithDatabaseReplacesEveryFormOfTheDatabase(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://app:pw@db:5432/central?sslmode=disable",
		"postgres://app:pw@db:5432/?dbname=central&sslmode=disable",
		"postgresql://app:pw@db:5432/other?database=central",
		"host=db user=app dbname=central sslmode=disable",
	} {
		cc, err := pgconn.ParseConfig(lifecycle.WithDatabase(dsn, "acme"))
		require.NoError(t, err, dsn)
		require.Equal(t, "acme", cc.Database, dsn)
		require.Equal(t, "db", cc.Host, dsn)
		require.Equal(t, "app", cc.User, dsn)
	}
}

// TestAddTenantSchemaCreatedMeanwhile: another session (a second AddTenant
// of the same name) creates the schema while AddTenant creates it. The
// later CREATE SCHEMA waits for the other transaction and fails with a
// unique violation on pg_namespace, not duplicate_schema, once it commits:
// AddTenant says ErrTenantExists all the same. An open transaction holds
// the race open.
func TestAddTenantSchemaCreatedMeanwhile(t *testing.T) {
	t.Parallel()
	saas := fiberdbtest.Database(t)
	conf := load(t, map[string]string{config.DefaultEngine: fiberdbtest.Database(t), "saas": saas})
	tx, err := connect(t, saas).Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "CREATE SCHEMA globex")
	require.NoError(t, err)

	m := loadSchema(t)
	done := make(chan error, 1)
	go func() {
		_, aerr := lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: "globex", Pool: "saas"}, m)
		done <- aerr
	}()
	waitFor(t, saas, 1, createSchemaWaits)
	require.NoError(t, tx.Commit(t.Context()))
	err = <-done
	require.ErrorIs(t, err, lifecycle.ErrTenantExists)
	require.EqualError(t, err, `add tenant "globex": tenant exists: schema "globex" exists in pool "saas"'s database`)
}
