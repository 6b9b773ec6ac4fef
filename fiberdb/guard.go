package fiberdb

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// guardedRows are rows of a request connection. They read from the
// connection only under the lease's lock and only while the lease lives, so
// that a goroutine or body stream still reading them when the request ends
// gets ErrConnReleased instead of racing the release, which destroys a
// connection whose rows are unread (pgxpool closes it on another goroutine).
// Like pgx.Rows, they are not safe for concurrent use.
type guardedRows struct {
	l        *lease
	rows     pgx.Rows
	released bool // the request ended while these rows were being read
}

var _ pgx.Rows = (*guardedRows)(nil)

// live reports whether the lease still holds its connection; the caller
// holds l.mu for reading.
func (r *guardedRows) live() bool {
	if r.l.db == nil {
		r.released = true
		return false
	}
	return true
}

// Next prepares the next row; it returns false once the request has ended.
func (r *guardedRows) Next() bool {
	r.l.mu.RLock()
	defer r.l.mu.RUnlock()
	return r.live() && r.rows.Next()
}

// Scan reads the current row.
func (r *guardedRows) Scan(dest ...any) error {
	r.l.mu.RLock()
	defer r.l.mu.RUnlock()
	if !r.live() {
		return ErrConnReleased
	}
	return r.rows.Scan(dest...) //nolint:wrapcheck // pgx errors pass through unchanged
}

// Values decodes the current row.
func (r *guardedRows) Values() ([]any, error) {
	r.l.mu.RLock()
	defer r.l.mu.RUnlock()
	if !r.live() {
		return nil, ErrConnReleased
	}
	return r.rows.Values() //nolint:wrapcheck // pgx errors pass through unchanged
}

// RawValues returns the current row's bytes, valid until the next call to
// Next, Close or the end of the request.
func (r *guardedRows) RawValues() [][]byte {
	r.l.mu.RLock()
	defer r.l.mu.RUnlock()
	if !r.live() {
		return nil
	}
	return r.rows.RawValues()
}

// Close closes the rows. After the request ended there is nothing left to
// close: the release already disposed of the connection.
func (r *guardedRows) Close() {
	r.l.mu.RLock()
	defer r.l.mu.RUnlock()
	if r.l.db != nil {
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

// guardedRow is QueryRow's result on a request connection, with pgx's
// QueryRow semantics over guardedRows.
type guardedRow struct{ rows *guardedRows }

var errDriverBytesRow = errors.New("cannot scan into *pgtype.DriverBytes from QueryRow")

// Scan reads the first row into dest and closes the rows: pgx.ErrNoRows when
// there is none, ErrConnReleased once the request has ended.
func (r guardedRow) Scan(dest ...any) error {
	rows := r.rows
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
	l        *lease
	br       pgx.BatchResults
	closed   bool
	closeErr error
}

var _ pgx.BatchResults = (*guardedBatch)(nil)

// Exec reads the next query's result.
func (b *guardedBatch) Exec() (pgconn.CommandTag, error) {
	b.l.mu.RLock()
	defer b.l.mu.RUnlock()
	if b.l.db == nil {
		return pgconn.CommandTag{}, ErrConnReleased
	}
	return b.br.Exec() //nolint:wrapcheck // pgx errors pass through unchanged
}

// Query reads the next query's rows, guarded like the lease's own.
func (b *guardedBatch) Query() (pgx.Rows, error) {
	b.l.mu.RLock()
	defer b.l.mu.RUnlock()
	if b.l.db == nil {
		return nil, ErrConnReleased
	}
	rows, err := b.br.Query() //nolint:rowserrcheck // the caller owns the rows
	if rows == nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	return &guardedRows{l: b.l, rows: rows}, err //nolint:wrapcheck // pgx errors pass through unchanged
}

// QueryRow reads the next query's first row.
func (b *guardedBatch) QueryRow() pgx.Row {
	b.l.mu.RLock()
	defer b.l.mu.RUnlock()
	if b.l.db == nil {
		return errRow{}
	}
	rows, _ := b.br.Query() //nolint:errcheck,rowserrcheck // the error stays in rows, for Scan, as in pgx
	if rows == nil {
		return errRow{}
	}
	return guardedRow{rows: &guardedRows{l: b.l, rows: rows}}
}

// Tx returns the transaction the batch began with Batch.BeginTx, or nil.
// fiberdb rolls it back, like any other, if it is still open when the
// request ends.
func (b *guardedBatch) Tx() pgx.Tx { return b.br.Tx() }

// Close reads what is left of the batch. Once the request has ended it
// returns ErrConnReleased, unless the batch was closed before.
func (b *guardedBatch) Close() error {
	b.l.mu.RLock()
	defer b.l.mu.RUnlock()
	if b.closed {
		return b.closeErr
	}
	if b.l.db == nil {
		return ErrConnReleased
	}
	b.closed, b.closeErr = true, b.br.Close()
	return b.closeErr
}
