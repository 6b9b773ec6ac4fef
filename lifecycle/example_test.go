package lifecycle_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/fiberdb/fiberdb/config"
	"github.com/fiberdb/fiberdb/lifecycle"
)

// Compiled, not run: README.md shows these lines.

func ExampleMigrate() {
	ctx := context.Background()
	var conf *config.Config // from config.Load, as the app loads it

	migs, err := lifecycle.LoadMigrations(os.DirFS("migrations"))
	if err != nil {
		log.Fatal(err)
	}
	results, err := lifecycle.Migrate(ctx, conf, migs, lifecycle.Options{Parallel: 8})
	for _, r := range results {
		fmt.Println(r.Tenant, r.From, "→", r.To, r.Duration, r.Err)
	}
	if err != nil {
		log.Fatal(err) // errors.Is(err, lifecycle.ErrFailed): see the results; the other tenants are done
	}
}

func ExampleAddTenant() {
	ctx := context.Background()
	var conf *config.Config
	var migs *lifecycle.Migrations

	res, err := lifecycle.AddTenant(ctx, conf, lifecycle.Tenant{
		Name:     "acme",
		Hosts:    []string{"acme.example.com"},
		Template: "tenant_template", // optional: a database to copy
	}, migs)
	if err != nil {
		log.Fatal(err) // lifecycle.ErrTenantExists, lifecycle.ErrInvalidTenant, or why it failed
	}
	fmt.Println(res.Tenant, "is at version", res.To)
}
