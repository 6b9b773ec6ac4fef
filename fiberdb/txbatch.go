package fiberdb

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// txBatch is a batch a [tenantConn] sent in a transaction of its own (see
// unprepared): closing it ends the transaction, committed unless the batch
// failed.
type txBatch struct {
	pgx.BatchResults
	ctx context.Context //nolint:containedctx // the batch's own, for the commit Close runs
	tx  pgx.Tx
}

// Close reads what is left of the batch and ends its transaction.
func (b *txBatch) Close() error {
	err := b.BatchResults.Close()
	return errors.Join(err, endTx(b.ctx, b.tx, err))
}

// Tx returns nil: the transaction is fiberdb's, not the batch's.
func (*txBatch) Tx() pgx.Tx { return nil }
