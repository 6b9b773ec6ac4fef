// Package snippets_test compiles the README's shorter snippets, each in an
// Example function that shows where it goes. The README's sync test
// (TestReadmeSnippetsCompile in the module root) finds them here.
package snippets_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberdb/fiberdb/fiberdb"
)

// principal is what an auth middleware in front of fiberdb leaves in Locals.
type principal struct{ Tenant string }

func claims(c *fiber.Ctx) principal {
	p, _ := c.Locals(principal{}).(principal) //nolint:errcheck // no principal: an empty one, which matches no engine
	return p
}

// README, "Host headers and proxies".
func Example_trustedProxies() {
	app := fiber.New(fiber.Config{
		EnableTrustedProxyCheck: true,                   // never believe a client's X-Forwarded-Host…
		TrustedProxies:          []string{"10.0.0.0/8"}, // …only your proxies'
	})
	_ = app
}

// README, "Header routing".
func Example_authorize() {
	var engines *fiberdb.Engines // from fiberdb.Open
	app := fiber.New()
	app.Use(fiberdb.New(fiberdb.Config{
		Engines: engines,
		Authorize: func(c *fiber.Ctx, engine string) error {
			if claims(c).Tenant != engine { // your auth middleware runs before fiberdb
				return errors.New("principal does not belong to tenant")
			}
			return nil // 403 otherwise
		},
	}))
}

// README, "Request connections".
func Example_requestConnections() {
	app := fiber.New()
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c) // the tenant's engine
		if err != nil {
			return err
		}
		land, err := fiberdb.ConnFor(c, "default") // another engine: the landlord database
		if err != nil {
			return err
		}
		name := fiberdb.Tenant(c) // "acme": the config's own string, safe to keep
		_, _, _ = db, land, name
		return nil
	})
}

// README, "Schema per tenant and row-level security": what cannot run in a
// transaction block runs on the pool engine's connection.
func Example_poolEngineMaintenance() {
	var engines *fiberdb.Engines // from fiberdb.Open
	vacuum := func(ctx context.Context) error {
		db, release, err := engines.Acquire(ctx, "saas") // the pool engine: statements run as they are
		if err != nil {
			return err
		}
		_, err = db.Exec(ctx, "VACUUM acme.items")
		return errors.Join(err, release())
	}
	_ = vacuum
}

// README, "Caveats": a body stream acquires its own connection.
func Example_stream() {
	var engines *fiberdb.Engines // from fiberdb.Open
	app := fiber.New()
	app.Get("/export", func(c *fiber.Ctx) error {
		tenant := fiberdb.Tenant(c) // the config's string: safe to keep past the request
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, release, err := engines.Acquire(ctx, tenant)
			if err != nil {
				return
			}
			var n int
			err = db.QueryRow(ctx, "SELECT count(*) FROM todo").Scan(&n)
			if err = errors.Join(err, release()); err != nil {
				return
			}
			fmt.Fprintf(w, "%d todos\n", n)
		})
		return nil
	})
}
