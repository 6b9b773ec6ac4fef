package fiberdb

import (
	"context"
	"time"
)

// budgetWaiter is one acquire queued in a [budget] for a slot: the pool it
// acquires from, and the slot handed to it, until its dial takes it. The
// acquire's tries carry it in their context, so that the dial pgxpool makes
// for that acquire (in a goroutine of its own) takes the waiter's slot.
type budgetWaiter struct {
	pool  *pooled
	woken chan struct{} // buffered: a wake while the waiter tries is kept for its next wait
	slot  bool          // under budget.mu
	// dialling: a try of the waiter's is connecting, with the slot it was
	// handed or a free one (under budget.mu). Such a waiter is neither
	// handed another slot nor woken, which it would not notice.
	dialling bool
	queued   bool      // in the budget's queue (under budget.mu)
	since    time.Time // when it queued
	until    time.Time // its acquire's deadline; zero: none
}

// newBudgetWaiter makes the waiter of an acquire for p that waits within
// ctx.
func newBudgetWaiter(ctx context.Context, p *pooled) *budgetWaiter {
	w := &budgetWaiter{pool: p, woken: make(chan struct{}, 1), since: time.Now()}
	w.until, _ = ctx.Deadline()
	return w
}

// patience is how long a waiter without a deadline waits before it is
// impatient.
const patience = time.Second

// impatient reports whether the waiter has waited half the time its
// acquire's deadline gave it, or patience without a deadline: it may then
// evict the idle connections of the most used pools too
// (poolSet.evictConn). A dial's context has the acquire's values but not
// its deadline (pgxpool connects in the background), hence until.
func (w *budgetWaiter) impatient() bool {
	waited := time.Since(w.since)
	if !w.until.IsZero() {
		return waited >= time.Until(w.until)
	}
	return waited >= patience
}

// wants reports whether the waiter is owed a slot: it has none and is not
// connecting with one. The caller holds budget.mu.
func (w *budgetWaiter) wants() bool { return !w.slot && !w.dialling }

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
