package reload_test

import (
	"fmt"
	"os"
	"testing"

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
