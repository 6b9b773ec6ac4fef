// Package fiberdbtest helps test fiberdb apps against a real PostgreSQL.
//
// [Server] shares one throwaway server per test binary ([Main] stops it),
// started with [pgserver] from the machine's binaries, or an existing one
// named by $FIBERDB_TEST_DATABASE_URL. [Template] builds a schema once,
// [Database] gives each test its own database (copied from a template in
// milliseconds), [Open] opens engines that are checked for leaks and closed
// without hanging, [Isolate] makes a test's writes undoable, [HostRequest]
// and [HeaderRequest] aim a request at a tenant, and [Do] serves it through
// app.Test without a timeout.
//
// Against an existing server, every database a helper creates has a name of
// its own process and is dropped when the test (or, for a template, [Main])
// ends, so packages can run in parallel and run after run; databases that a
// killed test binary left behind on this machine are dropped by the next
// binary that connects.
package fiberdbtest
