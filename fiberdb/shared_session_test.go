package fiberdb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSharedPoolTempTableNeverShadowsATenantsTable (review S3): a temporary
// table outlives the transaction that created it, on the server connection,
// and PostgreSQL searches pg_temp first unless search_path names it. With
// search_path "acme" alone, a temporary items that acme left on the one
// connection answered globex's select from items. The prelude's
// "<schema>", pg_temp puts temporary tables after the tenant's own.
func TestSharedPoolTempTableNeverShadowsATenantsTable(t *testing.T) {
	t.Parallel()
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode, "pool_max_conns": 1})
			ctx := t.Context()

			db, release, err := e.Acquire(ctx, "acme")
			require.NoError(t, err)
			_, err = db.Exec(ctx, "create temporary table items (name text)")
			require.NoError(t, err)
			_, err = db.Exec(ctx, "insert into pg_temp.items values ('acme-private')")
			require.NoError(t, err)
			got, err := sees(ctx, db, "acme")
			require.NoError(t, err)
			assert.Equal(t, "acme", got, "acme's own items come before its temporary one")
			require.NoError(t, release())

			for _, tenant := range []string{"globex", "acme"} {
				db, release, err = e.Acquire(ctx, tenant)
				require.NoError(t, err)
				temp, err := scalar[int](ctx, db, "select count(*) from pg_temp.items")
				require.NoError(t, err)
				require.Equal(t, 1, temp, "%s: on the connection that holds the temporary table", tenant)
				got, err = sees(ctx, db, tenant)
				require.NoError(t, err)
				assert.Equal(t, tenant, got, "%s reads its own schema's items", tenant)
				tx, err := db.Begin(ctx)
				require.NoError(t, err)
				got, err = sees(ctx, tx, tenant)
				require.NoError(t, err)
				assert.Equal(t, tenant, got, "%s, in a transaction", tenant)
				require.NoError(t, tx.Rollback(ctx))
				require.NoError(t, release())
			}
		})
	}
}
