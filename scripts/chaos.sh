#!/usr/bin/env bash
# `make chaos` and `make chaos-ci`: "never pay twice, never lose one". Starts MariaDB, Redis and the SQS
# emulator on loopback (scripts/services.sh), builds sluice and the harness, and runs tools/chaos/cmd/chaos:
# every service as processes of its own (two of each by default) against a real EVM node behind a fault-injecting JSON-RPC proxy,
# services SIGKILLed while withdrawals flow, then every balance and nonce checked on chain. Stops
# everything whatever happens. See docs/chaos.md.
#
#   scripts/chaos.sh [harness flags]     e.g. --profile ci --queue sqs --seed 42
#
# Exits 0 when nobody was paid twice, nothing was lost and the hot wallet's nonces have no gap; 1 when
# the run found a violation (the run directory with every service's log is kept and printed); 2 when
# the run could not be carried out or did less than asked. Whenever it does not pass, the harness prints
# the seed and the `make chaos CHAOS_FLAGS="..."` command that replays the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH:/usr/sbin"
export GOFLAGS="${GOFLAGS:--mod=mod}"

dir=$(mktemp -d /tmp/sluice-chaos.XXXXXX)
keep=0
cleanup() {
  scripts/services.sh down "$dir/svc" >/dev/null 2>&1 || true
  rm -rf "$dir/svc" "$dir/bin"
  if [ "$keep" = 0 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The build and the backing services' start both mostly wait (on the linker, on MariaDB): side by side
# they take the time of the longer one, which matters to make chaos-ci's 3-minute budget.
mkdir -p "$dir/bin" "$dir/run"
go build -o "$dir/bin/" ./cmd/sluice ./tools/chaos/cmd/chaos &
build=$!
scripts/services.sh up "$dir/svc"
# shellcheck disable=SC1091
. "$dir/svc/env"
wait "$build"

rc=0
"$dir/bin/chaos" --dir "$dir/run" --bin "$dir/bin/sluice" "$@" || rc=$?
if [ "$rc" != 0 ]; then
  keep=1
  echo "chaos: run directory kept: $dir/run (sluice.yaml, logs/*.log)" >&2
fi
exit "$rc"
