package fiberdb

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// source is where a lease's connection comes from and goes back to. An
// engine's is its pool ([pooled]); while test isolation is active, a
// savepoint on the pinned connection takes its place ([*pinned], in
// isolation.go). An engine that sets search_path or settings, most often a
// tenant that shares another engine's pool, wraps either ([*tenantConn], in
// tenant.go): it hands the lease a DBTX whose every transaction, explicit
// or implicit, begins with set_config(name, value, true).
type source interface {
	// acquire takes a connection for a new lease: what its statements run
	// on, and the connection under it.
	acquire(ctx context.Context) (db DBTX, conn *pgxpool.Conn, err error)

	// release ends a lease: it rolls back txs, the transactions begun
	// through it (newest first), and gives the connection back. parent
	// supplies values, not cancellation: cleanup runs on its own bounded
	// context, so that it runs even for a request whose context is done.
	release(parent context.Context, conn *pgxpool.Conn, txs []pgx.Tx) error

	// renew replaces conn, which died before the lease's first statement
	// ran: it gives conn back (a dead connection is destroyed) and takes
	// another. Sources that cannot, answer errCannotRenew and keep conn.
	renew(ctx context.Context, conn *pgxpool.Conn) (DBTX, *pgxpool.Conn, error)

	// drains reports whether the connection outlives the lease, so that
	// results the holder leaves unread must be read to the end when the
	// lease ends; a pooled connection left busy is destroyed instead.
	drains() bool
}

// pooled is an engine's own pool as a source, within the connection budget
// when there is one. The pool set makes one per pool it opens, so that a
// lease stores a pointer: handing it out as a source allocates nothing.
type pooled struct {
	pool   *pgxpool.Pool
	budget *budget     // nil: no budget
	spared atomic.Bool // among the most used pools: the budget closes its idle connections last
}

func (p *pooled) acquire(ctx context.Context) (DBTX, *pgxpool.Conn, error) {
	var conn *pgxpool.Conn
	var err error
	if p.budget == nil {
		conn, err = p.pool.Acquire(ctx)
	} else {
		conn, err = await(ctx, p.budget, p, p.pool.Acquire)
	}
	if err != nil {
		return nil, nil, err
	}
	return conn, conn, nil
}

func (*pooled) drains() bool { return false }

// renew resets the pool before taking another connection: what ended
// conn's session (most often a server restart) ended its idle neighbours'
// too, and pgxpool checks only those idle for over a second.
func (p *pooled) renew(ctx context.Context, conn *pgxpool.Conn) (DBTX, *pgxpool.Conn, error) {
	conn.Release()
	p.pool.Reset()
	return p.acquire(ctx)
}

// idle tells acquires waiting for the budget that a connection of the pool
// went idle, or closed.
func (p *pooled) idle() {
	if p.budget != nil {
		p.budget.idle(p, p.spared.Load())
	}
}

// errCannotRenew: the source has no other connection to give.
var errCannotRenew = errors.New("connection cannot be renewed")

// release rolls back what the holder left open and releases the connection;
// pgxpool destroys one that is closed, busy with unread results, or still in
// a transaction. An acquire waiting for the budget then hears of it.
func (p *pooled) release(parent context.Context, conn *pgxpool.Conn, txs []pgx.Tx) error {
	defer p.idle()
	defer conn.Release()
	pg := conn.Conn().PgConn()
	if pg.IsClosed() || pg.IsBusy() {
		// Release destroys it: unread rows or a dead socket cannot be reused.
		return nil
	}
	if len(txs) == 0 && pg.TxStatus() == 'I' {
		return nil // the fast path: no timer, no round trip
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	err := rollbackAll(ctx, txs)
	if pg.TxStatus() != 'I' && !pg.IsClosed() {
		// A transaction opened with a plain "BEGIN" statement.
		if _, rbErr := conn.Exec(ctx, "ROLLBACK"); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
	}
	return err
}

// rollbackAll rolls back txs, newest first. pgx.ErrTxClosed means the
// holder already committed or rolled back, as it should have.
func rollbackAll(ctx context.Context, txs []pgx.Tx) error {
	var err error
	for i := len(txs) - 1; i >= 0; i-- {
		err = errors.Join(err, ignoreClosed(txs[i].Rollback(ctx)))
	}
	return err
}
