package fiberdbtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
)

// Timeouts of the helpers below. A helper that waits longer fails the test
// with the cause instead of hanging it. Variables for the package's own
// tests.
var (
	leakWait     = 5 * time.Second  // a destroyed connection counts as acquired until it closes
	closeWait    = 10 * time.Second // Engines.Close waits for every connection
	isolateWait  = 10 * time.Second // TestIsolation acquires one connection per engine
	isolateProbe = 250 * time.Millisecond
)

// Open opens conf's engines for this test. When the test ends, [NoLeaks]
// checks them, then [Close] closes them: a leaked connection fails the test
// instead of hanging it.
func Open(tb testing.TB, conf *config.Config, opts ...fiberdb.OpenOptions) *fiberdb.Engines {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := fiberdb.Open(ctx, conf, opts...)
	if err != nil {
		tb.Fatalf("fiberdbtest: open engines: %v", err)
	}
	tb.Cleanup(func() { Close(tb, e) })   // 2
	tb.Cleanup(func() { NoLeaks(tb, e) }) // 1
	return e
}

// Close closes e, waiting at most 10 s. Engines.Close waits for every
// connection to come back, so after a leak it would never return: Close
// fails the test instead, naming the engines that still hold one, and leaves
// their pools open.
func Close(tb testing.TB, e *fiberdb.Engines) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		e.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		tb.Errorf("fiberdbtest: Engines.Close did not return in %s: a connection was never given back (acquired: %s); the pools are left open",
			closeWait, acquired(e))
	}
}

// NoLeaks fails the test unless every pool of e has no acquired connection
// within a few seconds. It polls because a destroyed connection counts as
// acquired until it has closed.
//
// Under test isolation the pinned connections are acquired by design: run
// NoLeaks after the rollback (register its cleanup first, or use [Open] and
// [Isolate], which order themselves). If it runs while isolation is active,
// it fails at once and says so.
func NoLeaks(tb testing.TB, e *fiberdb.Engines) {
	tb.Helper()
	deadline := time.Now().Add(leakWait)
	for first := true; ; first = false {
		leaked := acquired(e)
		if leaked == "" {
			return
		}
		if first && isolationActive(e) {
			tb.Errorf("fiberdbtest: NoLeaks ran while test isolation is active (its pinned connections count as acquired: %s): "+
				"roll back first, e.g. register NoLeaks's cleanup before TestIsolation's, or use fiberdbtest.Open and Isolate", leaked)
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("fiberdbtest: connections still acquired after %s: %s", leakWait, leaked)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isolating holds the engines Isolate made undoable, until their rollback.
var isolating sync.Map // *fiberdb.Engines → struct{}

// Isolate starts [fiberdb.Engines.TestIsolation] for this test and rolls it
// back when the test ends, failing the test if the rollback fails. It fails
// at once, naming the cause, when isolation is already active on e (another
// test isolating the same engines must not run in parallel), and after 10 s
// if a pinned connection cannot be had.
func Isolate(tb testing.TB, e *fiberdb.Engines) {
	tb.Helper()
	if _, loaded := isolating.LoadOrStore(e, struct{}{}); loaded {
		tb.Fatalf("fiberdbtest: test isolation is already active on these engines (tests that isolate the same engines must not run in parallel)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), isolateWait)
	defer cancel()
	rollback, err := e.TestIsolation(ctx)
	switch {
	case errors.Is(err, fiberdb.ErrIsolationActive):
		isolating.Delete(e)
		tb.Fatalf("fiberdbtest: test isolation is already active on these engines (a TestIsolation whose rollback has not run): %v", err)
	case err != nil:
		isolating.Delete(e)
		tb.Fatalf("fiberdbtest: test isolation: %v (is isolation already active on these engines? its pinned connection may be the one this waited for)", err)
	}
	tb.Cleanup(func() {
		defer isolating.Delete(e)
		if err := rollback(); err != nil {
			tb.Errorf("fiberdbtest: test isolation rollback: %v", err)
		}
	})
}

// isolationActive reports whether test isolation is active on e: started by
// Isolate, or, asked of e itself, by TestIsolation. Only called once
// connections are seen acquired, so the probe's own acquire is bounded.
func isolationActive(e *fiberdb.Engines) bool {
	if _, ok := isolating.Load(e); ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), isolateProbe)
	defer cancel()
	rollback, err := e.TestIsolation(ctx)
	if err == nil {
		_ = rollback() //nolint:errcheck // a probe that found no isolation: nothing was done to undo
		return false
	}
	return errors.Is(err, fiberdb.ErrIsolationActive)
}

// acquired lists the engines with acquired connections. It reads
// Engines.Stats, which opens no pool: a leak check must not open the pools
// of tenants the test never used.
func acquired(e *fiberdb.Engines) string {
	var leaks []string
	s := e.Stats()
	for _, pools := range []map[string]*pgxpool.Stat{s.Pools, s.Draining} {
		for _, name := range slices.Sorted(maps.Keys(pools)) {
			if n := pools[name].AcquiredConns(); n != 0 {
				leaks = append(leaks, fmt.Sprintf("%s=%d", name, n))
			}
		}
	}
	return strings.Join(leaks, " ")
}
