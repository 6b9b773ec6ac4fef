package fiberdb

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connSet is every connection an engine's pool has open, each with its
// clock: the reaper stops a connection whose lease outlived its
// QueryTimeout, and Close stops those still acquired when its grace period
// ends. It is kept per connection (connect and close), never per request.
type connSet struct {
	mu    sync.Mutex
	conns map[*pgx.Conn]*connClock
}

// connClock is one connection's lease bound. A lease sets it when it
// starts and clears it when it ends, which costs an atomic store each (no
// lock, no timer) unless the reaper stopped the connection; the reaper reads
// it a few times a second.
//
// until and stopping are how end and the reaper agree without a lock on
// end's fast path: end clears until, then reads stopping; the reaper sets
// stopping, then reads until again before it stops the connection. Atomics
// are sequentially consistent, so either the reaper sees until cleared and
// leaves the connection alone, or end sees stopping and takes mu, which the
// reaper holds until the deadline is set, to lift it.
type connClock struct {
	mu       sync.Mutex // held by stop, by the reaper's check and by end's slow path
	conn     *pgx.Conn
	until    atomic.Int64 // monotonic time after which the lease's I/O must fail; 0: none
	stopping atomic.Bool  // stopped, or about to be: end must take mu
	stopped  bool         // the reaper or Close set a past deadline on the socket (under mu)
}

// clockKey is where a connection's clock lives in its pgconn CustomData.
const clockKey = "fiberdb.clock"

// track makes pc's pool record its connections in s, after any AfterConnect
// and before any BeforeClose already set.
func (s *connSet) track(pc *pgxpool.Config) {
	afterConnect, beforeClose := pc.AfterConnect, pc.BeforeClose
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if afterConnect != nil {
			if err := afterConnect(ctx, c); err != nil {
				return err
			}
		}
		cc := &connClock{conn: c}
		c.PgConn().CustomData()[clockKey] = cc
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conns == nil {
			s.conns = map[*pgx.Conn]*connClock{}
		}
		s.conns[c] = cc
		return nil
	}
	pc.BeforeClose = func(c *pgx.Conn) {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if beforeClose != nil {
			beforeClose(c)
		}
	}
}

// clockOf returns conn's clock, or nil for a connection track did not see.
func clockOf(conn *pgxpool.Conn) *connClock {
	cc, _ := conn.Conn().PgConn().CustomData()[clockKey].(*connClock) //nolint:errcheck // nil when absent
	return cc
}

// start bounds the connection's I/O until until, a [monotonic] time.
func (cc *connClock) start(until int64) { cc.until.Store(until) }

// end lifts the bound. A connection the reaper stopped but pgconn did not
// close (no statement ran since) gets its deadline back.
func (cc *connClock) end() {
	cc.until.Store(0)
	if !cc.stopping.Load() {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.stopped && !cc.conn.PgConn().IsClosed() {
		_ = cc.conn.PgConn().Conn().SetDeadline(time.Time{}) //nolint:errcheck // fails only on a closed socket, which the release destroys
	}
	cc.stopped = false
	cc.stopping.Store(false)
}

// stop makes every read and write on the connection fail from now on, the
// statement in progress included: its holder gets a timeout error at once,
// and pgconn closes the connection. The caller holds mu.
func (cc *connClock) stop(now time.Time) {
	cc.stopping.Store(true)
	cc.stopped = true
	_ = cc.conn.PgConn().Conn().SetDeadline(now) //nolint:errcheck // fails only on a socket already closed
}

// expired stops the connection if its lease outlived its bound at now, a
// [monotonic] time; t is now as a time.Time, for the socket's deadline.
func (cc *connClock) expired(t time.Time, now int64) {
	if u := cc.until.Load(); u == 0 || now < u {
		return // the common case, read without the lock
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	u := cc.until.Load()
	if u == 0 || now < u || cc.stopped {
		return
	}
	cc.stopping.Store(true)
	if cc.until.Load() != u {
		// The lease ended (and perhaps another began) meanwhile: end did
		// not see stopping, and must not need to.
		cc.stopping.Store(false)
		return
	}
	cc.stop(t)
}

// empty reports whether s tracks no open connection.
func (s *connSet) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) == 0
}

// reap stops the connections whose lease outlived its bound.
func (s *connSet) reap(now time.Time) {
	mono := sinceEpoch(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cc := range s.conns {
		cc.expired(now, mono)
	}
}

// expire stops every connection of s, leased or not.
func (s *connSet) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, cc := range s.conns {
		cc.mu.Lock()
		cc.stop(now)
		cc.mu.Unlock()
	}
}

// reapEvery is how often the reaper looks for leases past their bound: a
// QueryTimeout is honoured to within it.
const reapEvery = 100 * time.Millisecond

// reaper is an Engines' one goroutine that enforces QueryTimeout. It starts
// with the first bounded lease and stops with Close.
type reaper struct {
	mu   sync.Mutex
	engs []*engine // those with a pool of their own, until retired and closed (see gone)

	once   sync.Once
	stopCh chan struct{}
	done   chan struct{}
}

// add makes the reaper watch the connections of the engines of engines
// that old does not have (all of them when old is nil), and forgets those
// it watched that are gone. Forgetting here as well as on each tick keeps
// the list as long as the engines configured, however many Applies replace
// engines, whether or not a QueryTimeout ever started the reaper.
func (r *reaper) add(engines map[string]*engine, old *registry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.engs = slices.DeleteFunc(r.engs, (*engine).gone)
	for name, eng := range engines {
		if eng.target != nil {
			continue // it has no connections of its own
		}
		if old != nil {
			if prev, ok := old.get(name); ok && prev == eng {
				continue // kept by Apply: watched already
			}
		}
		r.engs = append(r.engs, eng)
	}
}

func newReaper() *reaper {
	return &reaper{stopCh: make(chan struct{}), done: make(chan struct{})}
}

// start runs the reaper if it is not running yet.
func (r *reaper) start() {
	r.once.Do(func() {
		go func() {
			defer close(r.done)
			tick := time.NewTicker(reapEvery)
			defer tick.Stop()
			for {
				select {
				case <-r.stopCh:
					return
				case now := <-tick.C:
					r.mu.Lock()
					r.engs = slices.DeleteFunc(r.engs, (*engine).gone)
					for _, eng := range r.engs {
						eng.conns.reap(now)
					}
					r.mu.Unlock()
				}
			}
		}()
	})
}

// close stops the reaper and waits for it; one that never started stays
// stopped.
func (r *reaper) close() {
	r.once.Do(func() { close(r.done) })
	select {
	case <-r.stopCh:
	default:
		close(r.stopCh)
	}
	<-r.done
}
