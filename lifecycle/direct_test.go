package lifecycle_test

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/pgbouncer"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/lifecycle"
)

// TestMigrateThroughDirectURL gives each tenant a url that refuses every
// connection and a direct_url to its database: migrated tenants prove that
// Migrate connected through direct_url alone.
func TestMigrateThroughDirectURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		engine func(closed, db string) map[string]any // the engines, given a closed url and the tenant's database
		tenant string
		tables []string
	}{
		{
			name: "a tenant with a database of its own",
			engine: func(closed, db string) map[string]any {
				return map[string]any{"acme": map[string]any{"url": closed, "direct_url": db}}
			},
			tenant: "acme",
			tables: []string{"public.gadgets", "public.goose_db_version", "public.widgets"},
		},
		{
			name: "a schema tenant whose pool engine has a direct_url",
			engine: func(closed, db string) map[string]any {
				return map[string]any{
					"saas": map[string]any{"url": closed, "direct_url": db},
					"acme": map[string]any{"pool": "saas", "search_path": "acme"},
				}
			},
			tenant: "acme",
			tables: []string{"acme.gadgets", "acme.goose_db_version", "acme.widgets"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := fiberdbtest.Database(t)
			engines := tc.engine(testkit.ClosedURL(t, db), db) // the subtest's t: require fails only its own goroutine's test
			engines[config.DefaultEngine] = fiberdbtest.Database(t)
			k := koanfOf(t, map[string]any{config.DefaultKey: engines})
			conf, err := config.Load(k)
			require.NoError(t, err)
			only := lifecycle.Options{Tenants: []string{tc.tenant}}

			// The url alone reaches nothing.
			for _, e := range engines {
				if m, ok := e.(map[string]any); ok {
					delete(m, "direct_url")
				}
			}
			without, err := config.Load(koanfOf(t, map[string]any{config.DefaultKey: engines}))
			require.NoError(t, err)
			results, err := lifecycle.Migrate(t.Context(), without, loadSchema(t), only)
			require.ErrorIs(t, err, lifecycle.ErrFailed)
			require.ErrorContains(t, results[0].Err, "connect")

			results, err = lifecycle.Migrate(t.Context(), conf, loadSchema(t), only)
			require.NoError(t, err)
			require.Equal(t, int64(2), results[0].To)
			require.Equal(t, tc.tables, tables(t, db))
		})
	}
}

// TestAddTenantThroughDirectURL adds a database tenant and a schema tenant
// where the landlord's and the pool engine's urls refuse every connection:
// AddTenant creates, migrates and registers both through direct_url, and the
// new database tenant's row carries a direct_url of its own, which a later
// Migrate follows.
func TestAddTenantThroughDirectURL(t *testing.T) {
	t.Parallel()
	pg := fiberdbtest.Server(t)
	central, saas := fiberdbtest.Database(t), fiberdbtest.Database(t)
	centralClosed := testkit.ClosedURL(t, central)
	flat := map[string]any{
		config.DefaultKey + ".default.url":        centralClosed,
		config.DefaultKey + ".default.direct_url": central,
		config.DefaultKey + ".saas.url":           testkit.ClosedURL(t, saas),
		config.DefaultKey + ".saas.direct_url":    saas,
	}
	conf := loadFlat(t, flat)
	m := loadSchema(t)
	name := newName(t)

	res, err := lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: name}, m)
	require.NoError(t, err)
	require.Equal(t, int64(2), res.To)
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, pg.ConnString(name)))
	closed, err := url.Parse(centralClosed)
	require.NoError(t, err)
	closed.Path = "/" + name
	require.Equal(t, []string{closed.String() + ` {"direct_url": "` + pg.ConnString(name) + `"}`},
		testkit.Query[string](t, central, "SELECT url || ' ' || options::text FROM fiberdb_tenants WHERE name = $1", name),
		"the url is the landlord's, the direct_url the landlord's direct_url, each with the tenant's database")

	res, err = lifecycle.AddTenant(t.Context(), conf, lifecycle.Tenant{Name: "globex", Pool: "saas"}, m)
	require.NoError(t, err)
	require.Equal(t, int64(2), res.To)
	require.Equal(t, []string{"globex.gadgets", "globex.goose_db_version", "globex.widgets"}, tables(t, saas))

	requireUpToDate(t, withCatalog(t, flat, central), m, name, "globex")
}

// TestMigrateBehindPgBouncerThroughDirectURL is DESIGN.md's shared-pools
// example: the pool engine's url goes through a real PgBouncer in
// transaction mode, its direct_url to PostgreSQL. Each schema tenant's
// migration records the application_name of the session that ran it, which
// only the direct_url sets to "direct".
func TestMigrateBehindPgBouncerThroughDirectURL(t *testing.T) {
	t.Parallel()
	b, err := pgbouncer.Start(t.Context(), &pgbouncer.Options{Server: fiberdbtest.Server(t).URL(), PoolMode: "transaction"})
	if errors.Is(err, pgbouncer.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	saas := fiberdbtest.Database(t)
	u, err := url.Parse(saas)
	require.NoError(t, err)
	conf := loadFlat(t, map[string]any{
		config.DefaultKey + ".default":                      fiberdbtest.Database(t),
		config.DefaultKey + ".saas.url":                     b.URL(strings.TrimPrefix(u.Path, "/")) + "&application_name=pooled",
		config.DefaultKey + ".saas.direct_url":              saas + "&application_name=direct",
		config.DefaultKey + ".saas.default_query_exec_mode": "exec",
		config.DefaultKey + ".acme.pool":                    "saas",
		config.DefaultKey + ".acme.search_path":             "acme",
		config.DefaultKey + ".globex.pool":                  "saas",
		config.DefaultKey + ".globex.search_path":           "globex",
	})
	who, err := lifecycle.LoadMigrations(fstest.MapFS{
		"001_who.sql": {Data: []byte("CREATE TABLE who AS SELECT current_setting('application_name') AS app;\n")},
	})
	require.NoError(t, err)

	_, err = lifecycle.Migrate(t.Context(), conf, who, lifecycle.Options{Tenants: []string{"acme", "globex"}})
	require.NoError(t, err)
	require.Equal(t, []string{"direct", "direct"},
		testkit.Query[string](t, saas, "SELECT app FROM acme.who UNION ALL SELECT app FROM globex.who"))
}
