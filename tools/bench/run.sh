#!/usr/bin/env bash
# make bench: starts MariaDB and Redis in a private directory, runs the benchmark (batching on and off
# on the same workload, plus API intake; intake and batched inclusion again with 2 instances of every
# service), stops the services. The last line is `RESULT {json}`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dir=$(mktemp -d /tmp/sluice-bench.XXXXXX)
cleanup() { ./scripts/services.sh down "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
./scripts/services.sh up "$dir" >&2
# shellcheck disable=SC1091
source "$dir/env"
SLUICE_BENCH_DB_PID=$(cat "$dir/mysql.pid" 2>/dev/null || true)
export SLUICE_BENCH_DB_PID
export GOFLAGS=${GOFLAGS:--mod=mod}
go build -o "$dir/bench" ./tools/bench
"$dir/bench" "$@"
