// Package chaos is Sluice's chaos run: several processes of every service (Options.Instances, two by
// default) against one real MariaDB, Redis, queue and EVM node behind a fault-injecting JSON-RPC
// proxy, with service instances killed at random while withdrawals flow, a check on chain that nobody
// was paid twice and nothing was lost, and a search of the logs, metrics, rows and queue messages for
// the private keys the run generated.
//
// `make chaos` runs the default profile, `make chaos-ci` the ci profile (see Profile); CI runs the
// latter on every landing. docs/chaos.md is the user's guide.
//
// # What a seed fixes
//
// A run is meant to be replayed from its seed: a failure that does not come back with the same seed
// and flags is a bug in the harness. The seed fixes, each from its own random stream:
//
//   - the workload: every withdrawal's external_id, asset, recipient, amount, replay mode and whether
//     its withdrawal.requested is resent once signed, posted in the same order at the same rate;
//   - the keys, so the hot wallet, the funder and the contracts have the same addresses;
//   - the kill schedule: which service is killed (and which of its instances), when (counted from the first post) and how long it
//     stays down. It is drawn before the run starts and printed; a kill never switches to another
//     service, it waits for its turn and for its service to be running;
//   - the proxy's faults: a request's fault (drop, delay and its length, 503, JSON-RPC error, dropped
//     answer to an accepted send) depends on the seed, the request's methods and parameters, and how
//     many identical requests came before it, not on how requests from different services interleave.
//
// # What it does not
//
// Everything that depends on timing, which no seed fixes on a real, shared machine:
//
//   - OS scheduling: which service's request reaches the database, Redis or the node first, which
//     signer delivery wins a row lock, which messages a batch picks up;
//   - when a resend goes out: as soon as the run sees its withdrawal SIGNED or BROADCASTED, which
//     depends on how fast it got there;
//   - where each kill lands in the work: the schedule is fixed in wall time, but what a process was
//     doing at that moment (between signing and recording, mid-send, mid-receipt) depends on how fast
//     everything ran up to then; a slow restart also pushes the later kills back;
//   - block timing: the chain seals a block every block interval of wall time, so which transactions
//     share a block, the base fee they see, and so the fees and the transaction hashes, vary;
//   - therefore the nonce each withdrawal gets, the requests the services make (polls, retries,
//     re-sends) and the faults those get, since a different request gets a different fault;
//   - the queue backends' own timing: visibility timeouts, long polls and the SQS emulator's delivery
//     order;
//   - database names, SQS queue prefixes, the API key and the keystore password, which are fresh per run
//     so that runs can share the backing services.
//
// A seed thus replays the same load, the same kills of the same services at the same moments and the
// same fault for the same request; a failure that needs a rare interleaving may need a few replays.
package chaos
