// Package benchapp builds the Fiber apps that bench/ compares: fiberdb and
// the hand-written baselines it is measured against. It is internal: the
// benchmarks and bench/cmd/benchserver share it, nobody else should.
package benchapp

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
)

// Tenants are the tenant engines of every multi-tenant variant, routed by
// "<name>.localhost".
var Tenants = []string{"acme", "globex", "initech"}

// Open loads engines, a SQLALCHEMY_ENGINES map, and opens them.
func Open(ctx context.Context, engines map[string]any) (*fiberdb.Engines, error) {
	conf, err := Load(engines)
	if err != nil {
		return nil, err
	}
	e, err := fiberdb.Open(ctx, conf)
	if err != nil {
		return nil, fmt.Errorf("open engines: %w", err)
	}
	return e, nil
}

// Load loads engines, a SQLALCHEMY_ENGINES map.
func Load(engines map[string]any) (*config.Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(map[string]any{config.DefaultKey: engines}, ""), nil); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	conf, err := config.Load(k)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return conf, nil
}

// NewApp is the Fiber configuration of every variant. EnableTrustedProxyCheck
// is what a production app (and cmd/demo) sets.
func NewApp() *fiber.App {
	return fiber.New(fiber.Config{EnableTrustedProxyCheck: true, DisableStartupMessage: true})
}

// PoolsByHost returns the pools of those of Tenants that e has, keyed by
// "<name>.localhost".
func PoolsByHost(e *fiberdb.Engines) (map[string]*pgxpool.Pool, error) {
	pools := map[string]*pgxpool.Pool{}
	for _, name := range e.Names() {
		if !slices.Contains(Tenants, name) {
			continue
		}
		pool, err := e.Engine(name)
		if err != nil {
			return nil, err
		}
		pools[name+".localhost"] = pool
	}
	return pools, nil
}

// PgxpoolApp is the hand-written baseline: SELECT 1 on GET / through
// pool.QueryRow, which acquires and releases inside the call.
func PgxpoolApp(pool *pgxpool.Pool) *fiber.App {
	app := NewApp()
	app.Get("/", func(c *fiber.Ctx) error { return Select1(c, pool) })
	return app
}

// PgxpoolHostApp is PgxpoolApp with the pool picked by c.Hostname().
func PgxpoolHostApp(pools map[string]*pgxpool.Pool) *fiber.App {
	app := NewApp()
	app.Get("/", func(c *fiber.Ctx) error {
		pool, ok := pools[c.Hostname()]
		if !ok {
			return fiber.ErrNotFound
		}
		return Select1(c, pool)
	})
	return app
}

// PgxconnApp is the hand-written form of what fiberdb does: the request
// holds one connection, acquired before its query and released in a defer
// when the handler returns. It has none of fiberdb's resolution or guards, so
// fiberdb against it is the cost of fiberdb's own code, and PgxconnApp
// against PgxpoolApp the cost of holding a connection for the request.
func PgxconnApp(pool *pgxpool.Pool) *fiber.App {
	app := NewApp()
	app.Get("/", func(c *fiber.Ctx) error {
		conn, err := pool.Acquire(c.UserContext())
		if err != nil {
			return err
		}
		defer conn.Release()
		return Select1(c, conn)
	})
	return app
}

// minimalState is MinimalApp's per-request state.
type minimalState struct {
	pool *pgxpool.Pool
	conn *pgxpool.Conn
}

var minimalStates = sync.Pool{New: func() any { return new(minimalState) }}

// minimalKey is where MinimalApp keeps a request's state.
type minimalKey struct{}

// MinimalApp is the least a tenant middleware can do, written by hand: the
// pool picked by c.Hostname() in a map, a pooled per-request state in the
// request's user values, the connection acquired on the handler's first
// use and released after the rest of the chain returns. It has none of
// fiberdb's guards, bounds, retries or Host checks. fiberdb against it is
// what those cost over HTTP; it against PgxconnApp, what any middleware of
// this shape costs.
func MinimalApp(pools map[string]*pgxpool.Pool) *fiber.App {
	return minimalApp(pools, func(c *fiber.Ctx, conn *pgxpool.Conn) error { return Select1(c, conn) })
}

