package main_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/pgserver"
)

// The demo's life outside the happy path: killed, interrupted early, pointed
// at another server, given a bad configuration.

func testKilledHard(t *testing.T, bin string) {
	t.Helper()
	d := startDemo(t, bin, nil, "-addr", "127.0.0.1:0")
	d.waitReady(t)
	procs := descendants(t, d.cmd.Process.Pid)
	require.NotEmpty(t, procs)

	require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
	d.wait(t, 10*time.Second)
	require.Equal(t, syscall.SIGKILL, signalOf(d))

	// The parent-death signal stops PostgreSQL; its other processes follow
	// when they notice their postmaster is gone.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range procs {
		for running(p) {
			require.False(t, time.Now().After(deadline), "process %d outlived the killed demo", p.pid)
			time.Sleep(20 * time.Millisecond)
		}
	}
	require.Empty(t, cmdlinesWith(t, d.dataDir))
	// The data directory stays (nothing ran to remove it); the test's
	// cleanup removes the demo's TMPDIR with it.
}

// testGoRunSIGTERM: `go run` dies of a SIGTERM without passing it on; the
// demo, its child, notices through its parent-death signal and shuts down as
// for a SIGTERM of its own (issue 13: it ran on, orphaned, with its
// PostgreSQL).
func testGoRunSIGTERM(t *testing.T) {
	t.Helper()
	d := startDemo(t, "go", nil, "run", ".", "-addr", "127.0.0.1:0")
	d.waitReady(t)
	require.NotEmpty(t, cmdlinesWith(t, d.dataDir), "PostgreSQL runs")

	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	d.wait(t, 30*time.Second) // go run itself
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(d.dataDir); errors.Is(err, os.ErrNotExist) && len(cmdlinesWith(t, d.dataDir)) == 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "the demo outlived go run\nstdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
		time.Sleep(20 * time.Millisecond)
	}
	// The demo's own output, written after go run died, says it shut down.
	require.Eventually(t, func() bool { return strings.Contains(d.stdout.String(), "stopped PostgreSQL and removed "+d.dataDir) },
		10*time.Second, 20*time.Millisecond, d.stdout.String())
}

func testInterruptedStartup(t *testing.T, bin string) {
	t.Helper()
	d := startDemo(t, bin, nil, "-addr", "127.0.0.1:0")
	// Wait for the first process PostgreSQL starts (initdb), then interrupt.
	var procs []proc
	deadline := time.Now().Add(30 * time.Second)
	for len(procs) == 0 {
		require.False(t, time.Now().After(deadline), "the demo started no PostgreSQL\nstderr:\n%s", d.stderr)
		time.Sleep(5 * time.Millisecond)
		procs = descendants(t, d.cmd.Process.Pid)
	}
	code := d.interrupt(t)
	if code == 0 {
		// The signal came after startup had finished: a normal shutdown.
		require.Contains(t, d.stdout.String(), "listening on ")
	} else {
		require.Equal(t, 130, code, "stderr:\n%s", d.stderr)
		require.Equal(t, "demo: interrupted during startup\n", d.stderr.String())
	}
	require.Empty(t, pgDirs(t, d.tmp), "the cluster's directory is removed")
	for _, p := range procs {
		require.False(t, running(p), "process %d outlived the demo", p.pid)
	}
	require.Empty(t, cmdlinesWith(t, d.tmp), "nothing left running")
}

