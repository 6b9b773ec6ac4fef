package bench_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fiberdb/fiberdb/fiberdb"
	"github.com/fiberdb/fiberdb/internal/benchapp"
)

// openEngines is how many engines BenchmarkOpen and BenchmarkLoad configure:
// issue 14 asks that Open of 10,000 engines stay under a second and open no
// server connection.
const openEngines = 10_000

// manyEngines is a SQLALCHEMY_ENGINES map of a default engine and n tenants,
// each routed by its own host, whose urls point at a port nothing listens
// on: a connection attempt would fail, and none is made.
func manyEngines(n int) map[string]any {
	engines := map[string]any{"default": nowhere}
	for i := range n {
		name := fmt.Sprintf("t%05d", i)
		engines[name] = map[string]any{"url": nowhere, "pool_max_conns": poolSize, "hosts": []any{name + ".example.com"}}
	}
	return engines
}

// BenchmarkOpen is fiberdb.Open alone with 10,000 engines (config.Load runs
// once, before the timer; BenchmarkLoad measures it). Close is not timed.
// Open must open no pool: pools open on first use.
func BenchmarkOpen(b *testing.B) {
	conf := load(b, manyEngines(openEngines))
	b.ReportAllocs()
	for b.Loop() {
		e, err := fiberdb.Open(context.Background(), conf)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if s := e.Stats(); s.OpenPools != 0 || len(s.Pools) != 0 {
			b.Fatalf("Open opened %d pools", s.OpenPools)
		}
		e.Close()
		b.StartTimer()
	}
}

// BenchmarkLoad is config.Load of the same 10,000 engines, from a koanf
// confmap.
func BenchmarkLoad(b *testing.B) {
	engines := manyEngines(openEngines)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := benchapp.Load(engines); err != nil {
			b.Fatal(err)
		}
	}
}
