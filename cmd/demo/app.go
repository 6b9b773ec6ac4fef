package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	fiberrecover "github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbprom"
)

const (
	// bodyLimit caps request bodies; fasthttp answers 413 beyond it.
	bodyLimit = 16 * 1024
)

// newApp builds the demo's routes on engines. /healthz, /stats and /metrics
// serve the operator and use every engine; the todo routes serve one tenant, resolved
// from the Host or the tenant header by fiberdb's middleware.
func newApp(engines *fiberdb.Engines, logger *slog.Logger) *fiber.App {
	h := &handlers{engines: engines, logger: logger}
	app := fiber.New(fiber.Config{
		// Without it, any client picks its tenant by sending
		// X-Forwarded-Host: c.Hostname() would believe it.
		EnableTrustedProxyCheck: true,
		BodyLimit:               bodyLimit,
		// Also the keep-alive idle limit, so shutdown never waits on an idle client.
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          10 * time.Second,
		DisableStartupMessage: true,
		ErrorHandler:          h.errorHandler,
	})
	// Before fiberdb, so that a panic unwinds through its release first.
	app.Use(fiberrecover.New())

	// Registered before the tenant middleware, which they therefore never
	// reach: they answer for the whole process, whatever the Host.
	app.Get("/healthz", h.healthz)
	app.Get("/stats", h.stats)
	reg := prometheus.NewRegistry()
	reg.MustRegister(fiberdbprom.NewCollector(engines))
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	app.Use(fiberdb.New(fiberdb.Config{Engines: engines, Logger: logger}))
	app.Get("/whoami", h.whoami)
	app.Get("/todos", h.listTodos)
	app.Post("/todos", h.createTodo)
	app.Get("/todos/:id", h.getTodo)
	app.Patch("/todos/:id", h.patchTodo)
	return app
}

type handlers struct {
	engines *fiberdb.Engines
	logger  *slog.Logger
}

// errorHandler renders every error as {"error": message}. A *fiber.Error
// (which fiberdb's statuses unwrap to) gives its status and message; anything
// else is a 500 whose details go to the log, never to the client.
func (h *handlers) errorHandler(c *fiber.Ctx, err error) error {
	status, message := fiber.StatusInternalServerError, "internal error"
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code != fiber.StatusInternalServerError {
		status, message = fe.Code, fe.Message
	}
	if status >= fiber.StatusInternalServerError {
		h.logger.LogAttrs(c.UserContext(), slog.LevelError, "request failed",
			slog.String("method", c.Method()), slog.String("path", c.Path()), slog.Int("status", status), slog.Any("error", err))
	}
	return sendJSON(c, status, fiber.Map{"error": message})
}

// conn is fiberdb.Conn, its error wrapped (errors.Is still finds
// fiberdb.ErrUnavailable, which the middleware turns into a 503).
func conn(c *fiber.Ctx) (fiberdb.DBTX, error) {
	db, err := fiberdb.Conn(c)
	if err != nil {
		return nil, fmt.Errorf("tenant connection: %w", err)
	}
	return db, nil
}

// sendJSON answers status with v as JSON.
func sendJSON(c *fiber.Ctx, status int, v any) error {
	if err := c.Status(status).JSON(v); err != nil {
		return fmt.Errorf("render JSON: %w", err)
	}
	return nil
}

// decodeJSON reads exactly one JSON value into v, refusing unknown fields.
// Every error is a 400 *fiber.Error.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && !errors.Is(dec.Decode(&struct{}{}), io.EOF) {
		err = errors.New("trailing data")
	}
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s must be a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fiber.NewError(fiber.StatusBadRequest, strings.TrimPrefix(err.Error(), "json: "))
	}
	return fiber.NewError(fiber.StatusBadRequest, "malformed JSON")
}

// jsonKind names a Go kind as JSON does.
func jsonKind(kind reflect.Kind) string {
	switch kind { //nolint:exhaustive // the demo's fields are strings and booleans
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	}
	return "value of another type"
}
