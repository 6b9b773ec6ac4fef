package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/pgserver"
)

// tenant is a row of the landlord's tenants table.
type tenant struct{ displayName, plan string }

// tenants describes the demo's tenants; other engine names get their own name
// and the "free" plan.
var tenants = map[string]tenant{
	"acme":    {"Acme Corporation", "enterprise"},
	"globex":  {"Globex Corporation", "pro"},
	"initech": {"Initech", "free"},
}

// seedTodos are each tenant's first todos, distinct so that a leak between
// tenants shows at once.
var seedTodos = map[string][]todo{
	"acme":    {{Title: "Order more anvils"}, {Title: "Test the rocket skates", Done: true}},
	"globex":  {{Title: "Review the volcano lair budget"}, {Title: "Hire a hammock district manager"}},
	"initech": {{Title: "Put new cover sheets on the TPS reports"}, {Title: "Find the red stapler", Done: true}},
}

const (
	createTenants = `CREATE TABLE IF NOT EXISTS tenants (
	name         text PRIMARY KEY,
	display_name text NOT NULL,
	plan         text NOT NULL
)`
	createTodos = `CREATE TABLE IF NOT EXISTS todos (
	id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	title text NOT NULL CHECK (title <> '' AND octet_length(title) <= 200),
	done  boolean NOT NULL DEFAULT false
)`
	// seedIfEmpty inserts the seed rows only into an empty table, so that
	// restarting on an existing server keeps what is there.
	seedIfEmpty = `INSERT INTO todos (title, done)
SELECT * FROM unnest($1::text[], $2::boolean[])
WHERE NOT EXISTS (SELECT 1 FROM todos)`
)

// createDatabases creates, on the demo's own server, the database of each of
// engines (see databaseFor).
func createDatabases(ctx context.Context, pg *pgserver.Server, engines []string) error {
	for _, name := range engines {
		if err := pg.CreateDatabase(ctx, databaseFor(name), ""); err != nil {
			return fmt.Errorf("create database for engine %q: %w", name, err)
		}
	}
	return nil
}

// prepare creates the demo's tables where they are missing and seeds the
// empty ones: the landlord ("default") lists the tenants, and every tenant
// engine has a todos table. It changes nothing that is already there.
func prepare(ctx context.Context, engines *fiberdb.Engines) error {
	conf := engines.Config()
	for _, name := range engines.Names() {
		pool, err := engines.Engine(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if name == config.DefaultEngine {
				return seedLandlord(ctx, tx, conf.Tenants)
			}
			return seedTenant(ctx, tx, name)
		})
		if err != nil {
			return fmt.Errorf("prepare engine %q: %w%s", name, err, hint(err, pool.Config().ConnConfig.Database))
		}
	}
	return nil
}

func seedLandlord(ctx context.Context, tx pgx.Tx, names []string) error {
	if _, err := tx.Exec(ctx, createTenants); err != nil {
		return fmt.Errorf("create tenants: %w", err)
	}
	for _, name := range names {
		t, ok := tenants[name]
		if !ok {
			t = tenant{displayName: name, plan: "free"}
		}
		if _, err := tx.Exec(ctx, "INSERT INTO tenants (name, display_name, plan) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
			name, t.displayName, t.plan); err != nil {
			return fmt.Errorf("seed tenants: %w", err)
		}
	}
	return nil
}

func seedTenant(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, createTodos); err != nil {
		return fmt.Errorf("create todos: %w", err)
	}
	seeds, ok := seedTodos[name]
	if !ok {
		seeds = []todo{{Title: "Welcome to " + name}}
	}
	titles, done := make([]string, len(seeds)), make([]bool, len(seeds))
	for i, s := range seeds {
		titles[i], done[i] = s.Title, s.Done
	}
	if _, err := tx.Exec(ctx, seedIfEmpty, titles, done); err != nil {
		return fmt.Errorf("seed todos: %w", err)
	}
	return nil
}

// hint adds advice to an error a newcomer can fix.
func hint(err error, database string) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name
		return fmt.Sprintf(" (create database %q on that server first)", database)
	}
	return ""
}

// serverMajorVersion returns the major version of the landlord's server.
func serverMajorVersion(ctx context.Context, engines *fiberdb.Engines) (int, error) {
	pool, err := engines.Default()
	if err != nil {
		return 0, err
	}
	var major int
	if err := pool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		return 0, fmt.Errorf("server version: %w", err)
	}
	return major, nil
}
