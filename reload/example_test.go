package reload_test

import (
	"context"
	"os"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/reload"
)

// Example is compiled, not run: serve would run until cancelled.
func Example() {
	_ = serve
}

// serve is README.md's "Adding tenants at runtime": engines comes from
// fiberdb.Open, landlord is a pool of its own on the central (default)
// database, not engines.Default() (an Apply that changes the default
// engine closes that one), and centralURL reaches it directly.
func serve(ctx context.Context, engines *fiberdb.Engines, landlord *pgxpool.Pool, centralURL string) error {
	if err := catalog.Install(ctx, landlord); err != nil { // idempotent: run it at every start
		return err
	}
	load := func(ctx context.Context) (*config.Config, error) { // a fresh koanf on every call
		k := koanf.New(".")
		if err := k.Load(file.Provider("fiberdb.yaml"), yaml.Parser()); err != nil {
			return nil, err
		}
		if err := k.Load(catalog.Provider(ctx, landlord), nil); err != nil { // rows over the file
			return nil, err
		}
		if err := k.Load(config.EnvProvider(config.EnvOptions{}), nil); err != nil { // env wins
			return nil, err
		}
		return config.Load(k)
	}
	r := reload.New(reload.Config{
		Load:    load,
		Apply:   engines.Apply,
		File:    "fiberdb.yaml",
		Signals: []os.Signal{syscall.SIGHUP},
		Catalog: &catalog.Listener{Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.Connect(ctx, centralURL) // a direct connection: not through PgBouncer
		}},
	})
	return r.Run(ctx) // reloads until ctx is done; run it in its own goroutine
}
