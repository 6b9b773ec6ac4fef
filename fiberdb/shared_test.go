package fiberdb_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/benchapp"
)

// Shared pools (issue 16): tenants with no pool of their own, whose every
// transaction begins with set_config(name, value, true). The tests connect
// as a role that is not a superuser, has no BYPASSRLS and owns nothing, so
// that the row-level security policies apply to it: a table owner or a
// BYPASSRLS role would see every row and hide a tenant crossing.

// sharedTenants are the four tenants of the shared pool "saas": two by
// schema, two by row-level security on public.docs.
var sharedTenants = []string{"acme", "globex", "initech", "umbrella"}

// schemaTenant reports whether tenant has a schema of its own.
func schemaTenant(tenant string) bool { return tenant == "acme" || tenant == "globex" }

// sharedDatabase creates a database whose schemas acme and globex each hold
// items(name) with one row naming the schema, and whose public.docs(tenant,
// body) has one row per RLS tenant, under a policy that fails closed when
// app.tenant is unset or ”. It returns the database's superuser URL and
// the role the engines connect as.
func sharedDatabase(t *testing.T) (dsn, role string) {
	t.Helper()
	role = limitedRole(t, 20) // first: dropped after the database
	dsn = fiberdbtest.Database(t)
	admin, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer admin.Close(context.WithoutCancel(t.Context()))
	r := pgx.Identifier{role}.Sanitize()
	ddl := []string{
		"CREATE TABLE public.docs (tenant text NOT NULL, body text NOT NULL)",
		"ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY tenant ON public.docs USING (tenant = NULLIF(current_setting('app.tenant', true), '')) " +
			"WITH CHECK (tenant = NULLIF(current_setting('app.tenant', true), ''))",
		"INSERT INTO public.docs VALUES ('initech', 'initech'), ('umbrella', 'umbrella')",
		"GRANT SELECT, INSERT ON public.docs TO " + r,
	}
	for _, s := range []string{"acme", "globex"} {
		ddl = append(ddl,
			"CREATE SCHEMA "+s,
			fmt.Sprintf("CREATE TABLE %s.items (name text NOT NULL)", s),
			fmt.Sprintf("INSERT INTO %s.items VALUES ('%s')", s, s),
			fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", s, r),
			fmt.Sprintf("GRANT SELECT, INSERT ON %s.items TO %s", s, r))
	}
	for _, s := range ddl {
		_, err := admin.Exec(t.Context(), s)
		require.NoError(t, err, s)
	}
	return dsn, role
}

// sharedEngines is the config of pool engine "saas" (url, at most two
// connections, opts) and its four tenants, each on host "<name>.test".
func sharedEngines(url string, opts map[string]any) map[string]any {
	saas := map[string]any{"url": url, "pool_max_conns": 2, "hosts": []any{"saas.test"}}
	for k, v := range opts {
		saas[k] = v
	}
	engines := map[string]any{"saas": saas, "default": map[string]any{"url": url, "pool_max_conns": 1}}
	for _, name := range sharedTenants {
		e := map[string]any{"pool": "saas", "hosts": []any{name + ".test"}}
		if schemaTenant(name) {
			e["search_path"] = name
		} else {
			e["settings"] = map[string]any{"app.tenant": name}
		}
		engines[name] = e
	}
	return engines
}

// openShared opens the engines of sharedEngines on a new sharedDatabase,
// connecting as its role, and returns them with the database's superuser URL.
func openShared(t *testing.T, opts map[string]any) (e *fiberdb.Engines, dsn string) {
	t.Helper()
	dsn, role := sharedDatabase(t)
	return openConf(t, loadConf(t, sharedEngines(asRole(t, dsn, role), opts))), dsn
}

