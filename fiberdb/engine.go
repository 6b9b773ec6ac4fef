package fiberdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
)

// engine is one named engine of an [Engines]. name is the config's own
// string: it is what Tenant returns and what errors and metrics carry.
//
// Its pool is opened on first use, never by Open, and may be closed again
// while nothing holds it (FIBERDB.max_open_pools, pool_idle_timeout); the
// next acquire opens a new one. [Engines.Apply] retires an engine it removes
// or changes: retired, it hands out nothing more, and its pool closes once
// the last connection taken from it is back (pgxpool's Close waits for them).
type engine struct {
	name string
	set  *Engines
	pc   *pgxpool.Config // the pool config, Tracer and Configure applied; copied per pool; nil if shared

	// A tenant that shares target's pool (engine key "pool") has no pool,
	// pc or conns of its own: its leases take target's connections. Its
	// holders count against its own tenant_max_concurrency, not target's;
	// each also holds a reference on target. Any engine that sets
	// search_path or settings, with a pool of its own or not, hands its
	// leases a tenantConn that begins every transaction with pre.
	target *engine
	pre    *prelude                // nil: the engine sets nothing
	isoPre atomic.Pointer[prelude] // under test isolation: pre, and a reset of what the pool's other engines set
	shares sharing                 // the config that made target and pre, for Apply

	pool    atomic.Pointer[pooled] // nil while closed
	used    atomic.Int64           // the coarse clock at the last acquire
	pinned  atomic.Bool            // handed out by Engines.Engine: eviction leaves it open
	retired atomic.Bool            // replaced or removed by Apply
	iso     isoSlot

	// The fields from refs to holders are written by every request (order
	// and freq only under a budget, holders only under
	// tenant_max_concurrency); everything above is read by every request
	// and written rarely. The padding keeps them on cache lines of their
	// own, so that a request on one core does not take the read-mostly line
	// away from a request on another.
	_ [64]byte

	// refs counts what keeps the engine's pool open: its leases and
	// acquires under way, those of the tenants that share its pool, and a
	// TestIsolation pin. A pool is closed (by eviction, the idle timeout or
	// retirement) only while refs is 0; see poolSet for how that check and
	// a concurrent acquire agree.
	refs     atomic.Int64
	resolved atomic.Uint64
	order    atomic.Int64 // when the last acquire ran, on monotonic's clock (under a budget)
	freq     atomic.Int64 // acquires, halved every second (under a budget)
	// holders counts the engine's own leases and acquires under way, which
	// tenant_max_concurrency limits: one tenant's requests, so neither the
	// leases of the tenants that share its pool nor a TestIsolation pin,
	// which refs counts too. Counted only while the limit is on.
	holders atomic.Int64
	_       [64]byte

	busy    atomic.Uint64 // acquires refused by tenant_max_concurrency (429)
	failLog logLimiter    // acquire failures
	conns   connSet       // every open connection, for QueryTimeout and Close's force
}

// errRetired is what a retired engine answers internally; acquire turns it
// into the engine that replaced it, or ErrEngineNotDefined.
var errRetired = errors.New("fiberdb: engine retired by Apply")

// errRemoved marks the ErrEngineNotDefined of an engine that Apply removed
// after a request resolved it: the request's tenant is gone, which the
// middleware answers through ErrorHandler (404 by default). A ConnFor that
// names an engine never configured, a programming error, is not marked.
var errRemoved = errors.New("removed by Apply")

// acquired is a connection taken for a lease, not yet installed in one.
type acquired struct {
	eng  *engine
	src  source
	db   DBTX
	conn *pgxpool.Conn
}

// acquire takes a connection for a lease, waiting at most until ctx is done.
// The engine keeps its place under tenant_max_concurrency and a reference
// for the lease: lease.end gives them back through unhold. If Apply
// retired the engine after the request resolved it, the connection comes
// from the engine that replaced it, under the same name; a removed engine
// answers an error that matches ErrEngineNotDefined and errRemoved.
func (eng *engine) acquire(ctx context.Context) (acquired, error) {
	for {
		src, err := eng.hold(ctx)
		if errors.Is(err, errRetired) {
			name := eng.name
			if eng, err = eng.set.lookup(name); err != nil {
				return acquired{}, fmt.Errorf("acquire engine %q: %w: %w", name, errRemoved, err)
			}
			continue
		}
		if err != nil {
			return acquired{}, &AcquireError{Engine: eng.name, Err: err}
		}
		db, conn, err := src.acquire(ctx)
		if err != nil {
			eng.unhold()
			if t, ok := src.(*tenantConn); ok {
				src = t.inner
			}
			if p, ok := src.(*pooled); ok && eng.poolEngine().pool.Load() != p {
				// Closed between hold and acquire: Apply retired the engine
				// (look it up again) or it was evicted (open it again).
				continue
			}
			return acquired{}, &AcquireError{Engine: eng.name, Err: err}
		}
		return acquired{eng: eng, src: src, db: db, conn: conn}, nil
	}
}

