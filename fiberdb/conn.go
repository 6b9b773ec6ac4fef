package fiberdb

import (
	"errors"

	"github.com/gofiber/fiber/v2"
)

// Conn returns the request's connection to its tenant's engine, acquiring it
// on the first call (waiting at most Config.AcquireTimeout) and returning
// the same one on every later call in the request. It is ConnFor(c, Tenant(c)).
//
// Do not release it: the middleware does, when the handler chain returns.
// Once it has, every method of the connection returns [ErrConnReleased], so a
// goroutine or stream that outlives the request cannot reach a connection
// that serves another one. Work not committed by then is rolled back.
//
// Errors: [ErrNotRegistered] outside the middleware; an [*AcquireError]
// (errors.Is [ErrUnavailable]) when no connection came in time, which the
// middleware turns into a 503 when the handler returns it.
func Conn(c *fiber.Ctx) (DBTX, error) {
	st, err := requestState(c)
	if err != nil {
		return nil, err
	}
	return st.lease(c, st.b.eng)
}

// ConnFor is [Conn] for another named engine, for example "default" (the
// landlord database). One connection per engine per request:
// ConnFor(c, Tenant(c)) is the same connection as Conn(c). A name that is
// not configured returns an error matching [ErrEngineNotDefined].
func ConnFor(c *fiber.Ctx, engine string) (DBTX, error) {
	st, err := requestState(c)
	if err != nil {
		return nil, err
	}
	eng, err := st.b.mw.engines.lookup(engine)
	if err != nil {
		return nil, err
	}
	return st.lease(c, eng)
}

// Tenant returns the engine name resolved for the request, or "" outside
// the middleware. The string belongs to the configuration, so it may be kept.
func Tenant(c *fiber.Ctx) string {
	switch v := c.Locals(stateKey).(type) {
	case *binding:
		return v.eng.name
	case *state:
		return v.b.eng.name
	}
	return ""
}

// requestState returns the request's state, making it on first use.
func requestState(c *fiber.Ctx) (*state, error) {
	uv := c.Context() // Locals without its variadic wrapper, as in New
	switch v := uv.UserValue(stateKey).(type) {
	case *state:
		return v, nil
	case *binding:
		st := statePool.Get().(*state) //nolint:forcetypeassert,errcheck // the pool holds only states
		st.b = v
		uv.SetUserValue(stateKey, st)
		return st, nil
	}
	return nil, ErrNotRegistered
}

func (st *state) lease(c *fiber.Ctx, eng *engine) (DBTX, error) {
	if st.first.engine == eng && st.h != nil {
		return st.h, nil
	}
	for _, h := range st.more {
		if h.l.engine == eng {
			return h, nil
		}
	}
	ctx, cancel := st.b.mw.dl.context(c.UserContext())
	defer cancel()
	gen := st.gen
	acq, err := eng.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if st.gen != gen {
		// The request ended while this acquire waited, and the state may now
		// serve another one: Conn was called from a goroutine that outlived
		// its request. Its connection goes straight back.
		return nil, errors.Join(ErrConnReleased, acq.into(new(lease)).l.end(ctx))
	}
	if st.h == nil {
		st.h = acq.into(&st.first)
		return st.h, nil
	}
	h := acq.into(new(lease))
	st.more = append(st.more, h)
	return h, nil
}
