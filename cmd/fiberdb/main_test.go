// Tests of the fiberdb command as users run it: the built binary, as a
// subprocess, against a real PostgreSQL.
package main_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

var schema = map[string]string{
	"001_widgets.sql": `CREATE TABLE widgets (id bigint PRIMARY KEY, name text NOT NULL);
---- create above / drop below ----
DROP TABLE widgets;
`,
	"002_gadgets.sql": "CREATE TABLE gadgets (id bigint PRIMARY KEY);\n",
}

var summary = regexp.MustCompile(`(?m)^(\d+) tenants in \S+: (\d+) migrated, (\d+) up to date, (\d+) failed$`)

// lines returns the final line of each tenant, by name.
func lines(t *testing.T, stdout string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for line := range strings.SplitSeq(stdout, "\n") {
		if strings.Contains(line, " → ") {
			name, _, _ := strings.Cut(line, " ")
			require.NotContains(t, out, name, "one final line per tenant")
			out[name] = line
		}
	}
	return out
}

func TestCommand(t *testing.T) {
	t.Parallel()
	fiberdbtest.Server(t) // fails under CI=true without PostgreSQL
	bin := testkit.Build(t, t.TempDir(), "fiberdb")

	for _, tc := range []struct {
		name string
		run  func(t *testing.T, bin string)
	}{
		{"migrates every tenant in parallel, then has nothing to do", testMigrateEveryTenant},
		{"a conflicting tenant fails alone", testConflictFailsAlone},
		{"schema tenants migrate their own schema", testSchemaTenants},
		{"row-level-security tenants share their pool engine's run", testRowLevelSecurityTenants},
		{"-tenants limits the run", testTenantsFlag},
		{"usage errors exit 2 before anything runs", testUsageErrors},
		{"tenant add creates, migrates and registers a tenant", testTenantAdd},
		{"tenant add -template copies the template database", testTenantAddTemplate},
		{"migrate and tenant add connect through direct_url", testDirectURL},
		{"a landlord with a pool has no catalog, and tenant add refuses it", testLandlordWithAPool},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, bin)
		})
	}
}

func testMigrateEveryTenant(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	urls := newTenants(t, 14)
	cfg := writeConfig(t, dir, urls)
	migrations := writeMigrations(t, dir, schema)

	r := fiberdb(t, bin, nil, "migrate", "-config", cfg, "-dir", migrations, "-parallel", "4")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Empty(t, r.stderr)
	final := lines(t, r.stdout)
	require.Len(t, final, 14)
	for i := range 14 {
		name := fmt.Sprintf("t%02d", i)
		require.Regexp(t, `^`+name+`  0 → 2  migrated in \S+$`, final[name])
		// Not a terminal: a plain line as each migration starts.
		require.Contains(t, r.stdout, name+": 001_widgets.sql\n")
		require.Contains(t, r.stdout, name+": 002_gadgets.sql\n")
		require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, urls[name]))
	}
	require.Equal(t, []string{"14", "14", "0", "0"}, summary.FindStringSubmatch(r.stdout)[1:])
	require.Empty(t, tables(t, urls["default"]), "the landlord is not a tenant")

	r = fiberdb(t, bin, nil, "migrate", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	final = lines(t, r.stdout)
	require.Len(t, final, 14)
	for name, line := range final {
		require.Regexp(t, `^`+name+`  2 → 2  up to date in \S+$`, line)
	}
	require.NotContains(t, r.stdout, ".sql", "no migration ran")
	require.Equal(t, []string{"14", "0", "14", "0"}, summary.FindStringSubmatch(r.stdout)[1:])
}

