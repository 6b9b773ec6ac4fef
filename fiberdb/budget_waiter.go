package fiberdb

import "context"

// budgetWaiter is one acquire queued in a [budget] for a slot: the pool it
// acquires from, and the slot handed to it, until its dial takes it. The
// acquire's tries carry it in their context, so that the dial pgxpool makes
// for that acquire (in a goroutine of its own) takes the waiter's slot.
type budgetWaiter struct {
	pool  *pooled
	woken chan struct{} // buffered: a wake while the waiter tries is kept for its next wait
	slot  bool          // under budget.mu
}

// wake wakes the waiter, or leaves it woken.
func (w *budgetWaiter) wake() {
	select {
	case w.woken <- struct{}{}:
	default:
	}
}

type waiterKey struct{}

// withWaiter returns ctx carrying w for the dials of w's tries.
func withWaiter(ctx context.Context, w *budgetWaiter) context.Context {
	return context.WithValue(ctx, waiterKey{}, w)
}

// waiterFrom returns the waiter a dial is for, or nil.
func waiterFrom(ctx context.Context) *budgetWaiter {
	if w, ok := ctx.Value(waiterKey{}).(*budgetWaiter); ok {
		return w
	}
	return nil
}
