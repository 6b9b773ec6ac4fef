// Command benchserver is the server side of bench/http.sh: it starts a
// private PostgreSQL, creates a "default" and three tenant databases, and
// serves GET / (SELECT 1, answering "ok") on six loopback ports at once:
//
//	base      a hand-written Fiber handler using one pgxpool.Pool (tenant acme)
//	baseconn  a hand-written Fiber handler holding one connection of that pool
//	          for the request, acquired and released in a defer
//	base3     a hand-written Fiber handler picking one of three pools by Host
//	fiberdb   fiberdb.New and fiberdb.Conn, tenants acme, globex and initech
//	          routed by Host (acme.localhost, globex.localhost, initech.localhost),
//	          and shared.localhost: a tenant that shares engine saas's pool
//	          (engine key pool, with a search_path and a setting, so that its
//	          every statement travels behind set_config), for the shared
//	          variant of http.sh
//	basebatch what fiberdb sends for that shared tenant, by hand: one
//	          connection of saas's pool, SELECT 1 behind the same set_config
//	          in one pgx batch (benchapp.PgxbatchApp)
//	minimal   the least a tenant middleware does, by hand: the pool by Host in
//	          a map, a pooled request state, acquire on first use, release
//	          after the chain (benchapp.MinimalApp)
//
// The baselines use fiberdb's own pools (from Engines.Engine), so the same
// server connections serve every variant and only the code path differs.
// Every pool has the same pool_max_conns, every app the same Fiber config
// (the handlers are package bench's, shared with its Go benchmarks).
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
	"strconv"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/internal/benchapp"
	"github.com/fiberdb/fiberdb/pgserver"
)

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
		stopProfile, perr := benchapp.StartProfile(*cpuProfile)
		if perr != nil {
			return perr
		}
		defer func() { err = errors.Join(err, stopProfile()) }()
	}
	pools, err := benchapp.PoolsByHost(b.engines)
	if err != nil {
		return err
	}
	saas, err := b.engines.Engine(sharedPool)
	if err != nil {
		return err
	}
	return serve(ctx, []namedApp{
		{"base", benchapp.PgxpoolApp(pools["acme.localhost"])},
		{"baseconn", benchapp.PgxconnApp(pools["acme.localhost"])},
		{"base3", benchapp.PgxpoolHostApp(pools)},
		{"fiberdb", benchapp.FiberdbApp(b.engines)},
		{"basebatch", benchapp.PgxbatchApp(saas)},
		{"minimal", benchapp.MinimalApp(pools)},
	})
}

// backends are the server's databases and pools.
type backends struct {
	pg      *pgserver.Server
	engines *fiberdb.Engines
}

// setUp starts PostgreSQL, creates the databases and opens the pools. On
// error, it closes what it opened.
func setUp(ctx context.Context, poolSize int) (*backends, error) {
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pg, err := pgserver.Start(startCtx)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	dsn := map[string]string{}
	for _, name := range append([]string{config.DefaultEngine, sharedPool}, benchapp.Tenants...) {
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
	return b.pg.Close()
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

// sharedPool is the engine whose pool the shared tenant takes its
// connections from; it has pool_max_conns as every tenant's own pool.
const sharedPool = "saas"

func openEngines(ctx context.Context, dsn map[string]string) (*fiberdb.Engines, error) {
	engines := map[string]any{config.DefaultEngine: dsn[config.DefaultEngine], sharedPool: dsn[sharedPool]}
	for _, name := range benchapp.Tenants {
		engines[name] = map[string]any{"url": dsn[name], "hosts": []any{name + ".localhost"}}
	}
	engines["shared"] = map[string]any{
		"pool": sharedPool, "search_path": "acme", "settings": map[string]any{"app.tenant": "acme"},
		"hosts": []any{"shared.localhost"},
	}
	return benchapp.Open(ctx, engines)
}
