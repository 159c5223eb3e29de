# Sluice: `make dev` runs it, `make test` proves it. See README.md.
GO ?= go
BIN := bin/sluice

.PHONY: all build dev test chaos bench vet fmt contracts clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sluice

dev: build
	./scripts/dev.sh

# Starts MariaDB, Redis and the SQS emulator itself (installing them if missing) and stops them after.
test:
	./scripts/test.sh

# Kills services and injects RPC faults while 500 withdrawals flow; exits non-zero if any is paid twice or
# lost. Pass flags with CHAOS_FLAGS="--queue sqs --seed 42".
chaos:
	./scripts/chaos.sh $(CHAOS_FLAGS)

# Batched versus one-tx-per-withdrawal on the same workload, and API intake; the last line is RESULT {json}.
bench:
	./bench/run.sh

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

-include contracts/contracts.mk
