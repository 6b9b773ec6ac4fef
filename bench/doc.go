// Package bench measures fiberdb against hand-written baselines; it holds
// only benchmarks and the programs that run them.
//
// bench_test.go drives each Fiber app's handler in-process, without the
// network, on reused *fasthttp.RequestCtx values, so the numbers are the
// handler chain's own cost; run.sh runs it several times and prints each
// fiberdb result as a ratio to its baseline from the same run. http.sh
// compares the same over real HTTP on 127.0.0.1, with wrk as the load
// generator in another process and cmd/benchserver as the server.
// tenants.sh runs cmd/tenantbench: 200 tenant databases on a server with
// max_connections=100, fiberdb's connection budget against PgBouncer.
// open_test.go times Open and config.Load of 10,000 engines.
package bench
