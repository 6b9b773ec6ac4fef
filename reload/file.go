package reload

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/knadh/koanf/providers/file"
)

// filePoll is how often a missing config file is looked for.
const filePoll = 250 * time.Millisecond

// watchFile keeps a koanf file watch armed on cfg.File until ctx is done.
// koanf's watch ends for good when the file is removed (rm && cp deploys,
// some editors' saves), so watchFile waits for the file to exist again,
// arms a new watch and reloads, because the file changed while unwatched.
//
// Each watch uses a new file.Provider: in koanf's providers/file v1.2.1,
// Watch on a missing path returns with its mutex held, so that provider
// must never be used again. Checking that the file exists first makes this
// rare (it needs a removal between the check and Watch) but not impossible.
func (r *Reloader) watchFile(ctx context.Context) {
	path := r.cfg.File
	failing := false // log a failing Watch once, not every filePoll
	for {
		if !r.waitForFile(ctx, path) {
			return
		}
		f := file.Provider(path)
		stopped := make(chan error, 1)
		err := f.Watch(func(_ any, err error) {
			if err == nil {
				r.Trigger()
				return
			}
			select {
			case stopped <- err:
			default:
			}
		})
		if err != nil {
			// Removed again since waitForFile saw it, or out of inotify
			// watches: try again.
			if !failing {
				failing = true
				r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "fiberdb: config file watch failed; retrying",
					slog.String("file", path), slog.Any("error", err))
			}
			if !sleep(ctx, filePoll) {
				return
			}
			continue
		}
		failing = false
		r.Trigger()
		select {
		case <-ctx.Done():
			if err := f.Unwatch(); err != nil {
				r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "fiberdb: config file unwatch", slog.Any("error", err))
			}
			return
		case err := <-stopped:
			r.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "fiberdb: config file watch ended; re-arming",
				slog.String("file", path), slog.Any("error", err))
		}
	}
}

// waitForFile returns true once path exists, or false when ctx is done.
func (r *Reloader) waitForFile(ctx context.Context, path string) bool {
	logged := false
	for {
		_, err := os.Stat(path)
		if err == nil {
			return true
		}
		if !logged {
			logged = true
			r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "fiberdb: config file missing; reloading when it is back",
				slog.String("file", path), slog.Any("error", err))
		}
		if !sleep(ctx, filePoll) {
			return false
		}
	}
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
