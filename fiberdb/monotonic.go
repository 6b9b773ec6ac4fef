package fiberdb

import "time"

// epoch is what monotonic counts from. Its monotonic clock reading makes
// every time.Since(epoch) read only the monotonic clock: one clock read where
// time.Now takes two (wall and monotonic), and immune to a step of the wall
// clock.
var epoch = time.Now()

// monotonic is the time in nanoseconds since epoch, for the timestamps of
// the per-request hot path: the start of a lease's first statement.
func monotonic() int64 { return int64(time.Since(epoch)) }
