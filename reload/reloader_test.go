package reload_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/reload"
)

// fixed is a valid config that Load functions return in the timer tests.
func fixed(t *testing.T) *config.Config {
	t.Helper()
	conf, err := config.Load(nil, config.Options{AllowEmpty: true})
	require.NoError(t, err)
	return conf
}

// counting returns a Config whose Apply counts its calls and whose
// OnReload sends every result to the returned channel.
func counting(t *testing.T, applied *atomic.Int32) (cfg reload.Config, results <-chan error) {
	t.Helper()
	conf := fixed(t)
	ch := make(chan error, 1000)
	return reload.Config{
		Load: func(context.Context) (*config.Config, error) { return conf, nil },
		Apply: func(context.Context, *config.Config) error {
			applied.Add(1)
			return nil
		},
		OnReload: func(err error) { ch <- err },
		Logger:   slog.New(slog.DiscardHandler),
	}, ch
}

// run starts r in the bubble and stops it when the bubble's function ends.
func run(t *testing.T, r *reload.Reloader) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

func TestRunReloadsOnceAtStartAfterDebounce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, results := counting(t, &applied)
		start := time.Now()
		stop := run(t, reload.New(cfg))
		defer stop()

		require.NoError(t, <-results)
		require.Equal(t, reload.ConfigDefault.Debounce, time.Since(start))
		time.Sleep(time.Minute)
		synctest.Wait()
		require.EqualValues(t, 1, applied.Load(), "nothing triggered again")
	})
}

func TestBurstReloadsOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, results := counting(t, &applied)
		r := reload.New(cfg)
		stop := run(t, r)
		defer stop()
		require.NoError(t, <-results)

		// A thousand-row import notifies in a burst: one reload, one
		// Debounce after the last trigger.
		for i := range 100 {
			if i > 0 {
				time.Sleep(time.Millisecond)
			}
			r.Trigger()
		}
		last := time.Now()
		require.NoError(t, <-results)
		require.Equal(t, reload.ConfigDefault.Debounce, time.Since(last))
		time.Sleep(time.Minute)
		synctest.Wait()
		require.EqualValues(t, 2, applied.Load())
	})
}

func TestSteadyStreamStillReloads(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, results := counting(t, &applied)
		r := reload.New(cfg)
		stop := run(t, r)
		defer stop()
		require.NoError(t, <-results)

		// Triggers closer together than Debounce would postpone a reload
		// forever; 5×Debounce after the first one, it happens anyway.
		for range 30 {
			r.Trigger()
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		require.GreaterOrEqual(t, applied.Load(), int32(3), "a reload every second or so")
		require.LessOrEqual(t, applied.Load(), int32(4))
		require.NoError(t, <-results)
		require.Len(t, results, int(applied.Load())-2)
	})
}

func TestTriggerDuringReloadReloadsOnceMore(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, results := counting(t, &applied)
		entered, release := make(chan struct{}), make(chan struct{})
		apply := cfg.Apply
		cfg.Apply = func(ctx context.Context, conf *config.Config) error {
			if applied.Load() == 1 {
				entered <- struct{}{}
				<-release
			}
			return apply(ctx, conf)
		}
		r := reload.New(cfg)
		stop := run(t, r)
		defer stop()
		require.NoError(t, <-results)

		r.Trigger()
		<-entered // the second reload is in Apply
		for range 50 {
			r.Trigger()
		}
		close(release)
		require.NoError(t, <-results)
		require.NoError(t, <-results)
		time.Sleep(time.Minute)
		synctest.Wait()
		require.EqualValues(t, 3, applied.Load(), "the 50 triggers made one reload")
	})
}

func TestFailedReloadKeepsRunning(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, results := counting(t, &applied)
		var logs logBuffer
		cfg.Logger = logs.logger()
		errBad := errors.New("bad config")
		var fail atomic.Int32 // 1: Load fails, 2: Apply fails
		load, apply := cfg.Load, cfg.Apply
		cfg.Load = func(ctx context.Context) (*config.Config, error) {
			if fail.Load() == 1 {
				return nil, errBad
			}
			return load(ctx)
		}
		cfg.Apply = func(ctx context.Context, conf *config.Config) error {
			if fail.Load() == 2 {
				return errBad
			}
			return apply(ctx, conf)
		}
		r := reload.New(cfg)
		stop := run(t, r)
		defer stop()
		require.NoError(t, <-results)

		fail.Store(1)
		r.Trigger()
		err := <-results
		require.ErrorIs(t, err, errBad)
		require.EqualError(t, err, "reload: load: bad config")

		fail.Store(2)
		r.Trigger()
		require.EqualError(t, <-results, "reload: apply: bad config")
		require.EqualValues(t, 1, applied.Load())
		require.Contains(t, logs.String(), `level=ERROR msg="fiberdb: reload failed; the running config keeps serving" error="reload: load: bad config"`)

		fail.Store(0)
		r.Trigger()
		require.NoError(t, <-results, "the next trigger tries again")
		require.EqualValues(t, 2, applied.Load())
	})
}

func TestLoadReturningNilIsAnError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, results := counting(t, &applied)
		cfg.Load = func(context.Context) (*config.Config, error) { return nil, nil }
		stop := run(t, reload.New(cfg))
		defer stop()
		require.EqualError(t, <-results, "reload: load: returned no config")
		require.Zero(t, applied.Load())
	})
}

func TestRunIsExclusive(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, results := counting(t, &applied)
		r := reload.New(cfg)
		stop := run(t, r)
		require.NoError(t, <-results)
		require.ErrorIs(t, r.Run(t.Context()), reload.ErrRunning)
		stop()

		stop = run(t, r) // stopped, it may run again
		require.NoError(t, <-results)
		stop()
	})
}

func TestStopDuringDebounce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var applied atomic.Int32
		cfg, _ := counting(t, &applied)
		stop := run(t, reload.New(cfg))
		synctest.Wait() // Run waits in its first debounce
		stop()
		require.Zero(t, applied.Load())
	})
}

func TestNewPanicsWithoutLoadOrApply(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "reload: New requires Config.Load and Config.Apply", func() { reload.New() })
	require.PanicsWithValue(t, "reload: New requires Config.Load and Config.Apply", func() {
		reload.New(reload.Config{Load: func(context.Context) (*config.Config, error) { return nil, nil }})
	})
}