// sees answers what tenant can read: the names in its schema's items, or
// the tenants of the docs rows its policy lets through.
func sees(ctx context.Context, db fiberdb.DBTX, tenant string) (string, error) {
	sql := "select string_agg(distinct tenant, ',') from docs"
	if schemaTenant(tenant) {
		sql = "select string_agg(distinct name, ',') from items"
	}
	var s *string
	if err := db.QueryRow(ctx, sql).Scan(&s); err != nil {
		return "", err
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// noLeftovers checks every server connection behind the pool of "saas",
// which has n at most: it holds all of them at once, each in a transaction
// (so that a transaction pooler must give each its own), and reads the
// settings there.
func noLeftovers(t *testing.T, e *fiberdb.Engines, n int) {
	t.Helper()
	ctx := t.Context()
	pool, err := e.Engine("saas")
	require.NoError(t, err)
	var txs []pgx.Tx
	defer func() {
		for _, tx := range txs {
			require.NoError(t, tx.Rollback(ctx))
		}
	}()
	pids := map[int]bool{}
	for range n {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		txs = append(txs, tx)
		var pid int
		var path string
		var tenant *string
		require.NoError(t, tx.QueryRow(ctx,
			"select pg_backend_pid(), current_setting('search_path'), current_setting('app.tenant', true)").
			Scan(&pid, &path, &tenant))
		pids[pid] = true
		assert.Equal(t, `"$user", public`, path, "search_path left on server connection %d", pid)
		if tenant != nil {
			assert.Empty(t, *tenant, "app.tenant left on server connection %d", pid)
		}
	}
	assert.Len(t, pids, n, "every server connection was checked")
}

// execModes are pgx's query exec modes that are safe behind a transaction
// pooler, and the default: the prelude travels differently in each (a
// pipeline of prepared statements, of unnamed ones, one simple query).
var execModes = []string{"cache_statement", "cache_describe", "exec", "simple_protocol"}

func TestSharedPoolTenantsSeeOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode})
			seeOnlyTheirOwn(t, e)
		})
	}
}

func seeOnlyTheirOwn(t *testing.T, e *fiberdb.Engines) {
	t.Helper()
	ctx := t.Context()
	for _, tenant := range sharedTenants {
		db, release, err := e.Acquire(ctx, tenant)
		require.NoError(t, err)
		got, err := sees(ctx, db, tenant)
		require.NoError(t, err)
		assert.Equal(t, tenant, got, "autocommit QueryRow")

		rows, err := db.Query(ctx, "select current_setting('search_path'), coalesce(current_setting('app.tenant', true), '')")
		require.NoError(t, err)
		settings, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) ([2]string, error) {
			var s [2]string
			return s, row.Scan(&s[0], &s[1])
		})
		require.NoError(t, err)
		if schemaTenant(tenant) {
			assert.Equal(t, [2]string{`"` + tenant + `", pg_temp`, ""}, settings, "Query: search_path is the quoted schema, then pg_temp")
		} else {
			assert.Equal(t, [2]string{`"$user", public`, tenant}, settings, "Query")
		}

		tx, err := db.Begin(ctx)
		require.NoError(t, err)
		got, err = sees(ctx, tx, tenant)
		require.NoError(t, err)
		assert.Equal(t, tenant, got, "in a transaction")
		require.NoError(t, tx.Commit(ctx))

		b := &pgx.Batch{}
		b.Queue("select 1")
		b.Queue("select coalesce(nullif(current_setting('app.tenant', true), ''), current_schema())")
		br := db.SendBatch(ctx, b)
		var one int
		require.NoError(t, br.QueryRow().Scan(&one))
		var who string
		require.NoError(t, br.QueryRow().Scan(&who))
		require.NoError(t, br.Close())
		assert.Equal(t, tenant, who, "SendBatch")

		b = &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		b.Queue("select 1")
		br = db.SendBatch(ctx, b)
		btx := br.Tx()
		require.NoError(t, br.Close())
		got, err = sees(ctx, btx, tenant)
		require.NoError(t, err)
		assert.Equal(t, tenant, got, "in a transaction a batch began")
		require.NoError(t, btx.Rollback(ctx))
		require.NoError(t, release())
	}
	noLeftovers(t, e, 2)
}

