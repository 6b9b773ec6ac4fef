#!/usr/bin/env bash
# tenants.sh: 200 tenant databases on one PostgreSQL with max_connections=100,
# 200 concurrent HTTP clients, uniform and Zipf-skewed (s=1.1): fiberdb with
# FIBERDB.max_total_conns against the same app routed through PgBouncer
# (transaction mode, max_user_connections = the budget), and fiberdb
# without a budget, alternating in every round of one run (issue 14).
#
# Settings (environment): TENANTS=200 CLIENTS=200 BUDGET=90 POOL=4 ROUNDS=3
# DURATION=6s NOBUDGET=true; CPUPROFILE=file profiles the budget mode.
# Needs the PostgreSQL server binaries and pgbouncer (Debian: postgresql,
# pgbouncer). About 5 minutes on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/tenantbench" ./bench/cmd/tenantbench
"$tmp/tenantbench" -tenants "${TENANTS:-200}" -clients "${CLIENTS:-200}" -budget "${BUDGET:-90}" \
  -pool "${POOL:-4}" -rounds "${ROUNDS:-3}" -duration "${DURATION:-6s}" -nobudget="${NOBUDGET:-true}" \
  -cpuprofile "${CPUPROFILE:-}"
