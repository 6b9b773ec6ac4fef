package lifecycle_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
	"github.com/fiberdb/fiberdb/lifecycle"
	"github.com/fiberdb/fiberdb/reload"
)

// TestAddedTenantReachesARunningApp: an app that follows the catalog (a
// reload.Reloader on the catalog's NOTIFY) gets the new tenant's engine
// within seconds of AddTenant, and fiberdb serves it by host, migrated.
func TestAddedTenantReachesARunningApp(t *testing.T) {
	t.Parallel()
	central := fiberdbtest.Database(t)
	flat := map[string]any{config.DefaultKey + ".default": central}
	landlord, err := pgxpool.New(t.Context(), central)
	require.NoError(t, err)
	t.Cleanup(landlord.Close)
	require.NoError(t, catalog.Install(t.Context(), landlord))

	applied := make(chan *config.Config, 100)
	r := reload.New(reload.Config{
		Load: func(ctx context.Context) (*config.Config, error) {
			k := koanfOf(t, flat)
			if lerr := k.Load(catalog.Provider(ctx, landlord), nil); lerr != nil {
				return nil, lerr
			}
			return config.Load(k)
		},
		Apply: func(_ context.Context, conf *config.Config) error {
			applied <- conf
			return nil
		},
		Catalog: &catalog.Listener{Connect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, central) }},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	name := newName(t)
	_, err = lifecycle.AddTenant(t.Context(), loadFlat(t, flat), lifecycle.Tenant{Name: name, Hosts: []string{"new.localhost"}}, loadSchema(t))
	require.NoError(t, err)

	var conf *config.Config
	deadline := time.After(10 * time.Second)
	for conf == nil {
		select {
		case c := <-applied:
			if _, ok := c.Engines[name]; ok {
				conf = c
			}
		case <-deadline:
			t.Fatal("the reloader never saw the new tenant")
		}
	}

	engines, err := fiberdb.Open(t.Context(), conf)
	require.NoError(t, err)
	t.Cleanup(engines.Close)
	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines}))
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		var widget string
		if err := db.QueryRow(c.UserContext(), "SELECT name FROM widgets").Scan(&widget); err != nil {
			return err
		}
		return c.SendString(fiberdb.Tenant(c) + " " + widget)
	})
	status, body := fiberdbtest.Do(t, app, fiberdbtest.HostRequest(http.MethodGet, "new.localhost", "/", nil))
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, name+" FIRST", body)
	fiberdbtest.NoLeaks(t, engines)
}
