package fiberdb

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

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

var _ DBTX = (*handle)(nil)

// lock opens every call made through h, its rows, batches and transactions:
// it read-locks the lease, so that the lease cannot end during the call, and
// reports whether h still holds it. When it returns false the lock is not
// held; otherwise the caller must unlock.
func (h *handle) lock() bool {
	h.l.mu.RLock()
	if h.l.owner.Load() == h {
		return true
	}
	h.l.mu.RUnlock()
	return false
}

func (h *handle) unlock() { h.l.mu.RUnlock() }

// The statement methods below are shared by the lease and by the
// transactions begun through it (guardedTx): tx is nil for the lease itself.
// Each answers ErrConnReleased (a transaction's also matches
// pgx.ErrTxClosed) once the lease has ended. pgx's errors pass through
// unchanged, for errors.As(*pgconn.PgError) and errors.Is(pgx.ErrNoRows).

// on returns what to run a statement on; the caller holds the lock.
func (h *handle) on(tx pgx.Tx) DBTX {
	if tx != nil {
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
	if !h.lock() {
		return pgconn.CommandTag{}, released(tx)
	}
	defer h.unlock()
	if tx != nil || !h.l.fresh {
		return h.on(tx).Exec(ctx, sql, args...)
	}
	start := monotonic()
	tag, err := h.l.db.Exec(ctx, sql, args...)
	switch again, acqErr := h.l.retry(ctx, start, err); {
	case again:
		return h.l.db.Exec(ctx, sql, args...)
	case acqErr != nil:
		return pgconn.CommandTag{}, acqErr
	}
	return tag, err
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) query(tx pgx.Tx, ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !h.lock() {
		return nil, released(tx)
	}
	defer h.unlock()
	var start int64
	first := tx == nil && h.l.fresh && !h.l.drain
	if first {
		start = monotonic()
	}
	rows, err := h.on(tx).Query(ctx, sql, args...)
	if first {
		qerr := err
		if qerr == nil && h.l.conn.Conn().PgConn().IsClosed() {
			// pgx reports a failure of the statement's first reply on the
			// rows: the session ended.
			rows.Close()
			qerr = rows.Err()
		}
		switch again, acqErr := h.l.retry(ctx, start, qerr); {
		case again:
			rows, err = h.l.db.Query(ctx, sql, args...) //nolint:rowserrcheck // the caller owns the rows
		case acqErr != nil:
			return nil, acqErr
		}
	}
	if rows == nil {
		return nil, err
	}
	if h.l.drain {
		h.l.trackOpen(rows.Close)
	}
	return &guardedRows{h: h, rows: rows}, err
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) queryRow(tx pgx.Tx, ctx context.Context, sql string, args ...any) pgx.Row {
	if !h.lock() {
		return errRow{released(tx)}
	}
	defer h.unlock()
	var row pgx.Row
	switch {
	case tx == nil && h.l.fresh && !h.l.drain:
		start := monotonic()
		row = h.l.db.QueryRow(ctx, sql, args...)
		if !h.l.conn.Conn().PgConn().IsClosed() {
			h.l.fresh = false
			break
		}
		// The session ended: pgx reports it on the row.
		err := row.Scan()
		switch again, acqErr := h.l.retry(ctx, start, err); {
		case again:
			row = h.l.db.QueryRow(ctx, sql, args...)
		case acqErr != nil:
			row = errRow{acqErr}
		default:
			row = errRow{err}
		}
	case !h.l.drain:
		row = h.on(tx).QueryRow(ctx, sql, args...)
	default:
		// The connection must be idle for the next lease even if Scan is
		// never called, so the rows are tracked for draining.
		rows, _ := h.on(tx).Query(ctx, sql, args...) //nolint:errcheck,rowserrcheck // the error stays in rows, for Scan, as in pgx
		h.l.trackOpen(rows.Close)
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
	if !h.lock() {
		return pgx.FailedBatchResults(b, released(tx))
	}
	defer h.unlock()
	h.l.fresh = false
	var br pgx.BatchResults
	if tx == nil && h.l.drain && beginsTx(b) {
		br = beginBatch(ctx, h.l.db, b) // test isolation: h.l.db is a savepoint
	} else {
		br = h.on(tx).SendBatch(ctx, b)
	}
	if btx := br.Tx(); btx != nil {
		h.l.track(btx)
	}
	if h.l.drain {
		// Draining only: the holder saw the batch's error, or chose not to.
		h.l.trackOpen(func() { _ = br.Close() })
	}
	return &guardedBatch{h: h, br: br}
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) copyFrom(tx pgx.Tx, ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if !h.lock() {
		return 0, released(tx)
	}
	defer h.unlock()
	h.l.fresh = false
	return h.on(tx).CopyFrom(ctx, t, cols, src)
}

//nolint:revive // context-as-argument: tx leads, as for every helper here
func (h *handle) begin(tx pgx.Tx, ctx context.Context) (pgx.Tx, error) {
	if !h.lock() {
		return nil, released(tx)
	}
	defer h.unlock()
	var start int64
	first := tx == nil && h.l.fresh
	if first {
		start = monotonic()
	}
	inner, err := h.on(tx).Begin(ctx)
	if first {
		switch again, acqErr := h.l.retry(ctx, start, err); {
		case again:
			inner, err = h.l.db.Begin(ctx)
		case acqErr != nil:
			err = acqErr
		}
	}
	if err != nil {
		return nil, err
	}
	h.l.track(inner)
	return &guardedTx{h: h, tx: inner}, nil
}

// released is the error for a statement on a lease that has ended: a
// transaction's also matches pgx.ErrTxClosed.
func released(tx pgx.Tx) error {
	if tx != nil {
		return errTxReleased
	}
	return ErrConnReleased
}
