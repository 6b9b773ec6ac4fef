// Package fiberdb is the module's front page; its code lives in the packages
// below. fiberdb gives every Fiber v2 request a PostgreSQL connection from
// its tenant's own pgxpool, chosen by Host, subdomain or header, and always
// gives it back: Flask-SQLAlchemy-Lite for Fiber, plus multi-tenancy that
// fails closed.
//
//   - [github.com/fiberdb/fiberdb/config] loads and validates the engines and
//     routing from koanf (SQLALCHEMY_ENGINES, FIBERDB); it opens nothing.
//   - [github.com/fiberdb/fiberdb/tenancy] maps a request to an engine name:
//     by host, subdomain or header.
//   - [github.com/fiberdb/fiberdb/fiberdb] opens one pool per engine and
//     provides the middleware, the request connection (Conn, ConnFor),
//     OneOr404 and test isolation. Start here.
//   - [github.com/fiberdb/fiberdb/catalog] keeps the tenants in a table of
//     the landlord database: its koanf provider and its LISTENer.
//   - [github.com/fiberdb/fiberdb/reload] applies file, signal and catalog
//     changes to the running engines.
//   - [github.com/fiberdb/fiberdb/fiberdbtest] helps test an app against a
//     real, throwaway PostgreSQL: a database per test, request builders,
//     leak checks.
//   - [github.com/fiberdb/fiberdb/pgserver] runs that throwaway server, for
//     programs as well as tests.
//   - [github.com/fiberdb/fiberdb/fiberdbprom] exports pool and tenant
//     metrics to Prometheus.
//   - [github.com/fiberdb/fiberdb/lifecycle] migrates every tenant in
//     parallel and adds a tenant: the Go API of the fiberdb command.
//
// The README's Quick start is a complete program in examples/quickstart;
// `go run ./cmd/demo` serves a multi-tenant todo API with nothing but the
// PostgreSQL server binaries installed.
package fiberdb
