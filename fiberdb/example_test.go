package fiberdb_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

// exampleEngines opens "default" and "acme" on fresh databases of the shared
// test server, each with a todo table. done closes the engines and drops the
// databases: the server may be one the tests did not start
// (FIBERDB_TEST_DATABASE_URL), which must not keep them.
func exampleEngines(prefix string) (e *fiberdb.Engines, done func(), err error) {
	ctx := context.Background()
	pg, err := fiberdbtest.SharedServer()
	if err != nil {
		return nil, nil, err
	}
	var dbs []string
	drop := func() {
		for _, db := range dbs {
			_ = pg.DropDatabase(ctx, db) //nolint:errcheck // an example's housekeeping
		}
	}
	engines := map[string]any{}
	for _, name := range []string{"default", "acme"} {
		db := prefix + "_" + name
		if err = pg.DropDatabase(ctx, db); err == nil { // left by a killed run
			err = pg.CreateDatabase(ctx, db, "")
		}
		if err != nil {
			drop()
			return nil, nil, err
		}
		dbs = append(dbs, db)
		engines[name] = map[string]any{"url": pg.ConnString(db), "hosts": []any{name + ".localhost"}}
	}
	if e, err = openExample(ctx, engines); err != nil {
		drop()
		return nil, nil, err
	}
	return e, func() { e.Close(); drop() }, nil
}

// openExample opens engines, each with a todo table.
func openExample(ctx context.Context, engines map[string]any) (*fiberdb.Engines, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(map[string]any{"SQLALCHEMY_ENGINES": engines}, ""), nil); err != nil {
		return nil, err
	}
	conf, err := config.Load(k)
	if err != nil {
		return nil, err
	}
	e, err := fiberdb.Open(ctx, conf)
	if err != nil {
		return nil, err
	}
	for _, name := range e.Names() {
		pool, err := e.Engine(name)
		if err == nil {
			_, err = pool.Exec(ctx, "CREATE TABLE todo (id int PRIMARY KEY, title text); INSERT INTO todo VALUES (1, 'ship it')")
		}
		if err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

func show(app *fiber.App, host, target string) {
	req := fiberdbtest.HostRequest(fiber.MethodGet, host, target, nil)
	resp, err := app.Test(req, -1)
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
}

// The middleware resolves the tenant from the Host header; Conn hands the
// handler a connection to that tenant's database.
func ExampleNew() {
	engines, done, err := exampleEngines("example_new")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done() // closes the engines

	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines}))
	app.Get("/whoami", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		var database string
		if err := db.QueryRow(c.UserContext(), "SELECT current_database()").Scan(&database); err != nil {
			return err
		}
		return c.SendString(fiberdb.Tenant(c) + " → " + database)
	})

	show(app, "acme.localhost", "/whoami")
	show(app, "evil.localhost", "/whoami")
	// Output:
	// 200 acme → example_new_acme
	// 404 unknown tenant
}

type todoItem struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
}

// OneOr404 turns "no such row" into a 404 for Fiber's error handler.
func ExampleOneOr404() {
	engines, done, err := exampleEngines("example_one")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done() // closes the engines

	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines}))
	app.Get("/todos/:id", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		t, err := fiberdb.OneOr404(c.UserContext(), db, pgx.RowToStructByName[todoItem],
			"SELECT id, title FROM todo WHERE id = $1", c.Params("id"))
		if err != nil {
			return err
		}
		return c.JSON(t)
	})

	show(app, "acme.localhost", "/todos/1")
	show(app, "acme.localhost", "/todos/2")
	// Output:
	// 200 {"id":1,"title":"ship it"}
	// 404 Not Found
}

// TestIsolation undoes everything a test did, including what handlers
// committed.
func ExampleEngines_TestIsolation() {
	engines, done, err := exampleEngines("example_iso")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done() // closes the engines
	ctx := context.Background()
	count := func() (n int, err error) {
		pool, err := engines.Engine("acme")
		if err == nil {
			err = pool.QueryRow(ctx, "SELECT count(*) FROM todo").Scan(&n)
		}
		return n, err
	}

	rollback, err := engines.TestIsolation(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines}))
	app.Post("/todos", func(c *fiber.Ctx) error {
		db, connErr := fiberdb.Conn(c)
		if connErr != nil {
			return connErr
		}
		tx, beginErr := db.Begin(c.UserContext())
		if beginErr != nil {
			return beginErr
		}
		if _, execErr := tx.Exec(c.UserContext(), "INSERT INTO todo VALUES (2, 'test me')"); execErr != nil {
			return execErr
		}
		return tx.Commit(c.UserContext())
	})
	resp, err := app.Test(fiberdbtest.HostRequest(http.MethodPost, "acme.localhost", "/todos", nil), -1)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("committed:", resp.StatusCode)

	if err = rollback(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(count())
	// Output:
	// committed: 200
	// 1 <nil>
}
