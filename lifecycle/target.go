package lifecycle

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fiberdb/fiberdb/config"
)

// versionTable is goose's table name; goose's own CLI finds it by default.
const versionTable = "goose_db_version"

// target is where one tenant's migrations run.
type target struct {
	tenant string
	// conn is a direct connection to the tenant's database
	// ([config.Config.DirectConfig]: the direct_url, else the url, of the
	// engine or of its pool's engine), never a pool of fiberdb's, so that
	// nothing of the run reaches a connection that serves requests. A
	// schema tenant's connections start with its search_path.
	conn *pgx.ConnConfig
	// schema is the tenant's search_path schema, which holds its tables and
	// its version table; empty for a tenant that has its database's
	// default schemas.
	schema string
}

// targetFor returns the target of engine name in conf.
func targetFor(conf *config.Config, name string) (*target, error) {
	e, ok := conf.Engines[name]
	if !ok || name == config.DefaultEngine {
		return nil, unknownTenant(conf, name)
	}
	cc := conf.DirectConfig(name)
	if cc == nil {
		return nil, fmt.Errorf("%w %q: '%s[%s][\"pool\"]' names no engine with a url", ErrUnknownTenant, name, conf.Key, strconv.Quote(name))
	}
	if e.SearchPath != "" {
		return schemaTarget(name, cc, e.SearchPath), nil
	}
	return &target{tenant: name, conn: oneShot(cc)}, nil
}

// oneShot sets cc up for a run's few queries, each sent once: a statement
// cache would spend a round trip preparing each.
func oneShot(cc *pgx.ConnConfig) *pgx.ConnConfig {
	switch cc.DefaultQueryExecMode {
	case pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec:
		cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	case pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol:
	}
	return cc
}

// schemaTarget is the target of a tenant whose tables are in schema, in the
// database that cc, a direct connection of the tenant's own, reaches.
func schemaTarget(name string, cc *pgx.ConnConfig, schema string) *target {
	cc = oneShot(cc)
	// A session parameter is safe here: the connection is the run's own.
	// pg_temp last, as in the tenant's requests (fiberdb's prelude), so
	// that a name resolves the same way in a migration as in a request.
	cc.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize() + ", pg_temp"
	return &target{tenant: name, conn: cc, schema: schema}
}

// table returns the version table, qualified by the tenant's schema when it
// has one: tenants sharing a database each keep their own.
func (t *target) table() string {
	if t.schema == "" {
		return versionTable
	}
	return pgx.Identifier{t.schema, versionTable}.Sanitize()
}

// targetKey is what a target migrates: a version table in a database,
// reached as a role with the session parameters of its connection string
// (a url's ?search_path=… changes what the unqualified names are).
type targetKey struct {
	host           string
	port           uint16
	database, user string
	params         string // the run-time parameters, sorted, as name=value lines
	table          string
}

// key returns what t migrates. Targets with one key migrate the same tables
// under the same lock: a pool engine and the row-level-security tenants of
// its pool (no search_path) are such targets, so Migrate runs them once,
// where a run each would apply the migrations once and queue the other runs
// behind that one's lock.
func (t *target) key() targetKey {
	var params strings.Builder
	for _, name := range slices.Sorted(maps.Keys(t.conn.RuntimeParams)) {
		params.WriteString(name + "=" + t.conn.RuntimeParams[name] + "\n")
	}
	return targetKey{
		host: t.conn.Host, port: t.conn.Port, database: t.conn.Database, user: t.conn.User,
		params: params.String(), table: t.table(),
	}
}

// lockID is the session advisory lock key of the tenant's runs. PostgreSQL
// scopes advisory locks to a database, so tenants with databases of their
// own never share a lock; a key derived from the version table gives
// tenants sharing a database one lock each, where tern's fixed key (or
// goose's default) would queue them behind each other.
func (t *target) lockID() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("fiberdb lifecycle " + t.table()))
	return int64(h.Sum64()) //nolint:gosec // G115: any 64 bits make a key; wrapping is intended
}

// unknownTenant is the error for a name that is not a tenant engine of conf.
func unknownTenant(conf *config.Config, name string) error {
	if name == config.DefaultEngine {
		return fmt.Errorf("%w %q: the landlord engine is not a tenant", ErrUnknownTenant, name)
	}
	return fmt.Errorf("%w %q: '%s[%s]' is not defined", ErrUnknownTenant, name, conf.Key, strconv.Quote(name))
}
