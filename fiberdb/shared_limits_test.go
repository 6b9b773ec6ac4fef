package fiberdb_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The limits of a shared-pool tenant's statements outside a transaction,
// which travel in one batch behind the prelude (README, "Schema per tenant
// and row-level security"), against the same statements on a pool of one's
// own.

// allExecModes are execModes and describe_exec: how a statement travels
// differs in each.
var allExecModes = append([]string{"describe_exec"}, execModes...)

func TestSharedPoolHonoursPerCallOptions(t *testing.T) {
	t.Parallel()
	for _, mode := range allExecModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode})
			ctx := t.Context()
			db, release, err := e.Acquire(ctx, "acme")
			require.NoError(t, err)
			defer func() { require.NoError(t, release()) }()

			// Only the simple protocol runs two statements in one.
			_, err = db.Exec(ctx, "select 1; select 2", pgx.QueryExecModeSimpleProtocol)
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
	}
}

func TestSharedPoolArgumentErrorIsPgxs(t *testing.T) {
	t.Parallel()
	for _, mode := range allExecModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode})
			ctx := t.Context()
			db, release, err := e.Acquire(ctx, "acme")
			require.NoError(t, err)
			_, err = db.Exec(ctx, "select $1::int4", struct{}{})
			require.ErrorContains(t, err, "unable to encode", "pgx's error, not the closed connection's")
			require.NoError(t, release())
		})
	}
}
