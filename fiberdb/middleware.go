package fiberdb

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/gofiber/fiber/v2"
)

// stateKey is the Locals key of a request's state.
type stateKey struct{}

// state is one request's tenant and leases. States are pooled: nothing a
// handler can keep points to one (Conn hands out the lease, never the state).
type state struct {
	engines *Engines
	dl      *deadlines
	tenant  *engine
	leases  []*lease
}

var statePool = sync.Pool{New: func() any { return new(state) }}

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
	dl := newDeadlines(cfg.AcquireTimeout)

	return func(c *fiber.Ctx) (err error) {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		tenant, err := resolve(c, &cfg)
		cfg.Engines.counts.count(tenant, err)
		if err != nil {
			return cfg.ErrorHandler(c, err)
		}

		st, _ := statePool.Get().(*state) //nolint:errcheck // the pool only ever holds *state
		st.engines, st.dl, st.tenant = cfg.Engines, dl, tenant
		outer := c.Locals(stateKey{}) // a nested fiberdb.New must not clobber it
		c.Locals(stateKey{}, st)
		defer func() {
			c.Locals(stateKey{}, outer)
			releaseErr := st.release(c)
			if releaseErr != nil {
				cfg.Logger.LogAttrs(c.UserContext(), slog.LevelError, "fiberdb: release failed",
					slog.String("tenant", tenant.name), slog.Any("error", releaseErr))
			}
			if err != nil && errors.Is(err, ErrUnavailable) {
				err = cfg.ErrorHandler(c, err)
			}
			err = errors.Join(err, releaseErr)
		}()
		return c.Next()
	}
}

// resolve runs the resolver and Authorize, and returns the engine under the
// config's own name, never a string from the request.
func resolve(c *fiber.Ctx, cfg *Config) (*engine, error) {
	name, err := cfg.Resolver(c)
	if err != nil {
		return nil, err
	}
	eng, err := cfg.Engines.lookup(name)
	if err != nil {
		return nil, err
	}
	if cfg.Authorize != nil {
		if err := cfg.Authorize(c, eng.name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	return eng, nil
}

// release ends every lease, joining their errors, and returns st to its pool.
func (st *state) release(c *fiber.Ctx) error {
	var err error
	if len(st.leases) > 0 {
		parent := c.UserContext()
		for i, l := range st.leases {
			if lerr := l.end(parent); lerr != nil {
				err = errors.Join(err, fmt.Errorf("release engine %q: %w", l.engine.name, lerr))
			}
			st.leases[i] = nil
		}
	}
	st.engines, st.dl, st.tenant, st.leases = nil, nil, nil, st.leases[:0]
	statePool.Put(st)
	return err
}
