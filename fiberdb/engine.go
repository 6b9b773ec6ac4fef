package fiberdb

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
)

// engine is one named pool. name is the config's own string: it is what
// Tenant returns and what errors and metrics carry.
type engine struct {
	name     string
	pool     *pgxpool.Pool
	iso      isoSlot
	resolved atomic.Uint64
	failLog  logLimiter // acquire failures
	conns    connSet    // for Close's force
}

// source returns where the engine's next lease comes from: its pool, or the
// pinned connection while test isolation is active.
func (eng *engine) source() source {
	if pin := eng.iso.get(); pin != nil {
		return pin
	}
	return pooled{eng.pool}
}

// acquired is a connection taken for a lease, not yet installed in one.
type acquired struct {
	eng  *engine
	src  source
	db   DBTX
	conn *pgxpool.Conn
}

// acquire takes a connection from the engine's source, waiting at most
// until ctx is done.
func (eng *engine) acquire(ctx context.Context) (acquired, error) {
	src := eng.source()
	db, conn, err := src.acquire(ctx)
	if err != nil {
		return acquired{}, &AcquireError{Engine: eng.name, Err: err}
	}
	return acquired{eng: eng, src: src, db: db, conn: conn}, nil
}
