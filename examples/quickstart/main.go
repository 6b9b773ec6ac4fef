// Command quickstart is the README's Quick start: a multi-tenant todo API
// that reads fiberdb.yaml, serves on 127.0.0.1:3000, and on Ctrl-C or
// SIGTERM stops serving, then closes the pools.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
)

// Todo is a row of each tenant's todo table:
//
//	CREATE TABLE todo (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL);
type Todo struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, "fiberdb.yaml", "127.0.0.1:3000")
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, configFile, addr string) error {
	k := koanf.New(".")
	if err := k.Load(file.Provider(configFile), yaml.Parser()); err != nil {
		return fmt.Errorf("load %s: %w", configFile, err)
	}
	if err := k.Load(config.EnvProvider(config.EnvOptions{}), nil); err != nil { // env overrides the file
		return fmt.Errorf("load environment: %w", err)
	}
	conf, err := config.Load(k) // validates everything, connects nothing
	if err != nil {
		return err // 'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.
	}
	engines, err := fiberdb.Open(ctx, conf) // one lazy pgxpool per engine
	if err != nil {
		return err
	}
	app := newApp(engines)

	shutdown := make(chan error, 1)
	go func() {
		<-ctx.Done()               // Ctrl-C or SIGTERM
		shutdown <- app.Shutdown() // stops serving, then runs OnShutdown
	}()
	if err := app.Listen(addr); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return <-shutdown
}

func newApp(engines *fiberdb.Engines) *fiber.App {
	app := fiber.New(fiber.Config{
		EnableTrustedProxyCheck: true, // see "Tenant routing"
		ErrorHandler:            errorHandler,
	})
	app.Hooks().OnShutdown(func() error { engines.Close(); return nil })
	app.Use(recover.New())                                 // before fiberdb
	app.Use(fiberdb.New(fiberdb.Config{Engines: engines})) // routes by conf's hosts

	app.Get("/todos/:id", func(c *fiber.Ctx) error {
		id, err := c.ParamsInt("id")
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, "id must be an integer")
		}
		db, err := fiberdb.Conn(c) // this tenant's connection, acquired now, released after the handler
		if err != nil {
			return err // 503 if no connection came within AcquireTimeout
		}
		todo, err := fiberdb.OneOr404(c.UserContext(), db, pgx.RowToStructByName[Todo],
			"SELECT id, title FROM todo WHERE id = $1", id)
		if err != nil {
			return err // 404 for no row; a database error becomes a logged 500
		}
		return c.JSON(todo)
	})
	return app
}

// errorHandler answers a *fiber.Error (400, 404, 503…) with its status and
// message. Anything else, such as a database error, is logged and answered
// with a bare 500: PostgreSQL's text never reaches the client.
func errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return c.Status(fe.Code).SendString(fe.Message)
	}
	slog.Error("request failed", "method", c.Method(), "host", c.Hostname(), "path", c.Path(), "err", err)
	return c.Status(fiber.StatusInternalServerError).SendString("Internal Server Error")
}
