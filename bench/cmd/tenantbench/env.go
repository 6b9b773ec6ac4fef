package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fiberdb/fiberdb/pgserver"
)

// role is the login role the app connects as: not a superuser, so the
// server refuses it a connection past max_connections minus the reserved
// slots instead of handing it one of those.
const role = "app"

// env is the server and its tenant databases.
type env struct {
	pg      *pgserver.Server
	tenants []string
}

// setUp starts PostgreSQL with max_connections=100, creates the role and n
// tenant databases, each with a tiny table, from one template.
func setUp(ctx context.Context, n int) (*env, error) {
	start := time.Now()
	pg, err := pgserver.Start(ctx, pgserver.Options{MaxConnections: maxConnections})
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	e := &env{pg: pg}
	if err := e.create(ctx, n); err != nil {
		return nil, errors.Join(err, pg.Close())
	}
	fmt.Printf("created %d tenant databases in %s\n", n, time.Since(start).Round(time.Millisecond))
	return e, nil
}

func (e *env) create(ctx context.Context, n int) error {
	if err := e.pg.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER"); err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	if err := e.pg.CreateDatabase(ctx, "tenant_template", ""); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	conn, err := pgx.Connect(ctx, e.pg.ConnString("tenant_template"))
	if err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i;
GRANT SELECT ON items TO `+role)
	if err = errors.Join(err, conn.Close(ctx)); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	e.tenants = make([]string, n)
	for i := range e.tenants {
		e.tenants[i] = fmt.Sprintf("t%03d", i)
	}
	// CREATE DATABASE copies the template, which must have no session open:
	// one at a time.
	for _, name := range e.tenants {
		if err := e.pg.CreateDatabase(ctx, name, "tenant_template"); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return nil
}

// url is the DSN of database as the app's role, on the server or on
// PgBouncer's address (host:port) when proxy is not empty.
func (e *env) url(database, proxy string) string {
	u, err := url.Parse(e.pg.ConnString(database))
	if err != nil {
		panic(err) // pgserver builds it
	}
	u.User = url.User(role)
	if proxy != "" {
		u.Host = proxy
	}
	return u.String()
}

// settle waits until the server has no connection of the app's role left,
// so that the next mode has every slot.
func (e *env) settle(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.pg.URL())
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role).Scan(&n); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("settle: %d connections of %s still open after 30s", n, role)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessions counts the server connections established since it started,
// over every database and to the hottest tenant's (pg_stat_database.sessions;
// a backend's count is flushed by the time it exits, and settle waits for
// that).
func (e *env) sessions(ctx context.Context) (all, hot int64, err error) {
	conn, err := pgx.Connect(ctx, e.pg.URL())
	if err != nil {
		return 0, 0, fmt.Errorf("sessions: %w", err)
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(sessions), 0)::bigint, coalesce(sum(sessions) FILTER (WHERE datname = $1), 0)::bigint
FROM pg_stat_database`, e.tenants[0]).Scan(&all, &hot)
	if err != nil {
		return 0, 0, fmt.Errorf("sessions: %w", err)
	}
	return all, hot, nil
}

// refusalsLogged counts the connections the server log says it refused
// (SQLSTATE 53300: "too many clients", "too many connections for role", or
// the slots left being reserved for superusers) from offset on, and returns
// the log's new end.
func (e *env) refusalsLogged(offset int64) (refused int, end int64, err error) {
	b, err := os.ReadFile(filepath.Join(e.pg.Dir(), "postgres.log"))
	if err != nil {
		return 0, offset, fmt.Errorf("read server log: %w", err)
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	b = b[offset:]
	n := bytes.Count(b, []byte("too many")) + bytes.Count(b, []byte("remaining connection slots are reserved"))
	return n, int64(len(b)) + offset, nil
}

// close stops the server and removes its directory.
func (e *env) close() error { return e.pg.Close() }
