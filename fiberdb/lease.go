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

// DBTX is what [Conn] and [ConnFor] hand out. *pgxpool.Conn and pgx.Tx
// satisfy it too, so code written against DBTX runs on a request connection,
// a pooled connection or inside a transaction alike.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// cleanupTimeout bounds the rollback fiberdb runs for a transaction a
// handler left open; a server that does not answer in time loses the
// connection instead (pgxpool destroys a connection released mid-transaction).
const cleanupTimeout = 5 * time.Second

// lease is one engine's connection for one request (or one Engines.Acquire).
// Its methods are safe to call after the lease ended: they return
// ErrConnReleased rather than touch a connection that now serves someone
// else. The lock makes end wait for a call in progress on another goroutine.
type lease struct {
	engine *engine

	mu   sync.RWMutex
	db   DBTX          // nil once ended
	conn *pgxpool.Conn // set outside test isolation
	pin  *pinned       // set inside test isolation; db is then a savepoint

	tracked sync.Mutex // guards txs and open among holders of the read lock
	txs     []pgx.Tx   // transactions begun through the lease, for rollback
	open    []func()   // under test isolation, drains results left unread

	// The first row and the first rows read through the lease live here, so
	// that a request running one query allocates nothing for its result.
	// Never reused: a result kept past the request still sees this lease.
	row0       guardedRow
	rows0      guardedRows
	row0Taken  atomic.Bool
	rows0Taken atomic.Bool
}

var _ DBTX = (*lease)(nil)

// acquireLease takes a connection from eng under ctx, or a savepoint on the
// pinned connection while test isolation is active.
func (eng *engine) acquireLease(ctx context.Context) (*lease, error) {
	l := new(lease)
	if err := eng.acquireInto(ctx, l); err != nil {
		return nil, err
	}
	return l, nil
}

// acquireInto is acquireLease into l, a zero lease nobody else can see yet.
// On error l stays zero.
func (eng *engine) acquireInto(ctx context.Context, l *lease) error {
	if pin := eng.iso.get(); pin != nil {
		sp, err := pin.begin(ctx)
		if err != nil {
			return &AcquireError{Engine: eng.name, Err: err}
		}
		l.engine, l.db, l.pin = eng, sp, pin
		return nil
	}
	conn, err := eng.pool.Acquire(ctx)
	if err != nil {
		return &AcquireError{Engine: eng.name, Err: err}
	}
	l.engine, l.db, l.conn = eng, conn, conn
	return nil
}

// end rolls back what the holder left open and gives the connection back.
// It is idempotent. parent supplies values (not cancellation) to the
// rollback, which runs on its own bounded context.
func (l *lease) end(parent context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db == nil {
		return nil
	}
	// track and trackOpen run only under the read lock, so they cannot run
	// now: l.tracked is not needed.
	txs, open := l.txs, l.open
	l.txs, l.open, l.db = nil, nil, nil

	if l.pin != nil {
		for _, drain := range open {
			drain() // the next lease needs the pinned connection idle
		}
		return l.pin.finish(parent, txs)
	}
	conn := l.conn
	l.conn = nil
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
// handler already committed or rolled back, as it should have.
func rollbackAll(ctx context.Context, txs []pgx.Tx) error {
	var err error
	for i := len(txs) - 1; i >= 0; i-- {
		if rbErr := txs[i].Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, rbErr)
		}
	}
	return err
}

// The statement methods below are shared by the lease and by the
// transactions begun through it (guardedTx): tx is nil for the lease itself.
// Each holds the lease's read lock for the call, so that the release, which
// takes the write lock, waits for it, and each answers ErrConnReleased once
// the lease has ended.

// target returns what to run a statement on, or nil once the lease has
// ended. The caller holds l.mu for reading.
func (l *lease) target(tx pgx.Tx) DBTX {
	switch {
	case l.db == nil:
		return nil
	case tx != nil:
		return tx
	}
	return l.db
}

// Exec runs sql on the lease's connection.
func (l *lease) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return l.exec(nil, ctx, sql, args...)
}

// Query runs sql on the lease's connection. The rows must be closed before
// the request ends; rows left open make fiberdb destroy the connection, and
// reading them afterwards (from a goroutine or a body stream) stops with
// [ErrConnReleased]. The same holds for QueryRow's row and SendBatch's results.
func (l *lease) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return l.query(nil, ctx, sql, args...) //nolint:rowserrcheck // the caller owns the rows
}

// QueryRow runs sql on the lease's connection.
func (l *lease) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return l.queryRow(nil, ctx, sql, args...)
}