func testDatabaseURL(t *testing.T, bin string) {
	t.Helper()
	ctx := t.Context()
	pg, err := pgserver.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pg.Close()) })
	for _, db := range []string{"central", "acme", "globex", "initech"} {
		require.NoError(t, pg.CreateDatabase(ctx, db, ""))
	}
	// A server URL: the demo picks each engine's database itself.
	env := []string{"DATABASE_URL=" + pg.ConnString("")}

	d := startDemo(t, bin, env, "-addr", "127.0.0.1:0")
	d.waitReady(t)
	require.True(t, strings.HasPrefix(d.stdout.String(),
		fmt.Sprintf("fiberdb demo: using PostgreSQL at 127.0.0.1:%d (DATABASE_URL)\n", pg.Port())), d.stdout.String())
	require.Contains(t, d.stdout.String(), "Ctrl-C stops the server.\n")
	require.Empty(t, d.dataDir)
	require.Empty(t, descendants(t, d.cmd.Process.Pid), "no embedded PostgreSQL")
	require.Empty(t, pgDirs(t, d.tmp))

	var who whoami
	decode(t, d.do(t, &request{path: "/whoami", host: "initech.localhost"}), http.StatusOK, &who)
	require.Equal(t, whoami{Tenant: "initech", Database: "initech", Name: "Initech", Plan: "free"}, who)
	var created todo
	decode(t, d.do(t, &request{method: http.MethodPost, path: "/todos", host: "acme.localhost", body: `{"title":"Survive a restart"}`}),
		http.StatusCreated, &created)

	// The server goes away: health and requests answer 503, and recover.
	require.NoError(t, pg.Stop())
	pollStatus(t, d, &request{path: "/healthz"}, http.StatusServiceUnavailable)
	var health struct {
		Status  string            `json:"status"`
		Engines map[string]string `json:"engines"`
	}
	decode(t, d.do(t, &request{path: "/healthz"}), http.StatusServiceUnavailable, &health)
	require.Equal(t, "degraded", health.Status)
	require.Equal(t, map[string]string{"default": "down", "acme": "down", "globex": "down", "initech": "down"}, health.Engines)
	pollStatus(t, d, &request{path: "/todos", host: "acme.localhost"}, http.StatusServiceUnavailable)
	requireError(t, d.do(t, &request{path: "/todos", host: "acme.localhost"}), http.StatusServiceUnavailable, "database unavailable")

	require.NoError(t, pg.Start(ctx))
	pollStatus(t, d, &request{path: "/healthz"}, http.StatusOK)
	pollStatus(t, d, &request{path: "/todos", host: "acme.localhost"}, http.StatusOK)

	require.Equal(t, 0, d.interrupt(t), "stdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
	require.True(t, strings.HasSuffix(d.stdout.String(), "Ctrl-C stops the server.\nshutting down\n"), d.stdout.String())

	t.Run("FIBERDB_ env vars giving every url start no PostgreSQL either", func(t *testing.T) {
		var urls []string
		for engine, db := range map[string]string{"DEFAULT": "central", "ACME": "acme", "GLOBEX": "globex", "INITECH": "initech"} {
			urls = append(urls, "FIBERDB_ENGINES__"+engine+"__URL="+pg.ConnString(db))
		}
		d := startDemo(t, bin, urls, "-addr", "127.0.0.1:0")
		d.waitReady(t)
		require.True(t, strings.HasPrefix(d.stdout.String(), "fiberdb demo: using the engines' urls from the environment\n"), d.stdout.String())
		require.Empty(t, descendants(t, d.cmd.Process.Pid), "no embedded PostgreSQL")

		// A second run keeps what is there: no second seeding.
		var todos []todo
		decode(t, d.do(t, &request{path: "/todos", host: "acme.localhost"}), http.StatusOK, &todos)
		require.Equal(t, append(append([]string(nil), seeds["acme"]...), "Survive a restart"), titlesOf(todos))
		require.Equal(t, 0, d.interrupt(t), "stdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
		require.Empty(t, d.stderr.String())
	})

	t.Run("-config replaces the embedded configuration", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fiberdb.yaml")
		yaml := fmt.Sprintf(`SQLALCHEMY_ENGINES:
  default: %s
  acme:
    url: {host: 127.0.0.1, port: %d, user: postgres, database: acme, params: {sslmode: disable}}
    hosts: [todo.acme.test]
`, pg.ConnString("central"), pg.Port())
		require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))

		d := startDemo(t, bin, nil, "-addr", "127.0.0.1:0", "-config", path)
		d.waitReady(t)
		out := d.stdout.String()
		require.True(t, strings.HasPrefix(out, "fiberdb demo: using the engines in "+path+"\n"), out)
		require.Contains(t, out, "curl -H 'Host: todo.acme.test' "+d.base+"/whoami\n", "the curl lines follow the configuration")
		require.NotContains(t, out, "X-Tenant", "this configuration has no tenant header")
		require.Empty(t, descendants(t, d.cmd.Process.Pid), "no embedded PostgreSQL")

		var who whoami
		decode(t, d.do(t, &request{path: "/whoami", host: "todo.acme.test"}), http.StatusOK, &who)
		require.Equal(t, whoami{Tenant: "acme", Database: "acme", Name: "Acme Corporation", Plan: "enterprise"}, who)
		requireError(t, d.do(t, &request{path: "/whoami", host: "acme.localhost"}), http.StatusNotFound, "unknown tenant")
		decode(t, d.do(t, &request{path: "/whoami", host: "todo.acme.test", header: [][2]string{{"X-Tenant", "globex"}}}), http.StatusOK, &who)
		require.Equal(t, "acme", who.Tenant, "header routing is off in this configuration")
		require.Equal(t, 0, d.signal(t, syscall.SIGTERM), "SIGTERM too: stdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
		require.True(t, strings.HasSuffix(d.stdout.String(), "shutting down\n"), d.stdout.String())
		require.Empty(t, d.stderr.String())
	})

	// The demo never drops what it did not create.
	conn, err := pgx.Connect(ctx, pg.ConnString("acme"))
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM todos").Scan(&n))
	require.Equal(t, 3, n)
}

