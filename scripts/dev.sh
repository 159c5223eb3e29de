#!/usr/bin/env bash
# `make dev`: builds the debug binary (`make dev-build`) and runs the whole engine in one process with an
# embedded chain, database and Redis; nothing to install. Extra arguments go to `sluice dev`
# (`scripts/dev.sh -h` lists them), e.g. `scripts/dev.sh --rpc http://127.0.0.1:8545`. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s dev-build
exec ./bin/sluice-dev dev "$@"
