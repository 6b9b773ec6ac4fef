package fiberdb

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tenantConn is the source, and the DBTX, of a lease of an engine that sets
// search_path or settings, most often a tenant that shares another engine's
// pool (engine key "pool"): it takes its connection from the pool engine's
// source (its pool, or the pinned connection under test isolation) and
// begins every transaction the holder runs with the engine's prelude,
// set_config(name, value, true) for search_path and each setting.
//
//   - A statement outside a transaction (Exec, Query, QueryRow, SendBatch) is
//     sent as one batch behind the prelude: a batch up to its Sync is one
//     implicit transaction (one multi-statement query under simple_protocol),
//     so the settings last exactly as long as the statement, in the same
//     round trip. One with a per-call option (see optioned), that a
//     statement cache cannot prepare before the prelude (see unprepared),
//     or an Exec of several statements without arguments (see
//     multiCommand), runs in a transaction of its own instead.
//   - Begin sends BEGIN and the prelude as one batch (Batch.BeginTx).
//   - CopyFrom runs in such a transaction, which it commits.
//
// No session-level SET ever runs, so no setting of the tenant remains on
// the server connection after its transaction, behind PgBouncer in
// transaction mode too; what its statements leave there (a temporary
// table) does, and README tells the app to clean it up. Each lease gets its
// own tenantConn.
type tenantConn struct {
	inner source
	conn  *pgxpool.Conn // inner's pool connection (under test isolation the lease uses the savepoint itself: see wrap)
	pre   *prelude
}

var (
	_ source = (*tenantConn)(nil)
	_ DBTX   = (*tenantConn)(nil)
)

func (t *tenantConn) acquire(ctx context.Context) (DBTX, *pgxpool.Conn, error) {
	db, conn, err := t.inner.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return t.wrap(ctx, db, conn)
}

// wrap makes db, the inner source's, the lease's. On the pinned connection
// (test isolation) the lease is a savepoint in a transaction that outlives
// it, so the prelude runs once, in the savepoint: every lease there sets
// every parameter the pool's tenants use (engine.isoPre), and statements
// run as they are.
func (t *tenantConn) wrap(ctx context.Context, db DBTX, conn *pgxpool.Conn) (DBTX, *pgxpool.Conn, error) {
	if !t.inner.drains() {
		t.conn = conn
		return t, conn, nil
	}
	if _, err := db.Exec(ctx, t.pre.sql, t.pre.args...); err != nil {
		// The savepoint failed: the release rolls it back.
		return nil, nil, errors.Join(err, t.inner.release(ctx, conn, nil))
	}
	return db, conn, nil
}

func (t *tenantConn) release(parent context.Context, conn *pgxpool.Conn, txs []pgx.Tx) error {
	return t.inner.release(parent, conn, txs)
}

func (t *tenantConn) renew(ctx context.Context, conn *pgxpool.Conn) (DBTX, *pgxpool.Conn, error) {
	db, conn, err := t.inner.renew(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	return t.wrap(ctx, db, conn)
}

func (t *tenantConn) drains() bool { return t.inner.drains() }

// send sends sql behind the prelude and reads the prelude's result: what
// is left of the batch's results is the statement's.
func (t *tenantConn) send(ctx context.Context, sql string, args []any) (*stmtBatch, pgx.BatchResults, error) {
	s := newStmtBatch(t.pre, sql, args)
	br := t.conn.SendBatch(ctx, &s.batch)
	if _, err := br.Exec(); err != nil {
		_ = br.Close() // the same error
		return nil, nil, err
	}
	return s, br, nil
}

// unprepared reports whether err is a batch's failure to prepare (parse) a
// statement, before anything of it ran. pgx's statement caching modes
// prepare a statement new to the connection before the batch executes, so
// before the prelude set search_path: such a statement runs once in an
// explicit transaction that begins with the prelude, which prepares it
// there (and caches it), and later in one batch. PostgreSQL parses a
// prepared statement again when search_path changed since it was planned.
//
// Only the server's refusal counts: a batch that fails to encode a query's
// arguments (pgx's "build" step) after it queued the prelude has closed
// the connection already, and its error is the caller's to see.
func unprepared(err error) bool {
	if err == nil {
		return false // before errors.As, whose targets would escape on every statement
	}
	var pe pgx.ErrPreprocessingBatch
	var pgErr *pgconn.PgError
	return errors.As(err, &pe) && errors.As(err, &pgErr)
}

// optioned reports whether args begin with a per-call option of pgx's
// Query and Exec that a batch does not take (a query exec mode, result
// formats): pgx would send it as an argument. Such a statement runs in a
// transaction of its own, where pgx honours it, as on a pool of its own.
func optioned(args []any) bool {
	for _, a := range args {
		switch a.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			return true
		case pgx.QueryRewriter:
			// A batch takes it; an option may follow.
		default:
			return false
		}
	}
	return false
}

// Exec runs sql in its own transaction, behind the prelude.
func (t *tenantConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if optioned(args) {
		return t.execInTx(ctx, sql, args)
	}
	_, br, err := t.send(ctx, sql, args)
	if unprepared(err) {
		return t.execInTx(ctx, sql, args)
	}
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if len(args) == 0 && multiCommand(err) {
		// pgx sends an Exec without arguments as a simple query, which may
		// hold several statements, in the transaction too.
		return t.execInTx(ctx, sql, args)
	}
	return tag, err
}

