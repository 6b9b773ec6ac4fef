package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fiberdb/fiberdb/catalog"
	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/internal/hostname"
)

// Tenant is a new tenant for [AddTenant].
type Tenant struct {
	// Name is the tenant's engine name, 1 to 63 of A-Z, a-z, 0-9, _ and -.
	// Its database (or schema) gets the same name.
	//
	// Required.
	Name string

	// Hosts are the host names routed to the tenant.
	//
	// Optional. Default: none
	Hosts []string

	// Template is the database CREATE DATABASE copies: one that already
	// holds the schema (and reference data) makes a new tenant in
	// milliseconds; the migrations then apply only what the template lacks.
	// Not with Pool.
	//
	// Optional. Default: the server's default (template1)
	Template string

	// Pool makes a shared-pool tenant: instead of a database, AddTenant
	// creates schema Name in the database of engine Pool, and the tenant's
	// row is {pool: Pool, search_path: Name}.
	//
	// Optional. Default: "" (a database of its own)
	Pool string
}

var tenantName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// AddTenant creates t's database on the landlord's (engine "default")
// server, or its schema in its pool engine's database, migrates it with m
// when m is not nil, and then writes its row into the catalog table
// fiberdb_tenants of the landlord database (installing the table if
// missing), last, so that an app following the catalog never serves a
// tenant that is not ready. A database tenant's url is the landlord's with
// the tenant's database (a password in the landlord's url is copied with
// it), and so is its direct_url when the landlord has one.
//
// Every connection AddTenant opens is a direct one
// ([config.Config.DirectConfig]): the landlord's direct_url, else its url,
// for the catalog, the new database and its migrations; the pool engine's
// for a schema.
//
// conf should hold the catalog's rows (catalog.Provider), as the app's does,
// so that names and hosts are checked against them too. Before creating
// anything, AddTenant refuses a name outside [A-Za-z0-9_-], a bad host, or
// a Pool that is not an engine with a url or that connects as a user named
// like t ([ErrInvalidTenant]), and a name
// or host that conf or the catalog already has ([ErrTenantExists]); a
// database or schema that already exists is ErrTenantExists too. It also
// refuses a landlord without a url of its own (one with a pool). When the
// migrations fail, the database (or schema) stays, without a row: the error
// and the Result say why, and AddTenant refuses the name until it is dropped.
func AddTenant(ctx context.Context, conf *config.Config, t Tenant, m *Migrations) (res Result, err error) {
	res = Result{Tenant: t.Name, From: -1, To: -1}
	row, err := checkTenant(conf, t)
	if err != nil {
		return res, err
	}
	// The landlord's own direct connection: Config.DirectConfig would give
	// a landlord with a pool its pool engine's, but a tenant's url is the
	// landlord's own. Engine.DirectConfig is nil for such a landlord.
	landlord := conf.Engines[config.DefaultEngine]
	direct := landlord.DirectConfig()
	if direct == nil {
		return res, fmt.Errorf("add tenant %q: '%s[\"default\"]' must be defined with a url: the catalog lives there", t.Name, conf.Key)
	}
	conn, err := pgx.ConnectConfig(ctx, direct)
	if err != nil {
		return res, fmt.Errorf("add tenant %q: connect to the landlord database: %w", t.Name, err)
	}
	defer func() {
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("add tenant %q: close: %w", t.Name, cerr))
		}
	}()
	if ierr := catalog.Install(ctx, conn); ierr != nil {
		return res, fmt.Errorf("add tenant %q: %w", t.Name, ierr)
	}
	if exists, herr := catalogHas(ctx, conn, t.Name); herr != nil {
		return res, fmt.Errorf("add tenant %q: %w", t.Name, herr)
	} else if exists {
		return res, fmt.Errorf("add tenant %q: %w: the catalog table has it", t.Name, ErrTenantExists)
	}

	var tgt *target
	if t.Pool == "" {
		tgt, err = createDatabase(ctx, conn, landlord.PoolConfig().ConnString(), direct, t, &row)
	} else {
		tgt, err = createSchema(ctx, conf, t)
	}
	if err != nil {
		return res, fmt.Errorf("add tenant %q: %w", t.Name, err)
	}
	made := "database"
	if t.Pool != "" {
		made = "schema"
	}
	if m != nil {
		res = m.run(ctx, tgt, func(Step) {})
		if res.Err != nil {
			return res, fmt.Errorf("add tenant %q: %s %q created, but neither migrated nor added to the catalog: %w", t.Name, made, t.Name, res.Err)
		}
	}
	if perr := catalog.Put(ctx, conn, row); perr != nil {
		return res, fmt.Errorf("add tenant %q: %s %q created and migrated, but not added to the catalog: %w", t.Name, made, t.Name, perr)
	}
	return res, nil
}

