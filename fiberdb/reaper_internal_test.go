package fiberdb

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// The reaper's timing, on synctest's fake clock. The pools here are opened
// but never connect (the url's port is closed and nothing dials it), so
// nothing leaves the bubble.
func TestReaperClosesIdlePoolsOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := koanf.New(".")
		require.NoError(t, k.Load(confmap.Provider(map[string]any{
			config.DefaultKey: map[string]any{
				"a": "postgres://u@127.0.0.1:1/a",
				"b": "postgres://u@127.0.0.1:1/b",
			},
			config.DefaultSettingsKey: map[string]any{"pool_idle_timeout": "1m"},
		}, ""), nil))
		conf, err := config.Load(k, config.Options{AllowEmpty: true})
		require.NoError(t, err)
		e, err := Open(t.Context(), conf)
		require.NoError(t, err)
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
