// Command demo serves a small multi-tenant todo API with fiberdb. With no
// flags and no environment it needs nothing but the PostgreSQL server
// binaries (Debian's postgresql package):
//
//	go run ./cmd/demo
//
// starts a private PostgreSQL (a temporary directory, a free port on
// 127.0.0.1), creates the landlord database "central" and three tenant
// databases "acme", "globex" and "initech", seeds them, serves on
// 127.0.0.1:3000 and prints curl lines to try. Ctrl-C (or SIGTERM) shuts the
// server down gracefully, stops PostgreSQL and removes its directory; if the
// demo is killed outright, PostgreSQL gets a parent-death signal and stops too.
// On Linux the demo also shuts down gracefully when the process that started
// it dies (or on SIGHUP): a SIGTERM sent to `go run`, which does not pass it
// on, stops the demo all the same.
//
// Flags:
//
//	-addr host:port   where to serve (default 127.0.0.1:3000; port 0 picks one)
//	-config file      a configuration file to use instead of the embedded fiberdb.yaml;
//	                  its engines need urls (or DATABASE_URL): no private PostgreSQL
//	                  is started for it
//
// Environment:
//
//	DATABASE_URL      a PostgreSQL server (postgres://user@host:5432/) to use
//	                  instead of a private one: each engine uses the database
//	                  named after it there ("central" for "default"). The demo
//	                  creates its tables if missing and seeds empty ones; it does
//	                  not create databases.
//	FIBERDB_...       config.EnvProvider's overrides, applied last, for example
//	                  FIBERDB_ENGINES__ACME__URL=postgres://app@db/acme. When they
//	                  give every engine a url, no private PostgreSQL is started.
//
// Exit codes: 0 after a signal and a clean shutdown, 2 for a bad flag or a bad
// configuration (reported on one line, before anything starts), 1 for any
// other failure, 130 when interrupted during startup.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/internal/cliutil"
	"github.com/fiberdb/fiberdb/pgserver"
)

const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130

	// shutdownTimeout bounds both the drain of in-flight requests and the
	// wait for their connections to come back to the pools.
	shutdownTimeout = 5 * time.Second
	// startupTimeout bounds starting PostgreSQL and preparing the databases.
	startupTimeout = time.Minute
)

// errInterrupted reports a signal that arrived before the demo was serving.
var errInterrupted = errors.New("interrupted during startup")

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// options are the demo's flags and environment.
type options struct {
	addr       string
	configPath string
	environ    []string
}

// run is the whole program; it returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	// Installed first, so that a signal during startup still cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, parentDeathSignal)
	defer stop()
	if err := stopWithParent(); err != nil {
		fmt.Fprintln(stderr, "demo: cannot follow the parent process's death:", err)
	}

	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{environ: environ}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:3000", "`host:port` to serve on (port 0 picks a free one)")
	fs.StringVar(&o.configPath, "config", "", "configuration `file` (YAML) instead of the embedded fiberdb.yaml")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: demo [-addr host:port] [-config file]")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "DATABASE_URL=postgres://user@host:5432/ uses that server instead of a private one.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	err := serve(ctx, stop, o, stdout, logger)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "demo: "+cliutil.OneLine(err))
	var ce *configError
	switch {
	case errors.As(err, &ce):
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	}
	return exitFailure
}

