package fiberdb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// One record per interval; the next one reports how many were suppressed.
func TestLogLimiter(t *testing.T) {
	t.Parallel()
	var l logLimiter
	t0 := time.Unix(1_000_000, 0)
	ok, n := l.allow(t0)
	require.True(t, ok)
	require.Zero(t, n)
	for i := range 3 {
		ok, _ = l.allow(t0.Add(time.Duration(i) * time.Second))
		require.False(t, ok)
	}
	ok, _ = l.allow(t0.Add(logEvery - 1))
	require.False(t, ok)
	ok, n = l.allow(t0.Add(logEvery))
	require.True(t, ok)
	require.EqualValues(t, 4, n)
	ok, n = l.allow(t0.Add(3 * logEvery))
	require.True(t, ok)
	require.Zero(t, n)
}
