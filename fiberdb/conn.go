package fiberdb

import (
	"context"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Conn returns the request's connection to its tenant's engine, acquiring it
// on the first call (waiting at most Config.AcquireTimeout) and returning
// the same one on every later call in the request. It is ConnFor(c, Tenant(c)).
//
// Do not release it: the middleware does, when the handler chain returns.
// Once it has, every method of the connection returns [ErrConnReleased], so a
// goroutine or stream that outlives the request cannot reach a connection
// that serves another one. Work not committed by then is rolled back.
//
// Like every method of *fiber.Ctx, Conn must be called on the request's
// goroutine, before its handler returns: hand the connection, not the Ctx,
// to goroutines. A Conn call with a Ctx that outlived its request reads a
// Ctx that Fiber is already reusing for another request. Like a pgx.Conn, the
// connection runs one statement at a time: goroutines that share it must
// take turns.
//
// Errors: [ErrNotRegistered] outside the middleware; an [*AcquireError]
// (errors.Is [ErrUnavailable]) when no connection came in time, which the
// middleware turns into a 503 when the handler returns it; an error matching
// [ErrEngineNotDefined] when [Engines.Apply] removed the tenant after the
// request resolved it, which the middleware turns into a 404.
func Conn(c *fiber.Ctx) (DBTX, error) {
	st, err := requestState(c)
	if err != nil {
		return nil, err
	}
	return st.lease(c, st.b.eng)
}

// ConnFor is [Conn] for another named engine, for example "default" (the
// landlord database). One connection per engine per request:
// ConnFor(c, Tenant(c)) is the same connection as Conn(c), with the same
// errors. A name that is not configured returns an error matching
// [ErrEngineNotDefined], which the middleware passes on unchanged: naming
// an engine that does not exist is a bug in the handler, not the client's.
func ConnFor(c *fiber.Ctx, engine string) (DBTX, error) {
	st, err := requestState(c)
	if err != nil {
		return nil, err
	}
	if engine == st.b.eng.name {
		// The engine the request resolved, even if Apply has removed it
		// since: Conn's 404, not a lookup's error.
		return st.lease(c, st.b.eng)
	}
	eng, err := st.b.mw.engines.lookup(engine)
	if err != nil {
		return nil, err
	}
	return st.lease(c, eng)
}

// Tenant returns the engine name resolved for the request, or "" outside
// the middleware. The string belongs to the configuration, so it may be kept.
func Tenant(c *fiber.Ctx) string {
	switch v := c.Locals(stateKey).(type) {
	case *binding:
		return v.eng.name
	case *state:
		return v.b.eng.name
	}
	return ""
}
