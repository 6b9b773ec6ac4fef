// Tests of the demo as a newcomer runs it: the real binary, as a subprocess,
// driven over real HTTP, stopped by a signal.
package main_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/internal/testkit"
)

type todo struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
}

type whoami struct {
	Tenant   string `json:"tenant"`
	Database string `json:"database"`
	Name     string `json:"name"`
	Plan     string `json:"plan"`
}

var seeds = map[string][]string{
	"acme":    {"Order more anvils", "Test the rocket skates"},
	"globex":  {"Review the volcano lair budget", "Hire a hammock district manager"},
	"initech": {"Put new cover sheets on the TPS reports", "Find the red stapler"},
}

func TestDemo(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	bin := testkit.Build(t, t.TempDir(), "demo")

	t.Run("serves every route and cleans up on SIGINT", func(t *testing.T) {
		t.Parallel()
		testServesEveryRoute(t, bin)
	})
	t.Run("killed hard, its PostgreSQL dies with it", func(t *testing.T) {
		t.Parallel()
		testKilledHard(t, bin)
	})
	t.Run("interrupted during startup, it cleans up", func(t *testing.T) {
		t.Parallel()
		testInterruptedStartup(t, bin)
	})
	t.Run("SIGTERM to go run stops it gracefully", func(t *testing.T) {
		t.Parallel()
		testGoRunSIGTERM(t)
	})
	t.Run("DATABASE_URL uses that server and starts none", func(t *testing.T) {
		t.Parallel()
		testDatabaseURL(t, bin)
	})
	t.Run("a catalog row inserted while it runs is served, a deleted one answers 404", func(t *testing.T) {
		t.Parallel()
		testCatalog(t, bin)
	})
	t.Run("bad configuration exits 2 on one line", func(t *testing.T) {
		t.Parallel()
		testBadConfig(t, bin)
	})
	t.Run("address in use exits 1 before starting PostgreSQL", func(t *testing.T) {
		t.Parallel()
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()

		d := startDemo(t, bin, nil, "-addr", ln.Addr().String())
		require.Equal(t, 1, d.wait(t, 30*time.Second), d.stderr.String())
		require.Equal(t, "demo: listen: listen tcp "+ln.Addr().String()+": bind: address already in use\n", d.stderr.String())
		require.Empty(t, d.stdout.String())
		require.Empty(t, pgDirs(t, d.tmp))
	})
}

