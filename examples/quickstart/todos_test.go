package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) } // one PostgreSQL per test binary, stopped after

// migrate is the schema of every tenant database.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `CREATE TABLE todo (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL);
		INSERT INTO todo (title) VALUES ('Buy milk')`)
	return err
}

// tenants gives acme and globex each a database of their own, copied from
// the template, and routes them by host, as fiberdb.yaml does.
func tenants(t *testing.T) *config.Config {
	t.Helper()
	tpl := fiberdbtest.Template(t, "todo_schema", migrate) // schema built once per test binary
	engines := map[string]any{"default": fiberdbtest.Database(t)}
	for _, tenant := range []string{"acme", "globex"} {
		engines[tenant] = map[string]any{
			"url":   fiberdbtest.Database(t, fiberdbtest.DatabaseOptions{Template: tpl}), // dropped after the test
			"hosts": []any{tenant + ".example.com"},
		}
	}
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(map[string]any{"SQLALCHEMY_ENGINES": engines}, ""), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	return conf
}

func TestTodos(t *testing.T) {
	t.Parallel()
	app := newApp(fiberdbtest.Open(t, tenants(t))) // checked for leaks, then closed, when the test ends

	status, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(http.MethodGet, "acme.example.com", "/todos/1", nil))
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"id":1,"title":"Buy milk"}`, body)

	status, _ = fiberdbtest.Do(t, app, fiberdbtest.HostRequest(http.MethodGet, "globex.example.com", "/todos/2", nil))
	require.Equal(t, http.StatusNotFound, status)
}
