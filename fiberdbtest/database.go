package fiberdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DatabaseOptions configures [Database].
type DatabaseOptions struct {
	// Template is the database to copy, e.g. one made by [Template].
	//
	// Optional. Default: the server's default (template1)
	Template string
}

// Database creates a new database on the shared server for this test only,
// and returns its superuser connection string, which always has a query
// string (add parameters with "&name=value"). It is dropped (ending any
// session still on it) when the test and its subtests end; register pool
// cleanups after calling Database so that they run first.
func Database(tb testing.TB, opts ...DatabaseOptions) string {
	tb.Helper()
	var o DatabaseOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	pg := Server(tb)
	name := "t_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createOwned(ctx, pg, name, o.Template); err != nil {
		tb.Fatalf("fiberdbtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pg.DropDatabase(ctx, name); err != nil {
			tb.Errorf("fiberdbtest: drop database %s: %v", name, err)
		}
	})
	return pg.ConnString(name)
}

// templates holds this process's templates by the name given to Template.
var templates sync.Map // string → *template

type template struct {
	once sync.Once
	db   string // the database's name: the given name and this process's tag
	err  error
}

// processTag makes the names of this process's templates its own, so that
// test binaries running in parallel on one server (go test ./...) never
// share or drop each other's.
var processTag = randomHex(4)

// Template creates, once per test binary, a template database by running
// setup (your schema and fixtures) on a new database, and returns the
// template's name for [DatabaseOptions.Template]. Copying a template is much
// faster than running migrations per test:
//
//	tpl := fiberdbtest.Template(t, "todo_schema", migrate)
//	dsn := fiberdbtest.Database(t, fiberdbtest.DatabaseOptions{Template: tpl})
//
// Every call with the same name returns the first call's result; setup runs
// once. The database is called name plus a suffix of this process, so two
// packages that use one name never collide; [Main] drops it (on a started
// server, with the server).
func Template(tb testing.TB, name string, setup func(ctx context.Context, conn *pgx.Conn) error) string {
	tb.Helper()
	pg := Server(tb)
	v, _ := templates.LoadOrStore(name, new(template))
	tpl, _ := v.(*template) //nolint:errcheck // the map only holds *template
	tpl.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		db := name
		if len(db) > 63-len(processTag)-1 { // PostgreSQL truncates names to 63 bytes
			db = db[:63-len(processTag)-1]
		}
		tpl.db = db + "_" + processTag
		tpl.err = buildTemplate(ctx, pg, tpl.db, setup)
	})
	if tpl.err != nil {
		tb.Fatalf("fiberdbtest: template %s: %v", name, tpl.err)
	}
	return tpl.db
}

func buildTemplate(ctx context.Context, pg *Postgres, name string, setup func(context.Context, *pgx.Conn) error) (err error) {
	if createErr := createOwned(ctx, pg, name, ""); createErr != nil {
		return createErr
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, pg.DropDatabase(context.WithoutCancel(ctx), name))
		}
	}()
	conn, err := pgx.Connect(ctx, pg.ConnString(name))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	err = setup(ctx, conn)
	// CREATE DATABASE … TEMPLATE refuses a template with open sessions.
	if closeErr := conn.Close(ctx); closeErr != nil && err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return pg.SetTemplate(ctx, name, true)
}

// dropTemplates drops the templates this process made.
func dropTemplates(ctx context.Context, pg *Postgres) error {
	var errs error
	templates.Range(func(_, v any) bool {
		if tpl, ok := v.(*template); ok && tpl.db != "" && tpl.err == nil {
			errs = errors.Join(errs, pg.DropDatabase(ctx, tpl.db))
		}
		return true
	})
	return errs
}

// ownerPrefix starts the comment that marks a database as made by a
// fiberdbtest process: "fiberdbtest owner=<hostname>/<pid>".
const ownerPrefix = "fiberdbtest owner="

var owner = ownerPrefix + hostname() + "/" + strconv.Itoa(os.Getpid())

// createOwned creates database name and marks it as this process's, so that
// the next test binary drops it should this one be killed before it could.
func createOwned(ctx context.Context, pg *Postgres, name, template string) error {
	create := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	comment := "COMMENT ON DATABASE " + pgx.Identifier{name}.Sanitize() + " IS '" + strings.ReplaceAll(owner, "'", "''") + "'"
	return pg.Exec(ctx, create, comment)
}

// sweepDatabases drops the databases that fiberdbtest processes of this
// machine, now dead, left on pg: a killed test binary runs no cleanup.
// Databases of live processes, of other machines, or without the owner
// comment are left alone.
func sweepDatabases(ctx context.Context, pg *Postgres) error {
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		return fmt.Errorf("fiberdbtest: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database
		WHERE starts_with(coalesce(shobj_description(oid, 'pg_database'), ''), $1)`, ownerPrefix+hostname()+"/")
	if err != nil {
		return fmt.Errorf("fiberdbtest: list databases: %w", err)
	}
	type owned struct{ Name, Owner string }
	dbs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[owned])
	if err != nil {
		return fmt.Errorf("fiberdbtest: list databases: %w", err)
	}
	var errs error
	for _, db := range dbs {
		_, pidText, _ := strings.Cut(strings.TrimPrefix(db.Owner, ownerPrefix), "/")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		errs = errors.Join(errs, pg.DropDatabase(ctx, db.Name))
	}
	return errs
}

// alive reports whether process pid exists. A process of another user
// answers EPERM, and exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
