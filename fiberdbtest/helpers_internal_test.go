package fiberdbtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
)

// recorder is a testing.TB whose failures are recorded instead of failing
// the test, so a test can assert what a helper reports. Fatal ends the
// calling goroutine, as testing's does; run the helper with run.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	msgs     []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// run calls f as a test body would, then its cleanups, last in first out.
func (r *recorder) run(f func(tb testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		c := r.cleanups[i]
		done := make(chan struct{})
		go func() {
			defer close(done)
			c()
		}()
		<-done
	}
	r.cleanups = nil
}

func (r *recorder) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

// testConf configures one engine, default, on a database of the test's own.
func testConf(t *testing.T) *config.Config {
	t.Helper()
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(map[string]any{
		"SQLALCHEMY_ENGINES": map[string]any{"default": Database(t)},
	}, ""), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	return conf
}

func openTestEngines(t *testing.T) *fiberdb.Engines {
	t.Helper()
	return Open(t, testConf(t))
}

// TestNoLeaksUnderIsolation: NoLeaks that runs before the rollback fails at
// once and names isolation, whichever way isolation was started (issue 13:
// a 5 s wait, then a message that never mentioned it).
//
//nolint:tparallel // the subtests isolate the same engines, one after the other
func TestNoLeaksUnderIsolation(t *testing.T) {
	t.Parallel()
	e := openTestEngines(t)
	t.Run("TestIsolation", func(t *testing.T) {
		rollback, err := e.TestIsolation(t.Context())
		require.NoError(t, err)
		defer func() { require.NoError(t, rollback()) }()
		r := &recorder{TB: t}
		start := time.Now()
		r.run(func(tb testing.TB) { tb.Helper(); NoLeaks(tb, e) })
		require.Contains(t, r.failures(), "NoLeaks ran while test isolation is active")
		require.Less(t, time.Since(start), leakWait, "it does not wait for a leak that is isolation")
	})
	t.Run("Isolate", func(t *testing.T) {
		r := &recorder{TB: t}
		r.run(func(tb testing.TB) {
			tb.Helper()
			Isolate(tb, e)
			NoLeaks(tb, e) // before the cleanup's rollback
		})
		require.Contains(t, r.failures(), "NoLeaks ran while test isolation is active")
		NoLeaks(t, e) // Isolate's cleanup rolled back
	})
}

// TestIsolateTwice: a second Isolate of the same engines fails at once and
// names the cause.
func TestIsolateTwice(t *testing.T) {
	t.Parallel()
	e := openTestEngines(t)
	Isolate(t, e)
	r := &recorder{TB: t}
	r.run(func(tb testing.TB) { tb.Helper(); Isolate(tb, e) })
	require.Contains(t, r.failures(), "test isolation is already active on these engines")
}

// TestLeakFailsInsteadOfHanging: a connection never given back fails NoLeaks
// and then Close, which gives up instead of waiting forever (issue 13).
func TestLeakFailsInsteadOfHanging(t *testing.T) { //nolint:paralleltest // shortens the package's waits
	defer func(l, c time.Duration) { leakWait, closeWait = l, c }(leakWait, closeWait)
	leakWait, closeWait = 50*time.Millisecond, 200*time.Millisecond

	conf := testConf(t)
	r := &recorder{TB: t}
	var (
		release func() error
		err     error
	)
	r.run(func(tb testing.TB) {
		tb.Helper()
		e := Open(tb, conf)
		_, release, err = e.Acquire(t.Context(), "default") // never released by the "test"
	})
	require.NoError(t, err)
	failures := r.failures()
	require.Contains(t, failures, "connections still acquired after 50ms: default=1")
	require.Contains(t, failures, "Engines.Close did not return in 200ms: a connection was never given back (acquired: default=1)")
	require.NoError(t, release()) // lets the abandoned Close finish
}

// TestSweepDatabases: a database that a dead test binary of this machine
// left behind is dropped; one of a live process, or of another machine, is
// kept.
func TestSweepDatabases(t *testing.T) {
	t.Parallel()
	pg := Server(t)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	ctx := t.Context()
	names := map[string]string{
		"t_sweep_dead_" + randomHex(3):  fmt.Sprintf("%s%s/%d", ownerPrefix, hostname(), dead.Process.Pid),
		"t_sweep_live_" + randomHex(3):  fmt.Sprintf("%s%s/%d", ownerPrefix, hostname(), os.Getpid()),
		"t_sweep_other_" + randomHex(3): ownerPrefix + "elsewhere.invalid/1",
	}
	for name, comment := range names {
		require.NoError(t, pg.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize(),
			"COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS '"+comment+"'"))
		t.Cleanup(func() { require.NoError(t, pg.DropDatabase(context.Background(), name)) })
	}
	require.NoError(t, sweepDatabases(ctx, pg))
	conn, err := pgx.Connect(ctx, pg.URL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	for name := range names {
		var exists bool
		require.NoError(t, conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists))
		require.Equal(t, !strings.Contains(name, "dead"), exists, name)
	}
}
