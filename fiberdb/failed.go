package fiberdb

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// failedDB is what a lease runs its statements on once its connection died
// and no other could be taken (lease.retry): every call answers err, the
// AcquireError, so that the handler's next statement fails as its first did.
type failedDB struct{ err error }

var _ DBTX = failedDB{}

func (f failedDB) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, f.err
}

func (f failedDB) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, f.err }

func (f failedDB) QueryRow(context.Context, string, ...any) pgx.Row { return errRow(f) }

func (f failedDB) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	return pgx.FailedBatchResults(b, f.err)
}

func (f failedDB) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, f.err
}

func (f failedDB) Begin(context.Context) (pgx.Tx, error) { return nil, f.err }