func testConflictFailsAlone(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	urls := newTenants(t, 4)
	exec1(t, urls["t01"], "CREATE TABLE widgets (id int)")

	r := fiberdb(t, bin, nil, "migrate", "-config", writeConfig(t, dir, urls), "-dir", writeMigrations(t, dir, schema), "-parallel", "2")
	require.Equal(t, 1, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	final := lines(t, r.stdout)
	require.Regexp(t, `^t01  0 → 0  FAILED in \S+: 001_widgets.sql: ERROR: relation "widgets" already exists \(SQLSTATE 42P07\)$`, final["t01"])
	for _, name := range []string{"t00", "t02", "t03"} {
		require.Regexp(t, `^`+name+`  0 → 2  migrated in \S+$`, final[name])
		require.Contains(t, tables(t, urls[name]), "public.gadgets")
	}
	require.Equal(t, []string{"4", "3", "0", "1"}, summary.FindStringSubmatch(r.stdout)[1:])
	require.Equal(t, []string{"public.goose_db_version", "public.widgets"}, tables(t, urls["t01"]), "nothing of 001 stayed")
	require.Equal(t, []int64{0}, testkit.Query[int64](t, urls["t01"], "SELECT max(version_id) FROM goose_db_version"))
}

func testSchemaTenants(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	saas := fiberdbtest.Database(t)
	cfg := filepath.Join(dir, "fiberdb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`SQLALCHEMY_ENGINES:
  default: %q
  saas: %q
  acme:   {pool: saas, search_path: acme, hosts: [acme.example.com]}
  globex: {pool: saas, search_path: globex}
FIBERDB:
  tenants: [acme, globex]
`, fiberdbtest.Database(t), saas)), 0o600))

	r := fiberdb(t, bin, nil, "migrate", "-config", cfg, "-dir", writeMigrations(t, dir, schema))
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	final := lines(t, r.stdout)
	require.Len(t, final, 2, "FIBERDB.tenants lists the tenants")
	require.Regexp(t, `^acme    0 → 2  migrated in \S+$`, final["acme"])
	require.Regexp(t, `^globex  0 → 2  migrated in \S+$`, final["globex"])
	require.Equal(t, []string{
		"acme.gadgets", "acme.goose_db_version", "acme.widgets",
		"globex.gadgets", "globex.goose_db_version", "globex.widgets",
	}, tables(t, saas), "each tenant in its schema, nothing in public")
}

// testRowLevelSecurityTenants is S5 of the review: a pool engine and the
// row-level-security tenants of its pool share its tables, so one run
// migrates them, and every one of them says what it did.
func testRowLevelSecurityTenants(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	saas := fiberdbtest.Database(t)
	cfg := filepath.Join(dir, "fiberdb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`SQLALCHEMY_ENGINES:
  default: %q
  saas: %q
  r1: {pool: saas, settings: {app.tenant: r1}}
  r2: {pool: saas, settings: {app.tenant: r2}}
  r3: {pool: saas, settings: {app.tenant: r3}}
`, fiberdbtest.Database(t), saas)), 0o600))
	migrations := writeMigrations(t, dir, schema)

	r := fiberdb(t, bin, nil, "migrate", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	final := lines(t, r.stdout)
	require.Len(t, final, 4)
	require.Regexp(t, `^r1    0 → 2  migrated in \S+, shared with r2, r3 and saas$`, final["r1"])
	require.Regexp(t, `^r2    0 → 2  migrated in \S+, shared with r1, r3 and saas$`, final["r2"])
	require.Regexp(t, `^saas  0 → 2  migrated in \S+, shared with r1, r2 and r3$`, final["saas"])
	require.Equal(t, 1, strings.Count(r.stdout, "001_widgets.sql"), "one run:\n%s", r.stdout)
	require.Contains(t, r.stdout, "r1: 001_widgets.sql\n", "under the first tenant of the run")
	require.Equal(t, []string{"4", "4", "0", "0"}, summary.FindStringSubmatch(r.stdout)[1:])
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, saas))

	r = fiberdb(t, bin, nil, "migrate", "-config", cfg, "-dir", migrations, "-tenants", "r3")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Regexp(t, `(?m)^r3  2 → 2  up to date in \S+$`, r.stdout, "a run of one tenant shares nothing")
}

func testTenantsFlag(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	urls := newTenants(t, 3)
	r := fiberdb(t, bin, nil, "migrate", "-config", writeConfig(t, dir, urls), "-dir", writeMigrations(t, dir, schema), "-tenants", "t02,t00")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	final := lines(t, r.stdout)
	require.Len(t, final, 2)
	require.Contains(t, final, "t00")
	require.Contains(t, final, "t02")
	require.Empty(t, tables(t, urls["t01"]))
}

func testUsageErrors(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	urls := newTenants(t, 1)
	cfg := writeConfig(t, dir, urls)
	migrations := writeMigrations(t, dir, schema)

	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		stderr string
	}{
		{
			name:   "unknown tenant",
			args:   []string{"migrate", "-config", cfg, "-dir", migrations, "-tenants", "t00,nope"},
			stderr: `fiberdb: unknown tenant "nope": 'SQLALCHEMY_ENGINES["nope"]' is not defined` + "\n",
		},
		{
			name:   "the landlord",
			args:   []string{"migrate", "-config", cfg, "-dir", migrations, "-tenants", "default"},
			stderr: `fiberdb: unknown tenant "default": the landlord engine is not a tenant` + "\n",
		},
		{
			name:   "bad configuration",
			env:    []string{"FIBERDB_TENANT_HEADER=no spaces"},
			args:   []string{"migrate", "-config", cfg, "-dir", migrations},
			stderr: `: 'FIBERDB["tenant_header"]' must be`,
		},
		{
			name:   "no migrations directory",
			args:   []string{"migrate", "-config", cfg, "-dir", dir + "/nowhere"},
			stderr: "not a directory of migrations",
		},
		{
			name:   "unknown command",
			args:   []string{"migrat"},
			stderr: `fiberdb: unknown command "migrat" (want migrate or tenant add)` + "\n",
		},
		{
			name:   "bad tenant name",
			args:   []string{"tenant", "add", "no/slash", "-config", cfg, "-dir", migrations},
			stderr: `fiberdb: add tenant "no/slash": invalid tenant: a name is 1 to 63 of A-Z, a-z, 0-9, _ and -` + "\n",
		},
		{
			name:   "tenant add of a configured engine",
			args:   []string{"tenant", "add", "t00", "-config", cfg, "-dir", migrations},
			stderr: `tenant exists: the configuration defines engine "t00"`,
		},
	} {
		r := fiberdb(t, bin, tc.env, tc.args...)
		require.Equal(t, 2, r.code, "%s\nstdout:\n%s\nstderr:\n%s", tc.name, r.stdout, r.stderr)
		require.Contains(t, r.stderr, tc.stderr, tc.name)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), "%s: one line:\n%s", tc.name, r.stderr)
	}
	require.Empty(t, tables(t, urls["t00"]), "nothing ran")
}

func testTenantAdd(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	pg := fiberdbtest.Server(t)
	central, saas := fiberdbtest.Database(t), fiberdbtest.Database(t)
	cfg := writeConfig(t, dir, map[string]string{"default": central, "saas": saas})
	migrations := writeMigrations(t, dir, schema)
	// Upper case and a dash, which only a quoted identifier keeps; random,
	// so that runs sharing a server never meet.
	name := "Acme-" + rand.Text()[:8]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, pg.DropDatabase(ctx, name))
	})

	// The landlord has no catalog table yet: tenant add installs it.
	r := fiberdb(t, bin, nil, "tenant", "add", name, "-host", "ACME.example.com", "-host", "acme.localhost", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Regexp(t, `^`+name+`  0 → 2  migrated in \S+; added to fiberdb_tenants\n$`, r.stdout)
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, pg.ConnString(name)))
	require.Equal(t, [][]string{{"acme.example.com", "acme.localhost"}},
		testkit.Query[[]string](t, central, "SELECT hosts FROM fiberdb_tenants WHERE name = $1", name))
	require.Equal(t, []string{pg.ConnString(name)}, testkit.Query[string](t, central, "SELECT url FROM fiberdb_tenants WHERE name = $1", name))

	// A shared-pool tenant: a schema in saas's database.
	r = fiberdb(t, bin, nil, "tenant", "add", "globex", "-pool", "saas", "-host", "globex.example.com", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Equal(t, []string{"globex.gadgets", "globex.goose_db_version", "globex.widgets"}, tables(t, saas))
	require.Equal(t, []string{`{"pool": "saas", "search_path": "globex"}`},
		testkit.Query[string](t, central, "SELECT options::text FROM fiberdb_tenants WHERE name = 'globex'"))

	// migrate follows the catalog: both new tenants are up to date, saas
	// (an engine of the file) gets its own tables.
	r = fiberdb(t, bin, nil, "migrate", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	final := lines(t, r.stdout)
	require.Len(t, final, 3)
	require.Regexp(t, `^`+name+`  2 → 2  up to date in \S+$`, final[name])
	require.Regexp(t, `^globex  +2 → 2  up to date in \S+$`, final["globex"])
	require.Regexp(t, `^saas  +0 → 2  migrated in \S+$`, final["saas"])

	// Once is enough: the names and hosts are taken now.
	for _, args := range [][]string{
		{"tenant", "add", name, "-config", cfg, "-dir", migrations},
		{"tenant", "add", "other", "-host", "acme.example.com", "-config", cfg, "-dir", migrations},
		{"tenant", "add", "globex", "-pool", "saas", "-config", cfg, "-dir", migrations},
	} {
		r = fiberdb(t, bin, nil, args...)
		require.Equal(t, 2, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		require.Contains(t, r.stderr, "tenant exists: ")
	}
}

func testTenantAddTemplate(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	pg := fiberdbtest.Server(t)
	tpl := fiberdbtest.Template(t, "tenant_add_marker", func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE TABLE marker (note text); INSERT INTO marker VALUES ('from the template')")
		return err
	})
	central := fiberdbtest.Database(t)
	cfg := writeConfig(t, dir, map[string]string{"default": central})
	name := "Initech-" + rand.Text()[:8]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, pg.DropDatabase(ctx, name))
	})

	r := fiberdb(t, bin, nil, "tenant", "add", name, "-host", "initech.example.com", "-template", tpl, "-config", cfg, "-dir", writeMigrations(t, dir, schema))
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Regexp(t, `^`+name+`  0 → 2  migrated in \S+; added to fiberdb_tenants\n$`, r.stdout)
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.marker", "public.widgets"},
		tables(t, pg.ConnString(name)), "the template's table and the migrations'")
	require.Equal(t, []string{"from the template"}, testkit.Query[string](t, pg.ConnString(name), "SELECT note FROM marker"))
	require.Equal(t, [][]string{{"initech.example.com"}},
		testkit.Query[[]string](t, central, "SELECT hosts FROM fiberdb_tenants WHERE name = $1", name))
	require.Equal(t, []string{pg.ConnString(name)}, testkit.Query[string](t, central, "SELECT url FROM fiberdb_tenants WHERE name = $1", name))
}

// testDirectURL gives every engine a url that refuses every connection and
// a direct_url to its database, saas's completed by FIBERDB_ variables: the
// command reads the catalog, migrates and adds tenants through direct_url
// alone.
func testDirectURL(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	pg := fiberdbtest.Server(t)
	central, saas, t00 := fiberdbtest.Database(t), fiberdbtest.Database(t), fiberdbtest.Database(t)
	saasClosed := testkit.ClosedURL(t, saas)
	cfg := filepath.Join(dir, "fiberdb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`SQLALCHEMY_ENGINES:
  default: {url: %q, direct_url: %q}
  saas: {url: %q, direct_url: %q}
  t00: {url: %q, direct_url: %q}
  acme: {pool: saas, search_path: acme}
`, testkit.ClosedURL(t, central), central, saasClosed, saasClosed, testkit.ClosedURL(t, t00), t00)), 0o600))
	server, err := url.Parse(saas)
	require.NoError(t, err)
	env := []string{"FIBERDB_ENGINES__SAAS__DIRECT_URL__HOST=" + server.Hostname(), "FIBERDB_ENGINES__SAAS__DIRECT_URL__PORT=" + server.Port()}
	migrations := writeMigrations(t, dir, schema)
	name := "direct_" + strings.ToLower(rand.Text()[:8])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, pg.DropDatabase(ctx, name))
	})

	r := fiberdb(t, bin, env, "migrate", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Len(t, lines(t, r.stdout), 3)
	require.Equal(t, []string{"acme.gadgets", "acme.goose_db_version", "acme.widgets", "public.gadgets", "public.goose_db_version", "public.widgets"},
		tables(t, saas))
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, t00))

	r = fiberdb(t, bin, env, "tenant", "add", name, "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Equal(t, []string{"public.gadgets", "public.goose_db_version", "public.widgets"}, tables(t, pg.ConnString(name)))
	r = fiberdb(t, bin, env, "tenant", "add", "globex", "-pool", "saas", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Contains(t, tables(t, saas), "globex.widgets")

	// The new tenant's row has a direct_url, which the next run follows.
	r = fiberdb(t, bin, env, "migrate", "-config", cfg, "-dir", migrations, "-tenants", name+",globex")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Equal(t, []string{"2", "0", "2", "0"}, summary.FindStringSubmatch(r.stdout)[1:])
}

// testLandlordWithAPool: since direct_url, the command read the catalog of
// a default engine with a pool from its pool engine's database, and tenant
// add installed one there and panicked. A table there, whose row names a
// database that refuses every connection, must not be read.
func testLandlordWithAPool(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	saas := fiberdbtest.Database(t)
	cfg := filepath.Join(dir, "fiberdb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("SQLALCHEMY_ENGINES:\n  default: {pool: saas}\n  saas: %q\n", saas)), 0o600))
	conn, err := pgx.Connect(t.Context(), saas)
	require.NoError(t, err)
	require.NoError(t, catalog.Install(t.Context(), conn))
	require.NoError(t, catalog.Put(t.Context(), conn, catalog.Tenant{Name: "ghost", URL: testkit.ClosedURL(t, saas)}))
	require.NoError(t, conn.Close(t.Context()))
	migrations := writeMigrations(t, dir, schema)

	r := fiberdb(t, bin, nil, "migrate", "-config", cfg, "-dir", migrations)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Equal(t, []string{"saas"}, slices.Sorted(maps.Keys(lines(t, r.stdout))), "no ghost")

	r = fiberdb(t, bin, nil, "tenant", "add", "globex", "-pool", "saas", "-config", cfg, "-dir", migrations)
	require.Equal(t, 1, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Contains(t, r.stderr, `'SQLALCHEMY_ENGINES["default"]' must be defined with a url: the catalog lives there`)
	require.NotContains(t, tables(t, saas), "globex.widgets")
}
