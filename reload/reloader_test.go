package reload_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/internal/testkit"
	"github.com/fiberdb/fiberdb/reload"
)

// rig is a Reloader in a synctest bubble whose Load returns a fixed config,
// whose Apply counts its calls, and whose OnReload reports to results.
type rig struct {
	cfg     reload.Config
	r       *reload.Reloader
	applied atomic.Int32
	results chan error
	logs    testkit.LogBuffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	conf, err := config.Load(nil, config.Options{AllowEmpty: true})
	require.NoError(t, err)
	g := &rig{results: make(chan error, 1000)}
	g.cfg = reload.Config{
		Load: func(context.Context) (*config.Config, error) { return conf, nil },
		Apply: func(context.Context, *config.Config) error {
			g.applied.Add(1)
			return nil
		},
		OnReload: func(err error) { g.results <- err },
		Logger:   g.logs.Logger(),
	}
	return g
}

// run starts a Reloader built from g.cfg and returns the function that
// stops it.
func (g *rig) run(t *testing.T) (stop func()) {
	t.Helper()
	if g.r == nil {
		g.r = reload.New(g.cfg)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.r.Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// started runs g until the test ends, past its first reload.
func (g *rig) started(t *testing.T) {
	t.Helper()
	t.Cleanup(g.run(t))
	require.NoError(t, <-g.results)
}

// quiet lets a long time pass and waits for the bubble to idle.
func quiet() {
	time.Sleep(time.Minute)
	synctest.Wait()
}

func TestRunReloadsOnceAtStartAfterDebounce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		start := time.Now()
		g.started(t)
		require.Equal(t, reload.ConfigDefault.Debounce, time.Since(start))
		quiet()
		require.EqualValues(t, 1, g.applied.Load(), "nothing triggered again")
	})
}

func TestBurstReloadsOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		g.started(t)

		// A thousand-row import notifies in a burst: one reload, one
		// Debounce after the last trigger.
		for i := range 100 {
			if i > 0 {
				time.Sleep(time.Millisecond)
			}
			g.r.Trigger()
		}
		last := time.Now()
		require.NoError(t, <-g.results)
		require.Equal(t, reload.ConfigDefault.Debounce, time.Since(last))
		quiet()
		require.EqualValues(t, 2, g.applied.Load())
	})
}

func TestSteadyStreamStillReloads(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		g.started(t)

		// Triggers closer together than Debounce would postpone a reload
		// forever; 5×Debounce after the first one, it happens anyway.
		for range 30 {
			g.r.Trigger()
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		require.GreaterOrEqual(t, g.applied.Load(), int32(3), "a reload every second or so")
		require.LessOrEqual(t, g.applied.Load(), int32(4))
	})
}

func TestTriggerDuringReloadReloadsOnceMore(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		entered, release := make(chan struct{}), make(chan struct{})
		apply := g.cfg.Apply
		g.cfg.Apply = func(ctx context.Context, conf *config.Config) error {
			if g.applied.Load() == 1 {
				entered <- struct{}{}
				<-release
			}
			return apply(ctx, conf)
		}
		g.started(t)

		g.r.Trigger()
		<-entered // the second reload is in Apply
		for range 50 {
			g.r.Trigger()
		}
		close(release)
		require.NoError(t, <-g.results)
		require.NoError(t, <-g.results)
		quiet()
		require.EqualValues(t, 3, g.applied.Load(), "the 50 triggers made one reload")
	})
}

func TestFailedReloadKeepsRunning(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		errBad := errors.New("bad config")
		var fail atomic.Int32 // 1: Load fails, 2: Apply fails
		load, apply := g.cfg.Load, g.cfg.Apply
		g.cfg.Load = func(ctx context.Context) (*config.Config, error) {
			if fail.Load() == 1 {
				return nil, errBad
			}
			return load(ctx)
		}
		g.cfg.Apply = func(ctx context.Context, conf *config.Config) error {
			if fail.Load() == 2 {
				return errBad
			}
			return apply(ctx, conf)
		}
		g.started(t)

		fail.Store(1)
		g.r.Trigger()
		err := <-g.results
		require.ErrorIs(t, err, errBad)
		require.EqualError(t, err, "reload: load: bad config")

		fail.Store(2)
		g.r.Trigger()
		require.EqualError(t, <-g.results, "reload: apply: bad config")
		require.EqualValues(t, 1, g.applied.Load())
		require.Contains(t, g.logs.String(), `level=ERROR msg="fiberdb: reload failed; the running config keeps serving" error="reload: load: bad config"`)

		fail.Store(0)
		g.r.Trigger()
		require.NoError(t, <-g.results, "the next trigger tries again")
		require.EqualValues(t, 2, g.applied.Load())
	})
}

func TestLoadReturningNilIsAnError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		g.cfg.Load = func(context.Context) (*config.Config, error) { return nil, nil }
		t.Cleanup(g.run(t))
		require.EqualError(t, <-g.results, "reload: load: returned no config")
		require.Zero(t, g.applied.Load())
	})
}

func TestRunIsExclusive(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		stop := g.run(t)
		require.NoError(t, <-g.results)
		require.ErrorIs(t, g.r.Run(t.Context()), reload.ErrRunning)
		stop()

		g.started(t) // stopped, it may run again
	})
}

func TestStopDuringDebounce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t)
		stop := g.run(t)
		synctest.Wait() // Run waits in its first debounce
		stop()
		require.Zero(t, g.applied.Load())
	})
}

func TestNewPanicsWithoutLoadOrApply(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "reload: New requires Config.Load and Config.Apply", func() { reload.New() })
	require.PanicsWithValue(t, "reload: New requires Config.Load and Config.Apply", func() {
		reload.New(reload.Config{Load: func(context.Context) (*config.Config, error) { return nil, nil }})
	})
	require.PanicsWithValue(t, "reload: New requires Config.Catalog.Connect", func() {
		reload.New(reload.Config{
			Load:    func(context.Context) (*config.Config, error) { return nil, nil },
			Apply:   func(context.Context, *config.Config) error { return nil },
			Catalog: &catalog.Listener{},
		})
	})
}
