package fiberdb

import (
	"context"
	"sync"
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
// starts and clears it when it ends, which costs a lock and no timer; the
// reaper reads it a few times a second.
type connClock struct {
	mu      sync.Mutex
	conn    *pgx.Conn
	until   int64 // UnixNano after which the lease's I/O must fail; 0: none
	stopped bool  // the reaper or Close set a past deadline on the socket
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

// start bounds the connection's I/O until until.
func (cc *connClock) start(until time.Time) {
	cc.mu.Lock()
	cc.until = until.UnixNano()
	cc.mu.Unlock()
}

// end lifts the bound. A connection the reaper stopped but pgconn did not
// close (no statement ran since) gets its deadline back.
func (cc *connClock) end() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.until = 0
	if cc.stopped && !cc.conn.PgConn().IsClosed() {
		_ = cc.conn.PgConn().Conn().SetDeadline(time.Time{}) //nolint:errcheck // fails only on a closed socket, which the release destroys
	}
	cc.stopped = false
}

// stop makes every read and write on the connection fail from now on, the
// statement in progress included: its holder gets a timeout error at once,
// and pgconn closes the connection.
func (cc *connClock) stop(now time.Time) {
	cc.stopped = true
	_ = cc.conn.PgConn().Conn().SetDeadline(now) //nolint:errcheck // fails only on a socket already closed
}

// reap stops the connections whose lease outlived its bound.
func (s *connSet) reap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cc := range s.conns {
		cc.mu.Lock()
		if cc.until != 0 && now.UnixNano() >= cc.until && !cc.stopped {
			cc.stop(now)
		}
		cc.mu.Unlock()
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
	sets []*connSet // every engine's, retired ones included: they empty as their pools close

	once   sync.Once
	stopCh chan struct{}
	done   chan struct{}
}

// add makes the reaper watch s.
func (r *reaper) add(s *connSet) {
	r.mu.Lock()
	r.sets = append(r.sets, s)
	r.mu.Unlock()
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
					for _, s := range r.sets {
						s.reap(now)
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