func TestSharedPoolWritesPersistAsOnAnOwnPool(t *testing.T) {
	t.Parallel()
	e, dsn := openShared(t, nil)
	app := newApp(fiberdb.Config{Engines: e})
	app.Post("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		tenant := fiberdb.Tenant(c)
		insert, args := "insert into docs values ($1, $2)", []any{tenant}
		if schemaTenant(tenant) {
			insert, args = "insert into items values ($1)", nil
		}
		if _, err = db.Exec(c.Context(), insert, append(args, "autocommit")...); err != nil {
			return err
		}
		tx, err := db.Begin(c.Context())
		if err != nil {
			return err
		}
		if _, err = tx.Exec(c.Context(), insert, append(args, "committed")...); err != nil {
			return err
		}
		if cerr := tx.Commit(c.Context()); cerr != nil {
			return cerr
		}
		if _, err = db.CopyFrom(c.Context(), pgx.Identifier{"items"}, []string{"name"},
			pgx.CopyFromRows([][]any{{"copied"}})); err != nil && schemaTenant(tenant) {
			return err
		}
		open, err := db.Begin(c.Context())
		if err != nil {
			return err
		}
		_, err = open.Exec(c.Context(), insert, append(args, "left open")...)
		return c.SendString(tenant + fmt.Sprint(err))
	})
	for _, tenant := range sharedTenants {
		status, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodPost, tenant+".test", "/", nil))
		require.Equal(t, fiber.StatusOK, status, body)
		assert.Equal(t, tenant+"<nil>", body, "Tenant(c) is the tenant's name")
	}
	admin, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer admin.Close(context.WithoutCancel(t.Context()))
	var docs, acme, globex string
	require.NoError(t, admin.QueryRow(t.Context(), `select
		(select string_agg(tenant || ':' || body, ',' order by tenant, body) from docs),
		(select string_agg(name, ',' order by name) from acme.items),
		(select string_agg(name, ',' order by name) from globex.items)`).Scan(&docs, &acme, &globex))
	assert.Equal(t, "initech:autocommit,initech:committed,initech:initech,umbrella:autocommit,umbrella:committed,umbrella:umbrella", docs)
	assert.Equal(t, "acme,autocommit,committed,copied", acme)
	assert.Equal(t, "autocommit,committed,copied,globex", globex)
}

// crossingApp answers what the request's tenant can read, alternating
// autocommit statements and transactions, with the tenant's name first.
func crossingApp(e *fiberdb.Engines) *fiber.App {
	app := newApp(fiberdb.Config{Engines: e})
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		tenant := fiberdb.Tenant(c)
		on := db
		if c.Query("tx") != "" {
			tx, berr := db.Begin(c.Context())
			if berr != nil {
				return berr
			}
			defer tx.Rollback(c.Context()) //nolint:errcheck // ends with the request either way
			on = tx
		}
		got, err := sees(c.Context(), on, tenant)
		if err != nil {
			return err
		}
		return c.SendString(tenant + "=" + got)
	})
	return app
}

// neverCross runs 8 clients that interleave the four tenants on the pool
// of 2 connections, and fails on any answer but the tenant's own.
func neverCross(t *testing.T, app *fiber.App) {
	t.Helper()
	var wg sync.WaitGroup
	for client := range 8 {
		wg.Go(func() {
			for i := range 24 {
				tenant := sharedTenants[(client+i)%len(sharedTenants)]
				path := "/"
				if i%2 == 1 {
					path = "/?tx=1"
				}
				status, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(fiber.MethodGet, tenant+".test", path, nil))
				if !assert.Equal(t, fiber.StatusOK, status, body) || !assert.Equal(t, tenant+"="+tenant, body, path) {
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSharedPoolTenantsNeverCross(t *testing.T) {
	t.Parallel()
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode})
			neverCross(t, crossingApp(e))
			noLeftovers(t, e, 2)
		})
	}
}

