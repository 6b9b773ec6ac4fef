package fiberdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fiberdb/fiberdb/config"
)

// Engines is the live set of configured engines: one pool per engine,
// opened on first use, within an optional budget of server connections. It
// is safe for concurrent use, and [Engines.Apply] changes it while it
// serves.
type Engines struct {
	closeTimeout time.Duration
	reaper       *reaper // QueryTimeout's

	cur    atomic.Pointer[registry]
	opts   OpenOptions
	limits limits
	budget *budget // nil: FIBERDB.max_total_conns is 0
	pools  *poolSet
	counts resolveCounts
	iso    isolation

	applyMu   sync.Mutex // serializes Apply and Close
	closeOnce sync.Once
}

// limits are the FIBERDB settings Open reads once.
type limits struct {
	quota int64 // tenant_max_concurrency; 0: none
}

// OpenOptions adjusts how [Open] builds pools.
type OpenOptions struct {
	// Configure runs for each engine, in name order, on a fresh copy of its
	// pool config, when Open or Apply prepares it: attach a pgx tracer that
	// knows the engine, register types in AfterConnect, and so on. Every
	// pool the engine opens later starts from the result. Apply runs it for
	// every engine and keeps an engine's pool only if the result makes the
	// same pool as before, so it must give the same result for the same
	// engine each time: one that differs per call (a random
	// application_name) replaces every pool on every Apply. It must not set
	// a session-level SET that differs per request. An error aborts Open
	// (or Apply).
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

	// Logger receives Open's (and Apply's) warnings: one record per engine
	// whose default_query_exec_mode is describe_exec, which returns other
	// clients' results behind a transaction pooler such as PgBouncer
	// (fiberdb cannot tell whether one is in front).
	//
	// Optional. Default: slog.Default()
	Logger *slog.Logger

	// CloseTimeout bounds how long [Engines.Close] waits for acquired
	// connections to come back before it stops them.
	//
	// Optional. Default: 10 * time.Second
	CloseTimeout time.Duration
}

// errEnginesClosed answers an acquire after [Engines.Close].
var errEnginesClosed = errors.New("fiberdb: engines closed")

// Open prepares every engine of conf, in name order, and opens no pool and
// no connection: an engine's pool is created on its first acquire (one
// creation under a burst), so Open succeeds while the database is down and
// costs little for thousands of tenants. If preparing an engine fails
// (OpenOptions), Open returns an error naming it.
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
	e := &Engines{limits: limits{quota: int64(conf.TenantMaxConcurrency)}, reaper: newReaper()}
	if len(opts) > 0 {
		e.opts = opts[0]
	}
	if e.opts.Logger == nil {
		e.opts.Logger = slog.Default()
	}
	if e.opts.CloseTimeout <= 0 {
		e.opts.CloseTimeout = 10 * time.Second
	}
	e.closeTimeout = e.opts.CloseTimeout
	engines, err := e.prepare(ctx, conf, nil)
	if err != nil {
		return nil, err
	}
	e.reaper.add(engines, nil)
	e.pools = newPoolSet(e, conf.MaxOpenPools, conf.PoolIdleTimeout, conf.MaxTotalConns > 0)
	if conf.MaxTotalConns > 0 {
		e.budget = newBudget(conf.MaxTotalConns, e.pools.evictConn)
	}
	e.cur.Store(newRegistry(conf, engines))
	return e, nil
}

