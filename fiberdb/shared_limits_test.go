package fiberdb_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
)

// The limits of a shared-pool tenant's statements outside a transaction,
// which travel in one batch behind the prelude (README, "Schema per tenant
// and row-level security"), against the same statements on a pool of one's
// own.

// allExecModes are execModes and describe_exec: the statement caches differ
// in each.
var allExecModes = append([]string{"describe_exec"}, execModes...)

// acmeConn takes a connection of tenant acme's from e (openShared),
// released when the test ends.
func acmeConn(t *testing.T, e *fiberdb.Engines) fiberdb.DBTX {
	t.Helper()
	db, release, err := e.Acquire(t.Context(), "acme")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, release()) })
	return db
}

// TestSharedPoolLimits checks, under every exec mode, what a shared-pool
// tenant's batch changes: per-call options, an argument pgx cannot encode
// (which may close the connection: each case takes its own), and
// statements that cannot run in a transaction block.
func TestSharedPoolLimits(t *testing.T) {
	t.Parallel()
	for _, mode := range allExecModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode})

			t.Run("PerCallOptions", func(t *testing.T) {
				db := acmeConn(t, e)
				ctx := t.Context()
				// Only the simple protocol runs two statements in one.
				_, err := db.Exec(ctx, "select 1; select 2", pgx.QueryExecModeSimpleProtocol)
				require.NoError(t, err, "Exec, simple protocol")
				got, err := scalar[string](ctx, db, "select current_schema() || $1::text", pgx.QueryExecModeExec, "!")
				require.NoError(t, err, "QueryRow, exec")
				assert.Equal(t, "acme!", got, "behind the prelude")
				rows, err := db.Query(ctx, "select 1::int4", pgx.QueryResultFormats{pgx.TextFormatCode})
				require.NoError(t, err, "Query, text result format")
				format := rows.FieldDescriptions()[0].Format
				rows.Close()
				require.NoError(t, rows.Err())
				assert.Equal(t, int16(pgx.TextFormatCode), format, "the result format asked for")

				got, err = sees(ctx, db, "acme")
				require.NoError(t, err, "the connection serves on")
				assert.Equal(t, "acme", got)
			})

			t.Run("ArgumentErrorIsPgxs", func(t *testing.T) {
				db := acmeConn(t, e)
				_, err := db.Exec(t.Context(), "select $1::int4", struct{}{})
				require.ErrorContains(t, err, "unable to encode", "pgx's error, not the closed connection's")
			})

			t.Run("RefusesWhatCannotRunInATransactionBlock", func(t *testing.T) {
				db := acmeConn(t, e)
				ctx := t.Context()
				for _, sql := range []string{"vacuum items", "create index concurrently on items (name)"} {
					_, err := db.Exec(ctx, sql)
					var pgErr *pgconn.PgError
					require.ErrorAs(t, err, &pgErr, sql)
					assert.Equal(t, "25001", pgErr.Code, "%s: active_sql_transaction", sql)
				}

				// The pool engine's own connection runs statements as they are.
				own, release, err := e.Acquire(ctx, "saas")
				require.NoError(t, err)
				_, err = own.Exec(ctx, "vacuum acme.items")
				require.NoError(t, err, "on the pool engine")
				require.NoError(t, release())
			})
		})
	}
}

// TestSharedPoolStatementCacheIsPerConnection runs one SQL text, with a
// parameter and a result of the column's type, in two schemas whose column
// types differ, on one connection: pgx's statement caches key a
// description by SQL text per connection, not per search_path.
func TestSharedPoolStatementCacheIsPerConnection(t *testing.T) {
	t.Parallel()
	for _, mode := range allExecModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, dsn := openShared(t, map[string]any{"default_query_exec_mode": mode, "pool_max_conns": 1})
			ctx := t.Context()
			admin, err := pgx.Connect(ctx, dsn)
			require.NoError(t, err)
			defer admin.Close(context.WithoutCancel(ctx))
			_, err = admin.Exec(ctx, "alter table globex.items alter column name type int4 using 7")
			require.NoError(t, err)

			var failed []error
			for range 2 {
				for tenant, name := range map[string]any{"acme": "acme", "globex": 7} {
					db, release, err := e.Acquire(ctx, tenant)
					require.NoError(t, err)
					var got any
					err = db.QueryRow(ctx, "select name from items where name = $1", name).Scan(&got)
					if err == nil {
						assert.EqualValues(t, name, got, tenant)
					} else {
						failed = append(failed, err)
					}
					require.NoError(t, release())
				}
			}
			if mode == "cache_statement" || mode == "cache_describe" {
				assert.NotEmpty(t, failed, "a cached description serves the other schema")
			} else {
				assert.Empty(t, failed, "every statement is described")
			}
		})
	}
}
