package catalog_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) {
	// Start the shared server before any test takes its goroutine baseline.
	// An error comes back from fiberdbtest.Server in each test.
	if _, err := fiberdbtest.SharedServer(); err != nil {
		fmt.Fprintln(os.Stderr, "catalog tests:", err)
	}
	fiberdbtest.Main(m)
}

// noLeaks fails the test if a goroutine it started outlives it. Call it
// first: its cleanup then runs last, after the pools have closed.
func noLeaks(t *testing.T) {
	t.Helper()
	baseline := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, baseline) })
}

// landlord returns a pool on a new database holding the catalog, and the
// database's connection string.
func landlord(t *testing.T) (pool *pgxpool.Pool, dsn string) {
	t.Helper()
	dsn = fiberdbtest.Database(t)
	pool, err := pgxpool.New(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, catalog.Install(t.Context(), pool))
	return pool, dsn
}

// connector opens listener connections named name, so that a test can find
// them in pg_stat_activity.
func connector(dsn, name string) func(ctx context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		cc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cc.RuntimeParams["application_name"] = name
		return pgx.ConnectConfig(ctx, cc)
	}
}

// logBuffer is a slog handler's output that tests read while the code
// under test writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// waitFor receives from ch, failing the test after a generous bound: the
// bound only keeps a broken test from hanging.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
