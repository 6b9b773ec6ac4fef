package catalog_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
)

func TestInstallIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	dsn := fiberdbtest.Database(t)

	// Eight processes starting at once each install the catalog; without
	// the advisory lock, CREATE TABLE IF NOT EXISTS races on pg_type.
	conns := make([]*pgx.Conn, 8)
	for i := range conns {
		conn, err := pgx.Connect(t.Context(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		conns[i] = conn
	}
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() { errs[i] = catalog.Install(t.Context(), conn) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.NoError(t, catalog.Install(t.Context(), conns[0]), "a second Install changes nothing")

	// Inside a caller's transaction, Install joins it.
	tx, err := conns[0].Begin(t.Context())
	require.NoError(t, err)
	require.NoError(t, catalog.Install(t.Context(), tx))
	require.NoError(t, tx.Commit(t.Context()))

	var triggers int
	require.NoError(t, conns[0].QueryRow(t.Context(),
		`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'fiberdb_tenants'::regclass AND NOT tgisinternal`).Scan(&triggers))
	require.Equal(t, 1, triggers)
}

func TestPutAndDelete(t *testing.T) {
	t.Parallel()
	pool, _ := landlord(t)
	ctx := t.Context()

	acme := catalog.Tenant{
		Name:    "acme",
		URL:     "postgres://app@127.0.0.1:5432/acme",
		Hosts:   []string{"ACME.Example.com."},
		Options: map[string]any{"pool_max_conns": 3},
	}
	require.NoError(t, catalog.Put(ctx, pool, acme))

	type row struct {
		Name    string
		URL     string
		Hosts   []string
		Options map[string]any
	}
	read := func() []row {
		rows, err := pool.Query(ctx, `SELECT name, url, hosts, options FROM fiberdb_tenants ORDER BY name`)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		require.NoError(t, err)
		return out
	}
	require.Equal(t, []row{{"acme", acme.URL, []string{"acme.example.com"}, map[string]any{"pool_max_conns": 3.0}}}, read(),
		"hosts are stored normalized")

	acme.Hosts, acme.Options = nil, nil
	require.NoError(t, catalog.Put(ctx, pool, acme), "Put replaces the row")
	require.Equal(t, []row{{"acme", acme.URL, []string{}, map[string]any{}}}, read())

	require.NoError(t, catalog.Put(ctx, pool, catalog.Tenant{Name: "globex", URL: "postgres://app@h/globex", Hosts: []string{"g.example.com"}}))
	err := catalog.Put(ctx, pool, catalog.Tenant{Name: "initech", URL: "postgres://app@h/initech", Hosts: []string{"G.example.com"}})
	require.ErrorIs(t, err, config.ErrDuplicateHost)
	require.EqualError(t, err, `'fiberdb_tenants["initech"]["hosts"]' claims host "g.example.com", which fiberdb_tenants["globex"] already claims.`)

	err = catalog.Put(ctx, pool, catalog.Tenant{Name: "bad", URL: "postgres://app:s3cret@h:port/bad"})
	require.ErrorIs(t, err, config.ErrInvalidURL)
	require.NotContains(t, err.Error(), "s3cret")

	require.NoError(t, catalog.Delete(ctx, pool, "acme"))
	require.NoError(t, catalog.Delete(ctx, pool, "acme"), "deleting a missing row is not an error")
	require.Len(t, read(), 1)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tenant catalog.Tenant
		want   string
		is     error
	}{
		{"no url", catalog.Tenant{Name: "acme"}, `'fiberdb_tenants["acme"]["url"]' must be defined.`, config.ErrNoURL},
		{"bad name", catalog.Tenant{Name: "a.b", URL: "postgres://h/a"}, `'fiberdb_tenants["a.b"]' is not a valid engine name (1 to 63 of A-Z, a-z, 0-9, _ and -).`, config.ErrInvalidEngineName},
		{"unknown option", catalog.Tenant{Name: "acme", URL: "postgres://h/a", Options: map[string]any{"pool_max_con": 1}}, `'fiberdb_tenants["acme"]["pool_max_con"]' is not a known option (did you mean "pool_max_conns"?).`, config.ErrInvalidOption},
		{"url in options", catalog.Tenant{Name: "acme", URL: "postgres://h/a", Options: map[string]any{"url": "postgres://h/b"}}, `'fiberdb_tenants["acme"]["options"]["url"]' must not be set: the url column holds it.`, config.ErrInvalidOption},
		{"bad direct_url", catalog.Tenant{Name: "acme", URL: "postgres://h/a", Options: map[string]any{"direct_url": "postgres://app:s3cret@h:port/a"}}, `'fiberdb_tenants["acme"]["direct_url"]' is not a valid PostgreSQL connection string: invalid port.`, config.ErrInvalidURL},
		{"direct_url with pool", catalog.Tenant{Name: "acme", Options: map[string]any{"pool": "saas", "direct_url": "postgres://h/a"}}, `'fiberdb_tenants["acme"]["direct_url"]' must not be set together with pool: the engine's tables are in the pool's engine's database, so set direct_url on that engine.`, config.ErrInvalidOption},
		{"bad host", catalog.Tenant{Name: "acme", URL: "postgres://h/a", Hosts: []string{"a b"}}, `'fiberdb_tenants["acme"]["hosts"][0]' is not a valid host name (use punycode for international names).`, config.ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.tenant.Validate()
			require.EqualError(t, err, tc.want)
			require.ErrorIs(t, err, tc.is)
		})
	}
	require.NoError(t, catalog.Tenant{Name: "acme", URL: "postgres://h/a", Hosts: []string{"a.example.com"}, Options: map[string]any{"pool_max_conns": "4"}}.Validate())
}

