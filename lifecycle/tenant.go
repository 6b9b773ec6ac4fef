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

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/internal/hostname"
)

// Tenant is a new tenant for [AddTenant].
type Tenant struct {
	// Name is the tenant's engine name, 1 to 63 of A-Z, a-z, 0-9, _ and -.
	// Its database gets the same name.
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
	//
	// Optional. Default: the server's default (template1)
	Template string
}

var tenantName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// AddTenant creates t's database on the landlord's (engine "default")
// server, migrates it with m when m is not nil, and then inserts its row into
// the catalog table fiberdb_tenants of the landlord database, last, so that
// an app following the catalog never serves a tenant that is not ready. The
// row's url is the landlord's, with the tenant's database (a password in
// the landlord's url is copied with it).
//
// It refuses, before creating anything, a name outside [A-Za-z0-9_-] or a
// bad host ([ErrInvalidTenant]), and a name the configuration or the catalog
// already has or a host already routed ([ErrTenantExists]); a database that
// already exists is ErrTenantExists too. When the migrations fail, the
// database stays, without a row: the error and the Result say why, and
// AddTenant refuses the name until the database is dropped.
func AddTenant(ctx context.Context, conf *config.Config, t Tenant, m *Migrations) (res Result, err error) {
	res = Result{Tenant: t.Name, From: -1, To: -1}
	hosts, err := checkTenant(conf, t)
	if err != nil {
		return res, err
	}
	landlord := conf.Engines[config.DefaultEngine]
	if landlord == nil {
		return res, fmt.Errorf("add tenant %q: '%s[\"default\"]' must be defined: the catalog lives there", t.Name, conf.Key)
	}
	pc := landlord.PoolConfig()
	conn, err := pgx.ConnectConfig(ctx, pc.ConnConfig)
	if err != nil {
		return res, fmt.Errorf("add tenant %q: connect to the landlord database: %w", t.Name, err)
	}
	defer func() {
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("add tenant %q: close: %w", t.Name, cerr))
		}
	}()

	if err := ensureCatalog(ctx, conn); err != nil {
		return res, fmt.Errorf("add tenant %q: %w", t.Name, err)
	}
	if exists, err := catalogHas(ctx, conn, t.Name); err != nil {
		return res, fmt.Errorf("add tenant %q: %w", t.Name, err)
	} else if exists {
		return res, fmt.Errorf("add tenant %q: %w: the catalog table has it", t.Name, ErrTenantExists)
	}

	create := "CREATE DATABASE " + pgx.Identifier{t.Name}.Sanitize()
	if t.Template != "" {
		create += " TEMPLATE " + pgx.Identifier{t.Template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
			return res, fmt.Errorf("add tenant %q: %w: database %q exists", t.Name, ErrTenantExists, t.Name)
		}
		return res, fmt.Errorf("add tenant %q: create database: %w", t.Name, err)
	}

	dsn := withDatabase(pc.ConnString(), t.Name)
	if m != nil {
		cc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return res, fmt.Errorf("add tenant %q: the tenant's url: %w", t.Name, err)
		}
		res = m.run(ctx, &target{tenant: t.Name, conn: cc}, func(Step) {})
		if res.Err != nil {
			return res, fmt.Errorf("add tenant %q: database %q created, but not migrated nor added to the catalog: %w", t.Name, t.Name, res.Err)
		}
	}
	if err := insertTenant(ctx, conn, t.Name, dsn, hosts); err != nil {
		return res, fmt.Errorf("add tenant %q: database %q created and migrated, but not added to the catalog: %w", t.Name, t.Name, err)
	}
	return res, nil
}

// checkTenant validates t against conf and returns its normalized hosts.
func checkTenant(conf *config.Config, t Tenant) ([]string, error) {
	if !tenantName.MatchString(t.Name) {
		return nil, fmt.Errorf("add tenant %q: %w: a name is 1 to 63 of A-Z, a-z, 0-9, _ and -", t.Name, ErrInvalidTenant)
	}
	if _, ok := conf.Engines[t.Name]; ok || t.Name == config.DefaultEngine {
		return nil, fmt.Errorf("add tenant %q: %w: the configuration defines engine %q", t.Name, ErrTenantExists, t.Name)
	}
	routed := conf.Hosts()
	hosts := make([]string, 0, len(t.Hosts))
	for _, h := range t.Hosts {
		norm, err := hostname.Normalize(h)
		if err != nil || strings.Contains(norm, ":") {
			return nil, fmt.Errorf("add tenant %q: %w: host %q is not a host name (use punycode for international names)", t.Name, ErrInvalidTenant, h)
		}
		if other, taken := routed[norm]; taken {
			return nil, fmt.Errorf("add tenant %q: %w: host %q is routed to engine %q", t.Name, ErrTenantExists, norm, other)
		}
		hosts = append(hosts, norm)
	}
	return hosts, nil
}

// withDatabase returns the connection string dsn with its database replaced
// by database; dsn is a URL or keyword/value pairs, as pgx parses both.
func withDatabase(dsn, database string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path, u.RawPath = "/"+database, ""
			return u.String()
		}
	}
	// A later keyword wins in pgx, as in libpq; a tenant name needs no escape.
	return strings.TrimSpace(dsn) + " dbname='" + database + "'"
}
