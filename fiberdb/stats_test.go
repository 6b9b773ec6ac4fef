package fiberdb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/pgserver"
	"github.com/fiberdb/fiberdb/tenancy"
)

func TestResolveStats(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme", "globex")
	app := newApp(fiberdb.Config{Engines: e, Authorize: func(c *fiber.Ctx, _ string) error {
		if c.Get("X-Deny") != "" {
			return errors.New("denied")
		}
		return nil
	}})
	app.Get("/", func(*fiber.Ctx) error { return nil })

	for _, host := range []string{"acme.test", "acme.test", "globex.test", "nobody.test", "bad%host"} {
		get(t, app, host, "/")
	}
	req := request(fiber.MethodGet, "acme.test", "/")
	req.Header.Set("X-Deny", "1")
	status, _ := fiberdbtest.Do(t, app, req)
	require.Equal(t, fiber.StatusForbidden, status)

	require.Equal(t, fiberdb.ResolveStats{
		Resolved:      map[string]uint64{"default": 0, "acme": 2, "globex": 1},
		UnknownTenant: 1,
		Malformed:     1,
		Refused:       1,
	}, e.ResolveStats())
}

// Regression (issue 12): an Authorize that refuses with an error matching
// tenancy.ErrUnknownTenant answered 404 but was counted as refused. The
// status and the counter now come from one classification: 404, unknown.
func TestAuthorizeUnknownIsCountedAsAnswered(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	var handled []error
	app := newApp(fiberdb.Config{
		Engines: e,
		Authorize: func(*fiber.Ctx, string) error {
			return fmt.Errorf("hide it: %w", tenancy.ErrUnknownTenant)
		},
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			handled = append(handled, err)
			return fiberdb.DefaultErrorHandler(c, err)
		},
	})
	app.Get("/", func(*fiber.Ctx) error { return nil })
	status, _ := get(t, app, "acme.test", "/")
	require.Equal(t, fiber.StatusNotFound, status)
	require.Len(t, handled, 1)
	require.ErrorIs(t, handled[0], fiberdb.ErrForbidden, "the cause is kept")
	require.ErrorIs(t, handled[0], tenancy.ErrUnknownTenant)
	require.Equal(t, fiberdb.ResolveStats{
		Resolved:      map[string]uint64{"default": 0, "acme": 0},
		UnknownTenant: 1,
	}, e.ResolveStats())
}

// engineTracer records which engine each query ran on.
type engineTracer struct {
	engine string
	mu     *sync.Mutex
	seen   *[]string
}

func (tr engineTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	*tr.seen = append(*tr.seen, tr.engine)
	return ctx
}

func (engineTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestTracerKnowsTheEngine(t *testing.T) {
	t.Parallel()
	conf := loadConf(t, engineMaps(t, nil, "default", "acme"))
	var mu sync.Mutex
	var seen []string
	e, err := fiberdb.Open(t.Context(), conf, fiberdb.OpenOptions{
		Tracer: func(engine string) pgx.QueryTracer { return engineTracer{engine, &mu, &seen} },
	})
	require.NoError(t, err)
	defer e.Close()
	require.Equal(t, 1, count(t, e, "acme", "SELECT 1"))
	require.Equal(t, 1, count(t, e, "default", "SELECT 1"))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"acme", "default"}, seen)
}

