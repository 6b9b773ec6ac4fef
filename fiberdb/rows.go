package fiberdb

import (
	"errors"

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

// lock is the handle's, and remembers a release for Err.
func (r *guardedRows) lock() bool {
	if r.h.lock() {
		return true
	}
	r.released = true
	return false
}

// Next prepares the next row; it returns false once the request has ended.
func (r *guardedRows) Next() bool {
	if !r.lock() {
		return false
	}
	defer r.h.unlock()
	return r.rows.Next()
}

// Scan reads the current row.
func (r *guardedRows) Scan(dest ...any) error {
	if !r.lock() {
		return ErrConnReleased
	}
	defer r.h.unlock()
	return r.rows.Scan(dest...)
}

// Values decodes the current row.
func (r *guardedRows) Values() ([]any, error) {
	if !r.lock() {
		return nil, ErrConnReleased
	}
	defer r.h.unlock()
	return r.rows.Values()
}

// RawValues returns the current row's bytes, valid until the next call to
// Next, Close or the end of the request.
func (r *guardedRows) RawValues() [][]byte {
	if !r.lock() {
		return nil
	}
	defer r.h.unlock()
	return r.rows.RawValues()
}

// Close closes the rows. After the request ended there is nothing left to
// close: the release already disposed of the connection.
func (r *guardedRows) Close() {
	if !r.h.lock() {
		return
	}
	defer r.h.unlock()
	r.rows.Close()
}

// Err returns ErrConnReleased if the request ended while the rows were read,
// else the rows' own error.
func (r *guardedRows) Err() error {
	if r.released {
		return ErrConnReleased
	}
	return r.rows.Err()
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
	if !r.h.lock() {
		return ErrConnReleased
	}
	defer r.h.unlock()
	return r.row.Scan(dest...)
}

// errRow is QueryRow's answer on a lease that has ended.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// rowsRow is pgx's QueryRow semantics over rows, for rows fiberdb must be
// able to close itself: those of a connection that outlives the lease.
type rowsRow struct{ rows pgx.Rows }

var errDriverBytesRow = errors.New("cannot scan into *pgtype.DriverBytes from QueryRow")

// Scan is pgx's QueryRow Scan, on rows. pgx's errors pass through
// unchanged, for errors.As(*pgconn.PgError) and errors.Is(pgx.ErrNoRows).
func (r rowsRow) Scan(dest ...any) error {
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
