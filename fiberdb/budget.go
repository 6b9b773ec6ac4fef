package fiberdb

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
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
// of the least recently used pool that has one, which it closes (evict).
// When no pool has an idle connection, the dial fails at once with
// [ErrBudgetExhausted]: a dial runs detached from the acquire that caused it
// (pgxpool finishes a connect in the background after its caller gave up),
// so waiting belongs to the acquire, which queues in [await] with the
// request's deadline.
//
// Waiters are served in arrival order, one at a time, as PgBouncer serves
// its clients: a slot that frees is handed to the oldest waiter that has
// none (release), which dials with it; a connection that goes idle wakes one
// waiter (idle), which either takes it from its own pool or evicts it. No
// waiter wakes to find that another took what woke it, and a new acquire
// never takes a slot a waiter is owed.
type budget struct {
	max  int64
	used atomic.Int64 // slots taken, handed-out ones included; written under mu
	peak atomic.Int64

	// evict closes one idle connection of some pool and reports whether it
	// did; nil when nothing can be evicted.
	evict func(ctx context.Context) bool

	mu      sync.Mutex
	queue   []*budgetWaiter // oldest first
	waiting atomic.Int64    // len(queue), for the release path's check without mu

	evictions atomic.Uint64
	waits     atomic.Uint64
	timeouts  atomic.Uint64
}

// budgetPoll bounds how long the waiter owed the next slot waits before it
// looks again. Slots free and connections go idle with a signal when
// fiberdb itself releases them; a connection that a caller of
// [Engines.Engine] releases straight to its pool sends none, and that
// waiter finds it by evicting it.
const budgetPoll = 20 * time.Millisecond

func newBudget(maxConns int, evict func(ctx context.Context) bool) *budget {
	return &budget{max: int64(maxConns), evict: evict}
}

// take counts a slot. The caller holds mu.
func (b *budget) take() {
	n := b.used.Add(1)
	for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
	}
}

// tryReserve takes a slot for a dial by w (nil: an acquire that is not
// waiting): the slot handed to w, or a free one. Every queued waiter that
// is not dialling holds a slot while any is free (join, release), so a free
// slot is owed to no one.
func (b *budget) tryReserve(w *budgetWaiter) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w != nil && w.slot {
		w.slot = false // the dial's socket holds it now
		w.dialling = true
		return true
	}
	if b.used.Load() < b.max {
		b.take()
		if w != nil {
			w.dialling = true
		}
		return true
	}
	return false
}

// reserve takes a slot for a connection about to be dialled, evicting idle
// connections to make room. It never waits. ctx carries the waiter the dial
// is for, if any (withWaiter).
func (b *budget) reserve(ctx context.Context) error {
	w := waiterFrom(ctx)
	for !b.tryReserve(w) {
		if b.evict == nil || !b.evict(ctx) {
			return ErrBudgetExhausted
		}
		b.evictions.Add(1)
		// The evicted connection's slot went to the oldest waiter without
		// one, which may be w; or it is free, unless another dial took it
		// first. While others wait, one eviction is this dial's share: it
		// waits in line for the next.
		if b.tryReserve(w) {
			return nil
		}
		if b.waiting.Load() > 0 {
			return ErrBudgetExhausted
		}
	}
	return nil
}

// release gives a slot back: to the oldest waiter without one, else free.
func (b *budget) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pass()
}

// keep gives back the slot of a socket that closed while the connect
// attempt that dialled it for w was still under way: w keeps it, for the
// attempt's next dial. A connect may dial more than once in a row: with
// sslmode=prefer (pgx's default) against a server without TLS, the socket
// on which the server refused TLS closes and a plain one follows; a host
// that fails is followed by the next. Were the slot handed on, that dial
// would find the budget full while others wait, and fail: with every slot
// in such attempts, waiters would hand slots round and none would connect.
// A w that left the queue (its acquire ended) hands the slot on.
func (b *budget) keep(w *budgetWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !w.queued || w.slot {
		b.pass()
		return
	}
	w.slot = true
	w.wake() // for when the attempt ended meanwhile: the next try takes it
}

// pass hands a slot to the oldest waiter without one, or frees it. The
// caller holds mu.
func (b *budget) pass() {
	for _, w := range b.queue {
		if w.wants() {
			w.slot = true
			w.wake()
			return
		}
	}
	b.used.Add(-1)
}

// idle tells the waiters that a connection of p went idle: the oldest
// waiter for p takes it from p; else, unless p is spared, the oldest
// waiter without a slot evicts it (or an idle connection less used). A
// spared pool's connection is left to the owed waiter's poll, for when it
// has waited long enough to take it. It costs one atomic load when nobody
// waits, which is the release path's case.
func (b *budget) idle(p *pooled, spared bool) {
	if b.waiting.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var first *budgetWaiter
	for _, w := range b.queue {
		if w.dialling {
			continue // a wake would be lost on it: it is connecting
		}
		if w.pool == p {
			w.wake()
			return
		}
		if first == nil && !w.slot {
			first = w
		}
	}
	if first != nil && !spared {
		first.wake()
	}
}

// join queues w, with a free slot if there is one.
func (b *budget) join(w *budgetWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used.Load() < b.max {
		b.take()
		w.slot = true
		w.wake()
	}
	b.queue = append(b.queue, w)
	w.queued = true
	b.waiting.Add(1)
}

