// Package contracts owns Sluice's on-chain code: the Solidity sources (src/), their compiled
// artifacts (build/<Name>.abi and .bin), the Go bindings generated from them (package
// contracts/bindings) and the helpers that deploy them.
//
// The contracts:
//
//   - Multicall3: the canonical Multicall3 (mds1/multicall), used for native-coin batches only; see
//     package multicall for why it must never hold an ERC-20 allowance.
//   - BatchTransfer: Sluice's ERC-20 batch. batchTransfer(token, to[], amounts[]) calls
//     token.transferFrom(msg.sender, to[i], amounts[i]) for each item, reports each item in a
//     TransferResult event and never reverts the batch for one failed item. It only ever moves the
//     caller's own tokens, holds nothing and has no owner.
//   - TestToken: a 6-decimal "USDT" (OpenZeppelin ERC-20) whose owner mints and can block addresses,
//     for dev chains and tests.
//   - RejectingReceiver and NoReturnToken: test helpers (a contract that refuses coin; a USDT-shaped
//     token whose transferFrom returns nothing).
//
// build/ and bindings/ are generated and committed, so `go build` needs neither npm nor solc.
// After changing src/, regenerate them with `make contracts` (contracts/gen.sh): npm ci, solc-js via
// build.js, then abigen --v2.
package contracts