// checkTenant validates t against conf and returns its catalog row, without
// its url.
func checkTenant(conf *config.Config, t Tenant) (catalog.Tenant, error) {
	row := catalog.Tenant{Name: t.Name}
	if !tenantName.MatchString(t.Name) {
		return row, fmt.Errorf("add tenant %q: %w: a name is 1 to 63 of A-Z, a-z, 0-9, _ and -", t.Name, ErrInvalidTenant)
	}
	if _, ok := conf.Engines[t.Name]; ok || t.Name == config.DefaultEngine {
		return row, fmt.Errorf("add tenant %q: %w: the configuration defines engine %q", t.Name, ErrTenantExists, t.Name)
	}
	if t.Pool != "" {
		e := conf.Engines[t.Pool]
		pc := e.PoolConfig()
		if pc == nil {
			return row, fmt.Errorf("add tenant %q: %w: pool %q is not an engine with a url of its own", t.Name, ErrInvalidTenant, t.Pool)
		}
		if pc.ConnConfig.User == t.Name {
			// config.Load refuses such a row too, but only once the schema
			// exists, and from then on every tenant of the pool without a
			// search_path ("$user", public) would find its tables first.
			return row, fmt.Errorf("add tenant %q: %w: pool %q connects as user %q, and a schema of that name comes first "+
				`in the search_path ("$user", public) of the pool's tenants without one`, t.Name, ErrInvalidTenant, t.Pool, t.Name)
		}
		if t.Template != "" {
			return row, fmt.Errorf("add tenant %q: %w: a template copies a database, and a shared-pool tenant gets a schema", t.Name, ErrInvalidTenant)
		}
		row.Options = map[string]any{"pool": t.Pool, "search_path": t.Name}
	}
	routed := conf.Hosts()
	for _, h := range t.Hosts {
		norm, err := hostname.Normalize(h)
		if err != nil || strings.Contains(norm, ":") {
			return row, fmt.Errorf("add tenant %q: %w: host %q is not a host name (use punycode for international names)", t.Name, ErrInvalidTenant, h)
		}
		if other, taken := routed[norm]; taken {
			return row, fmt.Errorf("add tenant %q: %w: host %q is routed to engine %q", t.Name, ErrTenantExists, norm, other)
		}
		row.Hosts = append(row.Hosts, norm)
	}
	return row, nil
}

// createDatabase creates t's database on the landlord's server, sets row's
// url (and direct_url) to it and returns its target, which connects as the
// landlord's direct connection, cc, does. pooled is the landlord's url.
func createDatabase(ctx context.Context, conn *pgx.Conn, pooled string, cc *pgx.ConnConfig, t Tenant, row *catalog.Tenant) (*target, error) {
	row.URL = withDatabase(pooled, t.Name)
	if direct := cc.ConnString(); direct != pooled {
		row.Options = map[string]any{"direct_url": withDatabase(direct, t.Name)}
	}
	cc.Database = t.Name
	if err := row.Validate(); err != nil {
		return nil, err
	}
	create := "CREATE DATABASE " + pgx.Identifier{t.Name}.Sanitize()
	if t.Template != "" {
		create += " TEMPLATE " + pgx.Identifier{t.Template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
			return nil, fmt.Errorf("%w: database %q exists", ErrTenantExists, t.Name)
		}
		return nil, fmt.Errorf("create database: %w", err)
	}
	return &target{tenant: t.Name, conn: oneShot(cc)}, nil
}

// createSchema creates t's schema in its pool engine's database and returns
// its target.
func createSchema(ctx context.Context, conf *config.Config, t Tenant) (_ *target, err error) {
	cc := conf.DirectConfig(t.Pool)
	conn, err := pgx.ConnectConfig(ctx, cc) // a copy of cc: schemaTarget below changes it
	if err != nil {
		return nil, fmt.Errorf("connect to pool %q: %w", t.Pool, err)
	}
	defer func() {
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close: %w", cerr))
		}
	}()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{t.Name}.Sanitize()); err != nil {
		if schemaExists(err) {
			return nil, fmt.Errorf("%w: schema %q exists in pool %q's database", ErrTenantExists, t.Name, t.Pool)
		}
		return nil, fmt.Errorf("create schema: %w", err)
	}
	return schemaTarget(t.Name, cc, t.Name), nil
}

// withDatabase returns the connection string dsn with its database replaced
// by database; dsn is a URL or keyword/value pairs, as pgx parses both.
func withDatabase(dsn, database string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path, u.RawPath = "/"+database, ""
			if q := u.Query(); q.Has("dbname") || q.Has("database") {
				// pgx lets these parameters win over the path.
				q.Del("dbname")
				q.Del("database")
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	// A later keyword wins in pgx, as in libpq; a tenant name needs no escape.
	return strings.TrimSpace(dsn) + " dbname='" + database + "'"
}

// catalogHas reports whether the catalog table has a row called name.
// Package catalog writes rows but has no lookup of one, which AddTenant
// needs before it creates anything.
func catalogHas(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+catalog.Table+" WHERE name = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("read the catalog table: %w", err)
	}
	return exists, nil
}
