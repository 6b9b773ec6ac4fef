package fiberdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// poolSet opens and closes the pools of one [Engines]: lazily, on an
// engine's first acquire; within FIBERDB.max_open_pools, by closing the
// least recently used idle pool first; after FIBERDB.pool_idle_timeout
// without an acquire; and when Apply retires an engine and its last holder
// is done.
//
// A pool is closed only while its engine has no holder (engine.refs == 0)
// and was not handed out by [Engines.Engine]. A holder takes its reference
// before it loads the pool; a closer takes the pool away, then checks refs
// again and puts the pool back if a holder came in between. Either the
// holder sees no pool and opens one (under mu, where it finds the pool put
// back if it raced the closer), or the closer sees the holder and leaves the
// pool open: a pool in use is never closed under its holder.
type poolSet struct {
	e       *Engines
	maxOpen int           // max_open_pools; 0: no limit
	idle    time.Duration // pool_idle_timeout; 0: pools stay open
	tracks  bool          // acquires record when they ran (LRU, idle timeout)
	orders  bool          // acquires record their order and count (the budget's evictions)

	clock atomic.Int64 // coarse monotonic time in ns, advanced by the reaper

	mu     sync.Mutex
	live   map[*engine]struct{} // engines whose pool is open
	closed bool                 // Engines.Close ran: nothing opens again

	idled     broadcast           // an engine lost its last holder, or a pool closed
	closing   sync.WaitGroup      // pools being closed in the background
	draining  map[*pooled]*engine // those pools, until closed (under mu)
	evictions atomic.Uint64       // pools closed by max_open_pools or the idle timeout
	stop      chan struct{}       // ends the reaper
	reaped    chan struct{}       // closed when the reaper has ended
}

// errPoolsFull is the cause of a 503 when every one of max_open_pools is in
// use for the whole AcquireTimeout.
var errPoolsFull = errors.New("every pool FIBERDB.max_open_pools allows is in use")

func newPoolSet(e *Engines, maxOpen int, idle time.Duration, budgeted bool) *poolSet {
	ps := &poolSet{
		e: e, maxOpen: maxOpen, idle: idle, tracks: maxOpen > 0 || idle > 0, orders: budgeted,
		live: map[*engine]struct{}{}, draining: map[*pooled]*engine{},
		stop: make(chan struct{}), reaped: make(chan struct{}),
	}
	if !ps.tracks && !ps.orders {
		close(ps.reaped)
		return ps
	}
	ps.clock.Store(1)
	go ps.reap()
	return ps
}

// touch records that eng is being used, for LRU and the idle timeout. It
// writes the time only when the coarse clock moved, so that a busy engine's
// cache line is not written by every acquire. Under a budget it also counts
// the acquire and records its order, which decide the pool whose idle
// connection the budget evicts (evictConn).
func (ps *poolSet) touch(eng *engine) {
	if ps.orders {
		eng.order.Store(monotonic()) // no counter shared by every acquire
		eng.freq.Add(1)
	}
	if !ps.tracks {
		return
	}
	if now := ps.clock.Load(); eng.used.Load() != now {
		eng.used.Store(now)
	}
}

// open returns eng's pool, opening it if need be. Under max_open_pools it
// first closes the least recently used idle pool, or waits (within ctx) for
// one to become idle. The caller holds a reference on eng.
func (ps *poolSet) open(ctx context.Context, eng *engine) (*pooled, error) {
	for {
		ps.mu.Lock()
		switch {
		case ps.closed:
			ps.mu.Unlock()
			return nil, errEnginesClosed
		case eng.retired.Load():
			ps.mu.Unlock()
			return nil, errRetired
		}
		if p := eng.pool.Load(); p != nil {
			ps.mu.Unlock() // opened by a concurrent acquire, or put back by a closer
			return p, nil
		}
		// Watch before looking for room: engine.drop does not take mu, so
		// the last holder of the only pool that could close may let go
		// after evictLRU saw it held. Watching first, its signal reaches
		// this wait (see broadcast) instead of being lost while the wait
		// runs out its deadline with a pool idle.
		idled := ps.idled.watch()
		if ps.maxOpen == 0 || ps.managed() < ps.maxOpen || ps.evictLRU(eng) {
			p, err := ps.newPool(ctx, eng)
			ps.mu.Unlock()
			ps.idled.unwatch()
			return p, err
		}
		ps.mu.Unlock()
		select {
		case <-idled:
			ps.idled.unwatch()
		case <-ctx.Done():
			ps.idled.unwatch()
			return nil, fmt.Errorf("%w: %w", errPoolsFull, context.Cause(ctx))
		}
	}
}

