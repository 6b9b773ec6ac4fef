package fiberdb

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// budget caps the server connections that all pools of one [Engines] have
// open, or are opening, at once (FIBERDB.max_total_conns).
//
// It counts sockets, not pools or acquires: a slot is taken right before a
// connection is dialled and given back when its socket closes, whatever
// closed it (a failed connect, an AfterConnect that refused the connection,
// the pool destroying it, an eviction). So the server never sees more than
// max connections from this process, and never refuses one for being over
// max_connections when the budget is sized below it.
//
// Over budget, a new connection first takes the slot of an idle connection
// of any pool, which it closes (evict). When no pool has an idle connection,
// the dial fails at once with [ErrBudgetExhausted]: a dial runs detached from
// the acquire that caused it (pgxpool finishes a connect in the background
// after its caller gave up), so waiting belongs to the acquire, which calls
// [budget.await] with the request's deadline and tries again.
type budget struct {
	max  int64
	used atomic.Int64
	peak atomic.Int64

	// evict closes one idle connection of some pool and reports whether it
	// did; nil when nothing can be evicted.
	evict func(ctx context.Context) bool

	freed broadcast // a slot may have freed, or a connection gone idle

	evictions atomic.Uint64
	waits     atomic.Uint64
	timeouts  atomic.Uint64
}

// budgetPoll bounds how long an acquire waits before it looks again. Slots
// free and connections go idle with a signal when fiberdb itself releases
// them; a connection that a caller of [Engines.Engine] releases straight to
// its pool sends none, so waiters also poll.
const budgetPoll = 20 * time.Millisecond

func newBudget(maxConns int, evict func(ctx context.Context) bool) *budget {
	return &budget{max: int64(maxConns), evict: evict}
}

// tryReserve takes a slot if one is free.
func (b *budget) tryReserve() bool {
	for {
		n := b.used.Load()
		if n >= b.max {
			return false
		}
		if b.used.CompareAndSwap(n, n+1) {
			for p := b.peak.Load(); n >= p && !b.peak.CompareAndSwap(p, n+1); p = b.peak.Load() {
			}
			return true
		}
	}
}

// reserve takes a slot for a connection about to be dialled, evicting idle
// connections to make room. It never waits.
func (b *budget) reserve(ctx context.Context) error {
	for !b.tryReserve() {
		// The evicted connection's slot is free now, unless another dial took
		// it first; each round closes one more idle connection, so this ends.
		if b.evict == nil || !b.evict(ctx) {
			return ErrBudgetExhausted
		}
		b.evictions.Add(1)
	}
	return nil
}

// release gives a slot back.
func (b *budget) release() {
	b.used.Add(-1)
	b.signal()
}

// signal wakes the acquires waiting for a slot.
func (b *budget) signal() { b.freed.signal() }

// await runs try until it succeeds or fails for a reason other than the
// budget, waiting between tries for a slot to free or a connection to go
// idle. When ctx ends first it returns try's last error joined with ctx's.
func await[T any](ctx context.Context, b *budget, try func() (T, error)) (T, error) {
	v, err := try()
	if !errors.Is(err, ErrBudgetExhausted) {
		return v, err
	}
	b.waits.Add(1)
	poll := time.NewTimer(budgetPoll)
	defer poll.Stop()
	for {
		changed := b.freed.watch()
		v, err = try()
		if !errors.Is(err, ErrBudgetExhausted) {
			b.freed.unwatch()
			if err != nil && ctx.Err() != nil {
				// The deadline came while a try was under way (pgxpool
				// answers ctx's error): the wait for the budget timed out.
				b.timeouts.Add(1)
			}
			return v, err
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			b.freed.unwatch()
			b.timeouts.Add(1)
			return v, errors.Join(err, context.Cause(ctx))
		}
		b.freed.unwatch()
		poll.Reset(budgetPoll)
	}
}

// beforeConnect wraps a pool's BeforeConnect so that the connection it
// makes dials through the budget.
func (b *budget) beforeConnect(next func(context.Context, *pgx.ConnConfig) error) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		if next != nil {
			if err := next(ctx, cc); err != nil {
				return err
			}
		}
		d := &budgetDialer{b: b, next: cc.DialFunc}
		cc.DialFunc = d.dial
		return nil
	}
}

// budgetDialer is the DialFunc of one connection attempt, made by
// [budget.beforeConnect]. pgconn dials again through the same function for
// the connection's cancel requests; the server serves those without a
// connection slot, so a dial while the attempt's own socket is open passes
// through uncounted. Fallback dials (another host, sslmode=prefer) come after
// the failed socket closed, and are counted.
type budgetDialer struct {
	b    *budget
	next pgconn.DialFunc
	open atomic.Int32
}

func (d *budgetDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.open.Load() > 0 {
		return d.next(ctx, network, addr)
	}
	if err := d.b.reserve(ctx); err != nil {
		return nil, err
	}
	c, err := d.next(ctx, network, addr)
	if err != nil {
		d.b.release()
		return nil, err
	}
	d.open.Add(1)
	return &budgetConn{Conn: c, d: d}, nil
}

// budgetConn is a counted socket: closing it, once or more, frees its slot
// once, and only when the server is done with it.
//
// PostgreSQL counts a backend against max_connections (and a role's
// connection limit) until the backend process exits, which it does after
// the client has gone: a slot freed the moment the client closes would let
// the next connect race the old backend's exit, and the server would refuse
// it. A backend frees its slot before it closes its end of the socket, so
// Close half-closes, waits (at most serverExitWait) for the server's end of
// the stream, and only then frees the slot.
type budgetConn struct {
	net.Conn
	d    *budgetDialer
	once sync.Once
	err  error
}

// serverExitWait bounds how long closing a counted socket waits for the
// server to finish with it.
const serverExitWait = 2 * time.Second

func (c *budgetConn) Close() error {
	c.once.Do(func() {
		if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil &&
			c.SetReadDeadline(time.Now().Add(serverExitWait)) == nil {
			// Whatever arrives now is the server's goodbye, or nothing.
			_, _ = io.Copy(io.Discard, c.Conn) //nolint:errcheck // EOF, a reset or the deadline: each means done
		}
		c.err = c.Conn.Close()
		c.d.open.Add(-1)
		c.d.b.release()
	})
	return c.err
}
