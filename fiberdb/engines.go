package fiberdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fiberdb/fiberdb/config"
)

// Engines holds one pool per configured engine. It is safe for concurrent use.
type Engines struct {
	closeTimeout time.Duration
	conf         *config.Config
	names        []string
	engines      map[string]*engine
	counts       resolveCounts
	iso          isolation

	closeOnce sync.Once
}

// OpenOptions adjusts how [Open] builds pools.
type OpenOptions struct {
	// Configure runs for each engine, in name order, on a fresh copy of its
	// pool config before the pool is created: attach a pgx tracer that knows
	// the engine, register types in AfterConnect, and so on. It must not set
	// a session-level SET that differs per request. An error aborts Open.
	//
	// Optional. Default: nil
	Configure func(engine string, pc *pgxpool.Config) error

	// Tracer, when set, returns the query tracer for an engine's
	// connections, so traces and logs can carry the engine name. A tracer
	// that also implements pgxpool.AcquireTracer or ReleaseTracer traces
	// those too. It runs before Configure.
	//
	// Optional. Default: nil
	Tracer func(engine string) pgx.QueryTracer

	// Logger receives Open's warnings: one record per engine whose
	// default_query_exec_mode is describe_exec, which returns other clients'
	// results behind a transaction pooler such as PgBouncer (fiberdb cannot
	// tell whether one is in front).
	//
	// Optional. Default: slog.Default()
	Logger *slog.Logger

	// CloseTimeout bounds how long [Engines.Close] waits for acquired
	// connections to come back before it stops them.
	//
	// Optional. Default: 10 * time.Second
	CloseTimeout time.Duration
}

// Open creates one pgxpool per engine in conf, in name order. Pools connect
// lazily: with the default pool_min_conns of 0, Open opens no connection, so
// it succeeds even while the database is down. If creating a pool fails, Open
// closes the pools it already created and returns an error naming the engine.
//
// conf must be created by [config.Load] (a hand-built Config or Engine has no
// pool configuration): Open returns an error matching [config.ErrNotLoaded]
// otherwise, as [config.Config.Validate] reports. Open keeps a copy of conf,
// so later changes to it have no effect.
//
// The caller owns the result and must [Engines.Close] it, typically from
// app.Hooks().OnShutdown, after the server has drained.
func Open(ctx context.Context, conf *config.Config, opts ...OpenOptions) (*Engines, error) {
	if conf == nil {
		return nil, errors.New("open engines: nil config")
	}
	if err := conf.Validate(); err != nil {
		return nil, fmt.Errorf("open engines: %w", err)
	}
	conf = conf.Clone()
	var o OpenOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
	e := &Engines{closeTimeout: o.CloseTimeout, conf: conf, names: conf.Names(), engines: make(map[string]*engine, len(conf.Engines))}
	for _, name := range e.names {
		pc := conf.Engines[name].PoolConfig()
		if pc == nil {
			e.Close() //nolint:contextcheck // Close takes no context; its rollbacks bound themselves
			return nil, fmt.Errorf("open engine %q: an engine that shares another's pool is not supported yet", name)
		}
		var err error
		if o.Tracer != nil {
			pc.ConnConfig.Tracer = o.Tracer(name)
		}
		if o.Configure != nil {
			err = o.Configure(name, pc)
		}
		eng := &engine{name: conf.Engines[name].Name}
		if err == nil {
			warnExecMode(ctx, o.Logger, name, pc)
			eng.conns.track(pc)
			eng.pool, err = pgxpool.NewWithConfig(ctx, pc)
		}
		if err != nil {
			e.Close() //nolint:contextcheck // Close takes no context; its rollbacks bound themselves
			return nil, fmt.Errorf("open engine %q: %w", name, err)
		}
		e.engines[name] = eng
	}
	return e, nil
}

// Engine returns the pool of the named engine. For a name that is not
// configured it returns an error that [errors.Is] [ErrEngineNotDefined] and
// reads 'SQLALCHEMY_ENGINES["name"]' was not defined.
//
// The pool belongs to e: callers may Acquire from it (and must Release what
// they acquire) but must not Close it.
func (e *Engines) Engine(name string) (*pgxpool.Pool, error) {
	eng, err := e.lookup(name)
	if err != nil {
		return nil, err
	}
	return eng.pool, nil
}

// Default returns the pool of the "default" (landlord) engine.
func (e *Engines) Default() (*pgxpool.Pool, error) { return e.Engine(config.DefaultEngine) }

// Names returns the engine names, sorted. The slice is a copy.
func (e *Engines) Names() []string { return append([]string(nil), e.names...) }