// newPool creates eng's pool, which connects lazily. pgxpool keeps only
// ctx's values (for its background MinConns connects), never its
// cancellation: the pool outlives the acquire that opened it. The caller
// holds mu.
func (ps *poolSet) newPool(ctx context.Context, eng *engine) (*pooled, error) {
	pc := eng.pc.Copy()
	if b := ps.e.budget; b != nil {
		pc.BeforeConnect = b.beforeConnect(pc.BeforeConnect)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	p := &pooled{pool: pool, budget: ps.e.budget}
	eng.freq.Store(0) // counts from before the pool last closed were not decayed
	eng.pool.Store(p)
	ps.live[eng] = struct{}{}
	return p, nil
}

// poolCtx is what Engines.Engine, which has no context, opens a pool under.
var poolCtx = context.Background()

// managed counts the open pools that max_open_pools limits: all but those
// handed out by Engines.Engine, which stay open for their holder whatever
// the limit. The caller holds mu.
func (ps *poolSet) managed() int {
	n := 0
	for eng := range ps.live {
		if !eng.pinned.Load() {
			n++
		}
	}
	return n
}

// pin opens eng's pool, if need be, and keeps it open until Close or Apply:
// a pool handed out to a caller is never closed under it by eviction, and
// does not count against max_open_pools.
func (ps *poolSet) pin(eng *engine) (*pgxpool.Pool, error) {
	was := eng.pinned.Swap(true)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := eng.pool.Load(); p != nil {
		if !was {
			// It no longer counts against max_open_pools: an acquire
			// waiting for room has it now.
			ps.signal()
		}
		return p.pool, nil
	}
	if eng.retired.Load() {
		return nil, errRetired // Apply replaced it just now
	}
	p, err := ps.newPool(poolCtx, eng)
	if err != nil {
		return nil, err
	}
	if ps.closed {
		// After Close, as before it, Engine hands out a pool; a closed one,
		// whose Acquire answers pgxpool's "closed pool" error.
		eng.pool.Store(nil)
		delete(ps.live, eng)
		p.pool.Close()
	}
	return p.pool, nil
}

// evictLRU closes the least recently used pool that nothing holds, other
// than keep's, and reports whether it closed one. The caller holds mu.
func (ps *poolSet) evictLRU(keep *engine) bool {
	for {
		var victim *engine
		for eng := range ps.live {
			if eng != keep && ps.evictable(eng) && (victim == nil || eng.used.Load() < victim.used.Load()) {
				victim = eng
			}
		}
		if victim == nil {
			return false
		}
		if ps.closeIdle(victim) {
			return true
		}
	}
}

func (*poolSet) evictable(eng *engine) bool {
	return eng.refs.Load() == 0 && !eng.pinned.Load() && eng.iso.get() == nil
}

// closeIdle closes eng's pool unless a holder arrived, and reports whether
// it did. The caller holds mu.
func (ps *poolSet) closeIdle(eng *engine) bool {
	p := eng.pool.Swap(nil)
	if p == nil {
		delete(ps.live, eng)
		return false
	}
	if eng.refs.Load() != 0 {
		eng.pool.Store(p) // a holder came in between: see poolSet's doc
		return false
	}
	delete(ps.live, eng)
	ps.evictions.Add(1)
	ps.closeLater(eng, p)
	return true
}

// closeLater closes eng's pool in the background: Close sends each idle
// connection a Terminate, and waits for acquired ones to come back, which
// must not hold up an acquire that waits for room. Until it has closed, the
// pool shows in Stats.Draining. The caller holds mu.
func (ps *poolSet) closeLater(eng *engine, p *pooled) {
	ps.draining[p] = eng
	ps.closing.Go(func() {
		p.pool.Close()
		ps.mu.Lock()
		delete(ps.draining, p)
		ps.mu.Unlock()
		ps.signal()
	})
}

// retire closes the pool of eng, which Apply retired. pgxpool's Close
// refuses new acquires and waits for the connections taken from the pool,
// so requests that hold one finish normally; the pool shows in
// Stats.Draining until then.
func (ps *poolSet) retire(eng *engine) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.live, eng)
	if p := eng.pool.Swap(nil); p != nil {
		ps.closeLater(eng, p)
	}
	// Its pool no longer counts against max_open_pools, while requests that
	// hold its connections finish: an acquire waiting for room has it now.
	ps.signal()
}

// signal wakes acquires waiting for a pool to become idle.
func (ps *poolSet) signal() { ps.idled.signal() }

// reap advances the coarse clock by its period on every tick and closes
// pools idle for longer than pool_idle_timeout, until Close; under a budget
// it halves the engines' use counts every second. It runs only when
// max_open_pools, pool_idle_timeout or max_total_conns is set. The clock
// counts ticks, not wall time, so that it only ever moves forward.
func (ps *poolSet) reap() {
	defer close(ps.reaped)
	period := time.Second
	if ps.idle > 0 {
		period = min(max(ps.idle/4, 10*time.Millisecond), time.Second)
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ps.stop:
			return
		case <-tick.C:
			now := ps.clock.Add(int64(period))
			if ps.idle > 0 {
				ps.closeIdleSince(now - int64(ps.idle))
			}
			if ps.orders && now/int64(time.Second) != (now-int64(period))/int64(time.Second) {
				ps.decay()
			}
		}
	}
}

