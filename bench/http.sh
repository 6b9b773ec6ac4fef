#!/usr/bin/env bash
# http.sh: SELECT 1 per request over real HTTP on 127.0.0.1, fiberdb against
# a hand-written pgxpool handler, with wrk as the load generator in another
# process. One benchserver process serves every variant (same PostgreSQL, same
# pool_max_conns, same Fiber config); rounds alternate the order of each pair,
# and the summary gives medians of requests/s and of the per-round ratios.
#
#   base      one pgxpool.Pool (fiberdb's own acme pool), Host acme.localhost (ignored)
#   baseconn  the same pool, one connection held for the request (acquire, defer release):
#             what fiberdb does, by hand, without its resolution or guards
#   fiberdb   fiberdb.Conn, Host acme.localhost
#   minimal   the least a tenant middleware does, by hand (benchapp.MinimalApp): the pool by
#             c.Hostname() in a map, a pooled request state, acquire on first use, release after
#             the chain; fiberdb against it is the cost of fiberdb's guards, bounds and checks
#   base3     three pools, picked by c.Hostname(), Host rotating over 3 tenants
#   fiberdb3  fiberdb.Conn, Host rotating over the same 3 tenants
#   shared    fiberdb.Conn, Host shared.localhost: a tenant sharing another engine's pool
#             (search_path and a setting through set_config), against fiberdb's own pool (issue 16)
#   basebatch the same set_config and SELECT 1 in one pgx batch, written by hand on the shared
#             pool's connection (benchapp.PgxbatchApp): what sending the settings with every
#             statement costs without fiberdb, the floor of shared
#
# Settings (environment): ROUNDS=10 DURATION=5s WARMUP=3s CONNS=16 THREADS=1 POOL=8
# Needs wrk (Debian: apt-get install wrk) and PostgreSQL server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-16}
THREADS=${THREADS:-1}
POOL=${POOL:-8}

