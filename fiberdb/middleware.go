package fiberdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberdb/fiberdb/internal/lookup"
	"github.com/fiberdb/fiberdb/tenancy"
)

// A request's life, as the handler New returns runs it:
//
//  1. Start: the resolver names the engine, Config.Authorize may refuse it,
//     and the request's binding goes into Locals (no allocation, no
//     connection). A failure answers through Config.ErrorHandler, and no
//     route handler runs.
//  2. First Conn or ConnFor (conn.go, state.go): a pooled state replaces the
//     binding and takes a connection from the engine's source (source.go)
//     within AcquireTimeout (deadline.go).
//  3. End, when c.Next returns by success, error or panic: see end below.

// stateKey is the Locals key of a request's fiberdb value: its *binding until
// it acquires a connection, then its *state. A pointer, so that fasthttp's
// scan of the user values compares words, not values of a type; not
// zero-sized, so that no other package's key can share its address.
var stateKey = &struct{ name string }{"fiberdb"}

// binding is one engine as one middleware serves it. New builds one per
// engine, so a request that never touches the database costs no allocation:
// Locals holds its binding.
type binding struct {
	eng          *engine
	mw           *middleware
	queryTimeout time.Duration // Config.QueryTimeout for this engine; ≤ 0: none
}

// middleware is what every request of one fiberdb.New shares.
type middleware struct {
	cfg     Config
	engines *Engines
	dl      *deadlines
	view    atomic.Pointer[view] // for the engines' current registry
}

// view is a middleware's bindings for one registry: what a request resolves
// against. The first request after an Apply builds the next view; every
// request loads one view and uses only it.
type view struct {
	reg      *registry
	bindings lookup.Table[*binding] // keyed by the config's own names
	resolver tenancy.Resolver
}

// current returns the view of the engines' current registry.
func (mw *middleware) current() *view {
	reg := mw.engines.cur.Load()
	old := mw.view.Load()
	if old != nil && old.reg == reg {
		return old
	}
	bindings := make(map[string]*binding, len(reg.names))
	for name, eng := range reg.byName {
		if b, ok := old.binding(name); ok && b.eng == eng {
			bindings[name] = b // unchanged by Apply
			continue
		}
		bindings[name] = &binding{eng: eng, mw: mw, queryTimeout: mw.queryTimeout(name)}
	}
	v := &view{reg: reg, bindings: lookup.New(bindings), resolver: mw.cfg.Resolver}
	if v.resolver == nil {
		v.resolver = reg.resolver
	}
	if mw.view.CompareAndSwap(old, v) {
		return v
	}
	return mw.view.Load() // another request built it (or a newer one) first
}

// queryTimeout is Config.QueryTimeout for engine.
func (mw *middleware) queryTimeout(engine string) time.Duration {
	if d, ok := mw.cfg.QueryTimeouts[engine]; ok {
		return d
	}
	return mw.cfg.QueryTimeout
}

func (v *view) binding(name string) (*binding, bool) {
	if v == nil {
		return nil, false
	}
	return v.bindings.Get(name)
}

// New returns the fiberdb middleware. For each request it resolves the tenant
// once, before any route handler runs, and answers through
// Config.ErrorHandler when that fails. Connections are acquired lazily by
// [Conn] and [ConnFor]: a route that never asks acquires nothing.
//
// When the rest of the chain returns, whether it succeeded, returned an
// error or panicked, every connection the request acquired has its open
// transactions rolled back (on a fresh context bounded by a few seconds) and
// is released, and the request's Locals entry is removed. Register
// recover.New() before fiberdb to turn panics into 500s; the release happens
// either way.
//
// Fiber's ErrorHandler runs after the release, and so can body streams
// (c.SendStream, SetBodyStreamWriter, whose writer fasthttp starts at once on
// another goroutine and drains while sending the response). Neither may use
// the request's connection: it answers [ErrConnReleased] once released. A
// stream that needs the database acquires its own with [Engines.Acquire]
// and releases it.
func New(config ...Config) fiber.Handler {
	cfg := configDefault(config...)
	mw := &middleware{cfg: cfg, engines: cfg.Engines, dl: newDeadlines(cfg.AcquireTimeout)}
	mw.current()

	return func(c *fiber.Ctx) (err error) {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		b, err := mw.resolve(c)
		if err != nil {
			cfg.Engines.counts.failure(err)
			return cfg.ErrorHandler(c, err)
		}
		b.eng.resolved.Add(1)

		// Locals, without its variadic wrapper: this runs on every request.
		uv := c.Context()
		outer := uv.UserValue(stateKey) // a nested fiberdb.New must not clobber it
		uv.SetUserValue(stateKey, b)
		defer func() {
			st, used := uv.UserValue(stateKey).(*state)
			uv.SetUserValue(stateKey, outer)
			if used { // else the handler never asked for a connection
				err = mw.end(c, st, err)
			}
		}()
		return c.Next()
	}
}

