package reload_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/reload"
)

// TestCatalogThroughEnginesApply is the whole path over HTTP: a row
// inserted in the catalog is served, through the trigger, the listener, the
// reloader and Engines.Apply, and a deleted row answers 404 again.
func TestCatalogThroughEnginesApply(t *testing.T) { // not parallel: goleak needs the package to itself
	testkit.NoGoroutineLeaks(t)
	ctx := t.Context()
	landlordDSN, acmeDSN := fiberdbtest.Database(t), fiberdbtest.Database(t)
	acmeConf, err := pgx.ParseConfig(acmeDSN)
	require.NoError(t, err)

	landlord, err := pgxpool.New(ctx, landlordDSN)
	require.NoError(t, err)
	t.Cleanup(landlord.Close)
	require.NoError(t, catalog.Install(ctx, landlord))
	path := filepath.Join(t.TempDir(), "fiberdb.yaml")
	// Another tenant routed by host, so that an unknown host answers 404.
	require.NoError(t, os.WriteFile(path, []byte("SQLALCHEMY_ENGINES:\n  default: '"+landlordDSN+
		"'\n  other: {url: '"+landlordDSN+"', hosts: [other.example.com]}\n"), 0o600))
	var logs testkit.LogBuffer
	load := loader(path, landlord, logs.Logger())
	conf, err := load(ctx)
	require.NoError(t, err)
	engines := fiberdbtest.Open(t, conf)

	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines}))
	app.Get("/db", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		var name string
		if err := db.QueryRow(c.UserContext(), "SELECT current_database()").Scan(&name); err != nil {
			return err
		}
		return c.SendString(name)
	})
	held, release := make(chan struct{}), make(chan struct{})
	app.Get("/hold", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		close(held)
		<-release
		_, err = db.Exec(c.UserContext(), "SELECT 1")
		return err
	})
	get := func() (int, string) {
		return fiberdbtest.Do(t, app, fiberdbtest.HostRequest(http.MethodGet, "acme.example.com", "/db", nil))
	}
	// within polls get until it answers status, for at most the promised 2 s.
	within := func(status int) string {
		t.Helper()
		deadline := time.Now().Add(promised)
		for {
			got, body := get()
			if got == status {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("acme.example.com still answers %d (%s), not %d", got, body, status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	cfg := reload.Config{
		Load:    load,
		Apply:   engines.Apply,
		File:    path,
		Catalog: &catalog.Listener{Connect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, landlordDSN) }},
		Logger:  logs.Logger(),
	}
	runReloader(t, &cfg)
	status, _ := get()
	require.Equal(t, http.StatusNotFound, status)

	require.NoError(t, catalog.Put(ctx, landlord, catalog.Tenant{Name: "acme", URL: acmeDSN, Hosts: []string{"acme.example.com"}}))
	require.Equal(t, acmeConf.Database, within(http.StatusOK))

	// A request that holds acme's connection across the delete finishes.
	heldStatus := make(chan int, 1)
	go func() {
		resp, err := app.Test(fiberdbtest.HostRequest(http.MethodGet, "acme.example.com", "/hold", nil), -1)
		if err != nil {
			heldStatus <- 0
			return
		}
		status := resp.StatusCode
		if resp.Body.Close() != nil {
			status = 0
		}
		heldStatus <- status
	}()
	<-held
	require.NoError(t, catalog.Delete(ctx, landlord, "acme"))
	within(http.StatusNotFound)
	close(release)
	require.Equal(t, http.StatusOK, <-heldStatus)
	require.NotContains(t, logs.String(), "reload failed")
}
