// Package catalog keeps fiberdb's engines in a table of the landlord
// database, so that an app can add, change and remove tenants while it runs.
//
// [Install] creates the table fiberdb_tenants and a trigger that sends a
// NOTIFY on [Channel] whenever its rows change; [Put] and [Delete] write one
// row; [Provider] is a koanf provider that reads the rows as engines, merged
// with the file and the environment like any other source; a [Listener]
// calls back on every NOTIFY and on every (re)connect. Package reload ties
// them to fiberdb's Engines.Apply.
//
// catalog never drops a good row because of a bad one: a row that
// config.Load would refuse is logged with its key and left out. It never logs
// or returns a url.
package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// Table is the catalog table's name.
	Table = "fiberdb_tenants"
	// Channel is the channel the catalog's trigger notifies, once per
	// statement that changes the table. The payload is the operation
	// (INSERT, UPDATE, DELETE or TRUNCATE); listeners reload in full.
	Channel = "fiberdb_tenants"
)

// DDL creates the catalog table, its notify function and its trigger. It is
// idempotent and needs PostgreSQL 14 or newer (CREATE OR REPLACE TRIGGER).
// [Install] runs it; apps that manage their schema with a migration tool can
// copy it into a migration instead.
const DDL = `CREATE TABLE IF NOT EXISTS fiberdb_tenants (
  name    text PRIMARY KEY,
  url     text NOT NULL,
  hosts   text[] NOT NULL DEFAULT '{}',
  options jsonb NOT NULL DEFAULT '{}'
);
CREATE OR REPLACE FUNCTION fiberdb_tenants_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fiberdb_tenants', TG_OP);
  RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER fiberdb_tenants_notify
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fiberdb_tenants
  FOR EACH STATEMENT EXECUTE FUNCTION fiberdb_tenants_notify();
`

// installLock is the transaction-level advisory lock key that serializes
// concurrent Installs: CREATE … IF NOT EXISTS and CREATE OR REPLACE are not
// safe against each other (a unique violation on pg_type, "tuple
// concurrently updated").
const installLock = 0x6669626572_6462 // "fiberdb"

// DB is what the catalog functions run on: *pgxpool.Pool, *pgxpool.Conn,
// *pgx.Conn, pgx.Tx and fiberdb.DBTX all satisfy it. It must be a connection
// to the landlord database, and may go through PgBouncer (a [Listener] may
// not).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Install creates the catalog table, function and trigger ([DDL]) if they
// do not exist, and replaces the function and trigger if they do. It is
// safe to call at every start, from several processes at once: it runs in
// one transaction under an advisory lock. Inside a pgx.Tx it joins that
// transaction, and the lock is held until it ends.
func Install(ctx context.Context, db DB) error {
	// No arguments: pgx sends the statements as one simple query, which
	// PostgreSQL runs as one implicit transaction, lock included.
	if _, err := db.Exec(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d);\n%s", installLock, DDL)); err != nil {
		return fmt.Errorf("install %s: %w", Table, err)
	}
	return nil
}