func TestProviderLeavesOutBadRows(t *testing.T) {
	t.Parallel()
	pool, _ := landlord(t)
	ctx := t.Context()
	_, err := pool.Exec(ctx, `INSERT INTO fiberdb_tenants (name, url, hosts, options) VALUES
		('acme', 'postgres://app@127.0.0.1:5432/acme', '{acme.example.com}', '{"pool_max_conns": 3}'),
		('globex', 'postgres://app@127.0.0.1:5432/globex', '{}', '{}'),
		('array', 'postgres://app@127.0.0.1:5432/x', '{}', '[1, 2]'),
		('bad name', 'postgres://app@127.0.0.1:5432/x', '{}', '{}'),
		('badurl', 'postgres://app:s3cret@127.0.0.1:port/x', '{}', '{}'),
		('nullhost', 'postgres://app@127.0.0.1:5432/x', ARRAY[NULL]::text[], '{}'),
		('typo', 'postgres://app@127.0.0.1:5432/x', '{}', '{"pool_max_con": 3}')`)
	require.NoError(t, err)

	var logs testkit.LogBuffer
	k := koanf.New(".")
	require.NoError(t, k.Load(catalog.Provider(ctx, pool, catalog.ProviderOptions{Logger: logs.Logger()}), nil))
	conf, err := config.Load(k, config.Options{AllowEmpty: true})
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "globex"}, conf.Names())
	require.Equal(t, []string{"acme.example.com"}, conf.Engines["acme"].Hosts)
	require.EqualValues(t, 3, conf.Engines["acme"].PoolConfig().MaxConns)

	out := logs.String()
	for _, want := range []string{
		`row="fiberdb_tenants[\"array\"]"`,
		`must be a JSON object of engine options, not an array.`,
		`row="fiberdb_tenants[\"bad name\"]"`,
		`row="fiberdb_tenants[\"badurl\"]"`,
		`row="fiberdb_tenants[\"nullhost\"]"`,
		`row="fiberdb_tenants[\"typo\"]"`,
		`fiberdb_tenants[\"typo\"][\"pool_max_con\"]' is not a known option (did you mean \"pool_max_conns\"?).`,
	} {
		require.Contains(t, out, want)
	}
	require.Equal(t, 5, strings.Count(out, "catalog row ignored"))
	require.NotContains(t, out, "s3cret")
	require.NotContains(t, out, "postgres://")
}

