package fiberdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// guardedRows are rows of a request connection. They read from the
// connection only under the lease's lock and only while their handle still
// holds the lease (a later request may hold it now), so
// that a goroutine or body stream still reading them when the request ends
// gets ErrConnReleased instead of racing the release, which destroys a
// connection whose rows are unread (pgxpool closes it on another goroutine).
// Like pgx.Rows, they are not safe for concurrent use.
type guardedRows struct {
	h        *handle
	rows     pgx.Rows
	released bool // the request ended while these rows were being read
}

var _ pgx.Rows = (*guardedRows)(nil)

// live reports whether the rows' handle still holds its lease; the caller
// holds the lease's lock for reading.
func (r *guardedRows) live() bool {
	if !r.h.live() {
		r.released = true
		return false
	}
	return true
}

// Next prepares the next row; it returns false once the request has ended.
func (r *guardedRows) Next() bool {
	r.h.l.mu.RLock()
	defer r.h.l.mu.RUnlock()
	return r.live() && r.rows.Next()
}

// Scan reads the current row.
func (r *guardedRows) Scan(dest ...any) error {
	r.h.l.mu.RLock()
	defer r.h.l.mu.RUnlock()
	if !r.live() {
		return ErrConnReleased
	}
	return r.rows.Scan(dest...) //nolint:wrapcheck // pgx errors pass through unchanged
}

// Values decodes the current row.
func (r *guardedRows) Values() ([]any, error) {
	r.h.l.mu.RLock()
	defer r.h.l.mu.RUnlock()
	if !r.live() {
		return nil, ErrConnReleased
	}
	return r.rows.Values() //nolint:wrapcheck // pgx errors pass through unchanged
}

// RawValues returns the current row's bytes, valid until the next call to
// Next, Close or the end of the request.
func (r *guardedRows) RawValues() [][]byte {
	r.h.l.mu.RLock()
	defer r.h.l.mu.RUnlock()
	if !r.live() {
		return nil
	}
	return r.rows.RawValues()
}

// Close closes the rows. After the request ended there is nothing left to
// close: the release already disposed of the connection.
func (r *guardedRows) Close() {
	r.h.l.mu.RLock()
	defer r.h.l.mu.RUnlock()
	if r.h.live() {
		r.rows.Close()
	}
}

// Err returns ErrConnReleased if the request ended while the rows were read,
// else the rows' own error.
func (r *guardedRows) Err() error {
	if r.released {
		return ErrConnReleased
	}
	return r.rows.Err() //nolint:wrapcheck // pgx errors pass through unchanged
}

// CommandTag, FieldDescriptions and TypeMap read only what the rows already
// hold, never the connection.
func (r *guardedRows) CommandTag() pgconn.CommandTag { return r.rows.CommandTag() }

func (r *guardedRows) FieldDescriptions() []pgconn.FieldDescription {
	return r.rows.FieldDescriptions()
}

func (r *guardedRows) TypeMap() *pgtype.Map { return r.rows.TypeMap() }

// Conn returns nil: fiberdb never hands out the underlying connection.
func (*guardedRows) Conn() *pgx.Conn { return nil }

// guardedRow is QueryRow's result on a request connection: pgx's own row,
// scanned under the lease's lock, so that a Scan after the request ended
// answers ErrConnReleased instead of reading a connection that now serves
// someone else (a row never scanned leaves the connection busy, and the
// release destroys it).
type guardedRow struct {
	h   *handle
	row pgx.Row
}

// Scan reads the first row into dest and closes the rows, as pgx's does:
// pgx.ErrNoRows when there is none, ErrConnReleased once the request has
// ended. pgx's errors pass through unchanged.
func (r *guardedRow) Scan(dest ...any) error {
	r.h.l.mu.RLock()
	defer r.h.l.mu.RUnlock()
	if !r.h.live() {
		return ErrConnReleased
	}
	return r.row.Scan(dest...) //nolint:wrapcheck // for errors.As(*pgconn.PgError) and errors.Is(pgx.ErrNoRows)
}

// rowsRow is pgx's QueryRow semantics over rows, for rows fiberdb must be
// able to close itself: those of a pinned connection and of a batch.
type rowsRow struct{ rows pgx.Rows }

var errDriverBytesRow = errors.New("cannot scan into *pgtype.DriverBytes from QueryRow")

