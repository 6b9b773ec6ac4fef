package fiberdb

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// cleanupTimeout bounds the rollback fiberdb runs for a transaction a
// handler left open; a server that does not answer in time loses the
// connection instead (pgxpool destroys a connection released mid-transaction).
const cleanupTimeout = 5 * time.Second

// lease is one engine's connection for one holder: a request, or one
// Engines.Acquire. A request's lease lives in its state, which is reused by
// later requests, so the holder reaches it only through a [handle]. The lock
// makes end wait for a call in progress on another goroutine: statements
// hold it for reading, end for writing.
type lease struct {
	engine *engine

	mu     sync.RWMutex
	owner  atomic.Pointer[handle] // the holder's handle; nil once ended
	src    source                 // where the connection came from and goes back to
	db     DBTX                   // what statements run on, while owned
	conn   *pgxpool.Conn          // the connection under db
	drain  bool                   // src.drains(): unread results are read at the end
	clock  *connClock             // conn's clock while limit bounds the lease
	limitD time.Duration          // limit's bound, for a renewed connection
	fresh  bool                   // no statement has run yet: the first may be retried
	wait   time.Duration          // bounds renew's acquire; 0: cleanupTimeout

	tracked sync.Mutex // guards txs and open among holders of the read lock
	txs     []pgx.Tx   // transactions begun through the lease, for rollback
	open    []func()   // when drain is set: reads results left unread
}

// into installs c in l, a lease that has ended or was never used, and
// returns its new holder's handle. Handles of earlier holders may still read
// l.owner, so it is set last: they never see l's other fields change.
func (c acquired) into(l *lease) *handle {
	l.engine, l.src, l.db, l.conn, l.drain = c.eng, c.src, c.db, c.conn, c.src.drains()
	l.fresh, l.wait, l.limitD = true, 0, 0
	h := &handle{l: l}
	l.owner.Store(h)
	return h
}

// end rolls back what the holder left open and gives the connection back to
// its source. It is idempotent. parent supplies values (not cancellation) to
// the rollback, which runs on its own bounded context.
func (l *lease) end(parent context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owner.Load() == nil {
		return nil
	}
	// track and trackOpen run only under the read lock, so they cannot run
	// now: l.tracked is not needed.
	txs, open, conn := l.txs, l.open, l.conn
	l.txs, l.open, l.db, l.conn = nil, nil, nil, nil
	l.owner.Store(nil)
	for _, drain := range open {
		drain() // the source keeps the connection: it must be idle for the next lease
	}
	defer l.engine.unhold() // what engine.acquire took for this lease
	if conn == nil {
		return nil // retry gave the dead connection back and found no other
	}
	if l.clock != nil {
		// The bound was this lease's; cleanup runs under its own context.
		l.clock.end()
		l.clock = nil
	}
	return l.src.release(parent, conn, txs)
}

// limit bounds the lease's I/O: once d has passed (to within reapEvery),
// the engines' reaper sets a past deadline on the connection's socket, so
// that every read and write fails, the statement in progress included, and
// pgconn closes it. That stops a statement without a round trip, even on a
// server that stopped answering. The lease itself only notes the time: no
// timer per request. d ≤ 0: no bound.
func (l *lease) limit(d time.Duration) {
	l.limitD = d
	if d <= 0 || l.conn == nil {
		return
	}
	if cc := clockOf(l.conn); cc != nil {
		l.clock = cc
		cc.start(monotonic() + int64(d))
		l.engine.set.reaper.start()
	}
}

// track records a transaction begun through the lease, for the rollback at
// its end. The caller holds l.mu for reading, so several goroutines may race
// here; tracked has its own lock.
func (l *lease) track(tx pgx.Tx) {
	l.tracked.Lock()
	l.txs = append(l.txs, tx)
	l.tracked.Unlock()
}

// trackOpen records how to drain results a holder may leave unread, when
// the source keeps the connection after the lease (l.drain); a pooled
// connection left busy is simply destroyed.
func (l *lease) trackOpen(drain func()) {
	l.tracked.Lock()
	l.open = append(l.open, drain)
	l.tracked.Unlock()
}

// sessionEndedWithin is how fast a statement must fail with a
// session-ending error for fiberdb to conclude that the server ended the
// session before the statement reached it: the error was already waiting on
// the socket (the server restarted, or an administrator or
// idle_session_timeout ended an idle session), so it came back without a
// round trip. A statement the server was running when its session was
// terminated takes longer, and is never run again. The window is wide
// enough for a busy client's scheduling (2 ms was not, under -race on two
// loaded cores): a statement killed sooner than this after it was sent ran
// in a transaction the server aborted, so running it again loses nothing.
const sessionEndedWithin = 25 * time.Millisecond

// retry decides, after the lease's first statement, which began at start (a
// [monotonic] time) and failed with err, what to do about a connection that
// died. When the session ended (or nothing was sent: pgconn.SafeToRetry),
// the dead connection is replaced: the pool is reset, since a server restart
// leaves every idle connection as dead as this one, and another connection
// is taken. If none comes (the server is down), the statement fails with
// acqErr, the AcquireError (a 503), as does every later one of the lease:
// nothing ran twice. If one comes, the statement runs again (again) only if
// nothing of it can have run: nothing was sent, or the error came back at
// once (see sessionEndedWithin).
func (l *lease) retry(ctx context.Context, start int64, err error) (again bool, acqErr error) {
	l.fresh = false
	var rerun bool
	switch {
	case err == nil:
		return false, nil
	case pgconn.SafeToRetry(err):
		rerun = true
	case sessionEnded(err):
		rerun = monotonic()-start < int64(sessionEndedWithin)
	default:
		return false, nil
	}
	wait := l.wait
	if wait <= 0 {
		wait = cleanupTimeout
	}
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if l.src.drains() {
		return false, nil // the pinned connection cannot be replaced
	}
	if l.clock != nil {
		l.clock.end()
		l.clock = nil
	}
	db, conn, rerr := l.src.renew(actx, l.conn)
	if errors.Is(rerr, errCannotRenew) {
		return false, nil
	}
	// The old connection went back to its source either way.
	l.db, l.conn = db, conn
	if rerr != nil {
		aerr := &AcquireError{Engine: l.engine.name, Err: rerr}
		l.db = failedDB{aerr}
		return false, aerr
	}
	l.limit(l.limitD)
	return rerun, nil
}
