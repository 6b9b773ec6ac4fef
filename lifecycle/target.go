package lifecycle

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/fiberdb/fiberdb/config"
)

// versionTable is goose's table name; goose's own CLI finds it by default.
const versionTable = "goose_db_version"

// target is where one tenant's migrations run.
type target struct {
	tenant string
	// conn is a direct connection to the tenant's database: the engine's
	// url, never a pool of fiberdb's, so nothing of the run reaches a
	// connection that serves requests.
	conn *pgx.ConnConfig
	// schema holds the tenant's tables when it shares a database with
	// other tenants; empty for a tenant with a database of its own.
	schema string
}

// targetFor returns the target of engine name in conf.
func targetFor(conf *config.Config, name string) (*target, error) {
	e, ok := conf.Engines[name]
	if !ok || name == config.DefaultEngine {
		return nil, unknownTenant(conf, name)
	}
	return &target{tenant: name, conn: e.PoolConfig().ConnConfig}, nil
}

// table returns the version table, qualified by the tenant's schema when it
// has one: tenants sharing a database each keep their own.
func (t *target) table() string {
	if t.schema == "" {
		return versionTable
	}
	return t.schema + "." + versionTable
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
