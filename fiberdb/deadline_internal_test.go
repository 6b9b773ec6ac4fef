package fiberdb

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every acquire context from a busy deadlines gives at least the timeout and
// at most timeout+slack, though the hot path reads no clock. The lower bound
// holds as long as the stale timer fires less than half a slack (here 125ms)
// late.
func TestDeadlinesBounds(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	d := newDeadlines(timeout)
	var handedOut []*deadline
	for end := time.Now().Add(2 * d.slack); time.Now().Before(end); time.Sleep(time.Millisecond) {
		before := time.Now()
		ctx, cancel := d.context(context.Background())
		after := time.Now()
		cancel()
		at, ok := ctx.Deadline()
		require.True(t, ok)
		require.GreaterOrEqual(t, at.Sub(before), timeout)
		require.LessOrEqual(t, at.Sub(after), timeout+d.slack)
		require.NoError(t, ctx.Err())
		dl, ok := ctx.(*deadline)
		require.True(t, ok, "a Background parent gets the shared deadline itself")
		if n := len(handedOut); n == 0 || handedOut[n-1] != dl {
			handedOut = append(handedOut, dl)
		}
	}
	require.GreaterOrEqual(t, len(handedOut), 3, "a fresh deadline every half slack, not one per request")
}

type ctxKey struct{}

func TestDeadlinesExpire(t *testing.T) {
	t.Parallel()
	d := newDeadlines(40 * time.Millisecond)
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	ctx, cancel := d.context(parent)
	defer cancel()
	require.Equal(t, "v", ctx.Value(ctxKey{}), "the parent's values are carried")
	at, ok := ctx.Deadline()
	require.True(t, ok)

	<-ctx.Done()
	require.False(t, time.Now().Before(at), "not before its deadline")
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)

	again, cancelAgain := d.context(parent)
	defer cancelAgain()
	require.NoError(t, again.Err(), "an expired deadline is never handed out")
}

func TestDeadlinesHonourCancellableParent(t *testing.T) {
	t.Parallel()
	d := newDeadlines(time.Hour)
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := d.context(parent)
	defer cancel()
	cancelParent()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
}