// prepare builds the engines of conf, keeping those of old that conf leaves
// as they are: engines with a pool of their own first, then the tenants
// that share one, which keep their engine only if their target kept its.
func (e *Engines) prepare(ctx context.Context, conf *config.Config, old *registry) (map[string]*engine, error) {
	engines := make(map[string]*engine, len(conf.Engines))
	keep := func(name string, pc *pgxpool.Config, s sharing) bool {
		if old == nil {
			return false
		}
		prev, ok := old.get(name)
		if !ok || !prev.same(pc, s) {
			return false
		}
		engines[name] = prev
		return true
	}
	var shared []string
	for _, name := range conf.Names() {
		pc := conf.Engines[name].PoolConfig()
		if pc == nil {
			shared = append(shared, name)
			continue
		}
		if e.opts.Tracer != nil {
			pc.ConnConfig.Tracer = e.opts.Tracer(name)
		}
		if e.opts.Configure != nil {
			if err := e.opts.Configure(name, pc); err != nil {
				return nil, fmt.Errorf("open engine %q: %w", name, err)
			}
		}
		ce := conf.Engines[name]
		s := sharing{searchPath: ce.SearchPath, settings: maps.Clone(ce.Settings)}
		if keep(name, pc, s) {
			continue
		}
		warnExecMode(ctx, e.opts.Logger, name, pc)
		eng := &engine{name: ce.Name, set: e, pc: pc, shares: s, pre: newPrelude(s.searchPath, s.settings, nil)}
		eng.conns.track(pc) // every pool the engine opens starts from pc
		engines[name] = eng
	}
	for _, name := range shared {
		ce := conf.Engines[name]
		s := sharing{target: engines[ce.Pool], searchPath: ce.SearchPath, settings: maps.Clone(ce.Settings)}
		if keep(name, nil, s) {
			continue
		}
		engines[name] = &engine{
			name: ce.Name, set: e, target: s.target, shares: s,
			pre: newPrelude(s.searchPath, s.settings, nil),
		}
	}
	return engines, nil
}

