package fiberdbtest_test

import (
	"context"
	"fmt"
	"io"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// A private PostgreSQL for a program or a test: started from the machine's
// binaries, removed by Close.
func ExampleStartPostgres() {
	ctx := context.Background()
	pg, err := fiberdbtest.StartPostgres(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pg.Close()

	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close(ctx)
	var answer int
	if err := conn.QueryRow(ctx, "SELECT 6 * 7").Scan(&answer); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(answer)
	// Output: 42
}

// An app test: a database per tenant on the shared server, a request aimed
// at a tenant by Host, and the response.
func Example() {
	ctx := context.Background()
	pg, err := fiberdbtest.SharedServer() // tests use fiberdbtest.Server(t) and Database(t)
	if err != nil {
		fmt.Println(err)
		return
	}
	dbs := []string{"example_central", "example_acme"}
	defer func() {
		for _, db := range dbs {
			_ = pg.DropDatabase(ctx, db) //nolint:errcheck // an example's housekeeping
		}
	}()
	for _, db := range dbs {
		if err = pg.DropDatabase(ctx, db); err == nil { // a killed run's
			err = pg.CreateDatabase(ctx, db, "")
		}
		if err != nil {
			fmt.Println(err)
			return
		}
	}

	k := koanf.New(".")
	err = k.Load(confmap.Provider(map[string]any{"SQLALCHEMY_ENGINES": map[string]any{
		"default": pg.ConnString("example_central"),
		"acme":    map[string]any{"url": pg.ConnString("example_acme"), "hosts": []any{"acme.localhost"}},
	}}, ""), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	conf, err := config.Load(k)
	if err != nil {
		fmt.Println(err)
		return
	}
	engines, err := fiberdb.Open(ctx, conf)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer engines.Close()

	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines}))
	app.Get("/", func(c *fiber.Ctx) error {
		db, connErr := fiberdb.Conn(c)
		if connErr != nil {
			return connErr
		}
		var name string
		if scanErr := db.QueryRow(c.UserContext(), "SELECT current_database()").Scan(&name); scanErr != nil {
			return scanErr
		}
		return c.SendString(fiberdb.Tenant(c) + " uses " + name)
	})

	resp, err := app.Test(fiberdbtest.HostRequest(fiber.MethodGet, "acme.localhost", "/", nil), -1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 acme uses example_acme
}
