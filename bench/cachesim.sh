#!/usr/bin/env bash
# cachesim.sh: what fiberdb's request path touches when it starts with cold
# caches, counted rather than timed. BenchmarkLease's cold-pgxconn,
# cold-minimal and cold-fiberdb (a hand-written Acquire and deferred Release;
# the least a tenant middleware does, benchapp.MinimalLeaseApp; fiberdb.Conn
# and its release; 2 MiB written before each request) run under valgrind's
# cachegrind, which simulates the caches: 32 KiB first-level instruction and
# data caches and a 1 MiB last level, which the 2 MiB write empties. Each
# side runs N1 and N2 requests; the difference, divided by N2-N1, is one
# request, with the setup (PostgreSQL, pools, apps) taken out. The write
# itself and the benchmark's driver (package bench_test) are not counted.
#
# Over HTTP a request also starts cold: network I/O, PostgreSQL and the load
# generator run between two requests on the same cores. A last-level miss
# there costs tens of nanoseconds, so the misses below are what
# BenchmarkLease/paired-cold times, without its noise. The data misses
# repeat within a few percent from run to run, so a change to the request
# path can be measured by them where its time cannot. The instruction misses
# also depend on where the linker places the code in the simulated 32 KiB
# first-level cache: a change elsewhere in the binary can move them by tens.
# The counts are a proxy, not a prediction: handing out handles from a slab
# of 16 took 10 data misses and about 40 instruction misses off fiberdb's
# request here, and moved http.sh's throughput by less than its noise.
#
# Settings (environment): N1=500 N2=1500
# Needs valgrind (Debian: apt-get install valgrind) and PostgreSQL server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-500}
N2=${N2:-1500}

command -v valgrind >/dev/null || { echo "cachesim.sh: valgrind not found (apt-get install valgrind)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" ./bench/

# count SIDE N: runs N requests of cold-SIDE under cachegrind.
count() {
  (cd bench && valgrind --tool=cachegrind --cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,16,64 \
    --cachegrind-out-file="$tmp/$1.$2" "$tmp/bench.test" -test.run=NONE -test.bench="^BenchmarkLease\$/^cold-$1\$" \
    -test.benchtime="${2}x" -test.cpu=1 >"$tmp/$1.$2.log" 2>&1) || { cat "$tmp/$1.$2.log" >&2; exit 1; }
}

# totals FILE: "Ir ILmr DLmr DLmw" summed over every function but bench_test's.
totals() {
  awk '
    /^events:/ { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
    /^fn=/ { skip = ($0 ~ /bench_test\./); next }
    /^[0-9]/ && !skip { for (k in want) sum[k] += $(col[k] + 1) }
    BEGIN { want["Ir"]; want["ILmr"]; want["DLmr"]; want["DLmw"] }
    END { print sum["Ir"], sum["ILmr"], sum["DLmr"], sum["DLmw"] }' "$1"
}

echo "# cachegrind $(valgrind --version | sed 's/valgrind-//'), $(go version | cut -d' ' -f3), I1 and D1 32 KiB, LL 1 MiB, requests $N1 and $N2"
printf '%-9s %12s %14s %14s %14s %14s\n' side "instr/req" "LL miss/req" "instr misses" "data reads" "data writes"
for side in pgxconn minimal fiberdb; do
  count "$side" "$N1"
  count "$side" "$N2"
  read -r ir1 il1 dr1 dw1 < <(totals "$tmp/$side.$N1")
  read -r ir2 il2 dr2 dw2 < <(totals "$tmp/$side.$N2")
  awk -v s="$side" -v n=$((N2 - N1)) -v ir=$((ir2 - ir1)) -v il=$((il2 - il1)) -v dr=$((dr2 - dr1)) -v dw=$((dw2 - dw1)) '
    BEGIN { printf "%-9s %12.0f %14.1f %14.1f %14.1f %14.1f\n", s, ir / n, (il + dr + dw) / n, il / n, dr / n, dw / n }' |
    tee -a "$tmp/rows"
done
awk '{ i[$1] = $2; m[$1] = $3; d[$1] = $5 + $6 }
  function vs(a, b) {
    printf "%s/%s: %.2fx the instructions, %.2fx the last-level misses (%.2fx the data misses), %+.0f misses a request\n",
      a, b, i[a] / i[b], m[a] / m[b], d[a] / d[b], m[a] - m[b]
  }
  END { vs("fiberdb", "pgxconn"); vs("minimal", "pgxconn"); vs("fiberdb", "minimal") }' "$tmp/rows"