// multiCommand reports whether err is PostgreSQL's refusal to parse several
// statements as one statement of the extended protocol ("cannot insert
// multiple commands into a prepared statement"). Under exec mode it comes
// as the statement's own result, not as unprepared's: the statement was
// parsed in the batch. The parse message refused it before anything of it
// ran, and the batch's implicit transaction, prelude included, rolled back.
func multiCommand(err error) bool {
	if err == nil {
		return false // before errors.As, as in unprepared
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42601" && pgErr.Routine == "exec_parse_message" // syntax_error
}

// Query runs sql in its own transaction, behind the prelude. Closing the
// rows, or reading them to the end, ends the batch.
func (t *tenantConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if optioned(args) {
		return t.queryInTx(ctx, sql, args) //nolint:rowserrcheck // the caller owns the rows
	}
	s, br, err := t.send(ctx, sql, args)
	if unprepared(err) {
		return t.queryInTx(ctx, sql, args) //nolint:rowserrcheck // the caller owns the rows
	}
	if err != nil {
		return nil, err
	}
	rows, err := br.Query() //nolint:rowserrcheck // the caller owns the rows
	if err != nil {
		if rows != nil {
			rows.Close()
		}
		_ = br.Close() // the same error
		return nil, err
	}
	s.rows = batchRows{Rows: rows, results: br}
	return &s.rows, nil
}

// execInTx runs sql in a transaction of its own (see unprepared, optioned
// and multiCommand).
func (t *tenantConn) execInTx(ctx context.Context, sql string, args []any) (pgconn.CommandTag, error) {
	tx, err := t.Begin(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := tx.Exec(ctx, sql, args...)
	return tag, errors.Join(err, endTx(ctx, tx, err))
}

// queryInTx runs sql in a transaction of its own (see unprepared and
// optioned), which ends with the rows.
func (t *tenantConn) queryInTx(ctx context.Context, sql string, args []any) (pgx.Rows, error) {
	tx, err := t.Begin(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, sql, args...) //nolint:rowserrcheck // the caller owns the rows
	if err != nil {
		return nil, errors.Join(err, endTx(ctx, tx, err))
	}
	return &batchRows{Rows: rows, end: func() error { return endTx(ctx, tx, rows.Err()) }}, nil
}

// QueryRow runs sql in its own transaction, behind the prelude.
func (t *tenantConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...) //nolint:rowserrcheck // rowsRow's Scan checks it
	if err != nil {
		return errRow{err}
	}
	return rowsRow{rows}
}

// SendBatch sends b behind the prelude, in a batch of its own, and never
// writes to b: b.Len() stays the caller's count of results, and a batch
// built once can be sent to one tenant after another, each behind its own
// prelude. The batch sent holds copies of b's queries (SQL, arguments,
// callbacks), since pgx records in a QueuedQuery what it learns sending it
// (the statement's description on that connection, a rewritten SQL). A
// transaction b begins (Batch.BeginTx) takes in the prelude: PostgreSQL
// includes the statements a BEGIN follows in its transaction.
func (t *tenantConn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	// A copy of *b keeps the transaction options Batch.BeginTx recorded,
	// which pgx keeps unexported.
	sent := *b
	sent.QueuedQueries = copyQueued(t.pre.queued(), b.QueuedQueries)
	br := t.conn.SendBatch(ctx, &sent)
	_, err := br.Exec()
	if !unprepared(err) || br.Tx() != nil {
		// Any other error is the batch's: every later result reports it.
		return br
	}
	_ = br.Close() // the same error as err
	// Again, in a transaction, as new copies: pgx recorded the failed
	// statements in the first ones.
	again := &pgx.Batch{QueuedQueries: copyQueued(nil, b.QueuedQueries)}
	tx, err := t.Begin(ctx)
	if err != nil {
		return pgx.FailedBatchResults(again, err)
	}
	return &txBatch{BatchResults: tx.SendBatch(ctx, again), ctx: ctx, tx: tx}
}

// copyQueued returns pre (unless nil) and then a new QueuedQuery for each
// of queued, with its SQL, arguments and callback, in two allocations.
func copyQueued(pre *pgx.QueuedQuery, queued []*pgx.QueuedQuery) []*pgx.QueuedQuery {
	copies := make([]pgx.QueuedQuery, len(queued))
	out := make([]*pgx.QueuedQuery, 0, len(queued)+1)
	if pre != nil {
		out = append(out, pre)
	}
	for i, q := range queued {
		copies[i] = pgx.QueuedQuery{SQL: q.SQL, Arguments: q.Arguments, Fn: q.Fn}
		out = append(out, &copies[i])
	}
	return out
}

// endTx commits tx, or rolls it back if err (the statement's) is set.
func endTx(ctx context.Context, tx pgx.Tx, err error) error {
	if err != nil {
		return ignoreClosed(tx.Rollback(ctx))
	}
	return tx.Commit(ctx)
}

// CopyFrom copies in a transaction of its own, which it commits.
func (t *tenantConn) CopyFrom(ctx context.Context, name pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := t.Begin(ctx)
	if err != nil {
		return 0, err
	}
	n, err := tx.CopyFrom(ctx, name, cols, src)
	if err != nil {
		return 0, errors.Join(err, endTx(ctx, tx, err))
	}
	return n, tx.Commit(ctx)
}

// Begin begins a transaction that starts with the prelude, in one round
// trip.
func (t *tenantConn) Begin(ctx context.Context) (pgx.Tx, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.QueuedQueries = append(b.QueuedQueries, t.pre.queued())
	br := t.conn.SendBatch(ctx, b)
	tx := br.Tx()
	if err := br.Close(); err != nil {
		// A failed begin leaves the transaction closed already.
		return nil, errors.Join(err, ignoreClosed(tx.Rollback(ctx)))
	}
	return tx, nil
}

// ignoreClosed drops pgx.ErrTxClosed: the transaction had ended already.
func ignoreClosed(err error) error {
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return err
}