func TestSharedPoolUnderTestIsolation(t *testing.T) {
	t.Parallel()
	e, _ := openShared(t, nil)
	ctx := t.Context()
	rollback, err := e.TestIsolation(ctx)
	require.NoError(t, err)
	app := crossingApp(e)
	// Every tenant in turn on the one pinned connection, twice, and the
	// pool engine itself after each: none reads what the previous set.
	for range 2 {
		for _, tenant := range sharedTenants {
			for _, path := range []string{"/", "/?tx=1"} {
				status, body := get(t, app, tenant+".test", path)
				require.Equal(t, fiber.StatusOK, status, body)
				assert.Equal(t, tenant+"="+tenant, body, path)
			}
			pdb, prelease, aerr := e.Acquire(ctx, "saas")
			require.NoError(t, aerr)
			settings, serr := scalar[string](ctx, pdb,
				"select current_setting('search_path') || '|' || coalesce(current_setting('app.tenant', true), '')")
			require.NoError(t, serr)
			assert.Equal(t, `"$user", public|`, settings, "after %s", tenant)
			require.NoError(t, prelease())
		}
	}
	db, release, err := e.Acquire(ctx, "acme")
	require.NoError(t, err)
	_, err = db.Exec(ctx, "insert into items values ('isolated')")
	require.NoError(t, err)
	require.NoError(t, release())
	require.NoError(t, rollback())

	db, release, err = e.Acquire(ctx, "acme")
	require.NoError(t, err)
	got, err := sees(ctx, db, "acme")
	require.NoError(t, err)
	assert.Equal(t, "acme", got, "the isolated insert was rolled back")
	require.NoError(t, release())
	noLeftovers(t, e, 1)
}

func TestSharedPoolEngineIsNotHandedOut(t *testing.T) {
	t.Parallel()
	e, _ := openShared(t, nil)
	_, err := e.Engine("acme")
	require.ErrorIs(t, err, fiberdb.ErrSharedPool)
	assert.True(t, strings.Contains(err.Error(), `"acme"`), err)
	assert.NotContains(t, e.Stats().Pools, "acme", "a shared tenant has no pool of its own")
}

func TestSharedPoolApplyChangesATenantNotThePool(t *testing.T) {
	t.Parallel()
	dsn, role := sharedDatabase(t)
	url := asRole(t, dsn, role)
	e := openConf(t, loadConf(t, sharedEngines(url, nil)))
	ctx := t.Context()
	before, err := e.Engine("saas")
	require.NoError(t, err)

	// A request holding acme's connection while Apply moves acme to the
	// globex schema finishes on the old settings.
	held, release, err := e.Acquire(ctx, "acme")
	require.NoError(t, err)
	engines := sharedEngines(url, nil)
	acme, ok := engines["acme"].(map[string]any)
	require.True(t, ok)
	acme["search_path"] = "globex"
	require.NoError(t, e.Apply(ctx, loadConf(t, engines)))
	got, err := scalar[string](ctx, held, "select string_agg(name, ',') from items")
	require.NoError(t, err)
	assert.Equal(t, "acme", got, "a held connection keeps the settings it was acquired with")
	require.NoError(t, release())

	db, release, err := e.Acquire(ctx, "acme")
	require.NoError(t, err)
	got, err = scalar[string](ctx, db, "select string_agg(name, ',') from items")
	require.NoError(t, err)
	assert.Equal(t, "globex", got, "a new acquire has the new search_path")
	require.NoError(t, release())

	after, err := e.Engine("saas")
	require.NoError(t, err)
	assert.Same(t, before, after, "the pool engine, unchanged, keeps its pool")
	assert.Empty(t, e.Stats().Draining, "a shared tenant has no pool to drain")
}

// bench's hand-written shared-pool statement (benchapp.PgxbatchApp, the
// floor that bench/http.sh compares a shared-pool tenant with) copies the
// prelude of its tenant, search_path acme and app.tenant acme; the
// comparison means something only while the copy is exact.
func TestBenchSharedPreludeIsFiberdbs(t *testing.T) {
	sql, args := fiberdb.PreludeOf("acme", map[string]string{"app.tenant": "acme"})
	require.Equal(t, sql, benchapp.SharedPrelude.SQL)
	require.Equal(t, args, benchapp.SharedPrelude.Arguments)
}
