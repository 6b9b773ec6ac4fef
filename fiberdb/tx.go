package fiberdb

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errTxReleased is what a transaction answers once its request has ended:
// it matches ErrConnReleased, and pgx.ErrTxClosed, so that the usual
// deferred Rollback (which ignores ErrTxClosed) stays quiet.
var errTxReleased = fmt.Errorf("%w: %w", ErrConnReleased, pgx.ErrTxClosed)

// guardedTx is a transaction begun through a lease. Its statements go
// through the lease's guard, and it never hands out the connection.
type guardedTx struct {
	h  *handle
	tx pgx.Tx
}

var _ pgx.Tx = (*guardedTx)(nil)

// Begin starts a savepoint within the transaction.
func (t *guardedTx) Begin(ctx context.Context) (pgx.Tx, error) { return t.h.begin(t.tx, ctx) }

// Commit commits the transaction (releases the savepoint).
func (t *guardedTx) Commit(ctx context.Context) error {
	if !t.h.lock() {
		return errTxReleased
	}
	defer t.h.unlock()
	return t.tx.Commit(ctx)
}

// Rollback rolls the transaction back (to the savepoint).
func (t *guardedTx) Rollback(ctx context.Context) error {
	if !t.h.lock() {
		return errTxReleased
	}
	defer t.h.unlock()
	return t.tx.Rollback(ctx)
}

// Exec runs sql in the transaction.
func (t *guardedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.h.exec(t.tx, ctx, sql, args...)
}

// Query runs sql in the transaction; its rows are guarded like the lease's.
func (t *guardedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.h.query(t.tx, ctx, sql, args...) //nolint:rowserrcheck // the caller owns the rows
}

// QueryRow runs sql in the transaction.
func (t *guardedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.h.queryRow(t.tx, ctx, sql, args...)
}

// SendBatch sends b in the transaction.
func (t *guardedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.h.sendBatch(t.tx, ctx, b)
}

// CopyFrom runs COPY FROM in the transaction.
func (t *guardedTx) CopyFrom(ctx context.Context, name pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return t.h.copyFrom(t.tx, ctx, name, cols, src)
}

// Prepare prepares sql on the transaction's connection.
func (t *guardedTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if !t.h.lock() {
		return nil, errTxReleased
	}
	defer t.h.unlock()
	return t.tx.Prepare(ctx, name, sql)
}

// LargeObjects returns the transaction's large objects. They are not
// guarded: do not use them after the request has ended (they then answer
// pgx.ErrTxClosed, as the transaction was rolled back).
func (t *guardedTx) LargeObjects() pgx.LargeObjects { return t.tx.LargeObjects() }

// Conn returns nil: fiberdb never hands out the underlying connection,
// which serves other requests once this one has ended.
func (*guardedTx) Conn() *pgx.Conn { return nil }
