// End-to-end tests of config, tenancy and fiberdb together, through
// app.Test, against a real PostgreSQL. The root package holds no library code.
package fiberdb_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }

var tenants = []string{"acme", "globex", "initech"}

type note struct {
	ID     int    `json:"id"`
	Tenant string `json:"tenant"`
	Body   string `json:"body"`
}

// saas builds the app a multi-tenant user would: a landlord database with a
// tenants table, and one database per tenant, routed by Host.
func saas(t *testing.T) (*fiber.App, *fiberdb.Engines) {
	t.Helper()
	engines := map[string]any{"default": fiberdbtest.Database(t)}
	for _, name := range tenants {
		engines[name] = map[string]any{"url": fiberdbtest.Database(t), "hosts": []any{name + ".example.com"}}
	}
	k := koanf.New(".")
	require.NoError(t, k.Load(confmap.Provider(map[string]any{
		"SQLALCHEMY_ENGINES": engines,
		"FIBERDB":            map[string]any{"engine_defaults": map[string]any{"pool_max_conns": "4"}},
	}, ""), nil))
	conf, err := config.Load(k)
	require.NoError(t, err)
	e, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	t.Cleanup(func() { fiberdbtest.NoLeaks(t, e) })

	ctx := t.Context()
	landlord, err := e.Default()
	require.NoError(t, err)
	_, err = landlord.Exec(ctx, "CREATE TABLE tenants (name text PRIMARY KEY, plan text)")
	require.NoError(t, err)
	for _, name := range tenants {
		_, err = landlord.Exec(ctx, "INSERT INTO tenants VALUES ($1, 'pro')", name)
		require.NoError(t, err)
		pool, err := e.Engine(name)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `CREATE TABLE notes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant text NOT NULL, body text NOT NULL);
			INSERT INTO notes (tenant, body) VALUES ('`+name+`', 'marker of `+name+`')`)
		require.NoError(t, err)
	}

	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Use(fiberrecover.New())
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	app.Get("/notes", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		rows, err := db.Query(c.UserContext(), "SELECT id, tenant, body FROM notes ORDER BY id")
		if err != nil {
			return err
		}
		notes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[note])
		if err != nil {
			return err
		}
		return c.JSON(notes)
	})
	app.Post("/notes", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		body := c.Query("body")
		if c.Query("commit") == "no" {
			// Written in a transaction the handler never commits.
			tx, beginErr := db.Begin(c.UserContext())
			if beginErr != nil {
				return beginErr
			}
			_, err = tx.Exec(c.UserContext(), "INSERT INTO notes (tenant, body) VALUES ($1, $2)", fiberdb.Tenant(c), body)
			return err
		}
		_, err = db.Exec(c.UserContext(), "INSERT INTO notes (tenant, body) VALUES ($1, $2)", fiberdb.Tenant(c), body)
		if err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusCreated)
	})
	app.Get("/plan", func(c *fiber.Ctx) error {
		// The landlord database, next to the tenant's own.
		db, err := fiberdb.ConnFor(c, "default")
		if err != nil {
			return err
		}
		var plan string
		if err := db.QueryRow(c.UserContext(), "SELECT plan FROM tenants WHERE name = $1", fiberdb.Tenant(c)).Scan(&plan); err != nil {
			return err
		}
		return c.SendString(fiberdb.Tenant(c) + ":" + plan)
	})
	app.Get("/boom", func(c *fiber.Ctx) error {
		if _, err := fiberdb.Conn(c); err != nil {
			return err
		}
		panic("boom")
	})
	return app, e
}

func do(t *testing.T, app *fiber.App, method, host, target string) (status int, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, http.NoBody)
	require.NoError(t, err)
	req.Host = host
	return fiberdbtest.Do(t, app, req)
}

func notesOf(t *testing.T, app *fiber.App, tenant string) []note {
	t.Helper()
	status, body := do(t, app, fiber.MethodGet, tenant+".example.com", "/notes")
	require.Equal(t, fiber.StatusOK, status, body)
	var notes []note
	require.NoError(t, json.Unmarshal([]byte(body), &notes))
	return notes
}

