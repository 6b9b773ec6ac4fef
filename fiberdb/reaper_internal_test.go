package fiberdb

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// The reaper's timing, on synctest's fake clock. The pools here are opened
// but never connect (the url's port is closed and nothing dials it), so
// nothing leaves the bubble.
func TestReaperClosesIdlePoolsOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := openAB(t, map[string]any{"pool_idle_timeout": "1m"})
		defer e.Close()

		require.NoError(t, OpenPool(t.Context(), e, "a"))
		time.Sleep(30 * time.Second)
		require.NoError(t, OpenPool(t.Context(), e, "b"))

		// The reaper ticks every 15s (a quarter of the timeout): a is closed
		// on the first tick at or past 1m idle, b not yet.
		time.Sleep(45 * time.Second)
		synctest.Wait()
		require.NotContains(t, e.Stats().Pools, "a")
		require.Contains(t, e.Stats().Pools, "b")

		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Empty(t, e.Stats().Pools)
		require.EqualValues(t, 2, e.Stats().PoolEvictions)
	})
}
