package catalog_test

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fiberdb/fiberdb/catalog"
)

// ExamplePut is compiled, not run.
func ExamplePut() {
	ctx := context.Background()
	var landlord *pgxpool.Pool // a pool on the central (default) database

	// In a sign-up handler: the tenant serves within a second or two.
	err := catalog.Put(ctx, landlord, catalog.Tenant{
		Name:    "acme",
		URL:     "postgres://app@db.internal:5432/acme",
		Hosts:   []string{"acme.example.com"},
		Options: map[string]any{"pool_max_conns": 8},
	})
	_ = err // a *config.KeyError names the bad key: 'fiberdb_tenants["acme"]["url"]' …
}
