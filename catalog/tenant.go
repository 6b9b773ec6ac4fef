package catalog

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	"github.com/knadh/koanf/v2"

	"github.com/fiberdb/fiberdb/config"
)

// Tenant is one row of the catalog table: an engine.
type Tenant struct {
	// Name is the engine name, 1 to 63 of A-Z, a-z, 0-9, _ and -.
	Name string
	// URL is the engine's connection string, as SQLALCHEMY_ENGINES[name].url.
	// It is empty for an engine that uses another's pool (Options "pool").
	URL string
	// Hosts are the host names routed to the engine.
	Hosts []string
	// Options are the engine's other keys (pool_max_conns, direct_url, …),
	// stored as a JSON object. They must not repeat url or hosts.
	Options map[string]any
}

// Validate checks t as config.Load checks an engine, alone: it cannot see a
// host that another row or the config file already claims. Its errors are
// [*config.KeyError] values that name the row, never the url:
//
//	'fiberdb_tenants["acme"]["url"]' must be defined.
func (t Tenant) Validate() error {
	_, err := t.engine()
	return err
}

// engine validates t and returns the engine config.Load makes of it.
func (t Tenant) engine() (*config.Engine, error) {
	for _, col := range []string{"url", "hosts"} {
		if _, ok := t.Options[col]; ok {
			return nil, &config.KeyError{
				Key:    rowKey(t.Name) + `["options"][` + strconv.Quote(col) + `]`,
				Reason: "must not be set: the " + col + " column holds it",
				Err:    config.ErrInvalidOption,
			}
		}
	}
	return validate(t.Name, t.entry())
}

// entry is t as one value of the engines map.
func (t Tenant) entry() map[string]any {
	e := make(map[string]any, len(t.Options)+2)
	maps.Copy(e, t.Options)
	if _, shared := t.Options["pool"]; !shared || t.URL != "" {
		e["url"] = t.URL
	}
	hosts := t.Hosts
	if hosts == nil {
		hosts = []string{}
	}
	e["hosts"] = hosts
	return e
}

// rowKey names a row in logs and errors: fiberdb_tenants["acme"].
func rowKey(name string) string { return Table + "[" + strconv.Quote(name) + "]" }

// validate runs config.Load on a koanf holding only this engine, under the
// key Table, so that every error names the row. An engine that uses another's
// pool gets a stand-in for that engine: whether it really exists is known
// only to the config.Load of the whole config.
func validate(name string, entry map[string]any) (*config.Engine, error) {
	engines := map[string]any{name: entry}
	if pool, ok := entry["pool"].(string); ok && pool != name {
		engines[pool] = "postgres://localhost/stand-in"
	}
	k := koanf.New(".")
	if err := k.Load(mapProvider{Table: engines}, nil); err != nil {
		return nil, fmt.Errorf("validate %s: %w", rowKey(name), err)
	}
	conf, err := config.Load(k, config.Options{Key: Table, AllowEmpty: true})
	if err != nil {
		return nil, err
	}
	return conf.Engines[name], nil
}

// Put inserts t, or replaces the row of the same name, after [Tenant.Validate].
// Hosts are stored normalized. Put refuses (with [config.ErrDuplicateHost])
// a host that another row already claims; two Puts racing for one host can
// still both succeed, and then reloads fail, naming both rows, until one is
// fixed.
//
// The trigger notifies listeners when the transaction commits.
func Put(ctx context.Context, db DB, t Tenant) error {
	eng, err := t.engine()
	if err != nil {
		return err
	}
	hosts := eng.Hosts
	if hosts == nil {
		hosts = []string{}
	}
	options := make(map[string]any, len(t.Options))
	maps.Copy(options, t.Options)

	rows, err := db.Query(ctx, `SELECT name, host
FROM fiberdb_tenants, unnest(hosts) AS host
WHERE name <> $1 AND host = ANY($2::text[])
ORDER BY name, host LIMIT 1`, t.Name, hosts)
	if err != nil {
		return fmt.Errorf("put %s: %w", rowKey(t.Name), err)
	}
	var other, host string
	found := false
	for rows.Next() {
		if err := rows.Scan(&other, &host); err != nil {
			rows.Close()
			return fmt.Errorf("put %s: %w", rowKey(t.Name), err)
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("put %s: %w", rowKey(t.Name), err)
	}
	if found {
		return &config.KeyError{
			Key:    rowKey(t.Name) + `["hosts"]`,
			Reason: fmt.Sprintf("claims host %q, which %s already claims", host, rowKey(other)),
			Err:    config.ErrDuplicateHost,
		}
	}

	if _, err := db.Exec(ctx, `INSERT INTO fiberdb_tenants (name, url, hosts, options)
VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET url = excluded.url, hosts = excluded.hosts, options = excluded.options`,
		t.Name, t.URL, hosts, options); err != nil {
		return fmt.Errorf("put %s: %w", rowKey(t.Name), err)
	}
	return nil
}

// Delete removes the row called name. Deleting a row that does not exist is
// not an error. The trigger notifies listeners when the transaction commits.
func Delete(ctx context.Context, db DB, name string) error {
	if _, err := db.Exec(ctx, `DELETE FROM fiberdb_tenants WHERE name = $1`, name); err != nil {
		return fmt.Errorf("delete %s: %w", rowKey(name), err)
	}
	return nil
}
