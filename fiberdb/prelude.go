package fiberdb

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// prelude is the statement every transaction of an engine that sets
// search_path or settings (most often a shared-pool tenant) begins with:
// one select of set_config(name, value, true) per run-time parameter,
// search_path first. is_local (true) ends each setting with the
// transaction, so no setting of the tenant stays on the connection (what
// the tenant's statements leave there, a temporary table, stays). Names and
// values are parameters; a schema is quoted as an identifier, followed by
// pg_temp, so that temporary tables come after the schema's.
type prelude struct {
	sql   string
	args  []any
	names []string // the parameters it sets
}

// newPrelude builds the prelude of a tenant that sets search_path to
// schema (none if "") and settings. Each name of reset that the tenant does
// not set itself is reset to its default for the transaction (a nil value:
// set_config's RESET), so that on a connection whose transaction outlives
// the tenant's lease (test isolation) the next tenant never reads the
// previous one's values.
func newPrelude(schema string, settings map[string]string, reset []string) *prelude {
	values := make(map[string]any, len(settings)+len(reset)+1)
	for _, name := range reset {
		values[name] = nil
	}
	for name, v := range settings {
		values[name] = v
	}
	if schema != "" {
		// PostgreSQL searches pg_temp first unless the path names it: a
		// temporary table another tenant left on the server connection would
		// shadow the tenant's own table of that name.
		values["search_path"] = pgx.Identifier{schema}.Sanitize() + ", pg_temp"
	}
	if len(values) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(values))
	if i := slices.Index(names, "search_path"); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, "search_path")
	}
	var sql strings.Builder
	sql.WriteString("select ")
	args := make([]any, 0, 2*len(names))
	for i, name := range names {
		if i > 0 {
			sql.WriteString(", ")
		}
		n := strconv.Itoa(2*i + 1)
		sql.WriteString("set_config($" + n + "::text, $" + strconv.Itoa(2*i+2) + "::text, true)")
		args = append(args, name, values[name])
	}
	return &prelude{sql: sql.String(), args: args, names: names}
}

// queued returns p as a batch's query. Each batch gets its own: pgx records
// the statement's description in it.
func (p *prelude) queued() *pgx.QueuedQuery { return &pgx.QueuedQuery{SQL: p.sql, Arguments: p.args} }
