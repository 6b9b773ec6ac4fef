package lifecycle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Why goose runs the migrations that tern parses: tern's Migrator takes one
// fixed session advisory lock (pg_advisory_lock(9628173550095224)) in
// NewMigrator, MigrateTo and SetVersion, and offers no way around it.
// PostgreSQL scopes advisory locks to a database, so tenants with databases
// of their own would not notice, but tenants sharing a database (a schema
// each) would migrate one at a time. goose's Provider takes its lock key as
// an option, keeps its version table where it is told (schema-qualified),
// runs each migration in a transaction of its own, and reads the version
// without the lock, so a tenant with nothing to apply takes no lock and runs
// no DDL. golang-migrate keys its lock per schema too, but leaves a "dirty"
// version that needs a manual force after a failed migration.

// lockPoll and lockPolls bound the wait for a tenant's lock, held only by
// another run migrating the same tenant: 5 minutes, as goose's default, but
// polled every second instead of every five.
const (
	lockPoll  = time.Second
	lockPolls = 300
)

// run migrates one tenant; every failure ends up in the Result.
func (m *Migrations) run(ctx context.Context, t *target, report func(Step)) (res Result) {
	start := time.Now()
	res = Result{Tenant: t.tenant, From: -1, To: -1}
	defer func() { res.Duration = time.Since(start) }()

	db := stdlib.OpenDB(*t.conn)
	// One connection holds the lock and runs the migrations in their
	// transactions; goose refuses disable-tx ones unless a second is allowed.
	db.SetMaxOpenConns(2)
	defer func() {
		if err := db.Close(); err != nil && res.Err == nil {
			res.Err = fmt.Errorf("close: %w", err)
		}
	}()

	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(t.lockID()), lock.WithLockTimeout(uint64(lockPoll/time.Second), lockPolls))
	if err != nil {
		res.Err = fmt.Errorf("lock: %w", err)
		return res
	}
	started := func(version int64, name string) {
		report(Step{Kind: StepMigration, Tenant: t.tenant, Version: version, Migration: name})
	}
	dialect, opts := goose.DialectPostgres, []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(m.goose(started)...),
		goose.WithSessionLocker(locker),
	}
	if t.schema == "" {
		opts = append(opts, goose.WithTableName(t.table()))
	} else {
		if res.Err = ensureSchema(ctx, db, t.schema); res.Err != nil {
			return res
		}
		store, serr := newSchemaStore(t.table())
		if serr != nil {
			res.Err = serr
			return res
		}
		dialect, opts = goose.DialectCustom, append(opts, goose.WithStore(store))
	}
	p, err := goose.NewProvider(dialect, db, nil, opts...)
	if err != nil {
		res.Err = fmt.Errorf("prepare: %w", err)
		return res
	}

	// Neither this read nor Up's check for pending migrations takes the
	// lock: a tenant already up to date never waits and never writes.
	from, _, err := p.GetVersions(ctx)
	if err != nil {
		res.Err = fmt.Errorf("read version: %w", unwrapInit(err))
		return res
	}
	res.From, res.To = from, from
	applied, err := p.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		applied, err = partial.Applied, partial.Err
	}
	for _, a := range applied {
		res.To = a.Source.Version
	}
	if err != nil {
		res.Err = unwrapInit(err)
	}
	if from == m.Latest() {
		return res // nothing was pending: no second read on the fast path
	}
	// Another process's run may have applied what this one found pending
	// while this one waited for the lock; then Up applied nothing, and only
	// the version table says where the tenant is now.
	to, _, err := p.GetVersions(ctx)
	switch {
	case err == nil:
		res.To = to
	case res.Err == nil:
		res.Err = fmt.Errorf("read version: %w", unwrapInit(err))
	}
	return res
}

// ensureSchema creates the tenant's schema unless it exists; a tenant whose
// schema exists pays one catalog read. Another session may create it at the
// same time (another deploy's run, AddTenant): IF NOT EXISTS does not cover
// that, since PostgreSQL checks for the name before its insert into
// pg_namespace, which then waits for the other transaction and fails with a
// unique violation once it commits. The schema exists then, as wanted.
func ensureSchema(ctx context.Context, db *sql.DB, schema string) error {
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("find schema: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil && !schemaExists(err) {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// schemaExists reports whether err, from CREATE SCHEMA, says that the schema
// exists: duplicate_schema when it existed before, or a unique violation on
// pg_namespace's name when another session created it meanwhile.
func schemaExists(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "42P06" || pgErr.Code == "23505" && pgErr.ConstraintName == "pg_namespace_nspname_index"
}

// unwrapInit drops goose's "failed to initialize: " prefix, which says
// nothing to someone who never called an initialize.
func unwrapInit(err error) error {
	if u := errors.Unwrap(err); u != nil && err.Error() == "failed to initialize: "+u.Error() {
		return u //nolint:wrapcheck // goose's own wrapping, peeled off
	}
	return err
}
