#!/usr/bin/env bash
# `make dev`: the whole engine in one process with an embedded chain, database and Redis; nothing to
# install. Extra arguments go to `sluice dev` (see `bin/sluice dev -h`). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./bin/sluice dev "$@"