// MinimalLeaseApp is MinimalApp with a handler that only takes its
// connection and answers "ok", as BenchmarkLease's do.
func MinimalLeaseApp(pools map[string]*pgxpool.Pool) *fiber.App {
	return minimalApp(pools, func(c *fiber.Ctx, _ *pgxpool.Conn) error { return c.SendString("ok") })
}

// minimalApp is MinimalApp with use as the handler's work on its connection.
func minimalApp(pools map[string]*pgxpool.Pool, use func(*fiber.Ctx, *pgxpool.Conn) error) *fiber.App {
	app := NewApp()
	app.Use(func(c *fiber.Ctx) error {
		pool, ok := pools[c.Hostname()]
		if !ok {
			return fiber.ErrNotFound
		}
		st := minimalStates.Get().(*minimalState) //nolint:forcetypeassert,errcheck // the pool holds only these
		st.pool = pool
		c.Context().SetUserValue(minimalKey{}, st)
		defer func() { // a handler that panics must not keep its connection
			if st.conn != nil {
				st.conn.Release()
			}
			*st = minimalState{}
			c.Context().SetUserValue(minimalKey{}, nil)
			minimalStates.Put(st)
		}()
		return c.Next()
	})
	app.Get("/", func(c *fiber.Ctx) error {
		st, ok := c.Context().UserValue(minimalKey{}).(*minimalState)
		if !ok {
			return fiber.ErrInternalServerError
		}
		if st.conn == nil {
			conn, err := st.pool.Acquire(c.UserContext())
			if err != nil {
				return err
			}
			st.conn = conn
		}
		return use(c, st.conn)
	})
	return app
}

// SharedPrelude is the set_config that fiberdb sends before every
// statement of the bench's shared-pool tenant (schema acme, setting
// app.tenant): the same SQL and arguments (fiberdb's
// TestBenchSharedPreludeIsFiberdbs checks), for PgxbatchApp.
var SharedPrelude = pgx.QueuedQuery{
	SQL:       "select set_config($1::text, $2::text, true), set_config($3::text, $4::text, true)",
	Arguments: []any{"search_path", `"acme", pg_temp`, "app.tenant", "acme"},
}

// PgxbatchApp is a shared-pool tenant's statement written by hand: the
// request holds one connection of pool, as PgxconnApp does, and sends
// SELECT 1 behind SharedPrelude in one pgx batch, as fiberdb does for a
// tenant with engine key pool. Against an own pool it is what running a
// tenant's settings in the statement's own transaction costs, whoever
// writes it; a fiberdb shared-pool tenant against it is the cost of
// fiberdb's code.
func PgxbatchApp(pool *pgxpool.Pool) *fiber.App {
	app := NewApp()
	app.Get("/", func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		pre := SharedPrelude
		b := &pgx.Batch{QueuedQueries: []*pgx.QueuedQuery{&pre, {SQL: "SELECT 1"}}}
		br := conn.SendBatch(ctx, b)
		var one int
		_, err = br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&one)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return c.SendString("ok")
	})
	return app
}

// FiberdbApp runs SELECT 1 on GET / through fiberdb.Conn.
func FiberdbApp(e *fiberdb.Engines) *fiber.App {
	app := NewApp()
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err
		}
		return Select1(c, db)
	})
	return app
}

// Select1 is the work of every request: SELECT 1, then "ok". A
// *pgxpool.Pool and a *pgxpool.Conn are DBTX too.
func Select1(c *fiber.Ctx, db fiberdb.DBTX) error {
	var one int
	if err := db.QueryRow(c.UserContext(), "SELECT 1").Scan(&one); err != nil {
		return err
	}
	return c.SendString("ok")
}
