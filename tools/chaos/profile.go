package chaos

import (
	"fmt"
	"slices"
	"time"
)

// Profile returns the options of a named run size; flags then override single values.
//
//   - default: `make chaos`, 500 withdrawals and 15 kills.
//   - ci: `make chaos-ci`, the run CI makes on every landing: 200 withdrawals and 10 kills (two shuffled
//     rounds of the five services, so each is killed twice), posted at half the rate so that the kills
//     spread over 40 s of posting, and a shorter wait. Its budget is 3 minutes of wall time with the
//     build and the backing services, on a shared 2-core machine.
//
// Both fault the RPC at 10%, replay 10% of the withdrawals to the API and send 10% of the withdrawal
// requests again once they are signed. Both inject the recovery faults (fee surges, silently dropped
// sends, one foreign transaction at the hot wallet's nonce, shallow reorgs, cancels of withdrawals in
// flight); ci a few of each.
func Profile(name string) (Options, error) {
	o := Options{
		Withdrawals:   500,
		Kills:         15,
		FaultRate:     0.1,
		SendFaultRate: -1,
		Confirmations: 12,
		Queue:         "mysql",
		Timeout:       4 * time.Minute,
		Stall:         90 * time.Second,
		ReplayShare:   0.1,
		ResendShare:   0.1,
		PostRate:      10,
		Visibility:    3 * time.Second,
		BlockTime:     time.Second,
		KillServices:  slices.Clone(services),
		Instances:     DefaultInstances,
		Recovery:      RecoveryFaults{FeeSurges: 3, DroppedSends: 10, ForeignNonces: 1, Reorgs: 3, Cancels: 50},
	}
	switch name {
	case "default", "":
	case "ci":
		o.Withdrawals = 200
		o.Kills = 2 * len(services) // two shuffled rounds: every service is killed twice
		o.PostRate = 5
		// A healthy run ends 10–70 s after its last post: the most is a signer killed holding a batch
		// claim, which waits out the 60 s lease. The stall rule (90 s without a change) ends a hopeless
		// wait sooner, so the timeout only has to leave a slow machine room.
		o.Timeout = 3 * time.Minute
		o.Recovery = RecoveryFaults{FeeSurges: 2, DroppedSends: 5, ForeignNonces: 1, Reorgs: 2, Cancels: 20}
	default:
		return Options{}, fmt.Errorf("profile %q: default or ci", name)
	}
	o.Profile = name
	if o.Profile == "" {
		o.Profile = "default"
	}
	return o, nil
}

// RecoveryFaults are the faults the recovery service exists to ride out, injected on top of the kills
// and the RPC faults. Each is a count of injections per run (recoveryfaults.go).
type RecoveryFaults struct {
	FeeSurges     int // the node's tip floor jumps above the signed tips for a while: pooled ones are dropped, sends refused, then bumped
	DroppedSends  int // the proxy answers a send with its hash without forwarding it: it must be sent again
	ForeignNonces int // a transaction Sluice did not sign takes one of the hot wallet's nonces
	Reorgs        int // a shallow reorg (fewer blocks than the confirmations) drops mined withdrawals
	// Cancels are withdrawals canceled over the API at a moment drawn for each (not yet signed,
	// signed, broadcast, signed inside a batch; cancels.go): CANCELED ones must have paid nothing.
	Cancels int
}

// Any reports whether any recovery fault is asked for.
func (f RecoveryFaults) Any() bool { return f != RecoveryFaults{} }
