#!/usr/bin/env bash
# run.sh: the in-process Go benchmarks (bench_test.go), COUNT times from one
# test binary. The "paired" benchmarks alternate fiberdb and its baseline
# inside one benchmark and report both; this prints every run's paired
# results and their medians, the allocations, then the raw output.
#
#   NoDB/paired        extra ns/op of fiberdb over bare Fiber (target <= 50 ns; 0 allocs/op)
#   Select1/paired     pgxpool ns/op / fiberdb ns/op = fiberdb's relative throughput (target >= 0.97)
#   Select1/paired-3   the same over three tenants by Host, against a hand-written host->pool map
#   Select1/paired-conn the same, against a handler holding one pgxpool connection per request
#                      (fiberdb's own code, without the cost of holding a connection)
#   Lease/paired       extra ns/op of fiberdb.Conn plus its release over a hand-written
#                      Acquire and deferred Release: fiberdb's own cost, without a round trip
#   Lease/paired-cold  the same with 2 MiB written between requests, so that each starts with
#                      cold caches, as over HTTP
#   Resolver/paired    hosts=10 ns/op / hosts=10000 ns/op (target within 10 %)
#
# Settings (environment): COUNT=5 BENCHTIME=1s
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/bench.test" ./bench/
for i in $(seq "$COUNT"); do
  echo "run $i/$COUNT" >&2
  (cd bench && "$tmp/bench.test" -test.run=NONE -test.bench=. -test.benchmem \
    -test.benchtime="$BENCHTIME" -test.count=1) | sed -n "s/^Benchmark/$i Benchmark/p" >>"$tmp/out"
done

echo "# $(nproc) CPUs, $(go version | cut -d' ' -f3), $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $COUNT runs, -benchtime=$BENCHTIME"
awk '
  function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    run = $1; name = $2; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    for (i = 4; i < NF; i++) v[name, $(i + 1), run] = $i
    names[name] = 1; if (run > runs) runs = run
  }
  END {
    printf "%-22s %12s %10s %10s\n", "benchmark", "ns/op (med)", "B/op", "allocs/op"
    split("NoDB/bare NoDB/passthrough NoDB/fiberdb Select1/pgxpool Select1/pgxconn Select1/fiberdb Select1/pgxpool-3 Select1/fiberdb-3 Lease/pgxconn Lease/fiberdb Resolver/hosts=10 Resolver/hosts=10000", order, " ")
    for (i = 1; i in order; i++) {
      n = order[i]; if (!(n in names)) continue
      l = ""; for (r = 1; r <= runs; r++) l = l " " v[n, "ns/op", r]
      printf "%-22s %12.1f %10s %10s\n", n, median(l), v[n, "B/op", 1], v[n, "allocs/op", 1]
    }
    print ""
    print "paired (fiberdb and its baseline alternating inside one benchmark):"
    printf "%-4s %10s %10s %11s %15s %17s %15s %11s %14s %17s\n", "run", "NoDB bare", "NoDB fdb", "NoDB +ns", "Select1 ratio", "Select1-3 ratio", "vs conn ratio", "Lease +ns", "cold Lease +ns", "Resolver 10/10k"
    for (r = 1; r <= runs; r++) {
      a = v["NoDB/paired", "bare-ns/op", r]; al = al " " a
      b = v["NoDB/paired", "fiberdb-ns/op", r]; bl = bl " " b
      d = v["NoDB/paired", "extra-ns/op", r]; dl = dl " " d
      s1 = v["Select1/paired", "ratio", r]; s1l = s1l " " s1
      s3 = v["Select1/paired-3", "ratio", r]; s3l = s3l " " s3
      sc = v["Select1/paired-conn", "ratio", r]; scl = scl " " sc
      le = v["Lease/paired", "extra-ns/op", r]; lel = lel " " le
      lc = v["Lease/paired-cold", "extra-ns/op", r]; lcl = lcl " " lc
      rr = v["Resolver/paired", "ratio", r]; rrl = rrl " " rr
      printf "%-4s %10.1f %10.1f %11.1f %15.3f %17.3f %15.3f %11.1f %14.1f %17.3f\n", r, a, b, d, s1, s3, sc, le, lc, rr
    }
    printf "%-4s %10.1f %10.1f %11.1f %15.3f %17.3f %15.3f %11.1f %14.1f %17.3f\n", "med", median(al), median(bl), median(dl), median(s1l), median(s3l), median(scl), median(lel), median(lcl), median(rrl)
  }' "$tmp/out"
echo
echo "raw output (first column: run):"
cat "$tmp/out"
