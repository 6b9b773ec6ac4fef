package fiberdb

import "github.com/jackc/pgx/v5"

// stmtBatch is the batch in which a [tenantConn] sends a statement outside
// a transaction, [prelude, statement], with the rows it ends with: one
// allocation for what every such statement of a shared-pool tenant needs.
// pgx writes into a batch's queued queries while it sends them, so each
// statement gets a stmtBatch of its own, never one shared or reused.
type stmtBatch struct {
	batch     pgx.Batch
	queued    [2]*pgx.QueuedQuery
	pre, stmt pgx.QueuedQuery
	rows      batchRows
}

// newStmtBatch returns the batch of sql and args behind p.
func newStmtBatch(p *prelude, sql string, args []any) *stmtBatch {
	s := &stmtBatch{
		pre:  pgx.QueuedQuery{SQL: p.sql, Arguments: p.args},
		stmt: pgx.QueuedQuery{SQL: sql, Arguments: args},
	}
	s.queued = [2]*pgx.QueuedQuery{&s.pre, &s.stmt}
	s.batch.QueuedQueries = s.queued[:]
	return s
}
