// Package accountmgr owns keeping every hot wallet's balances within their configured band (an asset's
// top_up: min, target, optional max) from the chain's main account. Each round (accountmgr.interval) it
// reads the balances, raises main_account_low when the main account cannot cover the deficits, and
// queues a balance-check per hot wallet; a balance-check computes the wallet's deficit (target − the
// balance it will have once what is in flight is mined) and queues a top-up, or above max a sweep, as a
// balance_transfers row and a balance-transfer message in one database transaction, under an
// idempotency key (kind, chain, account, asset, epoch) that makes one deficit one top-up whatever is
// redelivered or restarted. The signer signs them (signer/topup.go); the monitor settles them.
package accountmgr
