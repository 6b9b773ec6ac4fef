package fiberdb

import (
	"errors"
	"fmt"
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
	// ErrIsolationActive: TestIsolation was called while it was already active.
	ErrIsolationActive = errors.New("fiberdb: test isolation already active")
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
