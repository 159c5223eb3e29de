#!/usr/bin/env bash
# `make dev`: starts MariaDB and Redis under .tmp/dev (installing them if missing), then `sluice dev`.
# Ctrl-C stops Sluice and both services.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir="$root/.tmp/dev"
rm -rf "$dir"; mkdir -p "$dir"
cleanup() { scripts/services.sh down "$dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
scripts/services.sh up "$dir"
# shellcheck disable=SC1091
. "$dir/env"
export SLUICE_DATABASE_DSN="${SLUICE_TEST_MYSQL_DSN}sluice_dev"
export SLUICE_REDIS_ADDR="$SLUICE_TEST_REDIS_ADDR"
./bin/sluice dev "$@"
