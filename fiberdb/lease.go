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

// lease is one engine's connection for one holder: a request, or one
// Engines.Acquire. A request's lease lives in its state, which is reused by
// later requests, so the holder reaches it only through a handle. The lock
// makes end wait for a call in progress on another goroutine.
type lease struct {
	engine *engine

	mu    sync.RWMutex
	owner atomic.Pointer[handle] // the holder's handle; nil once ended
	db    DBTX                   // what statements run on, while owned
	conn  *pgxpool.Conn          // set outside test isolation
	pin   *pinned                // set inside test isolation; db is then a savepoint

	tracked sync.Mutex // guards txs and open among holders of the read lock
	txs     []pgx.Tx   // transactions begun through the lease, for rollback
	open    []func()   // under test isolation, drains results left unread
}

// handle is a lease as its holder sees it, and what Conn hands out. Each
// holder gets a new one, never reused, so a handle (or a row, rows, batch or
// transaction made through it) kept past its request can tell that the lease
// is no longer its own: its methods return ErrConnReleased rather than touch
// a connection that now serves someone else.
type handle struct {
	l *lease

	// The first row read through the handle lives here, so that a request
	// running one QueryRow allocates nothing more for it.
	row0      guardedRow
	row0Taken atomic.Bool
}

// live reports whether h still holds its lease. The caller holds h.l.mu
// for reading, so that the lease cannot end during the call that follows.
func (h *handle) live() bool { return h.l.owner.Load() == h }

var _ DBTX = (*handle)(nil)

// acquireLease takes a connection from eng under ctx, or a savepoint on the
// pinned connection while test isolation is active.
func (eng *engine) acquireLease(ctx context.Context) (*handle, error) {
	c, err := eng.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return c.into(new(lease)), nil
}

// acquired is a connection (or savepoint) not yet installed in a lease.
type acquired struct {
	eng  *engine
	db   DBTX
	conn *pgxpool.Conn
	pin  *pinned
}

// acquire takes what acquireLease takes, without a lease to put it in.
func (eng *engine) acquire(ctx context.Context) (acquired, error) {
	if pin := eng.iso.get(); pin != nil {
		sp, err := pin.begin(ctx)
		if err != nil {
			return acquired{}, &AcquireError{Engine: eng.name, Err: err}
		}
		return acquired{eng: eng, db: sp, pin: pin}, nil
	}
	conn, err := eng.pool.Acquire(ctx)
	if err != nil {
		return acquired{}, &AcquireError{Engine: eng.name, Err: err}
	}
	return acquired{eng: eng, db: conn, conn: conn}, nil
}

// into installs c in l, a lease that has ended or was never used, and
// returns its new holder's handle. Handles of earlier holders may still read
// l.owner, so it is set last: they never see l's other fields change.
func (c acquired) into(l *lease) *handle {
	l.engine, l.db, l.conn, l.pin = c.eng, c.db, c.conn, c.pin
	h := &handle{l: l}
	l.owner.Store(h)
	return h
}

// end rolls back what the holder left open and gives the connection back.
// It is idempotent. parent supplies values (not cancellation) to the
// rollback, which runs on its own bounded context.
func (l *lease) end(parent context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owner.Load() == nil {
		return nil
	}
	// track and trackOpen run only under the read lock, so they cannot run
	// now: l.tracked is not needed.
	txs, open := l.txs, l.open
	l.txs, l.open, l.db = nil, nil, nil
	l.owner.Store(nil)

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

// target returns what to run a statement on, or nil once h no longer holds
// the lease. The caller holds h.l.mu for reading.
func (h *handle) target(tx pgx.Tx) DBTX {
	switch {
	case !h.live():
		return nil
	case tx != nil:
		return tx
	}
	return h.l.db
}

// Exec runs sql on the lease's connection.
func (h *handle) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return h.exec(nil, ctx, sql, args...)
}

// Query runs sql on the lease's connection. The rows must be closed before
// the request ends; rows left open make fiberdb destroy the connection, and
// reading them afterwards (from a goroutine or a body stream) stops with
// [ErrConnReleased]. The same holds for QueryRow's row and SendBatch's results.
func (h *handle) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return h.query(nil, ctx, sql, args...) //nolint:rowserrcheck // the caller owns the rows
}

// QueryRow runs sql on the lease's connection.
func (h *handle) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return h.queryRow(nil, ctx, sql, args...)
}

// SendBatch sends b on the lease's connection. A transaction the batch
// begins (Batch.BeginTx) is rolled back, like any other, if it is still open
// when the request ends.
func (h *handle) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return h.sendBatch(nil, ctx, b)
}

// CopyFrom runs COPY FROM on the lease's connection.
func (h *handle) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return h.copyFrom(nil, ctx, t, cols, src)
}

// Begin starts a transaction (a savepoint under test isolation). Commit it;
// whatever is still open when the request ends is rolled back. The
// transaction answers [ErrConnReleased] (which also matches pgx.ErrTxClosed)
// once the request has ended, and never hands out its connection.
func (h *handle) Begin(ctx context.Context) (pgx.Tx, error) {
	return h.begin(nil, ctx)
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) exec(tx pgx.Tx, ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := h.target(tx)
	if db == nil {
		return pgconn.CommandTag{}, released(tx)
	}
	return db.Exec(ctx, sql, args...) //nolint:wrapcheck // pgx errors pass through unchanged for errors.As(*pgconn.PgError)
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) query(tx pgx.Tx, ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := h.target(tx)
	if db == nil {
		return nil, released(tx)
	}
	rows, err := db.Query(ctx, sql, args...)
	if rows == nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	return h.guard(rows), err //nolint:rowserrcheck // the caller owns the rows
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) queryRow(tx pgx.Tx, ctx context.Context, sql string, args ...any) pgx.Row {
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := h.target(tx)
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
	if h.row0Taken.CompareAndSwap(false, true) {
		h.row0 = guardedRow{h: h, row: row}
		return &h.row0
	}
	return &guardedRow{h: h, row: row}
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) sendBatch(tx pgx.Tx, ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := h.target(tx)
	if db == nil {
		return pgx.FailedBatchResults(b, released(tx))
	}
	br := db.SendBatch(ctx, b)
	if btx := br.Tx(); btx != nil {
		l.track(btx)
	}
	gb := &guardedBatch{h: h, br: br}
	if l.pin != nil {
		// Draining only: the holder saw the batch's error, or chose not to.
		l.trackOpen(func() { _ = br.Close() })
	}
	return gb
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) copyFrom(tx pgx.Tx, ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := h.target(tx)
	if db == nil {
		return 0, released(tx)
	}
	return db.CopyFrom(ctx, t, cols, src) //nolint:wrapcheck // pgx errors pass through unchanged
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) begin(tx pgx.Tx, ctx context.Context) (pgx.Tx, error) {
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	db := h.target(tx)
	if db == nil {
		return nil, released(tx)
	}
	inner, err := db.Begin(ctx)
	if err != nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	l.track(inner)
	return &guardedTx{h: h, tx: inner}, nil
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

// guard wraps rows read through h.
func (h *handle) guard(rows pgx.Rows) *guardedRows {
	if h.l.pin != nil {
		h.l.trackOpen(rows.Close)
	}
	return &guardedRows{h: h, rows: rows}
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
