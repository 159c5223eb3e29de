#!/usr/bin/env bash
# `make test`: installs what is missing, starts MariaDB, Redis and the SQS emulator on loopback in a
# temporary directory, runs vet and every Go test against them, and stops them whatever happens.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH:/usr/sbin"

dir=$(mktemp -d /tmp/sluice-test.XXXXXX)
cleanup() { scripts/services.sh down "$dir" || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

scripts/services.sh up "$dir"
# shellcheck disable=SC1091
. "$dir/env"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt: these files are not formatted:"; echo "$unformatted"; exit 1
fi
go vet ./...
# Tests that save what they saw (the dashboard's browser tests save screenshots) keep it here.
export SLUICE_TEST_ARTIFACTS="${SLUICE_TEST_ARTIFACTS:-$root/test-artifacts}"
go test -count=1 -timeout 20m "$@" ./...
