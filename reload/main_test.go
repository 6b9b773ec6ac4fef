package reload_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) {
	// Start the shared server before any test takes its goroutine baseline.
	// An error comes back from fiberdbtest.Server in each test.
	if _, err := fiberdbtest.SharedServer(); err != nil {
		fmt.Fprintln(os.Stderr, "reload tests:", err)
	}
	fiberdbtest.Main(m)
}

// noLeaks fails the test if a goroutine it started outlives it. Call it
// first: its cleanup then runs last, after the pools have closed.
func noLeaks(t *testing.T) {
	t.Helper()
	baseline := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, baseline) })
}

// logBuffer is a slog handler's output that tests read while the code
// under test writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }
