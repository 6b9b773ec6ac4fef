// Command tenantbench is the many-tenants benchmark of bench/tenants.sh
// (issue 14): one PostgreSQL with max_connections=100, -tenants tenant
// databases, and -clients concurrent HTTP clients against the same Fiber app
// (fiberdb routing by Host, one small query per request) served three ways,
// alternating in every round:
//
//	budget     fiberdb with FIBERDB.max_total_conns = -budget, straight to
//	           PostgreSQL
//	budget-ex  the same with default_query_exec_mode exec, as behind PgBouncer
//	pgbouncer  the same app with every engine's url pointing at PgBouncer
//	           (transaction mode, max_user_connections = -budget), no budget
//	nobudget   fiberdb straight to PostgreSQL without a budget: what fiberdb
//	           did before max_total_conns (the server refuses connections)
//
// Every mode gets fresh engines (and a fresh PgBouncer) for each round, and
// the next mode starts only once the server has no connection of the
// benchmark role left, so no mode's idle connections take another's slots.
// The clients pick a tenant per request, uniformly or Zipf-skewed (s=1.1).
//
// The app connects as a role that is not a superuser: a superuser may use the
// reserved slots, which would hide a refusal. Refusals are counted twice: as
// connect errors with SQLSTATE 53300 that reach the app's error handler, and
// as "too many" lines in the server's log.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	var s settings
	flag.IntVar(&s.tenants, "tenants", 200, "tenant databases")
	flag.IntVar(&s.clients, "clients", 200, "concurrent HTTP clients")
	flag.IntVar(&s.budget, "budget", 90, "max_total_conns, and PgBouncer's max_user_connections")
	flag.IntVar(&s.poolSize, "pool", 4, "pool_max_conns of every engine, and PgBouncer's default_pool_size")
	flag.IntVar(&s.rounds, "rounds", 3, "rounds; each runs every mode once per distribution")
	flag.DurationVar(&s.duration, "duration", 6*time.Second, "how long each mode runs per round and distribution")
	flag.BoolVar(&s.noBudget, "nobudget", true, "also run fiberdb without a budget")
	flag.StringVar(&s.cpuProfile, "cpuprofile", "", "write a CPU profile of the budget mode's serving time to this file")
	flag.StringVar(&s.extra, "settings", "", "more FIBERDB settings of the budget mode, as key=value,…")
	dists := flag.String("dists", "uniform,zipf", "the distributions to run, comma-separated")
	flag.Parse()
	distributions = slices.DeleteFunc(distributions, func(d distribution) bool {
		return !slices.Contains(strings.Split(*dists, ","), d.name)
	})

	fmt.Printf("# %d CPUs, %s, %d tenants, %d clients, max_connections=%d, budget %d, pool_max_conns=%d, %d rounds of %s\n",
		runtime.NumCPU(), runtime.Version(), s.tenants, s.clients, maxConnections, s.budget, s.poolSize, s.rounds, s.duration)
	if err := run(context.Background(), &s); err != nil {
		fmt.Fprintln(os.Stderr, "tenantbench:", err)
		os.Exit(1)
	}
}

// maxConnections is the server's max_connections: 97 slots for a role that
// is not a superuser.
const maxConnections = 100

type settings struct {
	tenants, clients, budget, poolSize, rounds int
	duration                                   time.Duration
	noBudget                                   bool
	cpuProfile, extra                          string
}

func run(ctx context.Context, s *settings) (err error) {
	env, err := setUp(ctx, s.tenants)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.close()) }()

	modes := []mode{budgetMode(s), budgetExecMode(s), pgbouncerMode(s)}
	if s.noBudget {
		modes = append(modes, noBudgetMode(s))
	}
	results := map[string][]*result{} // by distribution + "/" + mode
	for round := range s.rounds {
		for _, dist := range distributions {
			order := modes
			if round%2 == 1 { // alternate who goes first
				order = reversed(modes)
			}
			for _, m := range order {
				r, rerr := env.round(ctx, s, m, dist)
				if rerr != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round+1, dist.name, m.name, rerr)
				}
				key := dist.name + "/" + m.name
				results[key] = append(results[key], r)
				fmt.Printf("round %d %-8s %-10s %s\n", round+1, dist.name, m.name, r)
			}
		}
	}
	report(s, modes, results)
	return nil
}

func reversed(modes []mode) []mode {
	out := make([]mode, len(modes))
	for i, m := range modes {
		out[len(modes)-1-i] = m
	}
	return out
}
