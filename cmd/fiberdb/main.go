// Command fiberdb provisions and migrates the tenants of a fiberdb app.
//
//	fiberdb migrate -config fiberdb.yaml -dir migrations [-tenants a,b] [-parallel N]
//	fiberdb tenant add NAME -host H [-host H2] [-template DB | -pool ENGINE] [-config fiberdb.yaml] [-dir migrations]
//
// migrate applies the migrations in -dir (jackc/tern's files: NNN_name.sql)
// to every tenant engine of the configuration (FIBERDB.tenants, by default
// every engine but "default"), or to the -tenants listed, -parallel at a time, each through a
// direct connection under a lock of its own: the engine's direct_url, else
// its url (a shared-pool tenant's: its pool engine's), which must reach
// PostgreSQL itself, not PgBouncer. On a terminal it shows a live
// status line; otherwise it prints a line as each migration starts. It ends
// with one line per tenant (versions from → to and time, or the error) and
// a summary.
//
// tenant add creates the tenant's database on the landlord's server (a copy
// of -template when given), or with -pool its schema in that engine's
// database, migrates it with -dir's migrations, and inserts its row into the
// catalog table fiberdb_tenants of the "default" database (created if
// missing), so that an app following the catalog serves it at once.
//
// The configuration is read as an app that follows the catalog reads it:
// the -config file (YAML; -config "" reads none), then the rows of the
// catalog table when the "default" database has one, then the FIBERDB_
// environment variables, which win (see config.EnvProvider).
//
// Exit codes: 0 when every tenant succeeded, 1 when any failed, 2 for a bad
// flag, a bad configuration or an unknown tenant (nothing ran), 130 when
// interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fiberdb/fiberdb/internal/cliutil"
)

const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// usageError is a mistake in the command line or the configuration: nothing
// ran, and the exit code is 2. printed is set when the flag package has
// already reported it.
type usageError struct {
	err     error
	printed bool
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// run is the whole program; it returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch {
	case len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help":
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	case args[0] == "migrate":
		err = migrateCommand(ctx, args[1:], environ, stdout, stderr)
	case args[0] == "tenant" && len(args) > 1 && args[1] == "add":
		err = tenantAddCommand(ctx, args[2:], environ, stdout, stderr)
	default:
		err = usagef("unknown command %q (want migrate or tenant add)", strings.Join(args[:min(len(args), 2)], " "))
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errReported):
		// The command said what went wrong, one line per tenant.
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintln(stderr, "fiberdb: "+cliutil.OneLine(err))
		}
		return exitUsage
	default:
		fmt.Fprintln(stderr, "fiberdb: "+cliutil.OneLine(err))
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return exitFailure
}

var (
	// errHelp: -h was asked for and printed.
	errHelp = errors.New("help printed")
	// errReported: the command failed and has already printed why.
	errReported = errors.New("failure reported")
)

func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage:
  fiberdb migrate -config fiberdb.yaml -dir migrations [-tenants a,b] [-parallel N]
  fiberdb tenant add NAME -host H [-template DB | -pool ENGINE] [-config fiberdb.yaml] [-dir migrations]
Run "fiberdb migrate -h" or "fiberdb tenant add -h" for their flags.
`)
}
