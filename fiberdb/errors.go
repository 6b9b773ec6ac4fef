package fiberdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberdb/fiberdb/tenancy"
)

// Sentinel errors. Match them with [errors.Is].
var (
	// ErrNotRegistered: Conn or ConnFor was called on a request that did not
	// pass through the middleware (or that its Next function skipped).
	ErrNotRegistered = errors.New("fiberdb: middleware not registered for this request")
	// ErrEngineNotDefined: a name that is not a configured engine.
	ErrEngineNotDefined = errors.New("engine not defined")
	// ErrConnReleased: the request that owned the connection has ended and
	// the connection went back to its pool.
	ErrConnReleased = errors.New("fiberdb: connection used after its request ended")
	// ErrUnavailable: no connection could be acquired within AcquireTimeout
	// (pool exhausted, server down). The default ErrorHandler answers 503.
	ErrUnavailable = errors.New("database unavailable")
	// ErrForbidden: Config.Authorize refused the resolved tenant. The
	// default ErrorHandler answers 403.
	ErrForbidden = errors.New("tenant forbidden")
	// ErrSharedPool: Engines.Engine was asked for the pool of a tenant that
	// shares another engine's pool (engine key "pool"). That pool's
	// connections do not carry the tenant's search_path and settings: use
	// Engines.Acquire, whose connection does.
	ErrSharedPool = errors.New("fiberdb: engine shares another engine's pool; use Acquire")
	// ErrIsolationActive: TestIsolation was called while it was already active.
	ErrIsolationActive = errors.New("fiberdb: test isolation already active")
	// ErrBudgetExhausted: every connection FIBERDB.max_total_conns allows is
	// open and busy, so no new one may be made. An acquire waits (within
	// AcquireTimeout) for one to free before it gives up with this error,
	// which also matches [ErrUnavailable]: the default ErrorHandler answers
	// 503 with a Retry-After header.
	ErrBudgetExhausted = errors.New("fiberdb: connection budget exhausted")
	// ErrTenantBusy: the tenant already has FIBERDB.tenant_max_concurrency
	// requests holding or waiting for a connection. The acquire is refused
	// at once, without waiting and without touching any connection; the
	// default ErrorHandler answers 429 with a Retry-After header.
	ErrTenantBusy = errors.New("fiberdb: tenant at its concurrency limit")
)

// AcquireError reports that a connection to Engine could not be acquired.
// It matches both [ErrUnavailable] and the cause (for example
// context.DeadlineExceeded) with [errors.Is].
type AcquireError struct {
	Engine string
	Err    error
}

func (e *AcquireError) Error() string {
	return fmt.Sprintf("acquire engine %q: %v", e.Engine, e.Err)
}

// Unwrap returns [ErrUnavailable] and the cause.
func (e *AcquireError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// DefaultErrorHandler maps fiberdb's errors to HTTP statuses and leaves
// others unchanged. The result is a *fiber.Error for Fiber's error handler
// that also matches err with errors.Is.
//
// A 503 (no connection in time) and a 429 (the tenant is at
// FIBERDB.tenant_max_concurrency) also set a Retry-After header of one
// second: both are brief by nature.
func DefaultErrorHandler(c *fiber.Ctx, err error) error {
	o := outcomes[classify(err)]
	if o.status == 0 {
		return err
	}
	if o.retry {
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	return &StatusError{Status: fiber.NewError(o.status, o.message), Err: err}
}

// kind is what an error means to fiberdb. [classify] decides it, and
// everything that depends on it reads [outcomes]: the default
// ErrorHandler's status, the ResolveStats counter, the log level.
type kind uint8

const (
	kindOther       kind = iota // not fiberdb's: passes through unchanged
	kindNoTenant                // 400, ResolveStats.NoTenant
	kindMalformed               // 400, ResolveStats.Malformed
	kindUnknown                 // 404, ResolveStats.UnknownTenant
	kindForbidden               // 403, ResolveStats.Refused
	kindUnavailable             // 503, Retry-After
	kindBusy                    // 429, Retry-After
	kindRemoved                 // 404: Apply removed the request's engine before it acquired
	numKinds
)

// outcome is what one kind of error becomes.
type outcome struct {
	status  int // the default ErrorHandler's answer; 0: the error passes through
	message string
	level   slog.Level // of the middleware's record of it
	retry   bool       // the answer carries Retry-After
	// ofAcquire: the request could not have its connection. When the
	// handler returns the error, the middleware answers it through
	// ErrorHandler; other errors a handler returns pass through unchanged.
	ofAcquire bool
}

var outcomes = [numKinds]outcome{
	kindOther:       {level: slog.LevelDebug},
	kindNoTenant:    {fiber.StatusBadRequest, "missing tenant", slog.LevelDebug, false, false},
	kindMalformed:   {fiber.StatusBadRequest, "malformed tenant", slog.LevelDebug, false, false},
	kindUnknown:     {fiber.StatusNotFound, "unknown tenant", slog.LevelDebug, false, false},
	kindForbidden:   {fiber.StatusForbidden, "tenant forbidden", slog.LevelDebug, false, false},
	kindUnavailable: {fiber.StatusServiceUnavailable, "database unavailable", slog.LevelWarn, true, true},
	kindBusy:        {fiber.StatusTooManyRequests, "too many requests for this tenant", slog.LevelDebug, true, true},
	kindRemoved:     {fiber.StatusNotFound, "unknown tenant", slog.LevelDebug, false, true},
}

// classify is the one place that decides what an error means. The most
// specific cause wins: an Authorize that refuses with an error matching
// tenancy.ErrUnknownTenant (to hide that the tenant exists) answers 404 and
// is counted as unknown, not as refused. An engine that Apply removed after
// the request resolved it answers 404 as an unknown tenant does; a ConnFor
// naming an engine never configured is a bug in the handler, which the
// middleware leaves to the app's error handler.
func classify(err error) kind {
	switch {
	case err == nil:
		return kindOther
	case errors.Is(err, tenancy.ErrMalformed):
		return kindMalformed
	case errors.Is(err, tenancy.ErrNoTenant):
		return kindNoTenant
	case errors.Is(err, errRemoved):
		return kindRemoved
	case errors.Is(err, tenancy.ErrUnknownTenant), errors.Is(err, ErrEngineNotDefined):
		return kindUnknown
	case errors.Is(err, ErrForbidden):
		return kindForbidden
	case errors.Is(err, ErrTenantBusy):
		return kindBusy
	case errors.Is(err, ErrUnavailable):
		return kindUnavailable
	}
	return kindOther
}

// sessionEnded reports whether err is the server ending the session:
// admin_shutdown (a server stop or restart, or pg_terminate_backend),
// crash_shutdown, or idle_session_timeout. The connection is gone.
func sessionEnded(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "57P01", "57P02", "57P05":
		return true
	}
	return false
}

// acquireCause names why an acquire failed, for the log: what an operator
// would check first. It never quotes the DSN or a password.
func acquireCause(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01":
			return "bad password"
		case "28000":
			return "authentication refused"
		case "3D000":
			return "unknown database"
		case "53300":
			return "too many connections"
		case "57P03":
			return "server starting or shutting down"
		}
		return "server refused the connection (SQLSTATE " + pgErr.Code + ")"
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "no connection within AcquireTimeout (pool exhausted or server slow)"
	case errors.Is(err, context.Canceled):
		return "request cancelled"
	}
	return "connect failed"
}
