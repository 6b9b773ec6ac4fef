#!/usr/bin/env bash
# migrate.sh: times "fiberdb migrate" over TENANTS tenant databases of a
# private PostgreSQL: the first run (every migration applies) and a second
# run with nothing to apply, against a baseline measured in the same run
# (connect to each tenant database and SELECT 1, PARALLEL at a time).
#
# Settings (environment): TENANTS=200 PARALLEL=4
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/fiberdb" ./cmd/fiberdb
echo "# $(nproc) CPUs, $(go version | cut -d' ' -f3), $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
go run ./bench/cmd/migratebench -bin "$tmp/fiberdb" -tenants "${TENANTS:-200}" -parallel "${PARALLEL:-4}"
