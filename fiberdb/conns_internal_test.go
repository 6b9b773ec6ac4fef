package fiberdb

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
)

// watched is how many engines QueryTimeout's reaper watches.
func (r *reaper) watched() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.engs)
}

// Every Apply that replaces an engine once left its engine in the reaper's
// list for good, with its pool config, and the reaper scanned them all
// every 100 ms once a QueryTimeout was set: a reload loop that changed
// engine_defaults grew it by every tenant each time. The pools here never
// connect (nothing dials the closed port).
func TestReaperForgetsRetiredEngines(t *testing.T) {
	load := func(maxConns int) *config.Config {
		t.Helper()
		return looseConf(t, map[string]any{
			"a": map[string]any{"url": "postgres://u@127.0.0.1:1/a", "pool_max_conns": maxConns},
			"b": "postgres://u@127.0.0.1:1/b",
		}, nil)
	}
	var refuse atomic.Bool
	e, err := Open(t.Context(), load(2), OpenOptions{Configure: func(string, *pgxpool.Config) error {
		if refuse.Load() {
			return errors.New("refused")
		}
		return nil
	}})
	require.NoError(t, err)
	defer e.Close()
	require.Equal(t, 2, e.reaper.watched())

	for i := range 200 {
		require.NoError(t, e.Apply(t.Context(), load(3+i%2)))
	}
	// a and b, and the a the last Apply retired: the next Apply forgets it.
	require.Equal(t, 3, e.reaper.watched())

	// An Apply that fails (Configure refuses the changed a) adds nothing.
	refuse.Store(true)
	require.Error(t, e.Apply(t.Context(), load(10)))
	require.Equal(t, 3, e.reaper.watched())
}
