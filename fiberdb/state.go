package fiberdb

import (
	"sync"

	"github.com/gofiber/fiber/v2"
)

// state is a request's leases, made by its first Conn or ConnFor. States are
// pooled, so that a request using one engine allocates only its handle: the
// first lease lives inside the state, and the handle is what tells a holder
// from a later request's holder of the same lease.
//
// Only the request's own goroutine reaches a state, through its *fiber.Ctx,
// and only until the handler returns (Conn's contract, and Fiber's for every
// Ctx method): the handles it hands out are what other goroutines may keep.
type state struct {
	b     *binding
	first lease     // acquired once h is set
	h     *handle   // first's handle, or nil
	more  []*handle // other engines, through ConnFor; their leases are not reused
}

var statePool = sync.Pool{New: func() any { return new(state) }}

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

// lease returns the request's connection to eng, acquiring it on first use.
func (st *state) lease(c *fiber.Ctx, eng *engine) (DBTX, error) {
	// By name: after an Apply, a lease's engine may be the one that
	// replaced the engine the request resolved.
	if st.h != nil && st.first.engine.name == eng.name {
		return st.h, nil
	}
	for _, h := range st.more {
		if h.l.engine.name == eng.name {
			return h, nil
		}
	}
	ctx, cancel := st.b.mw.dl.context(c.UserContext())
	defer cancel()
	acq, err := eng.acquire(ctx)
	if err != nil {
		st.b.mw.acquireFailed(c, eng, err)
		return nil, err
	}
	timeout := st.b.queryTimeout
	if eng.name != st.b.eng.name {
		timeout = st.b.mw.queryTimeout(eng.name)
	}
	if st.h == nil {
		st.h = acq.into(&st.first)
		st.first.limit(timeout)
		st.first.wait = st.b.mw.cfg.AcquireTimeout
		return st.h, nil
	}
	h := acq.into(new(lease))
	h.l.limit(timeout)
	h.l.wait = st.b.mw.cfg.AcquireTimeout
	st.more = append(st.more, h)
	return h, nil
}

// reset readies st, whose leases have ended, for the pool.
func (st *state) reset() {
	st.b, st.h = nil, nil
	clear(st.more)
	st.more = st.more[:0]
}