// leave takes w out of the queue and hands on the slot it holds unused.
func (b *budget) leave(w *budgetWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.queue, w); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
		b.waiting.Add(-1)
	}
	w.queued = false
	if w.slot {
		w.slot = false
		b.pass()
	}
}

// urgent reports whether a dial for w may evict the idle connections of
// the most used pools too: w still waits (a connect pgxpool finishes in the
// background after its acquire gave up serves no request) and has waited
// long enough (budgetWaiter.impatient).
func (b *budget) urgent(w *budgetWaiter) bool {
	if w == nil {
		return false
	}
	b.mu.Lock()
	queued := w.queued
	b.mu.Unlock()
	return queued && w.impatient()
}

// owed reports whether w is the oldest waiter without a slot: the one the
// next freed slot goes to, and the only one that polls.
func (b *budget) owed(w *budgetWaiter) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, q := range b.queue {
		if q.wants() {
			return q == w
		}
	}
	return false
}

// tried ends w's try: a dial it made has returned.
func (b *budget) tried(w *budgetWaiter) {
	b.mu.Lock()
	w.dialling = false
	b.mu.Unlock()
}

// await runs try until it succeeds or fails for a reason other than the
// budget. Over budget, the acquire queues (join) and tries again when woken:
// handed a slot, which its dial takes (try's ctx carries the waiter), or
// told that a connection went idle. When ctx ends first it returns try's
// last error joined with ctx's.
func await[T any](ctx context.Context, b *budget, p *pooled, try func(ctx context.Context) (T, error)) (T, error) {
	v, err := try(ctx)
	if !errors.Is(err, ErrBudgetExhausted) {
		return v, err
	}
	b.waits.Add(1)
	w := newBudgetWaiter(ctx, p)
	b.join(w)
	defer b.leave(w)
	if p != nil && p.pool != nil && p.pool.Stat().IdleConns() > 0 {
		// A connection of p went idle between the try and join, when
		// nobody was queued to hear of it: look again at once.
		w.wake()
	}
	wctx := withWaiter(ctx, w)
	poll := time.NewTimer(budgetPoll)
	defer poll.Stop()
	for {
		select {
		case <-w.woken:
		case <-poll.C:
			poll.Reset(budgetPoll)
			if !b.owed(w) {
				continue // an older waiter looks first
			}
		case <-ctx.Done():
			b.timeouts.Add(1)
			return v, errors.Join(err, context.Cause(ctx))
		}
		v, err = try(wctx)
		b.tried(w)
		if !errors.Is(err, ErrBudgetExhausted) {
			if err != nil && ctx.Err() != nil {
				// The deadline came while a try was under way (pgxpool
				// answers ctx's error): the wait for the budget timed out.
				b.timeouts.Add(1)
			}
			return v, err
		}
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
		d := &budgetDialer{b: b, next: cc.DialFunc, w: waiterFrom(ctx)}
		cc.DialFunc = d.dial
		after := cc.AfterConnect
		cc.AfterConnect = func(ctx context.Context, pg *pgconn.PgConn) error {
			d.connected.Store(true)
			if after != nil {
				return after(ctx, pg)
			}
			return nil
		}
		return nil
	}
}

// budgetDialer is the DialFunc of one connection attempt, made by
// [budget.beforeConnect]. pgconn dials again through the same function for
// the connection's cancel requests; the server serves those without a
// connection slot, so a dial while the attempt's own socket is open passes
// through uncounted. Fallback dials (another host, sslmode=prefer) come after
// the failed socket closed, and are counted: for an attempt made for a
// waiter, with the slot the closed socket left it (budget.keep).
type budgetDialer struct {
	b         *budget
	next      pgconn.DialFunc
	w         *budgetWaiter // the waiter the attempt is for; nil: none
	open      atomic.Int32
	connected atomic.Bool // the attempt connected (pgconn's AfterConnect ran)
	// exhausted: a dial of the attempt found the budget spent. pgconn takes
	// that for a failed host and tries the next one (another address, the
	// plain socket after the TLS one): each would evict again for an
	// attempt that is going to wait anyway, and a later failure of another
	// kind (a wrong password) would hide behind the budget's, which await
	// retries until its deadline. So the attempt's later dials fail at once.
	exhausted atomic.Bool
}

func (d *budgetDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.open.Load() > 0 {
		return d.next(ctx, network, addr)
	}
	if d.exhausted.Load() {
		return nil, ErrBudgetExhausted
	}
	if err := d.b.reserve(ctx); err != nil {
		d.exhausted.Store(true)
		return nil, err
	}
	c, err := d.next(ctx, network, addr)
	if err != nil {
		d.giveBack()
		return nil, err
	}
	d.open.Add(1)
	return &budgetConn{Conn: c, d: d}, nil
}

// giveBack gives back the slot of one of the attempt's sockets, which
// failed to dial or closed: to the attempt's waiter while the attempt is
// under way, else to the budget.
func (d *budgetDialer) giveBack() {
	if d.w != nil && !d.connected.Load() {
		d.b.keep(d.w)
		return
	}
	d.b.release()
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
		c.d.giveBack()
	})
	return c.err
}