// poolEngine is the engine whose pool eng's leases use: eng, or its target.
func (eng *engine) poolEngine() *engine {
	if eng.target != nil {
		return eng.target
	}
	return eng
}

// hold takes a place under tenant_max_concurrency and a reference, and
// returns the engine's source: the pinned connection under test isolation,
// else its pool, opened if need be. A shared-pool tenant's reference holds
// its target too, and its source is a new tenantConn over the target's.
// unhold gives back what hold took.
func (eng *engine) hold(ctx context.Context) (source, error) {
	if q := eng.set.limits.quota; q > 0 && eng.holders.Add(1) > q {
		eng.holders.Add(-1)
		eng.busy.Add(1)
		return nil, ErrTenantBusy
	}
	eng.refs.Add(1)
	if eng.retired.Load() {
		eng.leave()
		eng.drop()
		return nil, errRetired
	}
	pe := eng.poolEngine()
	if pe != eng {
		// Apply retires a tenant whenever it retires its target, so a
		// retired target means this tenant was retired meanwhile.
		pe.refs.Add(1)
		if pe.retired.Load() {
			eng.unhold()
			return nil, errRetired
		}
	}
	inner, err := pe.source(ctx)
	if err != nil {
		eng.unhold()
		return nil, err
	}
	pre := eng.pre // nil for an engine that sets neither search_path nor settings
	if _, ok := inner.(*pinned); ok {
		if iso := eng.isoPre.Load(); iso != nil {
			// The tenants' settings on the pinned connection, reset for an
			// engine (or tenant) that sets none: see engine.isoPre.
			pre = iso
		}
	}
	if pre == nil {
		return inner, nil
	}
	return &tenantConn{inner: inner, pre: pre}, nil
}

// source returns the source of an engine with a pool of its own: the pinned
// connection under test isolation, else its pool, opened if need be. The
// caller holds a reference on eng.
func (eng *engine) source(ctx context.Context) (source, error) {
	if pin := eng.iso.get(); pin != nil {
		return pin, nil
	}
	eng.set.pools.touch(eng)
	if p := eng.pool.Load(); p != nil {
		return p, nil
	}
	p, err := eng.set.pools.open(ctx, eng)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// gone reports whether eng can have no connection again: Apply retired it,
// nothing holds it (an acquire under way, whose connect may still add a
// connection, holds a reference), its pool is closed (a retired engine
// opens none) and so is every connection it had. The reaper then forgets it.
func (eng *engine) gone() bool {
	return eng.retired.Load() && eng.refs.Load() == 0 && eng.pool.Load() == nil && eng.conns.empty()
}

// unhold gives back what hold took: the place under tenant_max_concurrency
// and the references.
func (eng *engine) unhold() {
	eng.leave()
	eng.unref()
}

// leave gives back the place under tenant_max_concurrency that hold took.
// The limit is fixed when Open runs, so hold counted this holder if it is
// on now.
func (eng *engine) leave() {
	if eng.set.limits.quota > 0 {
		eng.holders.Add(-1)
	}
}

// unref gives back a reference: a shared-pool tenant's and the one it took
// on its target.
func (eng *engine) unref() {
	eng.drop()
	if eng.target != nil {
		eng.target.drop()
	}
}

// drop gives back eng's own reference. The last holder's end may let an
// acquire waiting for a pool (max_open_pools) close this one.
func (eng *engine) drop() {
	if eng.refs.Add(-1) == 0 {
		eng.set.pools.signal()
	}
}

// samePoolConfig reports whether two engine pool configs would make the
// same pool: the connection string and every field an engine option sets.
// TestSamePoolConfigSeesEveryOption fails when config grows an option this
// does not compare.
func samePoolConfig(a, b *pgxpool.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	ac, bc := a.ConnConfig, b.ConnConfig
	return a.ConnString() == b.ConnString() &&
		a.MaxConns == b.MaxConns && a.MinConns == b.MinConns && a.MinIdleConns == b.MinIdleConns &&
		a.MaxConnLifetime == b.MaxConnLifetime && a.MaxConnLifetimeJitter == b.MaxConnLifetimeJitter &&
		a.MaxConnIdleTime == b.MaxConnIdleTime && a.HealthCheckPeriod == b.HealthCheckPeriod &&
		a.PingTimeout == b.PingTimeout &&
		ac.ConnectTimeout == bc.ConnectTimeout && ac.DefaultQueryExecMode == bc.DefaultQueryExecMode &&
		ac.StatementCacheCapacity == bc.StatementCacheCapacity &&
		ac.DescriptionCacheCapacity == bc.DescriptionCacheCapacity &&
		maps.Equal(ac.RuntimeParams, bc.RuntimeParams)
}

// same reports whether Apply may keep eng for an engine whose pool config
// (Tracer and Configure applied) is pc, or that shares as s: the same pool,
// or the same target engine with the same search_path and settings.
func (eng *engine) same(pc *pgxpool.Config, s sharing) bool {
	return samePoolConfig(eng.pc, pc) && eng.shares.equal(s)
}