// Apply switches e to conf, atomically: a request resolves against the old
// set or the new one, never a mix. conf must be created by [config.Load]; a
// nil or hand-built conf is an error and changes nothing, as does an
// OpenOptions.Configure that fails.
//
// Engines only in conf serve at once (their pools open on first use).
// Engines no longer in conf answer 404 to new requests; requests and
// [Engines.Acquire] holders that already have a connection finish normally,
// and the engine's pool closes once the last one is back. An engine whose
// url or pool options changed gets a new pool the same way, under the same
// name; the old pool drains. Unchanged engines keep their pool, connections
// and counters: their traffic sees no error while Apply runs. [Engines.Names],
// [Engines.Engine], [Engines.Config] and the default resolver (the one [New]
// builds when Config.Resolver is nil) follow at once.
//
// A pool handed out by [Engines.Engine] for an engine Apply removes or
// changes is closed once its connections are back, like the others: its
// holders must take the engine's new pool from Engine. The FIBERDB limits
// (max_total_conns, max_open_pools, pool_idle_timeout,
// tenant_max_concurrency) are read by Open and kept.
func (e *Engines) Apply(ctx context.Context, conf *config.Config) error {
	if conf == nil {
		return errors.New("apply: nil config")
	}
	if err := conf.Validate(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	conf = conf.Clone()
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	old := e.cur.Load()
	engines, err := e.prepare(ctx, conf, old)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	e.reaper.add(engines, old) // before any request can lease from them
	reg := newRegistry(conf, engines)
	if e.iso.active.Load() {
		// Before they serve: a tenant Apply adds to a pinned pool leases
		// from the pin, and must reset what the pool's others set.
		setIsoPreludes(reg, old)
	}
	e.cur.Store(reg)
	for name, eng := range old.byName {
		if engines[name] == eng {
			continue
		}
		// An acquire that loaded the old registry sees retired in hold, or
		// finds the pool closed and looks the engine up again.
		eng.retired.Store(true)
		e.pools.retire(eng)
	}
	return nil
}

// Engine returns the pool of the named engine, opening it if need be. For a
// name that is not configured it returns an error that [errors.Is]
// [ErrEngineNotDefined] and reads 'SQLALCHEMY_ENGINES["name"]' was not
// defined.
//
// The pool belongs to e: callers may Acquire from it (and must Release what
// they acquire) but must not Close it. It stays open until [Engines.Close],
// or until [Engines.Apply] removes or changes the engine: eviction
// (max_open_pools, pool_idle_timeout) never closes a pool handed out here.
// Code that only reads statistics should use [Engines.Stats], which opens
// nothing. The pool's connections do not apply the engine's search_path and
// settings, which fiberdb sets per transaction: use [Engines.Acquire] for
// those.
func (e *Engines) Engine(name string) (*pgxpool.Pool, error) {
	for {
		eng, err := e.lookup(name)
		if err != nil {
			return nil, err
		}
		if eng.target != nil {
			return nil, fmt.Errorf("engine %q: %w", name, ErrSharedPool)
		}
		pool, err := e.pools.pin(eng)
		if errors.Is(err, errRetired) {
			continue // Apply replaced it just now: take the new one
		}
		return pool, err
	}
}

// Default returns the pool of the "default" (landlord) engine.
func (e *Engines) Default() (*pgxpool.Pool, error) { return e.Engine(config.DefaultEngine) }

// Names returns the engine names, sorted. The slice is a copy.
func (e *Engines) Names() []string { return append([]string(nil), e.cur.Load().names...) }

// Config returns a copy of the configuration e serves: the one given to
// Open, or to the latest Apply. Changing the copy changes nothing in e.
func (e *Engines) Config() *config.Config { return e.cur.Load().conf.Clone() }

// Close ends any active [Engines.TestIsolation], then closes every pool, in
// parallel, including those of engines Apply retired. It waits for acquired
// connections to be released, but at most OpenOptions.CloseTimeout (default
// 10s): then every read and write on the connections still acquired fails at
// once, so that their holders' statements end with a timeout error, and Close
// waits up to 5 seconds more for them to be released. A holder that still
// keeps its connection after that (one that runs no statement) does not hold
// Close up: its pool finishes closing when it releases it. Calling Close
// twice is safe.
func (e *Engines) Close() {
	e.closeOnce.Do(func() {
		e.applyMu.Lock()
		defer e.applyMu.Unlock()
		defer e.reaper.close()
		for _, eng := range e.cur.Load().byName {
			eng.iso.end()
		}
		done := make(chan struct{})
		go func() {
			e.pools.shutdown()
			close(done)
		}()
		grace := time.NewTimer(e.closeTimeout)
		defer grace.Stop()
		select {
		case <-done:
			return
		case <-grace.C:
		}
		e.pools.expire()
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
// it. A handler's Begin (or batch with Batch.BeginTx, whose isolation level
// then cannot apply) becomes a nested savepoint and its Commit releases
// that savepoint, so later requests in the same test see committed work;
// work a request left uncommitted is rolled back when it ends, as always.
// Statements a request runs outside any transaction stay, as autocommit
// would keep them, unless one of its statements failed: then the request's
// work is discarded, because a failed statement aborts the savepoint.
//
// It needs no app or request: call it at the start of a test. Requests on one
// engine share the pinned connection and are served one at a time (a second
// waits up to AcquireTimeout). Code that takes a pool from [Engines.Engine]
// directly bypasses isolation. Engines with a pool of their own that an
// [Engines.Apply] adds meanwhile are not isolated; a tenant it adds to the
// pool of an isolated engine is, like the others. Engines that share a
// pool share its pinned connection too: a request that holds it (through
// a tenant or the pool engine) and asks for another of them, with ConnFor
// or Acquire, waits for itself until its AcquireTimeout or context ends.
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
	reg := e.cur.Load()
	resolved := make(map[string]uint64, len(reg.names))
	for name, eng := range reg.byName {
		resolved[name] = eng.resolved.Load()
	}
	return e.counts.stats(resolved)
}

// Stats returns the pools and the connection budget as they are now. It
// opens nothing, so a metrics scrape or a leak check does not create the
// pools of idle tenants. It is safe to call concurrently.
func (e *Engines) Stats() Stats {
	reg := e.cur.Load()
	s := Stats{
		Pools:         map[string]*pgxpool.Stat{},
		TenantBusy:    map[string]uint64{},
		PoolEvictions: e.pools.evictions.Load(),
	}
	s.OpenPools, s.Draining = e.pools.count()
	for name, eng := range reg.byName {
		if p := eng.pool.Load(); p != nil {
			s.Pools[name] = p.pool.Stat()
		}
		if n := eng.busy.Load(); n > 0 {
			s.TenantBusy[name] = n
		}
	}
	if b := e.budget; b != nil {
		s.Budget = BudgetStats{
			Max: int(b.max), InUse: int(b.used.Load()), Peak: int(b.peak.Load()),
			Waiting: int(b.waiting.Load()), Waits: b.waits.Load(),
			Timeouts: b.timeouts.Load(), Evictions: b.evictions.Load(),
		}
	}
	return s
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
	reg := e.cur.Load()
	if eng, ok := reg.get(name); ok {
		return eng, nil
	}
	return nil, reg.notDefined(name)
}
