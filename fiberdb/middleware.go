package fiberdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/gofiber/fiber/v2"
)

// stateKey is the Locals key of a request's fiberdb value: its *binding until
// it acquires a connection, then its *state. A pointer, so that fasthttp's
// scan of the user values compares words, not values of a type; not
// zero-sized, so that no other package's key can share its address.
var stateKey = &struct{ name string }{"fiberdb"}

// binding is one engine as one middleware serves it. New builds one per
// engine, so a request that never touches the database costs no allocation:
// Locals holds its binding.
type binding struct {
	eng *engine
	mw  *middleware
}

// middleware is what every request of one fiberdb.New shares.
type middleware struct {
	engines *Engines
	dl      *deadlines
	// Resolvers return the config's own strings, so comparing with a
	// binding's name is mostly a pointer check: for a few engines a scan
	// beats hashing the name; past scanLimit the map wins.
	list     []*binding
	bindings map[string]*binding
}

const scanLimit = 8

func (mw *middleware) binding(name string) (*binding, bool) {
	if mw.list != nil {
		for _, b := range mw.list {
			if b.eng.name == name {
				return b, true
			}
		}
		return nil, false
	}
	b, ok := mw.bindings[name]
	return b, ok
}

// state is a request's leases, made by its first Conn or ConnFor. States are
// pooled, so that a request using one engine allocates only its handle: the
// first lease lives inside the state, and the handle is what tells a holder
// from a later request's holder of the same lease.
type state struct {
	b     *binding
	first lease     // acquired once h is set
	h     *handle   // first's handle, or nil
	more  []*handle // other engines, through ConnFor; their leases are not reused
	gen   uint64    // counts resets, so an acquire that outlived its request can tell
}

var statePool = sync.Pool{New: func() any { return new(state) }}

// reset readies st, whose leases have ended, for the pool.
func (st *state) reset() {
	st.gen++
	st.b, st.h = nil, nil
	clear(st.more)
	st.more = st.more[:0]
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
// stream that needs the database acquires its own from [Engines.Engine] and
// releases it.
func New(config ...Config) fiber.Handler {
	cfg := configDefault(config...)
	mw := &middleware{engines: cfg.Engines, dl: newDeadlines(cfg.AcquireTimeout), bindings: map[string]*binding{}}
	for _, name := range cfg.Engines.names {
		b := &binding{eng: cfg.Engines.engines[name], mw: mw}
		mw.bindings[name] = b
		if len(cfg.Engines.names) <= scanLimit {
			mw.list = append(mw.list, b)
		}
	}

	return func(c *fiber.Ctx) (err error) {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		b, err := mw.resolve(c, &cfg)
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
			if !used {
				return // the handler never asked for a connection
			}
			releaseErr := st.release(c)
			st.reset()
			statePool.Put(st)
			if errors.Is(err, ErrUnavailable) {
				err = cfg.ErrorHandler(c, err)
			}
			if releaseErr != nil {
				cfg.Logger.LogAttrs(c.UserContext(), slog.LevelError, "fiberdb: release failed",
					slog.String("tenant", b.eng.name), slog.Any("error", releaseErr))
				// A failed release means a transaction was left open, so the
				// request's work is lost: a 500, whose text (Fiber sends it to
				// the client) says nothing of the database.
				err = errors.Join(err, &StatusError{Status: fiber.NewError(fiber.StatusInternalServerError), Err: releaseErr})
			}
		}()
		return c.Next()
	}
}

// resolve runs the resolver and Authorize, and returns the engine's binding,
// which holds the config's own name, never a string from the request.
func (mw *middleware) resolve(c *fiber.Ctx, cfg *Config) (*binding, error) {
	name, err := cfg.Resolver(c)
	if err != nil {
		return nil, err
	}
	b, ok := mw.binding(name)
	if !ok {
		_, err := mw.engines.lookup(name) // for its error
		return nil, err
	}
	if cfg.Authorize != nil {
		if err := cfg.Authorize(c, b.eng.name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	return b, nil
}

// release ends every lease, joining their errors.
func (st *state) release(c *fiber.Ctx) error {
	parent := c.UserContext()
	var err error
	if st.h != nil {
		err = endLease(parent, &st.first)
	}
	for _, h := range st.more {
		err = errors.Join(err, endLease(parent, h.l))
	}
	return err
}

func endLease(parent context.Context, l *lease) error {
	if err := l.end(parent); err != nil {
		return fmt.Errorf("release engine %q: %w", l.engine.name, err)
	}
	return nil
}
