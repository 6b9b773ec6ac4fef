package fiberdb

import (
	"sync/atomic"
	"time"
)

// logEvery is the least time between two records of the same kind about
// one engine, so that an engine whose every connect fails logs a line every
// few seconds, not one per request.
const logEvery = 10 * time.Second

// logLimiter lets one record through per interval and counts the others,
// which the next record reports. Safe for concurrent use; the zero value
// lets the first record through.
type logLimiter struct {
	next       atomic.Int64 // UnixNano before which records are suppressed
	suppressed atomic.Int64
}

// allow reports whether a record may be written at now and, if so, how many
// were suppressed since the last one.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int64) {
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(logEvery).UnixNano()) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