func TestReleaseFailureIsLoggedWithTenant(t *testing.T) {
	t.Parallel()
	e := openEngines(t, "default", "acme")
	var buf syncBuffer
	app := newApp(fiberdb.Config{Engines: e, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	app.Get("/", func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		pid, err := scalar[int32](ctx, tx, "SELECT pg_backend_pid() /* secret_marker */")
		if err != nil {
			return err
		}
		// Kill the backend from another session: pgx only finds out when
		// fiberdb's rollback writes to the dead socket, so the release fails.
		landlord, err := fiberdb.ConnFor(c, "default")
		if err != nil {
			return err
		}
		if _, err := landlord.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			return err
		}
		for {
			gone, err := scalar[bool](ctx, landlord, "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid)
			if err != nil || gone {
				return err
			}
		}
	})
	status, body := get(t, app, "acme.test", "/")
	require.Equal(t, fiber.StatusInternalServerError, status, "a failed release fails the request")
	require.Equal(t, "Internal Server Error", body, "regression: the client saw the release error's text")
	logged := buf.String()
	require.Contains(t, logged, "fiberdb: release failed")
	require.Contains(t, logged, "tenant=acme")
	require.NotContains(t, logged, "secret_marker", "no SQL text in logs")
}

// syncBuffer is a bytes.Buffer safe for the handler's goroutine to write
// while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Regression (issue 12): an engine whose every connect fails answered 503
// and logged nothing. Each failure is now logged with the tenant and its
// cause, at most once per engine every few seconds (the rest are counted in
// the next record), and never with the password or the DSN. Issue 13 names
// the causes an operator checks first: refused connection, bad password,
// unknown database.
func TestAcquireFailuresAreLogged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		url   func(t *testing.T) string // acme's url, with secretPassword in it
		cause string
	}{
		{"connection refused", refusedURL, "connection refused"},
		{"unknown database", unknownDatabaseURL, "unknown database"},
		{"bad password", wrongPasswordURL, "bad password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			acme := tc.url(t)
			require.Contains(t, acme, secretPassword)
			conf := loadConf(t, map[string]any{
				"default": fiberdbtest.Database(t),
				"acme":    map[string]any{"url": acme, "hosts": []any{"acme.test"}},
			})
			e := openConf(t, conf)
			var buf syncBuffer
			app := newApp(fiberdb.Config{Engines: e, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
			app.Get("/", func(c *fiber.Ctx) error {
				_, err := fiberdb.Conn(c)
				return err
			})
			const failures = 3
			for range failures {
				status, _ := get(t, app, "acme.test", "/")
				require.Equal(t, fiber.StatusServiceUnavailable, status)
			}
			logged := buf.String()
			require.NotContains(t, logged, secretPassword, "no password in logs")
			require.NotContains(t, logged, "postgres://", "no DSN in logs")
			var records []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logged), "\n") {
				var r map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &r), line)
				records = append(records, r)
			}
			require.NotEmpty(t, records)
			require.LessOrEqual(t, len(records), failures)
			first := records[0]
			require.Equal(t, "fiberdb: acquire failed", first["msg"])
			require.Equal(t, "WARN", first["level"])
			require.Equal(t, "acme", first["tenant"])
			require.Equal(t, tc.cause, first["cause"])
			require.EqualValues(t, 0, first["suppressed"])
		})
	}
}

const secretPassword = "pw_secret_marker"

// refusedURL points at a port nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now: connects are refused
	return "postgres://app:" + secretPassword + "@" + addr + "/x?sslmode=disable"
}

// unknownDatabaseURL names a database the test server does not have.
func unknownDatabaseURL(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(fiberdbtest.Server(t).ConnString("no_such_database_" + strings.ToLower(rand.Text())))
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), secretPassword) // trust never asks for it
	return u.String()
}

// wrongPasswordURL returns a url with the wrong password for a role that
// a server of the test's own asks a password of. pgserver's server trusts
// every local connection, so a pg_hba.conf line for this role goes first
// (the first matching line wins). The server is the test's own, not the
// shared one (which may be an existing server, FIBERDB_TEST_DATABASE_URL),
// so no other test's connections see the changed file.
func wrongPasswordURL(t *testing.T) string {
	t.Helper()
	pg, err := pgserver.Start(t.Context())
	require.NoError(t, err, "a PostgreSQL of the test's own")
	t.Cleanup(func() { require.NoError(t, pg.Close()) })
	const role = "pw_role"
	require.NoError(t, pg.Exec(t.Context(), "CREATE ROLE "+role+" LOGIN PASSWORD 'right'"))
	hba := filepath.Join(pg.Dir(), "data", "pg_hba.conf")
	trusting, err := os.ReadFile(hba)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(hba, append([]byte("host all "+role+" 127.0.0.1/32 scram-sha-256\n"), trusting...), 0o600))
	require.NoError(t, pg.Exec(t.Context(), "SELECT pg_reload_conf()"))

	u, err := url.Parse(pg.URL())
	require.NoError(t, err)
	u.User = url.UserPassword(role, secretPassword)
	// pg_reload_conf only signals the server: wait until it asks.
	require.Eventually(t, func() bool {
		conn, err := pgconn.Connect(t.Context(), u.String())
		if err == nil {
			err = conn.Close(t.Context()) // trusted still: not reloaded yet
		}
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "28P01"
	}, 10*time.Second, 10*time.Millisecond, "the server asks %s for a password", role)
	return u.String()
}
