// Package testkit holds test helpers that several packages' tests share and
// that fiberdbtest does not offer its users: a log buffer safe to read while
// the code under test writes, and a goroutine leak check.
package testkit

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// LogBuffer collects a slog text handler's output. It is safe for
// concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p) //nolint:wrapcheck // an io.Writer's error, passed on as io.Writer promises
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a logger that writes text records to b.
func (b *LogBuffer) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// NoGoroutineLeaks fails the test if a goroutine started after this call
// is still running when the test's cleanups are done. Call it first, so that
// its cleanup runs last, after the pools have closed, and only from tests
// that do not run in parallel with others. Tests that serve requests
// ignore fasthttp's date updater, which runs for the life of the process
// once a server has started.
func NoGoroutineLeaks(tb testing.TB) {
	tb.Helper()
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	}
	tb.Cleanup(func() { goleak.VerifyNone(tb, opts...) })
}
