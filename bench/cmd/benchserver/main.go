// Command benchserver is the server side of bench/http.sh: it starts a
// private PostgreSQL, creates a "default" and three tenant databases, and
// serves GET / (SELECT 1, answering "ok") on three loopback ports at once:
//
//	base     a hand-written Fiber handler using one pgxpool.Pool (tenant acme)
//	base3    a hand-written Fiber handler picking one of three pools by Host
//	fiberdb  fiberdb.New and fiberdb.Conn, tenants acme, globex and initech
//	         routed by Host (acme.localhost, globex.localhost, initech.localhost)
//
// The baselines use fiberdb's own pools (from Engines.Engine), so the same
// server connections serve every variant and only the code path differs.
// Every pool has the same pool_max_conns, every app the same Fiber config.
// It prints one "<name> http://127.0.0.1:<port>" line per server, then
// "ready", and runs until SIGINT or SIGTERM, or -max-run, whichever is first.
// The PostgreSQL server goes away with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/fiberdbtest"
)

var tenants = []string{"acme", "globex", "initech"}

func main() {
	if err := benchServer(); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func benchServer() (err error) {
	poolSize := flag.Int("pool", 8, "pool_max_conns of every pool")
	maxRun := flag.Duration("max-run", 30*time.Minute, "exit after this long even without a signal")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the serving time to this file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxRun)
	defer cancel()

	b, err := setUp(ctx, *poolSize)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.close()) }()

	if *cpuProfile != "" {
		stopProfile, perr := startProfile(*cpuProfile)
		if perr != nil {
			return perr
		}
		defer func() { err = errors.Join(err, stopProfile()) }()
	}
	pools := map[string]*pgxpool.Pool{} // by Host
	for _, name := range tenants {
		if pools[name+".localhost"], err = b.engines.Engine(name); err != nil {
			return err //nolint:wrapcheck // it names the engine
		}
	}
	return serve(ctx, []namedApp{
		{"base", baseApp(pools["acme.localhost"])},
		{"base3", base3App(pools)},
		{"fiberdb", fiberdbApp(b.engines)},
	})
}

// backends are the server's databases and pools.
type backends struct {
	pg      *fiberdbtest.Postgres
	engines *fiberdb.Engines
}

// setUp starts PostgreSQL, creates the databases and opens the pools. On
// error, it closes what it opened.
func setUp(ctx context.Context, poolSize int) (*backends, error) {
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pg, err := fiberdbtest.StartPostgres(startCtx)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	dsn := map[string]string{}
	for _, name := range append([]string{config.DefaultEngine}, tenants...) {
		if cerr := pg.CreateDatabase(startCtx, name, ""); cerr != nil {
			return nil, errors.Join(fmt.Errorf("create database %s: %w", name, cerr), pg.Close())
		}
		dsn[name] = pg.ConnString(name) + "&pool_max_conns=" + strconv.Itoa(poolSize)
	}
	engines, err := openEngines(ctx, dsn)
	if err != nil {
		return nil, errors.Join(err, pg.Close()) // a failed Open closed its own pools
	}
	return &backends{pg: pg, engines: engines}, nil
}

func (b *backends) close() error {
	b.engines.Close()
	return b.pg.Close() //nolint:wrapcheck // it names itself
}

type namedApp struct {
	name string
	app  *fiber.App
}

// serve serves each app on its own loopback port until ctx ends, then shuts
// them down.
func serve(ctx context.Context, apps []namedApp) (err error) {
	defer func() {
		for _, a := range apps {
			err = errors.Join(err, a.app.ShutdownWithTimeout(5*time.Second))
		}
	}()
	errs := make(chan error, len(apps))
	for _, a := range apps {
		var lc net.ListenConfig
		ln, lerr := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if lerr != nil {
			return fmt.Errorf("listen: %w", lerr)
		}
		fmt.Printf("%s http://%s\n", a.name, ln.Addr())
		go func() { errs <- a.app.Listener(ln) }()
	}
	fmt.Println("ready")

	select {
	case <-ctx.Done():
		return nil
	case serr := <-errs:
		return fmt.Errorf("serve: %w", serr)
	}
}

func startProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func openEngines(ctx context.Context, dsn map[string]string) (*fiberdb.Engines, error) {
	engines := map[string]any{config.DefaultEngine: dsn[config.DefaultEngine]}
	for _, name := range tenants {
		engines[name] = map[string]any{"url": dsn[name], "hosts": []any{name + ".localhost"}}
	}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(map[string]any{config.DefaultKey: engines}, ""), nil); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	conf, err := config.Load(k)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	e, err := fiberdb.Open(ctx, conf)
	if err != nil {
		return nil, fmt.Errorf("open engines: %w", err)
	}
	return e, nil
}

// newApp is the Fiber configuration of every server. EnableTrustedProxyCheck
// is what a production app (and cmd/demo) sets.
func newApp() *fiber.App {
	return fiber.New(fiber.Config{EnableTrustedProxyCheck: true, DisableStartupMessage: true})
}

func baseApp(pool *pgxpool.Pool) *fiber.App {
	app := newApp()
	app.Get("/", func(c *fiber.Ctx) error {
		var one int
		if err := pool.QueryRow(c.UserContext(), "SELECT 1").Scan(&one); err != nil {
			return err //nolint:wrapcheck // Fiber's error handler answers 500
		}
		return c.SendString("ok")
	})
	return app
}

func base3App(pools map[string]*pgxpool.Pool) *fiber.App {
	app := newApp()
	app.Get("/", func(c *fiber.Ctx) error {
		pool, ok := pools[c.Hostname()]
		if !ok {
			return fiber.ErrNotFound
		}
		var one int
		if err := pool.QueryRow(c.UserContext(), "SELECT 1").Scan(&one); err != nil {
			return err //nolint:wrapcheck // Fiber's error handler answers 500
		}
		return c.SendString("ok")
	})
	return app
}

func fiberdbApp(e *fiberdb.Engines) *fiber.App {
	app := newApp()
	app.Use(fiberdb.New(fiberdb.Config{Engines: e}))
	app.Get("/", func(c *fiber.Ctx) error {
		db, err := fiberdb.Conn(c)
		if err != nil {
			return err //nolint:wrapcheck // fiberdb's error handler maps it
		}
		var one int
		if err := db.QueryRow(c.UserContext(), "SELECT 1").Scan(&one); err != nil {
			return err //nolint:wrapcheck // Fiber's error handler answers 500
		}
		return c.SendString("ok")
	})
	return app
}
