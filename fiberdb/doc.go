// Package fiberdb gives each Fiber request a PostgreSQL connection from its
// tenant's pool, and always gives it back.
//
// [Open] builds one pgxpool per engine of a [config.Config]; [New] is the
// middleware that resolves the tenant once per request; [Conn] and [ConnFor]
// acquire lazily and hand out the same connection on every call. When the
// handler chain returns, by success, error or panic, fiberdb rolls back any
// transaction left open and releases every connection. It never commits
// implicitly, never runs a session-level SET on a pooled connection, and never
// falls back to the "default" engine when a tenant cannot be resolved.
package fiberdb