// pollStatus repeats r until it answers status, for at most 15 seconds.
func pollStatus(t *testing.T, d *demo, r *request, status int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := d.do(t, r)
		if resp.status == status {
			return
		}
		require.False(t, time.Now().After(deadline), "%s never answered %d; last: %d %s", r.path, status, resp.status, resp.body)
		time.Sleep(50 * time.Millisecond)
	}
}

func testBadConfig(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, yaml string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
		return path
	}
	noURL := write("no-url.yaml", "SQLALCHEMY_ENGINES:\n  default: postgres://app@127.0.0.1:1/central\n  acme:\n    hosts: [acme.localhost]\n")
	twoNoURL := write("two-no-url.yaml", "SQLALCHEMY_ENGINES:\n  default: {}\n  acme:\n    hosts: [acme.localhost]\n")
	notYAML := write("not-yaml.yaml", "SQLALCHEMY_ENGINES: [\n")
	missing := filepath.Join(dir, "missing.yaml")

	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		stderr string // the exact line, or a prefix when it ends in "…"
	}{
		{
			name: "engine without url", args: []string{"-config", noURL},
			stderr: `demo: 'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.`,
		},
		{
			name: "two problems on one line", args: []string{"-config", twoNoURL},
			stderr: `demo: 'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.; 'SQLALCHEMY_ENGINES["default"]["url"]' must be defined.`,
		},
		{
			name: "missing file", args: []string{"-config", missing},
			stderr: "demo: read " + missing + ": open " + missing + ": no such file or directory",
		},
		{name: "not YAML", args: []string{"-config", notYAML}, stderr: "demo: read " + notYAML + ": …"},
		{
			// The embedded config is checked before its PostgreSQL starts.
			name: "bad env override of the embedded config", env: []string{"FIBERDB_ENGINES__ACME__POOL_MAX_CONNS=lots"},
			stderr: `demo: 'SQLALCHEMY_ENGINES["acme"]["pool_max_conns"]' must be an integer.`,
		},
		{
			name: "bad tenant header", env: []string{"FIBERDB_TENANT_HEADER=X Tenant"},
			stderr: `demo: 'FIBERDB["tenant_header"]' must be an HTTP header name such as X-Tenant.`,
		},
		{
			name: "DATABASE_URL not a postgres URL", env: []string{"DATABASE_URL=mysql://db/app"},
			stderr: "demo: DATABASE_URL must be a URL such as postgres://user@host:5432/",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDemo(t, bin, tc.env, append([]string{"-addr", "127.0.0.1:0"}, tc.args...)...)
			require.Equal(t, 2, d.wait(t, 30*time.Second), d.stderr.String())
			stderr := d.stderr.String()
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			if prefix, ok := strings.CutSuffix(tc.stderr, "…"); ok {
				require.True(t, strings.HasPrefix(stderr, prefix), stderr)
			} else {
				require.Equal(t, tc.stderr+"\n", stderr)
			}
			require.Empty(t, d.stdout.String(), "nothing started, nothing announced")
			require.Empty(t, pgDirs(t, d.tmp), "no PostgreSQL was started")
			require.Empty(t, cmdlinesWith(t, d.tmp), "nothing left running")
		})
	}

	t.Run("unknown flag", func(t *testing.T) {
		t.Parallel()
		d := startDemo(t, bin, nil, "-nope")
		require.Equal(t, 2, d.wait(t, 30*time.Second))
		require.Contains(t, d.stderr.String(), "flag provided but not defined: -nope")
		require.Empty(t, pgDirs(t, d.tmp))
	})
}