// serve validates the configuration, binds the address, starts PostgreSQL
// when needed, prepares the databases, serves until ctx is done and then
// shuts everything down in reverse order. Each step's cleanup is deferred as
// soon as the step succeeds, so every return path undoes exactly what ran.
func serve(ctx context.Context, stop context.CancelFunc, o options, stdout io.Writer, logger *slog.Logger) (err error) {
	src, err := newSource(o.configPath, o.environ)
	if err != nil {
		return err
	}
	conf, err := src.load()
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer func() {
		// Fiber closes it on shutdown; this covers the paths that never served.
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, fmt.Errorf("close listener: %w", cerr))
		}
	}()

	startCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	origin := "using " + src.origin
	var pg *pgserver.Server
	if src.embedded {
		if pg, err = pgserver.Start(startCtx); err != nil {
			return startupError(ctx, err)
		}
		defer func() {
			if cerr := pg.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("stop postgres: %w", cerr))
				return
			}
			fmt.Fprintf(stdout, "stopped PostgreSQL and removed %s\n", pg.Dir())
		}()
		src.server = pg.ConnString
		if conf, err = src.load(); err != nil {
			return err
		}
		if err = createDatabases(startCtx, pg, src.needURL); err != nil {
			return startupError(ctx, err)
		}
	}

	// On a server the demo supplies, the tenants live in the landlord's
	// catalog table (catalog.go): install and seed it, then serve its rows.
	var cat *catalogOf
	if src.server != nil {
		if cat, err = openCatalog(startCtx, conf, src.server); err != nil {
			return startupError(ctx, err)
		}
		defer cat.close()
		src.catalog = func() koanf.Provider { return cat.provider(ctx) }
		if conf, err = src.load(); err != nil {
			return startupError(ctx, err)
		}
	}

	// Close waits at most shutdownTimeout for connections still in use, then
	// stops them: past that, stopping PostgreSQL would end them anyway.
	engines, err := fiberdb.Open(startCtx, conf, fiberdb.OpenOptions{CloseTimeout: shutdownTimeout})
	if err != nil {
		return fmt.Errorf("open engines: %w", err)
	}
	defer engines.Close()
	if err = prepare(startCtx, engines); err != nil {
		return startupError(ctx, err)
	}
	if pg != nil {
		major, verr := serverMajorVersion(startCtx, engines)
		if verr != nil {
			return startupError(ctx, verr)
		}
		origin = fmt.Sprintf("embedded PostgreSQL %d on 127.0.0.1:%d (data in %s)", major, pg.Port(), pg.Dir())
	}

	// Every change of the catalog reaches the engines through Apply; Run
	// ends with ctx, before the engines close (deferred calls run
	// last-in, first-out).
	if cat != nil {
		reloaded := make(chan error, 1)
		go func() { reloaded <- cat.reloader(src, engines, logger).Run(ctx) }()
		defer func() {
			stop()
			if rerr := <-reloaded; rerr != nil {
				err = errors.Join(err, fmt.Errorf("reload: %w", rerr))
			}
		}()
	}

	app := newApp(engines, logger) //nolint:contextcheck // handlers run on each request's own context, not on serve's
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	b := banner{origin: origin, base: baseURL(ln.Addr()), conf: conf, removesData: pg != nil}
	if pg != nil { // its urls hold no password: safe to print
		b.server = pg.ConnString
	}
	printBanner(stdout, b)

	select {
	case <-ctx.Done():
	case serr := <-served:
		return fmt.Errorf("serve: %w", serr)
	}
	// From here a second Ctrl-C kills the demo at once; PostgreSQL then
	// follows through its parent-death signal. The parent's death may signal
	// again (once per thread of the parent): ignored, so the shutdown ends.
	signal.Ignore(parentDeathSignal)
	stop()
	fmt.Fprintln(stdout, "shutting down")
	if serr := app.ShutdownWithTimeout(shutdownTimeout); serr != nil {
		err = fmt.Errorf("shut down: %w", serr)
	}
	// Should the signal have beaten app.Listener to the listener, closing it
	// makes Listener return instead of serving on.
	if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, fmt.Errorf("close listener: %w", cerr))
	}
	select {
	case serr := <-served:
		if serr != nil && !errors.Is(serr, net.ErrClosed) {
			err = errors.Join(err, fmt.Errorf("serve: %w", serr))
		}
	case <-time.After(shutdownTimeout):
		err = errors.Join(err, errors.New("shut down: the server did not stop"))
	}
	return err
}

// startupError reports err, or errInterrupted when a signal caused it.
func startupError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errInterrupted
	}
	return err
}
