# Sluice release image: one static binary (no cgo: go-ethereum signs with its pure-Go secp256k1), no
# shell, no package manager, run as an unprivileged user. Every service is this image with a different
# command: `sluice api`, `sluice signer`, `sluice broadcaster`, `sluice monitor`, or `sluice all`.
# deploy/deploy_test.go builds the binary with the build line below and checks it is static.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# `make build` with cgo off: the release binary, without the dev mode (no build tags).
RUN CGO_ENABLED=0 go build -o /out/sluice ./cmd/sluice

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
# 65532 is distroless' "nonroot". The signer hardens itself (no core dumps, keys locked in memory where
# RLIMIT_MEMLOCK allows); it needs no capability to run.
USER 65532:65532
# API 3000; health and /metrics of signer 3002, monitor 3003, broadcaster 3004, accountmgr 3005, recovery 3006.
EXPOSE 3000 3002 3003 3004 3005 3006
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["all"]
