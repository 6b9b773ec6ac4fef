// Package lifecycle provisions and migrates fiberdb's tenants: the Go API of
// the fiberdb command (cmd/fiberdb).
//
// [LoadMigrations] reads jackc/tern's migration files; [Migrate] applies
// them to every tenant engine of a [config.Config] in parallel, each through
// a direct connection (the engine's direct_url, else its url:
// [config.Config.DirectConfig]) under a lock of its own, so that tenants
// never wait for each other and one tenant's failure never stops the others.
// Tenants that share their tables (a pool engine and its row-level-security
// tenants) share one run.
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
// Tenants that migrate the same thing, the same version table in the same
// database (a pool engine and the row-level-security tenants of its pool,
// which have no search_path), migrate in one run, the first one's by name:
// each of them gets that run's Result, with the others in Result.Shared.
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
	runs := groups(targets)
	next := make(chan []int)
	var wg sync.WaitGroup
	for range min(o.Parallel, len(runs)) {
		wg.Go(func() {
			for g := range next {
				m.runGroup(ctx, targets, g, results, report)
			}
		})
	}
	for _, g := range runs {
		next <- g
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

// groups returns the runs that targets, sorted by tenant, need: the indexes
// of the targets that share a run, the ones with one key, in name order.
func groups(targets []*target) [][]int {
	var runs [][]int
	at := make(map[targetKey]int, len(targets))
	for i, t := range targets {
		k := t.key()
		if j, ok := at[k]; ok {
			runs[j] = append(runs[j], i)
			continue
		}
		at[k] = len(runs)
		runs = append(runs, []int{i})
	}
	return runs
}

// runGroup migrates the targets at indexes g, which migrate the same thing,
// in one run, the first one's, and gives each of them its Result.
func (m *Migrations) runGroup(ctx context.Context, targets []*target, g []int, results []Result, report func(Step)) {
	names := make([]string, len(g))
	for j, i := range g {
		names[j] = targets[i].tenant
	}
	var res Result
	if err := ctx.Err(); err != nil {
		res = Result{From: -1, To: -1, Err: err}
	} else {
		for _, name := range names {
			report(Step{Kind: StepStart, Tenant: name})
		}
		res = m.run(ctx, targets[g[0]], report)
	}
	for j, i := range g {
		results[i] = res
		results[i].Tenant, results[i].Shared = names[j], others(names, names[j])
		report(Step{Kind: StepDone, Tenant: names[j], Result: &results[i]})
	}
}

// others returns names without name; nil when nothing is left.
func others(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
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
