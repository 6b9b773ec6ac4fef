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

// How test isolation works, all of it in this file:
//
//   - [Engines.TestIsolation] calls isolate, which takes one connection from
//     each engine's pool, begins the outer transaction on it (pinEngine), and
//     installs it in the engine's isoSlot.
//   - While the slot is set, the engine's source (engine.source) is the
//     *pinned instead of its pool: every lease, a request's or an
//     Engines.Acquire's, waits for the pinned connection (one holder at a
//     time, through sem) and runs inside a savepoint on it (pinned.acquire).
//     A Begin on the lease nests a savepoint, and so does a batch that
//     begins its own transaction (Batch.BeginTx, which pgx refuses inside
//     one: see beginBatch).
//   - The pinned connection outlives each lease, so results the holder left
//     unread are drained (pinned.drains), and pinned.release rolls back the
//     lease's open transactions, then keeps its savepoint, or rolls it back
//     if a statement failed in it.
//   - rollback (or Engines.Close) clears the slot and rolls the outer
//     transaction back (pinned.close): nothing the test did remains.

var errIsolationEnded = errors.New("fiberdb: test isolation ended")

// isolation is an Engines' test isolation switch: at most one
// TestIsolation is active at a time.
type isolation struct{ active atomic.Bool }

// isolate is [Engines.TestIsolation]: it pins every engine's connection
// and installs it as the engine's source. A second call while one is active
// returns ErrIsolationActive at once, before it touches any pool (pinning
// would otherwise wait for a connection the first call holds).
func isolate(ctx context.Context, e *Engines) (rollback func() error, err error) {
	if !e.iso.active.CompareAndSwap(false, true) {
		return nil, ErrIsolationActive
	}
	reg := e.cur.Load()
	pins := make(map[*engine]*pinned, len(reg.names))
	var held []*engine // each keeps its pool open while pinned
	setIsoPreludes(reg, nil)
	undo := func() error {
		for _, r := range []*registry{reg, e.cur.Load()} { // and the engines Applies added
			for _, eng := range r.byName {
				eng.isoPre.Store(nil)
			}
		}
		var errs error
		for eng, pin := range pins {
			eng.iso.p.CompareAndSwap(pin, nil)
			errs = errors.Join(errs, pin.close(context.WithoutCancel(ctx)))
		}
		for _, eng := range held {
			eng.unref()
		}
		e.iso.active.Store(false)
		return errs
	}
	for _, name := range reg.names {
		eng := reg.byName[name]
		if eng.target != nil {
			continue // it uses its target's pinned connection
		}
		eng.refs.Add(1)
		held = append(held, eng)
		pin, err := pinEngine(ctx, e, eng)
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

// setIsoPreludes prepares the engines of reg for test isolation, when it
// starts and after each Apply while it lasts. There, a
// lease's set_config lasts until the outer transaction ends (a savepoint
// released keeps it), so it would reach the next lease on the pinned
// connection: every lease on a pool sets every parameter that the pool
// engine or any tenant sharing its pool sets, to its own value or to the
// default.
//
// After an Apply, prev is the registry it replaced: the parameters that its
// engines reset stay reset, since what an engine the Apply removed (or
// changed) set remains on the pinned connection until the isolation ends.
func setIsoPreludes(reg, prev *registry) {
	used := map[*engine][]string{} // by pool engine, the parameters it and its tenants set
	if prev != nil {
		for _, eng := range prev.byName {
			if iso := eng.isoPre.Load(); iso != nil {
				used[eng.poolEngine()] = append(used[eng.poolEngine()], iso.names...)
			}
		}
	}
	for _, name := range reg.names {
		if eng := reg.byName[name]; eng.pre != nil {
			pe := eng.poolEngine()
			used[pe] = append(used[pe], eng.pre.names...)
		}
	}
	for _, eng := range reg.byName {
		names := used[eng.poolEngine()]
		if len(names) == 0 {
			eng.isoPre.Store(nil)
			continue
		}
		eng.isoPre.Store(newPrelude(eng.shares.searchPath, eng.shares.settings, names))
	}
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

// pinned is one engine's connection held for the whole isolated test, and
// the engine's source while isolation is active: each lease is a savepoint
// on it. sem lets one lease at a time use it: a pgx connection is not safe
// for concurrent use.
type pinned struct {
	conn    *pgxpool.Conn
	tx      pgx.Tx
	sem     chan struct{}
	sp      pgx.Tx // the holding lease's savepoint; guarded by sem
	closed  bool   // guarded by sem
	closing atomic.Bool
}

func pinEngine(ctx context.Context, e *Engines, eng *engine) (*pinned, error) {
	p, err := e.pools.open(ctx, eng)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	_, conn, err := p.acquire(ctx)
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

var _ source = (*pinned)(nil)

// acquire waits for the pinned connection and opens the lease's savepoint.
func (p *pinned) acquire(ctx context.Context) (DBTX, *pgxpool.Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("wait for pinned connection: %w", context.Cause(ctx))
	}
	if p.closed {
		<-p.sem
		return nil, nil, errIsolationEnded
	}
	sp, err := p.tx.Begin(ctx)
	if err != nil {
		<-p.sem
		return nil, nil, fmt.Errorf("savepoint: %w", err)
	}
	p.sp = sp
	return sp, p.conn, nil
}

// drains: the pinned connection serves the next lease, so results left
// unread must be read.
func (*pinned) drains() bool { return true }

// renew: the pinned connection is the only one; if it died, so did the
// isolated test.
func (*pinned) renew(context.Context, *pgxpool.Conn) (DBTX, *pgxpool.Conn, error) {
	return nil, nil, errCannotRenew
}

// release ends a lease: its own transactions roll back, then its savepoint
// is released (kept) or, if a statement failed in it, rolled back. If
// isolation ended while the lease held the pinned connection, release closes
// it.
func (p *pinned) release(parent context.Context, _ *pgxpool.Conn, txs []pgx.Tx) error {
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

// beginBatch sends b, a batch that begins its own transaction
// (Batch.BeginTx), on db, a lease's savepoint on the pinned connection,
// where pgx refuses such a batch: a nested savepoint stands in for b's
// transaction, and an empty select for its BEGIN, so that the holder reads
// as many results as it queued and commits or rolls back what Tx returns.
// The isolation level and access mode b asked for cannot apply inside the
// outer transaction.
func beginBatch(ctx context.Context, db DBTX, b *pgx.Batch) pgx.BatchResults {
	tx, err := db.Begin(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	rest := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(b.QueuedQueries))}
	rest.Queue("select")
	rest.QueuedQueries = append(rest.QueuedQueries, b.QueuedQueries[1:]...)
	return &nestedBatch{BatchResults: tx.SendBatch(ctx, rest), tx: tx}
}

// beginsTx reports whether b begins its own transaction (Batch.BeginTx):
// pgx tells only through the results it makes for b.
func beginsTx(b *pgx.Batch) bool { return pgx.FailedBatchResults(b, nil).Tx() != nil }

// nestedBatch is beginBatch's results: Tx is the savepoint that stands in
// for the batch's transaction.
type nestedBatch struct {
	pgx.BatchResults
	tx pgx.Tx
}

func (b *nestedBatch) Tx() pgx.Tx { return b.tx }
