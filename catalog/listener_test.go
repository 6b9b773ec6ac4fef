package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/internal/testkit"
)

// listen runs l until the test ends and returns a channel that receives one
// value per callback.
func listen(t *testing.T, l *catalog.Listener) <-chan struct{} {
	t.Helper()
	calls := make(chan struct{}, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Listen(ctx, func() { calls <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, waitFor(t, done, "Listen to return"), "a cancelled Listen returns nil")
	})
	return calls
}

func TestListenerCallsBackOnConnectAndEveryChange(t *testing.T) { // not parallel: goleak needs the package to itself
	testkit.NoGoroutineLeaks(t)
	pool, dsn := landlord(t)
	calls := listen(t, &catalog.Listener{Connect: connector(dsn, "listener")})
	waitFor(t, calls, "the callback after LISTEN")

	for _, sql := range []string{
		`INSERT INTO fiberdb_tenants (name, url) VALUES ('a', 'postgres://h/a'), ('b', 'postgres://h/b')`,
		`UPDATE fiberdb_tenants SET hosts = '{a.example.com}' WHERE name = 'a'`,
		`DELETE FROM fiberdb_tenants WHERE name = 'a'`,
		`TRUNCATE fiberdb_tenants`,
	} {
		_, err := pool.Exec(t.Context(), sql)
		require.NoError(t, err)
		waitFor(t, calls, sql)
	}
}

func TestListenerSurvivesTerminateBackend(t *testing.T) { // not parallel: goleak needs the package to itself
	testkit.NoGoroutineLeaks(t)
	pool, dsn := landlord(t)
	var logs testkit.LogBuffer
	calls := listen(t, &catalog.Listener{
		Connect:        connector(dsn, "terminated"),
		ReconnectDelay: 10 * time.Millisecond,
		Logger:         logs.Logger(),
	})
	waitFor(t, calls, "the callback after LISTEN")

	var killed int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'terminated' AND datname = current_database()`).Scan(&killed))
	require.Equal(t, 1, killed)

	// Notifications sent while it was away are lost: the callback after the
	// new LISTEN is what makes the caller reload in full.
	waitFor(t, calls, "the callback after reconnecting")
	require.Contains(t, logs.String(), "catalog listener lost its connection; reconnecting")

	_, err := pool.Exec(t.Context(), `INSERT INTO fiberdb_tenants (name, url) VALUES ('a', 'postgres://h/a')`)
	require.NoError(t, err)
	waitFor(t, calls, "a notification on the new connection")
}

func TestListenerNeedsConnectAndCallback(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, (&catalog.Listener{}).Listen(t.Context(), func() {}), catalog.ErrListenerConfig)
	l := &catalog.Listener{Connect: connector("postgres://h/a", "x")}
	require.ErrorIs(t, l.Listen(t.Context(), nil), catalog.ErrListenerConfig)
}
