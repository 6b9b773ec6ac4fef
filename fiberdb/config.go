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
	// Optional. Default: tenancy.FromConfig of the engines' config, which
	// follows every Engines.Apply
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

	// QueryTimeout bounds a request's database work, where AcquireTimeout
	// bounds only the wait for a connection: once QueryTimeout has passed
	// since the request took a connection, every read and write on it fails
	// (pgconn.Timeout reports true), the statement in progress included, and
	// the connection is closed rather than reused. So a slow statement, a
	// server that stopped answering or a request its client abandoned holds
	// a pool slot for at most this long (to within 0.1s). It is a deadline on
	// the connection's socket, set by one goroutine per Engines on the
	// connections that overstayed: no timer per request, no round trip, and
	// it works behind PgBouncer, where a statement_timeout startup parameter
	// is refused. A negative value turns it off.
	//
	// Optional. Default: 10 * time.Second
	QueryTimeout time.Duration

	// QueryTimeouts overrides QueryTimeout for the engines it names (a
	// negative value turns the bound off for that engine). Names that are
	// not engines are ignored.
	//
	// Optional. Default: nil
	QueryTimeouts map[string]time.Duration
}

// ConfigDefault is the default config. It has no Engines: pass your own.
var ConfigDefault = Config{
	AcquireTimeout: 5 * time.Second,
	QueryTimeout:   10 * time.Second,
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
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = ConfigDefault.AcquireTimeout
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = ConfigDefault.QueryTimeout
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = ConfigDefault.ErrorHandler
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}
