// Package lifecycle provisions and migrates fiberdb's tenants: the Go API of
// the fiberdb command (cmd/fiberdb).
//
// [LoadMigrations] reads jackc/tern's migration files; [Migrate] applies
// them to every tenant engine of a [config.Config] in parallel, each through
// a direct connection (the engine's direct_url, else its url:
// [config.Config.DirectConfig]) under a lock of its own, so that tenants
// never wait for each other and one tenant's failure never stops the others.
// [AddTenant] creates a tenant's database (or schema), migrates it and adds
// it to the catalog table, for apps that sign tenants up themselves.
//
// lifecycle never touches the landlord engine "default" when migrating,
// never migrates through fiberdb's pools, and never runs a migration
// without its tenant's lock.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/fiberdb/fiberdb/config"
)

// Migrate applies m to every tenant engine of conf, or to opts' Tenants, at
// most Options.Parallel at a time, and returns one [Result] per tenant,
// sorted by name. A tenant already up to date costs a connection and a
// version read: no lock, no DDL.
//
// Before it starts, Migrate checks the tenant names: an error wrapping
// [ErrUnknownTenant] names every unknown one, and no tenant runs. Then every
// tenant runs to its end, whatever the others do; if any failed, the error
// wraps [ErrFailed] and the results say why. Once ctx is done, tenants not
// yet started fail with ctx's error and running ones stop at their next
// statement.
func Migrate(ctx context.Context, conf *config.Config, m *Migrations, opts ...Options) ([]Result, error) {
	if conf == nil || m == nil {
		return nil, errors.New("lifecycle: Migrate needs a configuration and migrations")
	}
	o := optionsDefault(opts...)
	targets, err := targets(conf, o.Tenants)
	if err != nil {
		return nil, err
	}

	var mu sync.Mutex
	report := func(s Step) {
		if o.Progress != nil {
			mu.Lock()
			defer mu.Unlock()
			o.Progress(s)
		}
	}
	results := make([]Result, len(targets))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Parallel, len(targets)) {
		wg.Go(func() {
			for i := range next {
				t := targets[i]
				if err := ctx.Err(); err != nil {
					results[i] = Result{Tenant: t.tenant, From: -1, To: -1, Err: err}
				} else {
					report(Step{Kind: StepStart, Tenant: t.tenant})
					results[i] = m.run(ctx, t, report)
				}
				report(Step{Kind: StepDone, Tenant: t.tenant, Result: &results[i]})
			}
		})
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()

	failed := 0
	for i := range results {
		if results[i].Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return results, fmt.Errorf("%w: %d of %d tenants", ErrFailed, failed, len(results))
	}
	return results, nil
}

// Tenants returns, sorted and without repeats, the tenant engines of conf
// that Migrate would run for names; for no names, conf's Tenants (the
// settings' tenants list, by default every engine but "default"). The error
// wraps [ErrUnknownTenant] and names every name that is not a tenant engine.
func Tenants(conf *config.Config, names []string) ([]string, error) {
	if len(names) == 0 {
		var all []string
		for _, name := range conf.Tenants {
			if name != config.DefaultEngine {
				all = append(all, name)
			}
		}
		slices.Sort(all)
		return all, nil
	}
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	var errs []error
	for _, name := range names {
		if _, ok := conf.Engines[name]; !ok || name == config.DefaultEngine {
			errs = append(errs, unknownTenant(conf, name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return names, nil
}

// targets returns the targets of the tenants Tenants returns for names.
func targets(conf *config.Config, names []string) ([]*target, error) {
	names, err := Tenants(conf, names)
	if err != nil {
		return nil, err
	}
	out := make([]*target, 0, len(names))
	for _, name := range names {
		t, err := targetFor(conf, name)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
