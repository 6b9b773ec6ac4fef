package fiberdb

import "time"

// epoch is what monotonic counts from. Its monotonic clock reading makes
// every time.Since(epoch) read only the monotonic clock: one clock read where
// time.Now takes two (wall and monotonic), and immune to a step of the wall
// clock.
var epoch = time.Now()

// monotonic is the time in nanoseconds since epoch, for the timestamps of
// the per-request hot path: a lease's QueryTimeout bound and the start of
// its first statement.
func monotonic() int64 { return int64(time.Since(epoch)) }

// sinceEpoch is t on monotonic's clock, for the reaper to compare with a
// lease's bound.
func sinceEpoch(t time.Time) int64 { return int64(t.Sub(epoch)) }
