package fiberdb

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

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
	if !b.h.lock() {
		return pgconn.CommandTag{}, ErrConnReleased
	}
	defer b.h.unlock()
	return b.br.Exec()
}

// Query reads the next query's rows, guarded like the lease's own.
func (b *guardedBatch) Query() (pgx.Rows, error) {
	if !b.h.lock() {
		return nil, ErrConnReleased
	}
	defer b.h.unlock()
	rows, err := b.br.Query() //nolint:rowserrcheck // the caller owns the rows
	if rows == nil {
		return nil, err
	}
	return &guardedRows{h: b.h, rows: rows}, err
}

// QueryRow reads the next query's first row.
func (b *guardedBatch) QueryRow() pgx.Row {
	if !b.h.lock() {
		return errRow{ErrConnReleased}
	}
	defer b.h.unlock()
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
	// Under the lock even when closed: closed and closeErr are shared with
	// a Close in progress on another goroutine.
	b.h.l.mu.RLock()
	defer b.h.l.mu.RUnlock()
	if b.closed {
		return b.closeErr
	}
	if b.h.l.owner.Load() != b.h {
		return ErrConnReleased
	}
	b.closed, b.closeErr = true, b.br.Close()
	return b.closeErr
}
