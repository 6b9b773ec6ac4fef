// Package fiberdbtest helps test fiberdb apps against a real PostgreSQL.
//
// [StartPostgres] runs a private throwaway server from the machine's
// PostgreSQL binaries; [Server] shares one per test binary, [Template] builds
// a schema once, [Database] gives each test its own database (copied from a
// template in milliseconds), [HostRequest] and [HeaderRequest] aim a request
// at a tenant, [Do] serves it through app.Test without a timeout, and
// [NoLeaks] checks that no connection stayed acquired.
// The server part uses no testing API, so programs (like cmd/demo) can run
// one too.
package fiberdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/fiberdb/fiberdb/fiberdb"
)

// EnvDatabaseURL names the variable that points tests at an existing server
// (a superuser URL) instead of starting one.
const EnvDatabaseURL = "FIBERDB_TEST_DATABASE_URL"

var shared struct {
	once sync.Once
	pg   *Postgres
	err  error
}

// Main runs the tests in m and then stops the server [Server] started, if
// any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { fiberdbtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared.pg != nil {
		if err := shared.pg.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "fiberdbtest:", err)
		}
	}
	os.Exit(code)
}

// SharedServer returns the test binary's shared server, starting it on first
// use, or wrapping $FIBERDB_TEST_DATABASE_URL when that is set. [Main] stops
// it. Tests call [Server]; SharedServer is for Example functions, which have
// no testing.TB.
func SharedServer() (*Postgres, error) {
	shared.once.Do(func() {
		if u := os.Getenv(EnvDatabaseURL); u != "" {
			shared.pg, shared.err = ConnectPostgres(u)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.pg, shared.err = StartPostgres(ctx)
	})
	return shared.pg, shared.err
}

// Server returns the test binary's shared server (see [SharedServer]). When
// no server can be had, the test fails if $CI is "true", and is skipped
// otherwise: CI must never pass by skipping.
func Server(tb testing.TB) *Postgres {
	tb.Helper()
	pg, err := SharedServer()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("fiberdbtest: PostgreSQL is required under CI=true: %v", err)
		}
		tb.Skipf("fiberdbtest: no PostgreSQL (%v); install postgresql or set %s", err, EnvDatabaseURL)
	}
	return pg
}

// DatabaseOptions configures [Database].
type DatabaseOptions struct {
	// Template is the database to copy, e.g. one made by [Template].
	//
	// Optional. Default: the server's default (template1)
	Template string
}

// Database creates a new database on the shared server for this test only,
// and returns its superuser connection string. It is dropped (ending any
// session still on it) when the test and its subtests end; register pool
// cleanups after calling Database so that they run first.
func Database(tb testing.TB, opts ...DatabaseOptions) string {
	tb.Helper()
	var o DatabaseOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	pg := Server(tb)
	name := "t_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pg.CreateDatabase(ctx, name, o.Template); err != nil {
		tb.Fatalf("fiberdbtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pg.DropDatabase(ctx, name); err != nil {
			tb.Errorf("fiberdbtest: drop database %s: %v", name, err)
		}
	})
	return pg.ConnString(name)
}

// NoLeaks fails the test unless every pool of e has no acquired connection
// within a few seconds. It polls because a destroyed connection counts as
// acquired until it has closed.
func NoLeaks(tb testing.TB, e *fiberdb.Engines) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked := acquired(e)
		if leaked == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("fiberdbtest: connections still acquired: %s", leaked)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func acquired(e *fiberdb.Engines) string {
	var leaks []string
	for _, name := range e.Names() {
		pool, err := e.Engine(name)
		if err != nil {
			continue
		}
		if n := pool.Stat().AcquiredConns(); n != 0 {
			leaks = append(leaks, fmt.Sprintf("%s=%d", name, n))
		}
	}
	return strings.Join(leaks, " ")
}

// Do serves req through app.Test with no timeout (a timed-out app.Test would
// leave the handler running with its connection) and returns the status and
// body, closing the body.
func Do(tb testing.TB, app *fiber.App, req *http.Request) (status int, body string) {
	tb.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		tb.Fatalf("fiberdbtest: app.Test: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("fiberdbtest: read body: %v", err)
	}
	return resp.StatusCode, string(b)
}

var templates sync.Map // name → *template

type template struct {
	once sync.Once
	err  error
}

// Template creates, once per test binary, a template database called name on
// the shared server by running setup (your schema and fixtures) on it, and
// returns name for [DatabaseOptions.Template]. Copying a template is much
// faster than running migrations per test:
//
//	tpl := fiberdbtest.Template(t, "todo_schema", migrate)
//	dsn := fiberdbtest.Database(t, fiberdbtest.DatabaseOptions{Template: tpl})
//
// Every call with the same name returns the first call's result; setup runs
// once. The template is dropped with the server.
func Template(tb testing.TB, name string, setup func(ctx context.Context, conn *pgx.Conn) error) string {
	tb.Helper()
	pg := Server(tb)
	v, _ := templates.LoadOrStore(name, new(template))
	tpl, _ := v.(*template) //nolint:errcheck // the map only holds *template
	tpl.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		tpl.err = buildTemplate(ctx, pg, name, setup)
	})
	if tpl.err != nil {
		tb.Fatalf("fiberdbtest: template %s: %v", name, tpl.err)
	}
	return name
}

func buildTemplate(ctx context.Context, pg *Postgres, name string, setup func(context.Context, *pgx.Conn) error) error {
	if err := pg.DropDatabase(ctx, name); err != nil {
		return err
	}
	if err := pg.CreateDatabase(ctx, name, ""); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, pg.ConnString(name))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	err = setup(ctx, conn)
	// CREATE DATABASE … TEMPLATE refuses a template with open sessions.
	if closeErr := conn.Close(ctx); closeErr != nil && err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return pg.exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE true")
}

// HostRequest builds a request for app.Test that Fiber routes by host. The
// target is a path ("/todos?done=1"); an absolute URL would override host.
func HostRequest(method, host, target string, body io.Reader) *http.Request {
	if body == nil {
		body = http.NoBody
	}
	req := httptest.NewRequestWithContext(context.Background(), method, target, body)
	req.Host = host
	return req
}

// HeaderRequest builds a request for app.Test that names its tenant in
// header, as header routing (FIBERDB.tenant_header) expects.
func HeaderRequest(method, header, tenant, target string, body io.Reader) *http.Request {
	req := HostRequest(method, "localhost", target, body)
	req.Header.Set(header, tenant)
	return req
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
