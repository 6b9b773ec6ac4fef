package fiberdb

import (
	"context"
	"errors"
	"sync"
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
	txs  []pgx.Tx      // transactions begun through the lease, for rollback
}

var _ DBTX = (*lease)(nil)

// acquireLease takes a connection from eng under ctx, or a savepoint on the
// pinned connection while test isolation is active.
func (eng *engine) acquireLease(ctx context.Context) (*lease, error) {
	if pin := eng.iso.get(); pin != nil {
		sp, err := pin.begin(ctx)
		if err != nil {
			return nil, &AcquireError{Engine: eng.name, Err: err}
		}
		return &lease{engine: eng, db: sp, pin: pin}, nil
	}
	conn, err := eng.pool.Acquire(ctx)
	if err != nil {
		return nil, &AcquireError{Engine: eng.name, Err: err}
	}
	return &lease{engine: eng, db: conn, conn: conn}, nil
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
	db, txs := l.db, l.txs
	l.db, l.txs = nil, nil

	if l.pin != nil {
		return l.pin.finish(parent, db, txs)
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

// Exec runs sql on the lease's connection.
func (l *lease) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return pgconn.CommandTag{}, ErrConnReleased
	}
	return l.db.Exec(ctx, sql, args...) //nolint:wrapcheck // pgx errors pass through unchanged for errors.As(*pgconn.PgError)
}

// Query runs sql on the lease's connection. The rows must be closed before
// the request ends; rows left open make fiberdb destroy the connection, and
// reading them afterwards (from a goroutine or a body stream) stops with
// [ErrConnReleased]. The same holds for QueryRow's row and SendBatch's results.
func (l *lease) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return nil, ErrConnReleased
	}
	rows, err := l.db.Query(ctx, sql, args...) //nolint:rowserrcheck // the caller owns the rows
	if rows == nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	return &guardedRows{l: l, rows: rows}, err //nolint:wrapcheck // pgx errors pass through unchanged
}

// QueryRow runs sql on the lease's connection.
func (l *lease) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return errRow{}
	}
	// pgx's QueryRow is Query plus a Scan that reads the rows; guarded rows
	// keep that read from racing the release.
	rows, _ := l.db.Query(ctx, sql, args...) //nolint:errcheck,rowserrcheck // the error stays in rows, for Scan, as in pgx
	if rows == nil {
		return errRow{} // pgx's conns and transactions never return nil rows
	}
	return guardedRow{rows: &guardedRows{l: l, rows: rows}}
}

// SendBatch sends b on the lease's connection.
func (l *lease) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return errBatch{}
	}
	return &guardedBatch{l: l, br: l.db.SendBatch(ctx, b)}
}

// CopyFrom runs COPY FROM on the lease's connection.
func (l *lease) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return 0, ErrConnReleased
	}
	return l.db.CopyFrom(ctx, t, cols, src) //nolint:wrapcheck // pgx errors pass through unchanged
}

// Begin starts a transaction (a savepoint under test isolation). Commit it;
// whatever is still open when the request ends is rolled back.
func (l *lease) Begin(ctx context.Context) (pgx.Tx, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db == nil {
		return nil, ErrConnReleased
	}
	tx, err := l.db.Begin(ctx)
	if err != nil {
		return nil, err //nolint:wrapcheck // pgx errors pass through unchanged
	}
	l.txs = append(l.txs, tx)
	return tx, nil
}

// errRow and errBatch answer ErrConnReleased for a lease that has ended.
type errRow struct{}

func (errRow) Scan(...any) error { return ErrConnReleased }

type errBatch struct{}

func (errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, ErrConnReleased }
func (errBatch) Query() (pgx.Rows, error)         { return nil, ErrConnReleased }
func (errBatch) QueryRow() pgx.Row                { return errRow{} }
func (errBatch) Close() error                     { return ErrConnReleased }
func (errBatch) Tx() pgx.Tx                       { return nil }
