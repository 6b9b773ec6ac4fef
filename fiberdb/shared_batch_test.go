package fiberdb_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fiberdb/fiberdb/fiberdb"
)

// whoSQL answers the tenant a statement runs as: its app.tenant, else its
// schema.
const whoSQL = "select coalesce(nullif(current_setting('app.tenant', true), ''), current_schema())"

// pairs are the shared tenants two at a time, one of each kind, so that
// both leases of a pair are held at once, on the pool's two connections.
var pairs = [][2]string{{"acme", "initech"}, {"umbrella", "globex"}}

// sendToPairs sends b to every tenant of pairs in turn, both leases of a
// pair held at once, and returns what read answers for each. read may
// close the results itself (a second Close answers the first one's error).
func sendToPairs(t *testing.T, e *fiberdb.Engines, b *pgx.Batch, read func(br pgx.BatchResults) string) map[string]string {
	t.Helper()
	ctx := t.Context()
	got := map[string]string{}
	for _, pair := range pairs {
		func() {
			// Released in defers, so that a failed require (runtime.Goexit)
			// frees the pool for the next pair and the next subtest.
			first, release, err := e.Acquire(ctx, pair[0])
			require.NoError(t, err)
			defer func() { require.NoError(t, release()) }()
			second, release2, err := e.Acquire(ctx, pair[1])
			require.NoError(t, err)
			defer func() { require.NoError(t, release2()) }()
			for i, db := range []fiberdb.DBTX{first, second} {
				br := db.SendBatch(ctx, b)
				got[pair[i]] = read(br)
				require.NoError(t, br.Close(), pair[i])
			}
		}()
	}
	return got
}

// TestSharedPoolSendBatchLeavesTheBatchAlone (review S2): SendBatch on a
// shared-pool tenant queued its prelude into the caller's batch. A loop to
// b.Len() then read one result too many, and a batch sent to one tenant
// after another carried the first one's set_config into the next one's,
// whose statements then ran with the first one's RLS setting. The batch is
// sent on two connections in turn, so that a statement description pgx
// recorded for one connection would fail, or mislead, on the other.
func TestSharedPoolSendBatchLeavesTheBatchAlone(t *testing.T) {
	t.Parallel()
	own := map[string]string{"acme": "acme", "globex": "globex", "initech": "initech", "umbrella": "umbrella"}
	for _, mode := range allExecModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode})

			t.Run("ResultsReadToLen", func(t *testing.T) {
				b := &pgx.Batch{}
				b.Queue("select 1")
				b.Queue(whoSQL)
				got := sendToPairs(t, e, b, func(br pgx.BatchResults) string {
					var who string
					for i := range b.Len() {
						if i < b.Len()-1 {
							_, err := br.Exec()
							require.NoError(t, err)
							continue
						}
						require.NoError(t, br.QueryRow().Scan(&who))
					}
					return who
				})
				assert.Equal(t, 2, b.Len(), "the batch holds the caller's queries only")
				assert.Equal(t, own, got, "each tenant's statements ran with its own settings")
			})

			t.Run("Callbacks", func(t *testing.T) {
				b := &pgx.Batch{}
				var who string
				b.Queue(whoSQL).QueryRow(func(row pgx.Row) error { return row.Scan(&who) })
				got := sendToPairs(t, e, b, func(br pgx.BatchResults) string {
					who = ""
					require.NoError(t, br.Close()) // runs the callback
					return who
				})
				assert.Equal(t, 1, b.Len())
				assert.Equal(t, own, got, "Close runs the caller's callback with each tenant's result")
			})

			t.Run("BeginsATransaction", func(t *testing.T) {
				b := &pgx.Batch{}
				b.BeginTx(pgx.TxOptions{})
				b.Queue(whoSQL)
				got := sendToPairs(t, e, b, func(br pgx.BatchResults) string {
					tx := br.Tx()
					require.NotNil(t, tx, "the batch begins a transaction")
					_, err := br.Exec()
					require.NoError(t, err, "BEGIN")
					var who string
					require.NoError(t, br.QueryRow().Scan(&who))
					require.NoError(t, br.Close())
					var again string
					require.NoError(t, tx.QueryRow(t.Context(), whoSQL).Scan(&again))
					require.NoError(t, tx.Rollback(t.Context()))
					return who + "," + again
				})
				assert.Equal(t, 2, b.Len())
				for tenant, who := range got {
					assert.Equal(t, tenant+","+tenant, who, "in the batch, then in the transaction it began")
				}
				assert.Len(t, got, 4)
			})
		})
	}
}

// TestSharedPoolMultiStatementExec (review S7): pgx sends an Exec without
// arguments as a simple query, which may hold several statements, as it
// does on a pool of one's own. On a shared-pool tenant under exec mode
// (what README advises behind PgBouncer 1.18) the statement travelled in
// an extended-protocol batch behind the prelude and failed: "cannot insert
// multiple commands into a prepared statement".
func TestSharedPoolMultiStatementExec(t *testing.T) {
	t.Parallel()
	for _, mode := range allExecModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e, _ := openShared(t, map[string]any{"default_query_exec_mode": mode})
			multiStatementExec(t, e)
		})
	}
}

// multiStatementExec runs two inserts in one Exec as acme and as initech,
// each into its own table, and checks that they persisted: unqualified
// items resolves in acme's schema only, and docs's policy checks initech's
// rows against app.tenant, so both statements ran behind the prelude.
func multiStatementExec(t *testing.T, e *fiberdb.Engines) {
	t.Helper()
	ctx := t.Context()
	for tenant, sql := range map[string]string{
		"acme":    "insert into items values ('one'); insert into items values ('two')",
		"initech": "insert into docs values ('initech', 'one'); insert into docs values ('initech', 'two')",
	} {
		func() {
			db, release, err := e.Acquire(ctx, tenant)
			require.NoError(t, err)
			defer func() { require.NoError(t, release()) }()
			tag, err := db.Exec(ctx, sql)
			require.NoError(t, err, tenant)
			assert.Equal(t, "INSERT 0 1", tag.String(), "%s: the last statement's tag, as pgx answers a simple query", tenant)
			table := "items where name"
			if !schemaTenant(tenant) {
				table = "docs where body"
			}
			n, err := scalar[int](ctx, db, "select count(*)::int from "+table+" in ('one', 'two')")
			require.NoError(t, err)
			assert.Equal(t, 2, n, "%s: both statements persisted", tenant)
		}()
	}
	noLeftovers(t, e, 2)
}
