// Package reload applies configuration changes to a running app: when the
// config file changes on disk, when the process receives a signal such as
// SIGHUP, and when the tenant catalog table changes.
//
// A [Reloader] calls the app's Load, which builds a fresh config from every
// source, then the app's Apply (fiberdb's Engines.Apply). Triggers coalesce:
// a burst of them reloads once, never once each. A reload that fails, in
// Load or in Apply, is logged and ignored: the running config keeps
// serving, and the next trigger tries again. reload never retries on its
// own and never runs two reloads at once.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRunning is returned by [Reloader.Run] when it is already running.
var ErrRunning = errors.New("reload: Run is already running")

// Reloader reloads the configuration when one of its sources changes. Make
// one with [New]; it is safe for concurrent use.
type Reloader struct {
	cfg     Config
	kick    chan struct{} // holds at most one pending trigger
	running atomic.Bool
}

// New returns a Reloader; nothing happens until [Reloader.Run]. It panics
// when the Config has no Load or Apply function, or a Catalog without Connect.
func New(cfgs ...Config) *Reloader {
	return &Reloader{cfg: configDefault(cfgs...), kick: make(chan struct{}, 1)}
}

// Trigger asks for a reload and returns at once. Triggers coalesce: the
// reload comes after Debounce, and one that arrives during a reload causes
// exactly one more. Call it after a change that no watched source sees; a
// Trigger before Run waits for it.
func (r *Reloader) Trigger() {
	select {
	case r.kick <- struct{}{}:
	default: // a reload is already pending
	}
}

// Run watches the configured sources and reloads until ctx is done; then it
// stops them, waits for a reload in progress, and returns nil. It reloads
// once at the start, so that a change made between the app's first Load
// and Run is not missed. A second Run while one runs returns [ErrRunning].
func (r *Reloader) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, below: every source has stopped when Run returns
	defer cancel()

	if r.cfg.File != "" {
		wg.Go(func() { r.watchFile(ctx) })
	}
	if len(r.cfg.Signals) > 0 {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, r.cfg.Signals...)
		defer signal.Stop(sig)
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case s := <-sig:
					r.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "fiberdb: reload requested", slog.String("signal", s.String()))
					r.Trigger()
				}
			}
		})
	}
	if r.cfg.Catalog != nil {
		wg.Go(func() {
			if err := r.cfg.Catalog.Listen(ctx, r.Trigger); err != nil {
				r.cfg.Logger.LogAttrs(ctx, slog.LevelError, "fiberdb: catalog listener stopped", slog.Any("error", err))
			}
		})
	}

	r.Trigger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		}
		if !r.settle(ctx) {
			return nil
		}
		r.reload(ctx)
	}
}

// settle waits until no trigger came for Debounce, or 5×Debounce passed
// since the first, and reports false if ctx ended first.
func (r *Reloader) settle(ctx context.Context) bool {
	quiet := time.NewTimer(r.cfg.Debounce)
	defer quiet.Stop()
	limit := time.NewTimer(5 * r.cfg.Debounce)
	defer limit.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-r.kick:
			quiet.Reset(r.cfg.Debounce)
		case <-quiet.C:
			return true
		case <-limit.C:
			return true
		}
	}
}

// reload runs Load and Apply once, logs the outcome and reports it to
// OnReload.
func (r *Reloader) reload(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	engines, err := r.loadAndApply(rctx)
	if err != nil && ctx.Err() != nil {
		return // stopping: the error is ours, not the config's
	}
	if err != nil {
		r.cfg.Logger.LogAttrs(ctx, slog.LevelError, "fiberdb: reload failed; the running config keeps serving",
			slog.Any("error", err))
	} else {
		r.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "fiberdb: config reloaded", slog.Int("engines", engines))
	}
	if r.cfg.OnReload != nil {
		r.cfg.OnReload(err)
	}
}

func (r *Reloader) loadAndApply(ctx context.Context) (engines int, err error) {
	conf, err := r.cfg.Load(ctx)
	if err == nil && conf == nil {
		err = errors.New("returned no config")
	}
	if err != nil {
		return 0, fmt.Errorf("reload: load: %w", err)
	}
	if err := r.cfg.Apply(ctx, conf); err != nil {
		return 0, fmt.Errorf("reload: apply: %w", err)
	}
	return len(conf.Engines), nil
}