func (r rowsRow) Scan(dest ...any) error { return scanFirst(r.rows, dest) }

// scanFirst is pgx's QueryRow Scan, on rows. pgx's errors pass through
// unchanged, for errors.As(*pgconn.PgError) and errors.Is(pgx.ErrNoRows).
//
//nolint:wrapcheck // see above
func scanFirst(rows pgx.Rows, dest []any) error {
	defer rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, d := range dest {
		if _, ok := d.(*pgtype.DriverBytes); ok {
			return errDriverBytesRow // its bytes would not outlive Close
		}
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// guardedBatch is SendBatch's result on a request connection: its results are
// read under the lease's lock and answer ErrConnReleased once the request has
// ended.
type guardedBatch struct {
	h        *handle
	br       pgx.BatchResults
	closed   bool
	closeErr error
}

var _ pgx.BatchResults = (*guardedBatch)(nil)

// Exec reads the next query's result.
func (b *guardedBatch) Exec() (pgconn.CommandTag, error) {
	b.h.l.mu.RLock()
	defer b.h.l.mu.RUnlock()
	if !b.h.live() {
		return pgconn.CommandTag{}, ErrConnReleased
	}
	return b.br.Exec() //nolint:wrapcheck // pgx errors pass through unchanged
}

// Query reads the next query's rows, guarded like the lease's own.
func (b *guardedBatch) Query() (pgx.Rows, error) {
	b.h.l.mu.RLock()
	defer b.h.l.mu.RUnlock()
	if !b.h.live() {
		return nil, ErrConnReleased
	}
	rows, err := b.br.Query() //nolint:rowserrcheck // the caller owns the rows
	if rows == nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	return &guardedRows{h: b.h, rows: rows}, err //nolint:wrapcheck // pgx errors pass through unchanged
}

// QueryRow reads the next query's first row.
func (b *guardedBatch) QueryRow() pgx.Row {
	b.h.l.mu.RLock()
	defer b.h.l.mu.RUnlock()
	if !b.h.live() {
		return errRow{ErrConnReleased}
	}
	return &guardedRow{h: b.h, row: b.br.QueryRow()}
}

// Tx returns the transaction the batch began with Batch.BeginTx, or nil.
// fiberdb rolls it back, like any other, if it is still open when the
// request ends.
func (b *guardedBatch) Tx() pgx.Tx {
	tx := b.br.Tx()
	if tx == nil {
		return nil
	}
	return &guardedTx{h: b.h, tx: tx}
}

// Close reads what is left of the batch. Once the request has ended it
// returns ErrConnReleased, unless the batch was closed before.
func (b *guardedBatch) Close() error {
	b.h.l.mu.RLock()
	defer b.h.l.mu.RUnlock()
	if b.closed {
		return b.closeErr
	}
	if !b.h.live() {
		return ErrConnReleased
	}
	b.closed, b.closeErr = true, b.br.Close()
	return b.closeErr
}

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
	t.h.l.mu.RLock()
	defer t.h.l.mu.RUnlock()
	if !t.h.live() {
		return errTxReleased
	}
	return t.tx.Commit(ctx) //nolint:wrapcheck // pgx errors pass through unchanged
}

// Rollback rolls the transaction back (to the savepoint).
func (t *guardedTx) Rollback(ctx context.Context) error {
	t.h.l.mu.RLock()
	defer t.h.l.mu.RUnlock()
	if !t.h.live() {
		return errTxReleased
	}
	return t.tx.Rollback(ctx) //nolint:wrapcheck // pgx errors pass through unchanged
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
	t.h.l.mu.RLock()
	defer t.h.l.mu.RUnlock()
	if !t.h.live() {
		return nil, errTxReleased
	}
	return t.tx.Prepare(ctx, name, sql) //nolint:wrapcheck // pgx errors pass through unchanged
}

// LargeObjects returns the transaction's large objects. They are not
// guarded: do not use them after the request has ended (they then answer
// pgx.ErrTxClosed, as the transaction was rolled back).
func (t *guardedTx) LargeObjects() pgx.LargeObjects { return t.tx.LargeObjects() }

// Conn returns nil: fiberdb never hands out the underlying connection,
// which serves other requests once this one has ended.
func (*guardedTx) Conn() *pgx.Conn { return nil }
