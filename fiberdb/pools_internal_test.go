package fiberdb

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// Regression (review R1): under max_open_pools, an acquire that waits for a
// pool to go idle must not miss the last holder letting go between its
// check for an idle pool and its watch for one; it slept until its deadline
// and answered 503 with a pool idle.
//
// The handover is a race, so the test runs it many times, each time letting
// the holder go a varying while after the waiter took poolSet.mu to check
// and watch. Engines pinned by Engines.Engine sit in the open set without
// counting against the limit: the waiter's look for a pool to close walks
// past them, which widens the window between its check and its watch, so
// that without the fix a run fails within a few dozen handovers. In
// synctest's bubble, a waiter that missed the wakeup is durably blocked, so
// its deadline comes at once: the test fails fast instead of waiting.
func TestPoolsOpenSeesTheLastHolderLetGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := openAB(t, map[string]any{"max_open_pools": 1})
		defer e.Close()
		ps := e.pools

		ps.mu.Lock()
		for i := range 2000 {
			pad := &engine{name: "pinned" + strconv.Itoa(i)} // no pool: Close has nothing to close
			pad.pinned.Store(true)
			ps.live[pad] = struct{}{}
		}
		ps.mu.Unlock()

		reg := e.cur.Load()
		holder, waiter := reg.byName["a"], reg.byName["b"]
		holder.refs.Add(1)
		_, err := ps.open(t.Context(), holder)
		require.NoError(t, err)
		var sink atomic.Int64
		for i := range 300 {
			done := make(chan error, 1)
			go func(w *engine) {
				w.refs.Add(1)
				ps.touch(w)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := ps.open(ctx, w)
				done <- err
			}(waiter)
			// Until the waiter holds mu (checking, or about to watch) or
			// waits: then let the holder go, a varying while later.
			for ps.idled.waiters.Load() == 0 && ps.mu.TryLock() {
				ps.mu.Unlock()
			}
			for j := range (i * 7919) % 40000 {
				sink.Add(int64(j))
			}
			holder.drop()
			require.NoError(t, <-done, "iteration %d: the waiter missed the holder letting go", i)
			holder, waiter = waiter, holder
		}
		holder.drop()
	})
}

// An acquire waiting for room under max_open_pools wakes when
// Engines.Engine pins the pool that fills the limit: a pinned pool no
// longer counts, so there is room at once. It slept until its deadline (or
// another pool's signal). In synctest's bubble a missed wakeup reaches the
// waiter's deadline at once, and open answers errPoolsFull.
func TestPoolsOpenWakesWhenEngineIsPinned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := openAB(t, map[string]any{"max_open_pools": 1})
		defer e.Close()
		reg := e.cur.Load()
		a, b := reg.byName["a"], reg.byName["b"]
		a.refs.Add(1) // a's pool is open and held: the one pool allowed
		defer a.drop()
		_, err := e.pools.open(t.Context(), a)
		require.NoError(t, err)

		done := make(chan error, 1)
		go func() {
			b.refs.Add(1)
			defer b.drop()
			e.pools.touch(b)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, oerr := e.pools.open(ctx, b)
			done <- oerr
		}()
		synctest.Wait() // b waits for room
		_, err = e.Engine("a")
		require.NoError(t, err)
		require.NoError(t, <-done, "b's acquire missed the room a's pinning made")
	})
}