func testServesEveryRoute(t *testing.T, bin string) {
	t.Helper()
	d := startDemo(t, bin, nil, "-addr", "127.0.0.1:0")
	d.waitReady(t)
	require.NotEmpty(t, d.dataDir, d.stdout.String())
	require.Equal(t, d.tmp, filepath.Dir(d.dataDir), "the cluster lives in the demo's TMPDIR")
	require.DirExists(t, d.dataDir)
	out := d.stdout.String()
	require.Regexp(t, `^fiberdb demo: embedded PostgreSQL \d+ on 127\.0\.0\.1:\d+ \(data in \S+\)\n`, out)
	require.Contains(t, out, "curl -H 'Host: acme.localhost' "+d.base+"/whoami\n")
	require.Contains(t, out, "curl -H 'X-Tenant: globex' "+d.base+"/todos\n")
	require.Contains(t, out, "Ctrl-C stops the server and removes the data.\n")

	procs := descendants(t, d.cmd.Process.Pid)
	require.NotEmpty(t, procs, "the demo runs PostgreSQL as its child")
	require.NotEmpty(t, cmdlinesWith(t, d.dataDir), "a postgres process serves the data directory")

	acme := func(r *request) *request { r.host = "acme.localhost"; return r }

	t.Run("whoami by Host and by header", func(t *testing.T) {
		for _, name := range []string{"acme", "globex", "initech"} {
			var who whoami
			decode(t, d.do(t, &request{path: "/whoami", host: name + ".localhost"}), http.StatusOK, &who)
			require.Equal(t, name, who.Tenant)
			require.Equal(t, name, who.Database, "the tenant's own database answered")
		}
		var who whoami
		decode(t, d.do(t, &request{path: "/whoami", host: "ACME.localhost:3000"}), http.StatusOK, &who)
		require.Equal(t, whoami{Tenant: "acme", Database: "acme", Name: "Acme Corporation", Plan: "enterprise"}, who,
			"the landlord database names the tenant")

		decode(t, d.do(t, &request{path: "/whoami", header: [][2]string{{"X-Tenant", "globex"}}}), http.StatusOK, &who)
		require.Equal(t, whoami{Tenant: "globex", Database: "globex", Name: "Globex Corporation", Plan: "pro"}, who)
	})

	t.Run("tenants that do not resolve", func(t *testing.T) {
		requireError(t, d.do(t, &request{path: "/whoami", host: "nobody.localhost"}), http.StatusNotFound, "unknown tenant")
		requireError(t, d.do(t, &request{path: "/todos"}), http.StatusNotFound, "unknown tenant")
		requireError(t, d.do(t, &request{path: "/whoami", header: [][2]string{{"X-Tenant", "nobody"}}}), http.StatusNotFound, "unknown tenant")
		requireError(t, d.do(t, &request{path: "/whoami", header: [][2]string{{"X-Tenant", "default"}}}), http.StatusNotFound, "unknown tenant")
		requireError(t, d.do(t, &request{path: "/whoami", header: [][2]string{{"X-Tenant", "acme"}, {"X-Tenant", "globex"}}}),
			http.StatusBadRequest, "malformed tenant")
		// EnableTrustedProxyCheck: a client's X-Forwarded-Host picks nothing.
		requireError(t, d.do(t, &request{path: "/whoami", host: "nobody.localhost", header: [][2]string{{"X-Forwarded-Host", "acme.localhost"}}}),
			http.StatusNotFound, "unknown tenant")
		requireError(t, d.do(t, acme(&request{path: "/nope"})), http.StatusNotFound, "Cannot GET /nope")
	})

	var created todo
	t.Run("list and create", func(t *testing.T) {
		for name, titles := range seeds {
			var todos []todo
			decode(t, d.do(t, &request{path: "/todos", host: name + ".localhost"}), http.StatusOK, &todos)
			require.Equal(t, titles, titlesOf(todos), name)
		}

		resp := d.do(t, acme(&request{method: http.MethodPost, path: "/todos", body: `{"title":"  Write the demo test  "}`}))
		decode(t, resp, http.StatusCreated, &created)
		require.Equal(t, "Write the demo test", created.Title, "trimmed")
		require.False(t, created.Done)
		require.Equal(t, fmt.Sprintf("/todos/%d", created.ID), resp.header.Get("Location"))

		var todos []todo
		decode(t, d.do(t, acme(&request{path: "/todos"})), http.StatusOK, &todos)
		require.Equal(t, append(append([]string(nil), seeds["acme"]...), "Write the demo test"), titlesOf(todos))

		long := strings.Repeat("x", 200)
		var t200 todo
		decode(t, d.do(t, acme(&request{method: http.MethodPost, path: "/todos", body: `{"title":"` + long + `"}`})), http.StatusCreated, &t200)
		require.Equal(t, long, t200.Title, "200 bytes is the limit, inclusive")
	})

	t.Run("create refuses bad bodies", func(t *testing.T) {
		for _, tc := range []struct{ name, body, message string }{
			{"malformed JSON", `{"title":`, "malformed JSON"},
			{"no body", ``, "malformed JSON"},
			{"trailing data", `{"title":"a"} {}`, "malformed JSON"},
			{"no title", `{}`, "title is required"},
			{"null title", `{"title":null}`, "title is required"},
			{"blank title", `{"title":"   "}`, "title is required"},
			{"title over 200 bytes", `{"title":"` + strings.Repeat("é", 100) + `x"}`, "title must be at most 200 bytes"},
			{"title with NUL", `{"title":"a\u0000b"}`, "title must not contain NUL"},
			{"title not a string", `{"title":5}`, "title must be a JSON string"},
			{"unknown field", `{"title":"a","owner":"me"}`, `unknown field "owner"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireError(t, d.do(t, acme(&request{method: http.MethodPost, path: "/todos", body: tc.body})), http.StatusBadRequest, tc.message)
			})
		}
		t.Run("body over BodyLimit", func(t *testing.T) {
			body := `{"title":"` + strings.Repeat("x", 20*1024) + `"}`
			requireError(t, d.do(t, acme(&request{method: http.MethodPost, path: "/todos", body: body})),
				http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		})
	})

	t.Run("get by id", func(t *testing.T) {
		var got todo
		decode(t, d.do(t, acme(&request{path: fmt.Sprintf("/todos/%d", created.ID)})), http.StatusOK, &got)
		require.Equal(t, created, got)

		requireError(t, d.do(t, acme(&request{path: "/todos/999999"})), http.StatusNotFound, "Not Found")
		requireError(t, d.do(t, acme(&request{path: "/todos/abc"})), http.StatusNotFound, "Not Found")
		requireError(t, d.do(t, acme(&request{path: "/todos/0"})), http.StatusNotFound, "Not Found")
	})

	t.Run("tenants never see each other", func(t *testing.T) {
		var todos []todo
		decode(t, d.do(t, &request{path: "/todos", header: [][2]string{{"X-Tenant", "globex"}}}), http.StatusOK, &todos)
		require.Equal(t, seeds["globex"], titlesOf(todos))
		// acme's third todo does not exist in globex's database.
		requireError(t, d.do(t, &request{path: fmt.Sprintf("/todos/%d", created.ID), host: "globex.localhost"}),
			http.StatusNotFound, "Not Found")
	})

	t.Run("patch", func(t *testing.T) {
		path := fmt.Sprintf("/todos/%d", created.ID)
		var patched todo
		decode(t, d.do(t, acme(&request{method: http.MethodPatch, path: path, body: `{"title":" Ship it ","done":true}`})), http.StatusOK, &patched)
		require.Equal(t, todo{ID: created.ID, Title: "Ship it", Done: true}, patched)

		var got todo
		decode(t, d.do(t, acme(&request{path: path})), http.StatusOK, &got)
		require.Equal(t, patched, got, "the change was committed")

		decode(t, d.do(t, acme(&request{method: http.MethodPatch, path: path, body: `{"done":false}`})), http.StatusOK, &patched)
		require.Equal(t, todo{ID: created.ID, Title: "Ship it", Done: false}, patched, "an absent title is kept")

		requireError(t, d.do(t, acme(&request{method: http.MethodPatch, path: "/todos/999999", body: `{"done":true}`})), http.StatusNotFound, "Not Found")
		requireError(t, d.do(t, acme(&request{method: http.MethodPatch, path: "/todos/abc", body: `{"done":true}`})), http.StatusNotFound, "Not Found")
		requireError(t, d.do(t, acme(&request{method: http.MethodPatch, path: path, body: `{"done":`})), http.StatusBadRequest, "malformed JSON")
		requireError(t, d.do(t, acme(&request{method: http.MethodPatch, path: path, body: `{}`})), http.StatusBadRequest,
			"nothing to change: send title, done or both")
		requireError(t, d.do(t, acme(&request{method: http.MethodPatch, path: path, body: `{"title":""}`})), http.StatusBadRequest, "title is required")
		requireError(t, d.do(t, acme(&request{method: http.MethodPatch, path: path, body: `{"done":"yes"}`})), http.StatusBadRequest,
			"done must be a JSON boolean")

		decode(t, d.do(t, acme(&request{path: path})), http.StatusOK, &got)
		require.Equal(t, patched, got, "refused patches changed nothing")
	})

	t.Run("healthz and stats answer for any host", func(t *testing.T) {
		for _, host := range []string{"", "nobody.localhost"} {
			var health struct {
				Status  string            `json:"status"`
				Engines map[string]string `json:"engines"`
			}
			decode(t, d.do(t, &request{path: "/healthz", host: host}), http.StatusOK, &health)
			require.Equal(t, "ok", health.Status)
			require.Equal(t, map[string]string{"default": "ok", "acme": "ok", "globex": "ok", "initech": "ok"}, health.Engines)
		}

		var stats struct {
			Engines map[string]map[string]float64 `json:"engines"`
			Resolve struct {
				Resolved      map[string]uint64 `json:"resolved"`
				Malformed     uint64            `json:"malformed"`
				UnknownTenant uint64            `json:"unknown_tenant"`
			} `json:"resolve"`
		}
		decode(t, d.do(t, &request{path: "/stats"}), http.StatusOK, &stats)
		require.Len(t, stats.Engines, 4)
		for _, name := range []string{"default", "acme", "globex", "initech"} {
			s, ok := stats.Engines[name]
			require.True(t, ok, name)
			for _, key := range []string{
				"acquired", "idle", "total", "max", "constructing", "acquire_count",
				"acquire_duration_ms", "empty_acquire_count", "canceled_acquire_count",
			} {
				require.Contains(t, s, key, name)
			}
			require.Zero(t, s["acquired"], "%s: every request gave its connection back", name)
			require.Equal(t, 4.0, s["max"], "%s: FIBERDB.engine_defaults.pool_max_conns", name)
			require.Positive(t, s["acquire_count"], name)
		}
		require.Positive(t, stats.Resolve.Resolved["acme"])
		require.Zero(t, stats.Resolve.Resolved["default"], "the landlord is never a tenant")
		require.GreaterOrEqual(t, stats.Resolve.UnknownTenant, uint64(5))
		require.GreaterOrEqual(t, stats.Resolve.Malformed, uint64(1))

		metrics := d.do(t, &request{path: "/metrics", host: "anything.example"})
		require.Equal(t, http.StatusOK, metrics.status, "metrics answer for any Host")
		for _, series := range []string{
			`fiberdb_pool_acquired_conns{engine="acme"} 0`,
			`fiberdb_pool_max_conns{engine="initech"} 4`,
			`fiberdb_resolutions_total{engine="",outcome="unknown_tenant"}`,
			`fiberdb_resolutions_total{engine="globex",outcome="resolved"}`,
		} {
			require.Contains(t, metrics.body, series)
		}
	})

	require.Equal(t, 0, d.interrupt(t), "stdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
	require.Empty(t, d.stderr.String(), "nothing failed, nothing raced")
	require.True(t, strings.HasSuffix(d.stdout.String(), "shutting down\nstopped PostgreSQL and removed "+d.dataDir+"\n"), d.stdout.String())
	require.False(t, exists(t, d.dataDir), "the data directory is removed")
	require.Empty(t, pgDirs(t, d.tmp))
	for _, p := range procs {
		require.False(t, running(p), "process %d outlived the demo", p.pid)
	}
	require.Empty(t, cmdlinesWith(t, d.dataDir), "no process of the demo's PostgreSQL remains")
}

func titlesOf(todos []todo) []string {
	titles := make([]string, len(todos))
	for i, td := range todos {
		titles[i] = td.Title
	}
	return titles
}

// testCatalog follows the banner's own instructions (issue 15): the demo
// keeps its tenants in the landlord's fiberdb_tenants, and serves a row
// inserted while it runs within seconds, for a database that exists.
func testCatalog(t *testing.T, bin string) {
	t.Helper()
	d := startDemo(t, bin, nil, "-addr", "127.0.0.1:0")
	d.waitReady(t)
	out := d.stdout.String()
	psql := regexp.MustCompile(`psql '([^']+)' -c (.+)`)
	var server, central, insert, remove string
	for line := range strings.SplitSeq(out, "\n") {
		m := psql.FindStringSubmatch(line)
		switch {
		case m == nil:
		case strings.Contains(m[2], "CREATE DATABASE"):
			server = m[1]
		case strings.Contains(m[2], "INSERT INTO fiberdb_tenants"):
			central, insert = m[1], strings.Trim(m[2], `"`)
		case strings.Contains(m[2], "DELETE FROM fiberdb_tenants"):
			remove = strings.Trim(strings.SplitN(m[2], "#", 2)[0], `" `)
		}
	}
	require.NotEmpty(t, insert, "the banner says how to add a tenant:\n%s", out)
	require.NotEmpty(t, remove, out)

	run := func(url, sql string) {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), url)
		require.NoError(t, err)
		defer conn.Close(context.WithoutCancel(t.Context()))
		_, err = conn.Exec(t.Context(), sql)
		require.NoError(t, err, sql)
	}
	// The seed tenants are catalog rows: removing one is a 404 too.
	whoami := func(host string) int { return d.do(t, &request{path: "/whoami", host: host}).status }
	require.Equal(t, http.StatusOK, whoami("acme.localhost"))
	require.Equal(t, http.StatusNotFound, whoami("newco.localhost"))

	run(server, "CREATE DATABASE newco")
	run(central, insert)
	require.Eventually(t, func() bool { return whoami("newco.localhost") == http.StatusOK }, 5*time.Second, 20*time.Millisecond,
		"an inserted row is served within seconds")
	var todos []todo
	decode(t, d.do(t, &request{path: "/todos", host: "newco.localhost"}), http.StatusOK, &todos)
	require.Equal(t, []string{"Welcome to newco"}, titlesOf(todos), "the demo readied the new tenant's database")

	// Issue 17: `fiberdb tenant add` provisions a tenant the running demo
	// serves: the command creates its database and writes its catalog row.
	cmdDir := t.TempDir()
	fiberdbBin := filepath.Join(cmdDir, "fiberdb")
	built, err := exec.CommandContext(t.Context(), "go", "build", "-o", fiberdbBin, "../fiberdb").CombinedOutput()
	require.NoError(t, err, "go build: %s", built)
	cfg := filepath.Join(cmdDir, "fiberdb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("SQLALCHEMY_ENGINES:\n  default: "+central+"\n"), 0o600))
	add := exec.CommandContext(t.Context(), fiberdbBin, "tenant", "add", "added", "-host", "added.localhost", "-config", cfg, "-dir", "")
	added, err := add.CombinedOutput()
	require.NoError(t, err, "fiberdb tenant add: %s", added)
	require.Eventually(t, func() bool { return whoami("added.localhost") == http.StatusOK }, 5*time.Second, 20*time.Millisecond,
		"a tenant made by fiberdb tenant add is served by the running demo")

	run(central, remove)
	require.Eventually(t, func() bool { return whoami("newco.localhost") == http.StatusNotFound }, 5*time.Second, 20*time.Millisecond,
		"a deleted row answers 404")
	run(central, "DELETE FROM fiberdb_tenants WHERE name = 'globex'")
	require.Eventually(t, func() bool { return whoami("globex.localhost") == http.StatusNotFound }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusOK, whoami("acme.localhost"), "the others keep serving")

	require.Equal(t, 0, d.interrupt(t), "stdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
}