func TestProviderKeyAndMerge(t *testing.T) {
	t.Parallel()
	pool, _ := landlord(t)
	ctx := t.Context()
	require.NoError(t, catalog.Put(ctx, pool, catalog.Tenant{Name: "acme", URL: "postgres://app@127.0.0.1:5432/acme"}))

	// The file defines default and an acme the row replaces key by key.
	k := koanf.New(".")
	require.NoError(t, k.Load(mapProvider{"app": map[string]any{"engines": map[string]any{
		"default": "postgres://app@127.0.0.1:5432/central",
		"acme":    map[string]any{"url": "postgres://app@127.0.0.1:5432/old", "pool_max_conns": 7},
	}}}, nil))
	require.NoError(t, k.Load(catalog.Provider(ctx, pool, catalog.ProviderOptions{Key: "app.engines"}), nil))
	conf, err := config.Load(k, config.Options{Key: "app.engines"})
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "default"}, conf.Names())
	pc := conf.Engines["acme"].PoolConfig()
	require.Equal(t, "acme", pc.ConnConfig.Database, "the row's url wins")
	require.EqualValues(t, 7, pc.MaxConns, "the file's other keys stay")

	_, err = catalog.Provider(ctx, pool).ReadBytes()
	require.ErrorIs(t, err, catalog.ErrReadBytes)
}

func TestProviderReadError(t *testing.T) {
	t.Parallel()
	conn, err := pgx.Connect(t.Context(), fiberdbtest.Database(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	err = koanf.New(".").Load(catalog.Provider(t.Context(), conn), nil)
	require.ErrorContains(t, err, "read fiberdb_tenants")
	require.ErrorContains(t, err, "42P01", "no table: the error is pgx's, not an empty catalog")
}

// TestProviderDirectURL: a row's options may hold a direct_url, which
// config.Load gives the engine's direct connection, leaving its pool the url.
func TestProviderDirectURL(t *testing.T) {
	t.Parallel()
	pool, _ := landlord(t)
	ctx := t.Context()
	require.NoError(t, catalog.Put(ctx, pool, catalog.Tenant{
		Name: "acme", URL: "postgres://app@pgbouncer:6432/acme",
		Options: map[string]any{"direct_url": "postgres://app@db:5432/acme", "default_query_exec_mode": "exec"},
	}))

	k := koanf.New(".")
	require.NoError(t, k.Load(catalog.Provider(ctx, pool), nil))
	conf, err := config.Load(k, config.Options{AllowEmpty: true})
	require.NoError(t, err)
	require.Equal(t, "pgbouncer", conf.Engines["acme"].PoolConfig().ConnConfig.Host)
	cc := conf.DirectConfig("acme")
	require.Equal(t, "db", cc.Host)
	require.Equal(t, pgx.QueryExecModeExec, cc.DefaultQueryExecMode, "the row's options apply to it too")
}

type mapProvider map[string]any

func (m mapProvider) ReadBytes() ([]byte, error)    { return nil, errors.New("not supported") }
func (m mapProvider) Read() (map[string]any, error) { return m, nil }

func TestSharedPoolTenant(t *testing.T) {
	t.Parallel()
	pool, _ := landlord(t)
	ctx := t.Context()
	// A schema-per-tenant engine has no url of its own: the row's is empty.
	require.NoError(t, catalog.Put(ctx, pool, catalog.Tenant{Name: "acme", Options: map[string]any{"pool": "saas", "search_path": "acme"}}))
	err := catalog.Put(ctx, pool, catalog.Tenant{Name: "bad", URL: "postgres://h/x", Options: map[string]any{"pool": "saas"}})
	require.ErrorIs(t, err, config.ErrInvalidOption)

	k := koanf.New(".")
	require.NoError(t, k.Load(mapProvider{"SQLALCHEMY_ENGINES": map[string]any{
		"default": "postgres://app@127.0.0.1:5432/central",
		"saas":    "postgres://app@127.0.0.1:5432/saas",
	}}, nil))
	require.NoError(t, k.Load(catalog.Provider(ctx, pool), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	require.Equal(t, "saas", conf.Engines["acme"].Pool)
	require.Equal(t, "acme", conf.Engines["acme"].SearchPath)
}
