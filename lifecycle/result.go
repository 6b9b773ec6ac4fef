package lifecycle

import "time"

// Result is how one tenant's run ended.
type Result struct {
	// Tenant is the engine's name.
	Tenant string
	// From and To are the tenant's version before and after the run: equal
	// when nothing ran, and -1 when it could not be read (the tenant's
	// database could not be reached, say). A failed run still moves To past
	// every migration that committed before the one that failed: each runs
	// in a transaction of its own.
	From, To int64
	// Duration is the time the tenant's run took, connecting included.
	Duration time.Duration
	// Shared names, sorted, the other tenants whose run this was too: they
	// share the tenant's version table in its database (a pool engine and
	// the row-level-security tenants of its pool), so one run migrated them
	// all, and they all got this Result, From, To, Duration and Err alike.
	// Nil for a tenant that migrated alone.
	Shared []string
	// Err is why the run failed, nil when it did not. A migration's error
	// starts with its file's name and wraps the driver's error (a
	// *pgconn.PgError for SQL errors).
	Err error
}

// UpToDate reports whether the run found nothing to do.
func (r *Result) UpToDate() bool { return r.Err == nil && r.From == r.To }
