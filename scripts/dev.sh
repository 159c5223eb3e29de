#!/usr/bin/env bash
# `make dev`: builds the debug binary (`make dev-build`) and runs the whole engine in one process with an
# embedded chain, database and Redis; nothing to install. Extra arguments go to `sluice dev`
# (`scripts/dev.sh -h` lists them), e.g. `scripts/dev.sh --rpc http://127.0.0.1:8545`. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bin/sluice-dev ]; then
	echo "Building bin/sluice-dev. The first build compiles go-ethereum and an embedded MySQL server:" \
		"about 2 minutes on 2 cores, seconds after that." >&2
fi
make -s dev-build
exec ./bin/sluice-dev dev "$@"
