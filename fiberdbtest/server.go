package fiberdbtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/fiberdb/fiberdb/pgserver"
)

// EnvDatabaseURL names the variable that points tests at an existing server
// (a superuser URL) instead of starting one.
const EnvDatabaseURL = "FIBERDB_TEST_DATABASE_URL"

var shared struct {
	once sync.Once
	pg   *Postgres
	err  error
}

// Main runs the tests in m, then drops the templates [Template] made and
// stops the server [Server] started, if any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { fiberdbtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := dropTemplates(ctx, shared.pg)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fiberdbtest:", err)
			code = max(code, 1)
		}
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
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if u := os.Getenv(EnvDatabaseURL); u != "" {
			if shared.pg, shared.err = pgserver.Connect(u); shared.err == nil {
				// Housekeeping: a failure here leaves old databases, no more.
				if err := sweepDatabases(ctx, shared.pg); err != nil {
					fmt.Fprintln(os.Stderr, "fiberdbtest: drop databases of dead test binaries:", err)
				}
			}
			return
		}
		shared.pg, shared.err = pgserver.Start(ctx)
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
