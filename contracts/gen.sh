#!/usr/bin/env bash
# Regenerates everything derived from contracts/src: compiles with solc-js (npm, pinned in
# package-lock.json; no compiler binary is downloaded) into build/<Name>.{abi,bin}, then writes the
# abigen v2 Go bindings in bindings/. The outputs are committed, so `go build` never needs npm.
# Usage: contracts/gen.sh   (or `make contracts`)
set -euo pipefail

cd "$(dirname "$0")"
ABIGEN_VERSION=v1.17.10 # keep in step with go-ethereum in go.mod

npm ci --no-audit --no-fund
node build.js

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# GOFLAGS=-mod=mod (set for the main module) is not allowed with pkg@version.
GOFLAGS= GOBIN="$tmp" go install "github.com/ethereum/go-ethereum/cmd/abigen@${ABIGEN_VERSION}"

rm -f bindings/*.gen.go
mkdir -p bindings
for abi in build/*.abi; do
	name=$(basename "$abi" .abi)
	# BatchTransfer -> batch_transfer.gen.go, Multicall3 -> multicall3.gen.go
	file=$(echo "$name" | sed -E 's/([a-z0-9])([A-Z])/\1_\2/g' | tr '[:upper:]' '[:lower:]')
	"$tmp/abigen" --v2 --abi "$abi" --bin "build/$name.bin" --pkg bindings --type "$name" \
		--out "bindings/$file.gen.go"
done
if [ -n "$(gofmt -l bindings)" ]; then echo "gofmt: bindings/ is not formatted" >&2; exit 1; fi
echo "contracts: regenerated build/ and bindings/"
