# Included by the top-level Makefile.
#   make contracts   recompile contracts/src with solc-js (npm) and regenerate the Go bindings.
# The outputs (contracts/build, contracts/bindings) are committed: `go build` never needs npm.

.PHONY: contracts
contracts:
	contracts/gen.sh
