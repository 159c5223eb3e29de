// Package accountmgr will own keeping hot-wallet sub-accounts topped up from the main account
// (balance-check and balance-transfer queues). It has its own issue; nothing here runs yet.
package accountmgr
