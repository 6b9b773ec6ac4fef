package lifecycle

// LockID is the advisory lock key of a tenant with schema ("" for a tenant
// with a database of its own).
func LockID(schema string) int64 { return (&target{schema: schema}).lockID() }

// WithDatabase is withDatabase.
func WithDatabase(dsn, database string) string { return withDatabase(dsn, database) }