// Config returns a copy of the configuration e was opened with: changing it
// changes nothing in e.
func (e *Engines) Config() *config.Config { return e.conf.Clone() }

// Close ends any active [Engines.TestIsolation], then closes every pool, in
// parallel. It waits for acquired connections to be released, but at most
// OpenOptions.CloseTimeout (default 10s): then every read and write on the
// connections still acquired fails at once, so that their holders' statements
// end with a timeout error, and Close waits up to 5 seconds more for them to
// be released. A holder that still keeps its connection after that (one
// that runs no statement) does not hold Close up: its pool finishes closing
// when it releases it. Calling Close twice is safe.
func (e *Engines) Close() {
	e.closeOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			var wg sync.WaitGroup
			for _, eng := range e.engines {
				wg.Go(func() {
					eng.iso.end()
					eng.pool.Close()
				})
			}
			wg.Wait()
			close(done)
		}()
		grace := time.NewTimer(e.closeTimeout)
		defer grace.Stop()
		select {
		case <-done:
			return
		case <-grace.C:
		}
		for _, eng := range e.engines {
			eng.conns.expire()
		}
		grace.Reset(cleanupTimeout)
		select {
		case <-done:
		case <-grace.C:
		}
	})
}

// TestIsolation makes everything that follows undoable, for tests: it pins
// one connection per engine inside an outer transaction, and until rollback
// is called, [Conn], [ConnFor] and [Engines.Acquire] hand out a savepoint on
// it. A handler's Begin becomes a nested savepoint and its Commit releases
// that savepoint, so later requests in the same test see committed work;
// work a request left uncommitted is rolled back when it ends, as always.
// Statements a request runs outside any transaction stay, as autocommit
// would keep them, unless one of its statements failed: then the request's
// work is discarded, because a failed statement aborts the savepoint.
//
// It needs no app or request: call it at the start of a test. Requests on one
// engine share the pinned connection and are served one at a time (a second
// waits up to AcquireTimeout). Code that takes a pool from [Engines.Engine]
// directly bypasses isolation.
//
// rollback undoes everything, releases the pinned connections and ends
// isolation; it is safe to call more than once. It returns
// [ErrIsolationActive] if isolation is already active.
func (e *Engines) TestIsolation(ctx context.Context) (rollback func() error, err error) {
	return isolate(ctx, e)
}

// Acquire returns a connection to the named engine for code that runs
// outside a request: jobs, CLIs and tests (Flask-SQLAlchemy-Lite's
// sessionmaker). The caller must call release, which rolls back a
// transaction left open and returns the connection; it is idempotent, and
// the connection answers [ErrConnReleased] afterwards. Under
// [Engines.TestIsolation] it is a savepoint on the pinned connection, like a
// request's. ctx bounds the wait for a connection.
func (e *Engines) Acquire(ctx context.Context, name string) (db DBTX, release func() error, err error) {
	eng, err := e.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	c, err := eng.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	h := c.into(new(lease))
	return h, func() error { return h.l.end(ctx) }, nil
}

// ResolveStats returns the current counts. It is cheap and safe to call
// concurrently, for example from a metrics scrape.
func (e *Engines) ResolveStats() ResolveStats {
	resolved := make(map[string]uint64, len(e.engines))
	for name, eng := range e.engines {
		resolved[name] = eng.resolved.Load()
	}
	return e.counts.stats(resolved)
}

// warnExecMode warns of an exec mode that is unsafe behind a transaction
// pooler. pgx sends describe_exec's describe and execute as two
// transactions, which PgBouncer may run on different server connections:
// the execute then runs another client's unnamed statement. exec,
// simple_protocol and cache_describe are safe behind any pooler;
// cache_statement (the default) needs PgBouncer 1.21 or later with
// max_prepared_statements set.
func warnExecMode(ctx context.Context, logger *slog.Logger, engine string, pc *pgxpool.Config) {
	if pc.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeDescribeExec {
		logger.LogAttrs(ctx, slog.LevelWarn,
			"fiberdb: default_query_exec_mode describe_exec returns other requests' results behind a transaction pooler such as PgBouncer; use exec, simple_protocol or cache_describe there",
			slog.String("engine", engine))
	}
}

func (e *Engines) lookup(name string) (*engine, error) {
	if eng, ok := e.engines[name]; ok {
		return eng, nil
	}
	return nil, &config.KeyError{
		Key:    e.conf.Key + "[" + strconv.Quote(name) + "]",
		Reason: "was not defined",
		Err:    ErrEngineNotDefined,
	}
}
