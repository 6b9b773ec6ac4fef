package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestIsolated(t *testing.T) {
	t.Parallel()
	engines := fiberdbtest.Open(t, tenants(t))
	fiberdbtest.Isolate(t, engines) // everything below is rolled back when the test ends
	app := newApp(engines)

	db, release, err := engines.Acquire(t.Context(), "acme")
	require.NoError(t, err)
	_, err = db.Exec(t.Context(), "INSERT INTO todo (title) VALUES ('Walk the dog')")
	require.NoError(t, err)
	require.NoError(t, release())

	status, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(http.MethodGet, "acme.example.com", "/todos/2", nil))
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"id":2,"title":"Walk the dog"}`, body)
}

// TestErrorHandler: a bad id is a 400, and a database error a logged, bare
// 500 (issue 13: /todos/abc sent PostgreSQL's text to the client).
func TestErrorHandler(t *testing.T) { //nolint:paralleltest // replaces slog's default logger
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))

	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(map[string]any{"SQLALCHEMY_ENGINES": map[string]any{
		"default": fiberdbtest.Database(t), // no todo table
	}}, ""), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	app := newApp(fiberdbtest.Open(t, conf))

	status, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(http.MethodGet, "localhost", "/todos/abc", nil))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "id must be an integer", body)

	status, body = fiberdbtest.Do(t, app, fiberdbtest.HostRequest(http.MethodGet, "localhost", "/todos/1", nil))
	require.Equal(t, http.StatusInternalServerError, status)
	require.Equal(t, "Internal Server Error", body, "nothing of PostgreSQL's text")
	require.Contains(t, logged.String(), `relation \"todo\" does not exist`, "the cause is logged")
	require.Contains(t, logged.String(), "path=/todos/1")
}

// TestRunShutsDown: run serves until its context ends (the signal), then
// stops and closes every pool: no session of the app remains.
func TestRunShutsDown(t *testing.T) {
	t.Parallel()
	dsn := fiberdbtest.Database(t)
	cfg := filepath.Join(t.TempDir(), "fiberdb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("SQLALCHEMY_ENGINES:\n  default: "+dsn+"\n"), 0o600))
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, addr) }()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/todos/1", http.NoBody)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		resp, doErr := http.DefaultClient.Do(req)
		if doErr != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusInternalServerError // served, through a pool connection: no todo table
	}, 10*time.Second, 20*time.Millisecond)

	cancel()
	select {
	case runErr := <-done:
		require.NoError(t, runErr)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	// A closed session leaves pg_stat_activity a moment after its client
	// hung up; a pool left open would keep its idle one for 30 minutes.
	require.Eventually(t, func() bool {
		var sessions int
		err := conn.QueryRow(t.Context(),
			"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").Scan(&sessions)
		return err == nil && sessions == 0
	}, 5*time.Second, 20*time.Millisecond, "OnShutdown closed the pools")
}
