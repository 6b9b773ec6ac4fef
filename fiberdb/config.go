package fiberdb

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberdb/fiberdb/tenancy"
)

// Config defines the config for the middleware.
type Config struct {
	// Next defines a function to skip this middleware when returned true.
	// Skipped requests resolve no tenant; Conn answers ErrNotRegistered.
	//
	// Optional. Default: nil
	Next func(c *fiber.Ctx) bool

	// Engines are the pools requests draw from. New panics without them.
	//
	// Required.
	Engines *Engines

	// Resolver maps each request to an engine name. It runs once per request,
	// before any route handler.
	//
	// Optional. Default: tenancy.FromConfig(Engines.Config())
	Resolver tenancy.Resolver

	// Authorize, when set, runs after the tenant is resolved and may refuse
	// it, for example when a header-routed tenant is not the one the
	// authenticated principal belongs to. A refusal answers 403; one that
	// matches tenancy.ErrUnknownTenant answers 404 instead, so that a client
	// cannot tell a tenant it may not use from one that does not exist.
	//
	// Optional. Default: nil
	Authorize func(c *fiber.Ctx, engine string) error

	// AcquireTimeout bounds how long Conn waits for a connection. Fiber never
	// cancels a request's context, so without it an exhausted pool or a dead
	// server would hang the request. It is honoured to within an eighth of
	// its value: acquires that start close together share one timer.
	//
	// Optional. Default: 5 * time.Second
	AcquireTimeout time.Duration

	// ErrorHandler turns resolver, Authorize and acquire errors into the
	// error the middleware returns. The default returns a *fiber.Error (400
	// no or malformed tenant, 404 unknown tenant, 403 refused, 503 no
	// connection) that still matches the cause with errors.Is. It runs after
	// every request connection was released, so it cannot use them.
	//
	// Optional. Default: DefaultErrorHandler
	ErrorHandler fiber.ErrorHandler

	// Logger receives a record, with the tenant, when rolling back or
	// releasing a request's connection fails, and when an acquire fails (a
	// 503), with its cause, at most once per engine every 10 seconds with a
	// count of the ones suppressed. Records never carry SQL text, query
	// arguments, a DSN or a password.
	//
	// Optional. Default: slog.Default()
	Logger *slog.Logger
}

// ConfigDefault is the default config. It has no Engines: pass your own.
var ConfigDefault = Config{
	AcquireTimeout: 5 * time.Second,
	ErrorHandler:   DefaultErrorHandler,
}

func configDefault(config ...Config) Config {
	cfg := ConfigDefault
	if len(config) > 0 {
		cfg = config[0]
	}
	if cfg.Engines == nil {
		panic("fiberdb: New requires Config.Engines")
	}
	if cfg.Resolver == nil {
		cfg.Resolver = tenancy.FromConfig(cfg.Engines.conf)
	}
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = ConfigDefault.AcquireTimeout
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = ConfigDefault.ErrorHandler
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}
