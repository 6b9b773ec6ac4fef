package fiberdb

import (
	"context"
	"sync/atomic"
	"time"
)

// deadlines hands out acquire contexts that expire AcquireTimeout (plus at
// most slack) from now. A context.WithTimeout per request costs a timer and
// measurably lowers throughput; instead, acquires that start close together
// share one deadline and one timer. A second timer marks the deadline stale
// half a slack after it was made, so that the hot path reads no clock: until
// then it still has more than AcquireTimeout to run, unless that timer fires
// more than half a slack late (a starved scheduler), which can only shorten
// an acquire's wait, never hand out an expired deadline.
type deadlines struct {
	timeout time.Duration
	slack   time.Duration
	cur     atomic.Pointer[deadline]
}

// deadline is one shared expiry: done closes at at.
type deadline struct {
	at    time.Time
	stale atomic.Bool // no longer handed out
	done  chan struct{}
}

func newDeadlines(timeout time.Duration) *deadlines {
	return &deadlines{timeout: timeout, slack: timeout / 8}
}

// context returns a context that carries parent's values and expires at a
// shared deadline. When parent can itself be cancelled, the shared deadline
// cannot honour that, so it falls back to context.WithTimeout.
func (d *deadlines) context(parent context.Context) (context.Context, context.CancelFunc) {
	if parent.Done() != nil {
		return context.WithTimeout(parent, d.timeout)
	}
	dl := d.cur.Load()
	if dl == nil || dl.stale.Load() || dl.expired() {
		dl = d.next(dl)
	}
	if parent == context.Background() {
		return dl, noCancel // Fiber's default UserContext has no values to carry
	}
	return sharedCtx{Context: parent, dl: dl}, noCancel
}

// next replaces old, the current deadline, with a fresh one.
func (d *deadlines) next(old *deadline) *deadline {
	dl := &deadline{at: time.Now().Add(d.timeout + d.slack), done: make(chan struct{})}
	staleTimer := time.AfterFunc(d.slack/2, func() { dl.stale.Store(true) })
	doneTimer := time.AfterFunc(d.timeout+d.slack, func() { close(dl.done) })
	if d.cur.CompareAndSwap(old, dl) {
		return dl
	}
	// Another request just made one.
	staleTimer.Stop()
	doneTimer.Stop()
	return d.cur.Load()
}

func noCancel() {}

// A deadline is itself the acquire context of a request whose parent context
// is context.Background().
func (d *deadline) Deadline() (time.Time, bool) { return d.at, true }
func (d *deadline) Done() <-chan struct{}       { return d.done }
func (*deadline) Value(any) any                 { return nil }

func (d *deadline) Err() error {
	if d.expired() {
		return context.DeadlineExceeded
	}
	return nil
}

// expired reports whether done has closed. Checked on the hot path as a
// backstop: should the stale timer run later than the done timer (a starved
// scheduler), an expired deadline is still never handed out.
func (d *deadline) expired() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// sharedCtx is parent's values with a shared deadline.
type sharedCtx struct {
	context.Context //nolint:containedctx // a Context implementation wraps its parent
	dl              *deadline
}

func (c sharedCtx) Deadline() (time.Time, bool) { return c.dl.at, true }
func (c sharedCtx) Done() <-chan struct{}       { return c.dl.done }

func (c sharedCtx) Err() error { return c.dl.Err() }
