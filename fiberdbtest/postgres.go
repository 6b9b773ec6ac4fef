package fiberdbtest

import (
	"context"

	"github.com/fiberdb/fiberdb/pgserver"
)

// Postgres is a throwaway PostgreSQL server, or a wrapper of an existing one;
// see [pgserver.Server]. Programs that need one without the testing package
// (a demo, a benchmark) import pgserver directly.
type Postgres = pgserver.Server

// PostgresOptions configures [StartPostgres]; see [pgserver.Options].
type PostgresOptions = pgserver.Options

// ErrNoPostgres: no PostgreSQL server binaries were found. Install Debian's
// postgresql package, or set FIBERDB_PG_BINDIR. It is [pgserver.ErrNoBinaries].
var ErrNoPostgres = pgserver.ErrNoBinaries

// StartPostgres starts a private server; see [pgserver.Start]. The caller
// must Close it.
func StartPostgres(ctx context.Context, opts ...PostgresOptions) (*Postgres, error) {
	return pgserver.Start(ctx, opts...)
}

// ConnectPostgres wraps an existing server given by a superuser URL; see
// [pgserver.Connect].
func ConnectPostgres(rawURL string) (*Postgres, error) {
	return pgserver.Connect(rawURL)
}

// FindBinDir returns the directory of the PostgreSQL server binaries; see
// [pgserver.FindBinDir].
func FindBinDir() (string, error) {
	return pgserver.FindBinDir()
}
