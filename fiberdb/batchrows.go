package fiberdb

import "github.com/jackc/pgx/v5"

// batchRows are the rows of a statement a [tenantConn] sent as a batch
// behind its prelude, or ran in a transaction of its own: when they are
// closed, or read to the end, they close the batch's results (which reads
// its last reply and frees the connection), or end runs and ends the
// transaction.
type batchRows struct {
	pgx.Rows
	results pgx.BatchResults // the batch's; nil in a transaction of its own
	end     func() error     // without results: ends the transaction
	done    bool
	doneErr error
}

// Next prepares the next row; after the last one it closes the batch.
func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.finish()
	return false
}

// Close closes the rows and the batch.
func (r *batchRows) Close() {
	r.Rows.Close()
	r.finish()
}

// Err is the rows' error, else the batch's.
func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.doneErr
}

func (r *batchRows) finish() {
	if r.done {
		return
	}
	r.done = true
	if r.results != nil {
		// Not a method value in end: that would cost every statement an allocation.
		r.doneErr = r.results.Close()
		return
	}
	r.doneErr = r.end()
}

// Conn returns nil: fiberdb never hands out the underlying connection.
func (*batchRows) Conn() *pgx.Conn { return nil }