// resolve runs the resolver and Authorize, and returns the engine's binding,
// which holds the config's own name, never a string from the request.
func (mw *middleware) resolve(c *fiber.Ctx) (*binding, error) {
	v := mw.current()
	name, err := v.resolver(c)
	if err != nil {
		return nil, err
	}
	b, ok := v.bindings.Get(name)
	if !ok {
		return nil, v.reg.notDefined(name)
	}
	if mw.cfg.Authorize != nil {
		if err := mw.cfg.Authorize(c, b.eng.name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	return b, nil
}

// end is what happens when a request that used the database ends; err is
// what the rest of the chain returned.
//
//  1. Every lease ends (lease.end): transactions the handler left open are
//     rolled back on a fresh context bounded by cleanupTimeout, and each
//     connection goes back to its source. From then on every handle, row,
//     batch and transaction of the request answers ErrConnReleased.
//  2. The state goes back to its pool for a later request.
//  3. An acquire failure the handler returned becomes the ErrorHandler's
//     answer (by default 503, 429, or 404 for an engine Apply removed after
//     the request resolved it). A failed release is logged and answers a
//     generic 500: the request's work was lost.
func (mw *middleware) end(c *fiber.Ctx, st *state, err error) error {
	parent := c.UserContext()
	var releaseErr error
	if st.h != nil {
		releaseErr = endLease(parent, &st.first)
	}
	for _, h := range st.more {
		releaseErr = errors.Join(releaseErr, endLease(parent, h.l))
	}
	tenant := st.b.eng.name
	st.reset()
	statePool.Put(st)

	if outcomes[classify(err)].ofAcquire {
		err = mw.cfg.ErrorHandler(c, err)
	}
	if releaseErr != nil {
		mw.cfg.Logger.LogAttrs(parent, slog.LevelError, "fiberdb: release failed",
			slog.String("tenant", tenant), slog.Any("error", releaseErr))
		// The response text (Fiber sends it to the client) says nothing of
		// the database.
		err = errors.Join(err, &StatusError{Status: fiber.NewError(fiber.StatusInternalServerError), Err: releaseErr})
	}
	return err
}

// acquireFailed logs a failed acquire, with the tenant and the cause, at
// most once per logEvery per engine: a 503 is never silent, and an engine
// whose every connect fails does not flood the log.
func (mw *middleware) acquireFailed(c *fiber.Ctx, eng *engine, err error) {
	ctx := c.UserContext()
	level := outcomes[classify(err)].level
	if !mw.cfg.Logger.Enabled(ctx, level) {
		return
	}
	ok, suppressed := eng.failLog.allow(time.Now())
	if !ok {
		return
	}
	mw.cfg.Logger.LogAttrs(ctx, level, "fiberdb: acquire failed",
		slog.String("tenant", eng.name), slog.String("cause", acquireCause(err)),
		slog.Int64("suppressed", suppressed), slog.Any("error", err))
}

func endLease(parent context.Context, l *lease) error {
	if err := l.end(parent); err != nil {
		return fmt.Errorf("release engine %q: %w", l.engine.name, err)
	}
	return nil
}