// SendBatch sends b on the lease's connection. A transaction the batch
// begins (Batch.BeginTx) is rolled back, like any other, if it is still open
// when the request ends.
func (l *lease) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return l.sendBatch(nil, ctx, b)
}

// CopyFrom runs COPY FROM on the lease's connection.
func (l *lease) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return l.copyFrom(nil, ctx, t, cols, src)
}

// Begin starts a transaction (a savepoint under test isolation). Commit it;
// whatever is still open when the request ends is rolled back. The
// transaction answers [ErrConnReleased] (which also matches pgx.ErrTxClosed)
// once the request has ended, and never hands out its connection.
func (l *lease) Begin(ctx context.Context) (pgx.Tx, error) {
	return l.begin(nil, ctx)
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (l *lease) exec(tx pgx.Tx, ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := l.target(tx)
	if db == nil {
		return pgconn.CommandTag{}, released(tx)
	}
	return db.Exec(ctx, sql, args...) //nolint:wrapcheck // pgx errors pass through unchanged for errors.As(*pgconn.PgError)
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (l *lease) query(tx pgx.Tx, ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := l.target(tx)
	if db == nil {
		return nil, released(tx)
	}
	rows, err := db.Query(ctx, sql, args...)
	if rows == nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	return l.guard(rows), err //nolint:rowserrcheck // the caller owns the rows
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (l *lease) queryRow(tx pgx.Tx, ctx context.Context, sql string, args ...any) pgx.Row {
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := l.target(tx)
	if db == nil {
		return errRow{released(tx)}
	}
	var row pgx.Row
	if l.pin == nil {
		row = db.QueryRow(ctx, sql, args...)
	} else {
		// The pinned connection must be idle for the next lease even if Scan
		// is never called, so the rows are tracked for draining.
		rows, _ := db.Query(ctx, sql, args...) //nolint:errcheck,rowserrcheck // the error stays in rows, for Scan, as in pgx
		l.trackOpen(rows.Close)
		row = rowsRow{rows}
	}
	if l.row0Taken.CompareAndSwap(false, true) {
		l.row0 = guardedRow{l: l, row: row}
		return &l.row0
	}
	return &guardedRow{l: l, row: row}
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (l *lease) sendBatch(tx pgx.Tx, ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := l.target(tx)
	if db == nil {
		return pgx.FailedBatchResults(b, released(tx))
	}
	br := db.SendBatch(ctx, b)
	if btx := br.Tx(); btx != nil {
		l.track(btx)
	}
	gb := &guardedBatch{l: l, br: br}
	if l.pin != nil {
		// Draining only: the holder saw the batch's error, or chose not to.
		l.trackOpen(func() { _ = br.Close() })
	}
	return gb
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (l *lease) copyFrom(tx pgx.Tx, ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := l.target(tx)
	if db == nil {
		return 0, released(tx)
	}
	return db.CopyFrom(ctx, t, cols, src) //nolint:wrapcheck // pgx errors pass through unchanged
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (l *lease) begin(tx pgx.Tx, ctx context.Context) (pgx.Tx, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := l.target(tx)
	if db == nil {
		return nil, released(tx)
	}
	inner, err := db.Begin(ctx)
	if err != nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	l.track(inner)
	return &guardedTx{l: l, tx: inner}, nil
}

// track records a transaction begun through the lease, for the rollback at
// its end. The caller holds l.mu for reading, so several goroutines may race
// here; tracked has its own lock.
func (l *lease) track(tx pgx.Tx) {
	l.tracked.Lock()
	l.txs = append(l.txs, tx)
	l.tracked.Unlock()
}

// trackOpen records how to drain results a holder may leave unread. Only
// under test isolation: the pinned connection must be usable by the next
// lease, where a pooled connection is simply destroyed.
func (l *lease) trackOpen(drain func()) {
	l.tracked.Lock()
	l.open = append(l.open, drain)
	l.tracked.Unlock()
}

// guard wraps rows read through the lease.
func (l *lease) guard(rows pgx.Rows) *guardedRows {
	if l.pin != nil {
		l.trackOpen(rows.Close)
	}
	if l.rows0Taken.CompareAndSwap(false, true) {
		l.rows0 = guardedRows{l: l, rows: rows}
		return &l.rows0
	}
	return &guardedRows{l: l, rows: rows}
}

// released is the error for a statement on a lease that has ended: a
// transaction's also matches pgx.ErrTxClosed.
func released(tx pgx.Tx) error {
	if tx != nil {
		return errTxReleased
	}
	return ErrConnReleased
}

// errRow is QueryRow's answer on a lease that has ended.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
