package reload

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
)

// Config configures [New].
type Config struct {
	// Load builds a fresh configuration, usually a new koanf instance loaded
	// from the file, [catalog.Provider] and the environment, then
	// config.Load. It must not reuse a koanf instance that another
	// goroutine reads. It runs on the reloader's goroutine only, never
	// concurrently with itself or Apply.
	//
	// Required.
	Load func(ctx context.Context) (*config.Config, error)

	// Apply switches the app to what Load returned: pass the method value
	// engines.Apply of your *fiberdb.Engines.
	//
	// Required.
	Apply func(ctx context.Context, conf *config.Config) error

	// File is the config file to watch. A write, a create, an atomic rename
	// over it or a Kubernetes ConfigMap symlink swap reloads; after it is
	// removed, the reloader waits for it to come back and reloads then.
	//
	// Optional. Default: "" (no file is watched)
	File string

	// Signals reload when the process receives one of them, for example
	// syscall.SIGHUP. While Run runs, they no longer stop the process.
	//
	// Optional. Default: nil (no signal)
	Signals []os.Signal

	// Catalog reloads on every change to the catalog table, and each time it
	// connects again after losing its connection.
	//
	// Optional. Default: nil (the catalog is not watched)
	Catalog *catalog.Listener

	// Debounce is how long the triggers must stay quiet before a reload: a
	// burst (an editor's several writes, a thousand-row import) reloads
	// once. A steady stream still reloads every 5×Debounce.
	//
	// Optional. Default: 200ms
	Debounce time.Duration

	// Timeout bounds one reload, Load and Apply together.
	//
	// Optional. Default: 30s
	Timeout time.Duration

	// Logger receives failed reloads as errors, and applied ones as info.
	//
	// Optional. Default: slog.Default()
	Logger *slog.Logger

	// OnReload is called after every reload, on the reloader's goroutine,
	// with nil once Apply succeeded or with the error that made the
	// reloader keep the running config. Tests wait on it.
	//
	// Optional. Default: nil
	OnReload func(err error)
}

// ConfigDefault holds the default values of [Config]'s optional fields.
var ConfigDefault = Config{
	Debounce: 200 * time.Millisecond,
	Timeout:  30 * time.Second,
}

func configDefault(cfgs ...Config) Config {
	var cfg Config
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	if cfg.Load == nil || cfg.Apply == nil {
		panic("reload: New requires Config.Load and Config.Apply")
	}
	if cfg.Catalog != nil && cfg.Catalog.Connect == nil {
		panic("reload: New requires Config.Catalog.Connect")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = ConfigDefault.Debounce
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = ConfigDefault.Timeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}
