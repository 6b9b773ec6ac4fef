package lifecycle

// StepKind says what a [Step] reports.
type StepKind int

const (
	// StepStart: the tenant's run began (connecting, reading its version).
	StepStart StepKind = iota
	// StepMigration: a migration is about to run for the tenant, under its
	// lock. A run that tenants share ([Result.Shared]) reports each of its
	// migrations once, for the first of them by name; StepStart and StepDone
	// come for every tenant.
	StepMigration
	// StepDone: the tenant's run ended; Result says how.
	StepDone
)

// Step is one progress report of one tenant, given to [Options.Progress].
type Step struct {
	Kind   StepKind
	Tenant string
	// Version and Migration name the migration about to run (StepMigration
	// only): 2, "002_add_todos.sql".
	Version   int64
	Migration string
	// Result is set for StepDone only.
	Result *Result
}
