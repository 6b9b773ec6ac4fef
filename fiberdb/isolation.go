package fiberdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var errIsolationEnded = errors.New("fiberdb: test isolation ended")

// TestIsolation makes everything that follows undoable, for tests: it pins
// one connection per engine inside an outer transaction, and until rollback
// is called, [Conn], [ConnFor] and [Engines.Acquire] hand out a savepoint on
// it. A handler's Begin becomes a nested savepoint and its Commit releases
// that savepoint, so later requests in the same test see committed work;
// work a request left uncommitted is rolled back when it ends, as always.
// Statements a request runs outside any transaction stay, as autocommit
// would keep them, unless one of its statements failed: then the request's
// work is discarded, because a failed statement aborts the savepoint.
//
// It needs no app or request: call it at the start of a test. Requests on one
// engine share the pinned connection and are served one at a time (a second
// waits up to AcquireTimeout). Code that takes a pool from [Engines.Engine]
// directly bypasses isolation.
//
// rollback undoes everything, releases the pinned connections and ends
// isolation; it is safe to call more than once. It returns
// [ErrIsolationActive] if isolation is already active.
func (e *Engines) TestIsolation(ctx context.Context) (rollback func() error, err error) {
	pins := make(map[*engine]*pinned, len(e.engines))
	undo := func() error {
		var errs error
		for eng, pin := range pins {
			eng.iso.p.CompareAndSwap(pin, nil)
			errs = errors.Join(errs, pin.close(context.WithoutCancel(ctx)))
		}
		return errs
	}
	for _, name := range e.names {
		eng := e.engines[name]
		pin, err := pinEngine(ctx, eng.pool)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("test isolation: engine %q: %w", name, err), undo())
		}
		pins[eng] = pin
		if !eng.iso.p.CompareAndSwap(nil, pin) {
			return nil, errors.Join(ErrIsolationActive, undo())
		}
	}
	var (
		once   sync.Once
		undone error
	)
	return func() error {
		once.Do(func() { undone = undo() })
		return undone
	}, nil
}

// Acquire returns a connection to the named engine for code that runs
// outside a request: jobs, CLIs and tests (Flask-SQLAlchemy-Lite's
// sessionmaker). The caller must call release, which rolls back a
// transaction left open and returns the connection; it is idempotent, and
// the connection answers [ErrConnReleased] afterwards. Under
// [Engines.TestIsolation] it is a savepoint on the pinned connection, like a
// request's. ctx bounds the wait for a connection.
func (e *Engines) Acquire(ctx context.Context, name string) (db DBTX, release func() error, err error) {
	eng, err := e.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	h, err := eng.acquireLease(ctx)
	if err != nil {
		return nil, nil, err
	}
	return h, func() error { return h.l.end(ctx) }, nil
}

// isoSlot holds an engine's pinned connection while isolation is active.
type isoSlot struct{ p atomic.Pointer[pinned] }

func (s *isoSlot) get() *pinned { return s.p.Load() }

func (s *isoSlot) end() {
	if pin := s.p.Swap(nil); pin != nil {
		// Close has no caller to report to, and closing the pool closes the
		// connection whatever the rollback did.
		_ = pin.close(context.Background())
	}
}

// pinned is one engine's connection held for the whole isolated test. sem
// lets one lease at a time use it: a pgx connection is not safe for
// concurrent use.
type pinned struct {
	conn    *pgxpool.Conn
	tx      pgx.Tx
	sem     chan struct{}
	sp      pgx.Tx // the holding lease's savepoint; guarded by sem
	closed  bool   // guarded by sem
	closing atomic.Bool
}

func pinEngine(ctx context.Context, pool *pgxpool.Pool) (*pinned, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &pinned{conn: conn, tx: tx, sem: make(chan struct{}, 1)}, nil
}

// begin waits for the pinned connection and opens the lease's savepoint.
func (p *pinned) begin(ctx context.Context) (pgx.Tx, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for pinned connection: %w", context.Cause(ctx))
	}
	if p.closed {
		<-p.sem
		return nil, errIsolationEnded
	}
	sp, err := p.tx.Begin(ctx)
	if err != nil {
		<-p.sem
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	p.sp = sp
	return sp, nil
}

// finish ends a lease: its own transactions roll back, then its savepoint is
// released (kept) or, if a statement failed in it, rolled back. If isolation
// ended while the lease held the pinned connection, finish closes it.
func (p *pinned) finish(parent context.Context, txs []pgx.Tx) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	defer func() { <-p.sem }()
	sp := p.sp
	p.sp = nil
	err := rollbackAll(ctx, txs)
	if p.conn.Conn().PgConn().TxStatus() == 'E' {
		err = errors.Join(err, sp.Rollback(ctx))
	} else {
		err = errors.Join(err, sp.Commit(ctx))
	}
	if p.closing.Load() {
		err = errors.Join(err, p.closeLocked(ctx))
	}
	return err
}

// close rolls the outer transaction back and releases the connection, once
// any lease in progress has finished. If one is still in progress after
// cleanupTimeout, close returns an error and leaves the closing to that
// lease's end: the connection is released either way.
func (p *pinned) close(parent context.Context) error {
	p.closing.Store(true)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return errors.New("test isolation: a request or Acquire still holds the pinned connection; it is rolled back when that ends")
	}
	defer func() { <-p.sem }()
	return p.closeLocked(ctx)
}

// closeLocked does close's work; the caller holds sem.
func (p *pinned) closeLocked(ctx context.Context) error {
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.tx.Rollback(ctx)
	p.conn.Release()
	if err != nil {
		return fmt.Errorf("test isolation: rollback: %w", err)
	}
	return nil
}
