package lifecycle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"

	ternmigrate "github.com/jackc/tern/v2/migrate"
	"github.com/pressly/goose/v3"
)

// disableTx is tern's marker for a migration that must run outside a
// transaction (tern's own pattern is unexported; this is the same one).
var disableTx = regexp.MustCompile(`(?m)^---- tern: disable-tx ----$`)

// Migrations are the migrations one tenant schema needs, read once by
// [LoadMigrations] and applied to any number of tenants. They are immutable,
// so one value may serve concurrent calls.
type Migrations struct {
	list []*ternmigrate.Migration
}

// LoadMigrations reads the migrations in fsys with jackc/tern's own loader,
// so the files are exactly tern's: NNN_name.sql at the top of fsys, numbered
// from 1 without gaps; the file is the up migration, and an optional line
// "---- create above / drop below ----" starts its down part, which fiberdb
// never runs. tern's templates work too (text/template with sprig, shared
// files in subdirectories). A file holding the line
// "---- tern: disable-tx ----" runs outside a transaction, as one simple
// query: PostgreSQL runs a query of several statements as one implicit
// transaction, so give each statement that refuses a transaction (CREATE
// INDEX CONCURRENTLY) a file of its own.
//
// The error wraps [ErrNoMigrations] when fsys holds no migration file.
func LoadMigrations(fsys fs.FS) (*Migrations, error) {
	// A tern Migrator without a connection only loads and parses (tern's own
	// code generator uses one so); NewMigrator would want a context for
	// nothing. Running goes through goose: see run.go.
	m := &ternmigrate.Migrator{Data: map[string]any{}}
	if err := m.LoadMigrations(fsys); err != nil {
		if errors.As(err, new(ternmigrate.NoMigrationsFoundError)) {
			return nil, ErrNoMigrations
		}
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrations{list: m.Migrations}, nil
}

// Latest returns the version of the last migration, which every tenant
// reaches once migrated.
func (m *Migrations) Latest() int64 { return int64(len(m.list)) }

// Name returns the file name of migration version v ("002_add_todos.sql"),
// or "" when there is none.
func (m *Migrations) Name(v int64) string {
	if v < 1 || v > int64(len(m.list)) {
		return ""
	}
	return m.list[v-1].Name
}

// goose turns the migrations into goose Go migrations for one tenant's run.
// Each call returns new values: goose keeps state in them. started is called
// as each migration begins.
func (m *Migrations) goose(started func(version int64, name string)) []*goose.Migration {
	out := make([]*goose.Migration, 0, len(m.list))
	for _, tm := range m.list {
		version, name, sqlText := int64(tm.Sequence), tm.Name, tm.UpSQL
		up := &goose.GoFunc{}
		if disableTx.MatchString(sqlText) {
			up.RunDB = func(ctx context.Context, db *sql.DB) error {
				started(version, name)
				return runOutsideTx(ctx, db, name, sqlText)
			}
		} else {
			up.RunTx = func(ctx context.Context, tx *sql.Tx) error {
				started(version, name)
				if _, err := tx.ExecContext(ctx, sqlText); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				// As tern does: a setting the migration changed (search_path
				// above all) must not reach the version row or the next file.
				if _, err := tx.ExecContext(ctx, "RESET ALL"); err != nil {
					return fmt.Errorf("%s: reset settings: %w", name, err)
				}
				return nil
			}
		}
		out = append(out, goose.NewGoMigration(version, up, nil))
	}
	return out
}

// runOutsideTx runs a disable-tx migration on a connection of its own and
// resets what it set there, so that the connection goes back clean.
func runOutsideTx(ctx context.Context, db *sql.DB, name, sqlText string) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer func() {
		if cerr := conn.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: %w", name, cerr)
		}
	}()
	if _, err := conn.ExecContext(ctx, sqlText); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := conn.ExecContext(ctx, "RESET ALL"); err != nil {
		return fmt.Errorf("%s: reset settings: %w", name, err)
	}
	return nil
}
