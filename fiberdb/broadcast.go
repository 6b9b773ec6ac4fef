package fiberdb

import (
	"sync"
	"sync/atomic"
)

// broadcast wakes every goroutine waiting for something to change: a budget
// slot to free, a pool to go idle. A waiter calls watch, checks its
// condition once more (so that a change between its last check and watch is
// not missed), waits on the channel, and calls unwatch. signal costs one
// atomic load when nobody waits, which is the hot path's case.
type broadcast struct {
	waiters atomic.Int64
	mu      sync.Mutex
	ch      chan struct{}
}

// signal wakes every current waiter.
func (b *broadcast) signal() {
	if b.waiters.Load() == 0 {
		return
	}
	b.mu.Lock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
	b.mu.Unlock()
}

// watch registers a waiter and returns the channel the next signal closes.
func (b *broadcast) watch() <-chan struct{} {
	b.waiters.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// unwatch ends a watch.
func (b *broadcast) unwatch() { b.waiters.Add(-1) }