command -v wrk >/dev/null || { echo "http.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/benchserver" ./bench/cmd/benchserver
"$tmp/benchserver" -pool "$POOL" -max-run 2h >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
for _ in $(seq 600); do
  grep -qx ready "$tmp/server.out" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
  sleep 0.1
done
grep -qx ready "$tmp/server.out" || { echo "http.sh: benchserver not ready in 60s" >&2; exit 1; }
url() { sed -n "s/^$1 //p" "$tmp/server.out"; }
declare -A URL=([base]=$(url base) [baseconn]=$(url baseconn) [fiberdb]=$(url fiberdb) [minimal]=$(url minimal) [base3]=$(url base3) [fiberdb3]=$(url fiberdb)
  [shared]=$(url fiberdb) [basebatch]=$(url basebatch))
one=(acme.localhost)
three=(acme.localhost globex.localhost initech.localhost)
declare -A HOSTS=([base]="${one[*]}" [baseconn]="${one[*]}" [fiberdb]="${one[*]}" [minimal]="${one[*]}" [base3]="${three[*]}" [fiberdb3]="${three[*]}"
  [shared]=shared.localhost [basebatch]=shared.localhost)

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# run VARIANT DURATION: prints "requests/s server-CPU-us-per-request".
run() {
  local v=$1 d=$2 out before after
  before=$(cpu_ticks)
  # shellcheck disable=SC2086 # the host list splits on purpose
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$d" --timeout 5s -s bench/hosts.lua "${URL[$v]}/" -- ${HOSTS[$v]})
  after=$(cpu_ticks)
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "http.sh: $v: errors" >&2
    echo "$out" >&2
    exit 1
  fi
  awk -v cpu=$((after - before)) -v clk="$clk" '
    / requests in / { n = $1 }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "%.0f %.1f\n", rps, cpu / clk * 1e6 / n }' <<<"$out"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "# $(nproc) CPUs, $(go version | cut -d' ' -f3), wrk -t$THREADS -c$CONNS -d$DURATION, pool_max_conns=$POOL, $ROUNDS rounds"
variants=(base baseconn minimal fiberdb base3 fiberdb3 shared basebatch)
for v in "${variants[@]}"; do run "$v" "$WARMUP" >/dev/null; done

declare -A RPS CPU
printf '%-6s %10s %10s %10s %10s %10s %10s %10s %10s   %s %s\n' round base baseconn minimal fiberdb base3 fiberdb3 shared \
  basebatch "ratios fiberdb/base fiberdb3/base3 fiberdb3/base fiberdb/baseconn shared/fiberdb basebatch/fiberdb" \
  "shared/basebatch fiberdb/minimal minimal/base"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    order=(base fiberdb minimal baseconn base3 fiberdb3 shared basebatch)
  else
    order=(basebatch shared minimal fiberdb base baseconn fiberdb3 base3)
  fi
  for v in "${order[@]}"; do
    read -r rps cpu < <(run "$v" "$DURATION")
    RPS[$v,$r]=$rps
    CPU[$v,$r]=$cpu
  done
  r1=$(awk -v a="${RPS[fiberdb,$r]}" -v b="${RPS[base,$r]}" 'BEGIN { printf "%.3f", a / b }')
  r3=$(awk -v a="${RPS[fiberdb3,$r]}" -v b="${RPS[base3,$r]}" 'BEGIN { printf "%.3f", a / b }')
  r31=$(awk -v a="${RPS[fiberdb3,$r]}" -v b="${RPS[base,$r]}" 'BEGIN { printf "%.3f", a / b }')
  rc=$(awk -v a="${RPS[fiberdb,$r]}" -v b="${RPS[baseconn,$r]}" 'BEGIN { printf "%.3f", a / b }')
  rs=$(awk -v a="${RPS[shared,$r]}" -v b="${RPS[fiberdb,$r]}" 'BEGIN { printf "%.3f", a / b }')
  rb=$(awk -v a="${RPS[basebatch,$r]}" -v b="${RPS[fiberdb,$r]}" 'BEGIN { printf "%.3f", a / b }')
  rsb=$(awk -v a="${RPS[shared,$r]}" -v b="${RPS[basebatch,$r]}" 'BEGIN { printf "%.3f", a / b }')
  rm=$(awk -v a="${RPS[fiberdb,$r]}" -v b="${RPS[minimal,$r]}" 'BEGIN { printf "%.3f", a / b }')
  rmb=$(awk -v a="${RPS[minimal,$r]}" -v b="${RPS[base,$r]}" 'BEGIN { printf "%.3f", a / b }')
  echo "$r1 $r3 $r31 $rc $rs $rb $rsb $rm $rmb" >>"$tmp/ratios"
  printf '%-6s %10s %10s %10s %10s %10s %10s %10s %10s   %s %s %s %s %s %s %s %s %s\n' "$r" "${RPS[base,$r]}" \
    "${RPS[baseconn,$r]}" "${RPS[minimal,$r]}" "${RPS[fiberdb,$r]}" "${RPS[base3,$r]}" "${RPS[fiberdb3,$r]}" \
    "${RPS[shared,$r]}" "${RPS[basebatch,$r]}" "$r1" "$r3" "$r31" "$rc" "$rs" "$rb" "$rsb" "$rm" "$rmb"
done

echo
echo "median requests/s and server CPU per request (Go process only, not PostgreSQL):"
for v in "${variants[@]}"; do
  rps=$(for r in $(seq "$ROUNDS"); do echo "${RPS[$v,$r]}"; done | median)
  cpu=$(for r in $(seq "$ROUNDS"); do echo "${CPU[$v,$r]}"; done | median)
  printf '  %-9s %8.0f req/s  %6.1f us CPU/req\n' "$v" "$rps" "$cpu"
done
echo "median of per-round ratios (target >= 0.97):"
printf '  fiberdb/base    %s\n' "$(cut -d' ' -f1 "$tmp/ratios" | median)"
printf '  fiberdb3/base3  %s\n' "$(cut -d' ' -f2 "$tmp/ratios" | median)"
printf '  fiberdb3/base   %s\n' "$(cut -d' ' -f3 "$tmp/ratios" | median)"
echo "median of per-round ratios against the connection-per-request baseline (fiberdb's own code):"
printf '  fiberdb/baseconn %s\n' "$(cut -d' ' -f4 "$tmp/ratios" | median)"
echo "median of per-round ratios against the least a tenant middleware does (fiberdb's guards, bounds and checks), and of that against base:"
printf '  fiberdb/minimal  %s\n' "$(cut -d' ' -f8 "$tmp/ratios" | median)"
printf '  minimal/base     %s\n' "$(cut -d' ' -f9 "$tmp/ratios" | median)"
echo "median of per-round ratios, a shared-pool tenant against an own pool of the same size (target >= 0.9):"
printf '  shared/fiberdb   %s\n' "$(cut -d' ' -f5 "$tmp/ratios" | median)"
echo "median of per-round ratios, the same batch written by hand (the floor of shared), and fiberdb's code over it:"
printf '  basebatch/fiberdb %s\n' "$(cut -d' ' -f6 "$tmp/ratios" | median)"
printf '  shared/basebatch  %s\n' "$(cut -d' ' -f7 "$tmp/ratios" | median)"
