# Sluice: `make dev` runs it, `make test` proves it. See README.md.
GO ?= go
# Go is installed in /usr/local/go, not always on PATH; a go already on PATH wins.
export PATH := $(PATH):/usr/local/go/bin
BIN := bin/sluice

# `make dev` runs a debug build of the same code: no cgo (go-ethereum signs with its pure-Go secp256k1), no
# optimisation, no inlining. On a fresh machine the first build is nearly all of `make dev`'s wait, and
# these flags cut its CPU time by about 40%; dlv can step through the result. TestDevMode builds it this
# way too, through `make dev-build DEV_BIN=...`. Only this build has `sluice dev` (tag sluicedev): the release
# build leaves out the embedded chain and database it runs on (internal/devmode; docs/development.md).
DEV_BIN ?= bin/sluice-dev

.PHONY: all build dev dev-build test chaos chaos-ci bench vet fmt contracts clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sluice

dev-build:
	CGO_ENABLED=0 $(GO) build -tags sluicedev -gcflags='all=-N -l' -o $(DEV_BIN) ./cmd/sluice

dev:
	./scripts/dev.sh

# Starts MariaDB, Redis and the SQS emulator itself (installing them if missing) and stops them after.
test:
	./scripts/test.sh

# Kills services and injects RPC faults while 500 withdrawals flow, two processes of every service by
# default (--instances N); exits non-zero if any is paid twice or lost, or a private key shows up in a
# log, metric, row or message. Pass flags with CHAOS_FLAGS="--queue sqs --seed 42 --instances 3".
chaos:
	./scripts/chaos.sh $(CHAOS_FLAGS)

# The short chaos run CI makes on every landing (.ci/run): 200 withdrawals, two instances of every
# service, 10 kills (each service twice), the same faults (RPC faults, fee surges, dropped sends, a
# foreign transaction at our nonce, shallow reorgs) and verdict, about 2 minutes. A failure prints its
# seed and the `make chaos` command that replays it. CHAOS_FLAGS add to the profile: CHAOS_FLAGS="--queue sqs --seed 42".
chaos-ci:
	./scripts/chaos.sh --profile ci $(CHAOS_FLAGS)

# Batched versus one-tx-per-withdrawal on the same workload, and API intake and batched inclusion with 1
# and 2 instances of every service; the last line is RESULT {json}.
bench:
	./tools/bench/run.sh

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

-include contracts/contracts.mk