// decay halves the use count of every engine with an open pool, so that
// evictConn weighs the last seconds' traffic, not the process's, and marks
// the most used pools, together up to half the budget's connections, as
// spared.
//
// Tenants' traffic is skewed, a few hot and a long tail, and under
// overload every tenant's connection is idle now and then, between one of
// its requests and the next: an eviction that takes a hot tenant's
// connection makes that tenant connect again a moment later. Spared, hot
// tenants keep their connections, and the tail's connections, each used
// for a request or two, recycle among the tail.
func (ps *poolSet) decay() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	type use struct {
		freq int64
		eng  *engine
		p    *pooled
	}
	pools := make([]use, 0, len(ps.live))
	for eng := range ps.live {
		n := eng.freq.Load()
		eng.freq.Add(-n / 2) // keeps acquires counted meanwhile
		if p := eng.pool.Load(); p != nil {
			pools = append(pools, use{freq: n, eng: eng, p: p})
		}
	}
	slices.SortFunc(pools, func(a, b use) int { return cmp.Compare(b.freq, a.freq) })
	kept := int64(0)
	for _, u := range pools {
		kept += int64(u.eng.pc.MaxConns)
		u.p.spared.Store(kept <= ps.e.budget.max/2 && u.freq > 0)
	}
}

// closeIdleSince closes every evictable pool whose engine was last used at
// or before cutoff (coarse clock).
func (ps *poolSet) closeIdleSince(cutoff int64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for eng := range ps.live {
		if eng.used.Load() <= cutoff && ps.evictable(eng) {
			ps.closeIdle(eng)
		}
	}
}

// count returns the number of open pools, and the statistics of those
// still closing, by engine.
func (ps *poolSet) count() (open int, draining map[string]*pgxpool.Stat) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	draining = make(map[string]*pgxpool.Stat, len(ps.draining))
	for p, eng := range ps.draining {
		draining[eng.name] = p.pool.Stat()
	}
	return len(ps.live), draining
}

// evictConn closes one idle connection of the least used pool that has
// one, to make room in the budget, and reports whether it did.
//
// Least used is least often, then least recently: pools are tried in
// order of their engines' acquires in the last seconds (freq, which the
// reaper halves every second), ties broken by the last acquire. The most
// used pools are spared (decay marks them), unless the waiter that evicts
// has waited half its time (budget.urgent): sparing hot tenants
// must not fail a request while a connection is idle. A pool whose every
// connection has a holder waiting is never evicted from: its connection is
// idle only between one holder's release and the next one's wake-up.
func (ps *poolSet) evictConn(ctx context.Context) bool {
	all := ps.e.budget.urgent(waiterFrom(ctx))
	ps.mu.Lock()
	pools := make([]lruPool, 0, len(ps.live))
	for eng := range ps.live {
		p := eng.pool.Load()
		if p == nil || (p.spared.Load() && !all) || eng.refs.Load() >= int64(eng.pc.MaxConns) {
			continue
		}
		pools = append(pools, lruPool{freq: eng.freq.Load(), order: eng.order.Load(), pool: p.pool})
	}
	ps.mu.Unlock()
	slices.SortFunc(pools, func(a, b lruPool) int {
		return cmp.Or(cmp.Compare(a.freq, b.freq), cmp.Compare(a.order, b.order))
	})
	for _, p := range pools {
		conns := p.pool.AcquireAllIdle(ctx)
		if len(conns) == 0 {
			continue
		}
		// The others go back first: the close below waits for the server,
		// and meanwhile the pool's own acquires must find them idle rather
		// than dial (and evict) for want of them.
		victim := conns[0]
		for _, c := range conns[1:] {
			c.Release()
		}
		// Closing the socket gives its budget slot back; the pool then
		// destroys the closed connection on release. Whether it closed is
		// read before the release, after which the pool owns it.
		conn := victim.Conn()
		closeErr := conn.Close(ctx)
		closed := closeErr == nil || conn.IsClosed()
		victim.Release()
		if closed {
			return true
		}
	}
	return false
}

// lruPool is an open pool and how much its engine is used, for evictConn.
type lruPool struct {
	freq, order int64
	pool        *pgxpool.Pool
}

// expire stops every connection of every pool still closing: see
// Engines.Close.
func (ps *poolSet) expire() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, eng := range ps.draining {
		eng.conns.expire()
	}
}

// shutdown closes every pool, in parallel, and stops the reaper. It
// returns when every pool has closed: pgxpool's Close waits for acquired
// connections to come back.
func (ps *poolSet) shutdown() {
	ps.mu.Lock()
	if !ps.closed {
		ps.closed = true
		close(ps.stop)
		for eng := range ps.live {
			if p := eng.pool.Swap(nil); p != nil {
				ps.closeLater(eng, p)
			}
		}
		clear(ps.live)
	}
	ps.mu.Unlock()
	<-ps.reaped
	ps.closing.Wait()
}
