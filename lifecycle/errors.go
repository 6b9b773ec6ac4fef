package lifecycle

import "errors"

// Sentinel errors, for [errors.Is]. The messages wrapping them name the
// tenant or the file.
var (
	// ErrNoMigrations: the migrations directory holds no NNN_name.sql file.
	ErrNoMigrations = errors.New("no migrations found")
	// ErrUnknownTenant: a tenant named to [Migrate] is not an engine of the
	// configuration, or is the landlord engine "default".
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrInvalidTenant: a tenant for [AddTenant] has a name outside
	// [A-Za-z0-9_-], a bad host, or names a pool engine that does not exist.
	ErrInvalidTenant = errors.New("invalid tenant")
	// ErrTenantExists: [AddTenant] was given a tenant that the configuration,
	// the catalog table or the server already has.
	ErrTenantExists = errors.New("tenant exists")
	// ErrFailed: at least one tenant failed to migrate; [Migrate]'s results
	// say which and why.
	ErrFailed = errors.New("migration failed")
)
