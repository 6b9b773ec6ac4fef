package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fiberdb/fiberdb/lifecycle"
)

// tenantAddCommand is "fiberdb tenant add NAME".
func tenantAddCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs, configPath, dir := commandFlags("fiberdb tenant add", stderr, "; \"\" migrates nothing")
	template := fs.String("template", "", "`database` to copy (default: the server's template1)")
	pool := fs.String("pool", "", "the `engine` whose database gets the tenant's schema, for a shared-pool tenant (default: a database of its own)")
	var hosts []string
	fs.Func("host", "a `host` name routed to the tenant (repeat it, or separate hosts with commas)", func(s string) error {
		hosts = append(hosts, splitList(s)...)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: fiberdb tenant add NAME -host H [-template DB | -pool ENGINE] [-config fiberdb.yaml] [-dir migrations]")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args, 1)
	if err != nil {
		return err
	}
	conf, err := loadConfig(ctx, *configPath, environ)
	if err != nil {
		return err
	}
	var migs *lifecycle.Migrations
	if *dir != "" {
		if migs, err = loadMigrations(*dir); err != nil {
			return err
		}
	}
	res, err := lifecycle.AddTenant(ctx, conf, lifecycle.Tenant{Name: pos[0], Hosts: hosts, Template: *template, Pool: *pool}, migs)
	if errors.Is(err, lifecycle.ErrInvalidTenant) || errors.Is(err, lifecycle.ErrTenantExists) {
		return &usageError{err: err}
	}
	if err != nil {
		return err // AddTenant's errors already say "add tenant NAME"
	}
	fmt.Fprintln(stdout, resultLine(&res, len(res.Tenant))+"; added to fiberdb_tenants")
	return nil
}
