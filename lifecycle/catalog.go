package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The catalog table fiberdb_tenants in the landlord database: name, url,
// hosts, options (DESIGN.md, "Live tenants").

// ensureCatalog checks that the landlord database has the catalog table.
func ensureCatalog(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('fiberdb_tenants') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("find the catalog table: %w", err)
	}
	if !exists {
		return errors.New("the landlord database has no catalog table fiberdb_tenants")
	}
	return nil
}

// catalogHas reports whether the catalog has a row called name.
func catalogHas(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM fiberdb_tenants WHERE name = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("read the catalog table: %w", err)
	}
	return exists, nil
}

// insertTenant inserts a tenant's row; it fails if the name is taken.
func insertTenant(ctx context.Context, conn *pgx.Conn, name, dsn string, hosts []string) error {
	if _, err := conn.Exec(ctx, "INSERT INTO fiberdb_tenants (name, url, hosts) VALUES ($1, $2, $3)", name, dsn, hosts); err != nil {
		return fmt.Errorf("insert into the catalog table: %w", err)
	}
	return nil
}
