// Package hardhat holds no Go code of its own: the directory is a Hardhat project (hardhat.config.js,
// scripts/deploy.js, sluice.hardhat.yaml) for running Sluice against a local `npx hardhat node`; see
// README.md. Its test starts such a node, deploys with the script, and takes withdrawals through the
// whole engine on it, so `go test ./...` (and `make test`) proves the Hardhat setup still works.
package hardhat
