package lifecycle

import "runtime"

// Options configure [Migrate].
type Options struct {
	// Tenants limits the run to these engines, in any order; a name that is
	// not a tenant engine makes Migrate fail before it starts.
	//
	// Optional. Default: the configuration's Tenants (FIBERDB.tenants; by
	// default every engine but "default", the landlord)
	Tenants []string

	// Parallel is how many tenants migrate at once, tenants that share a run
	// counting as one. Each run holds at most two direct connections: one
	// keeps the tenant's lock and runs its migrations, the other serves
	// disable-tx migrations.
	//
	// Optional. Default: the number of CPUs, at least 4
	Parallel int

	// Progress is told of each tenant's steps as they happen. Calls are
	// serialized, never concurrent; a slow Progress holds up the others'
	// reports, not their migrations.
	//
	// Optional. Default: nil
	Progress func(Step)
}

// optionsDefault fills in the defaults of the first of opts.
func optionsDefault(opts ...Options) Options {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Parallel < 1 {
		o.Parallel = max(runtime.NumCPU(), 4)
	}
	return o
}