func TestTenantsNeverSeeEachOther(t *testing.T) {
	t.Parallel()
	app, e := saas(t)

	for i, name := range tenants {
		for j := range i + 1 { // acme writes 1 note, globex 2, initech 3
			status, body := do(t, app, fiber.MethodPost, name+".example.com", fmt.Sprintf("/notes?body=%s-%d", name, j))
			require.Equal(t, fiber.StatusCreated, status, body)
		}
	}
	for i, name := range tenants {
		notes := notesOf(t, app, name)
		require.Len(t, notes, i+2, "marker plus %d writes", i+1)
		for _, n := range notes {
			require.Equal(t, name, n.Tenant, "%s read a row of %s", name, n.Tenant)
			require.True(t, strings.HasPrefix(n.Body, name) || n.Body == "marker of "+name, n.Body)
		}
		// Checked in the database itself, not only through the app.
		pool, err := e.Engine(name)
		require.NoError(t, err)
		var foreign int
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM notes WHERE tenant <> $1", name).Scan(&foreign))
		require.Zero(t, foreign, "%s's database holds another tenant's rows", name)
	}
}

func TestUncommittedWriteIsNotVisible(t *testing.T) {
	t.Parallel()
	app, _ := saas(t)
	status, _ := do(t, app, fiber.MethodPost, "globex.example.com", "/notes?body=draft&commit=no")
	require.Equal(t, fiber.StatusOK, status)
	for _, name := range tenants {
		for _, n := range notesOf(t, app, name) {
			require.NotEqual(t, "draft", n.Body, "an uncommitted write became visible to %s", name)
		}
	}
}

func TestLandlordAndTenantTogether(t *testing.T) {
	t.Parallel()
	app, _ := saas(t)
	for _, name := range tenants {
		status, body := do(t, app, fiber.MethodGet, name+".example.com", "/plan")
		require.Equal(t, fiber.StatusOK, status)
		require.Equal(t, name+":pro", body)
	}
}

//nolint:tparallel // the group waits for its parallel rows before the final check
func TestFailClosed(t *testing.T) {
	t.Parallel()
	app, e := saas(t)
	landlord, err := e.Default()
	require.NoError(t, err)
	before := landlord.Stat().AcquireCount() // the setup's own statements
	tests := []struct {
		name, host string
		status     int
	}{
		{"unknown host is 404, never default", "evil.example.com", fiber.StatusNotFound},
		{"landlord is not a host", "default.example.com", fiber.StatusNotFound},
		{"malformed host is 400", "acme%2eexample.com", fiber.StatusBadRequest},
		{"port is stripped", "acme.example.com:8080", fiber.StatusOK},
	}
	t.Run("requests", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				status, _ := do(t, app, fiber.MethodGet, tt.host, "/notes")
				require.Equal(t, tt.status, status)
			})
		}
	})
	require.Equal(t, before, landlord.Stat().AcquireCount(), "no request reached the landlord database")
}

func TestSpoofedForwardedHostIgnored(t *testing.T) {
	t.Parallel()
	app, _ := saas(t)
	req, err := http.NewRequestWithContext(t.Context(), fiber.MethodGet, "/notes", http.NoBody)
	require.NoError(t, err)
	req.Host = "acme.example.com"
	req.Header.Set("X-Forwarded-Host", "globex.example.com")
	status, body := fiberdbtest.Do(t, app, req)
	require.Equal(t, fiber.StatusOK, status)
	require.Contains(t, body, "marker of acme", "EnableTrustedProxyCheck makes Fiber ignore a client's X-Forwarded-Host")
	require.NotContains(t, body, "globex")
}

func TestPanicReleasesAndLaterRequestsWork(t *testing.T) {
	t.Parallel()
	app, e := saas(t)
	status, _ := do(t, app, fiber.MethodGet, "initech.example.com", "/boom")
	require.Equal(t, fiber.StatusInternalServerError, status)
	fiberdbtest.NoLeaks(t, e) // polls: a destroyed connection counts until it has closed
	require.Len(t, notesOf(t, app, "initech"), 1)
}
