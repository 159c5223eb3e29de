package signer_test

import (
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/signer"
)

// Two signer instances run their batchers at the same moment over one token group, round after round.
// Without an owner for the group both would find no allowance and each sign an approve, or size one
// without the other's batch; with it, one approve is ever signed, every withdrawal lands in exactly one
// transaction, and every recipient is paid exactly once.
func TestTwoSignersBatchOneTokenGroup(t *testing.T) {
	e := batchEnv(t, "throughput")
	signers := []*signer.Signer{e.Signer(), e.Signer()}
	const rounds, perRound = 8, 6 // one approve covers ten batches of the first need: all of these
	var all []*store.Withdrawal
	for round := range rounds {
		var ws []*store.Withdrawal
		for i := range perRound {
			ws = append(ws, e.Withdraw("USDT", testenv.NewAccount(t).Address, int64(1_000_000+round*perRound+i)))
		}
		all = append(all, ws...)
		// Race the two batchers until this round's withdrawals are all signed (the first round waits
		// for the approve to be mined).
		for pass := 0; ; pass++ {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, s := range signers {
				wg.Add(1)
				go func() { defer wg.Done(); _, errs[i] = s.BatchOnce(e.Ctx) }()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			signed := 0
			for _, w := range ws {
				if e.Get(w.ID).Status != store.Pending {
					signed++
				}
			}
			if signed == perRound {
				break
			}
			if pass > 50 {
				t.Fatalf("round %d: only %d of %d signed after %d passes", round, signed, perRound, pass)
			}
			driveUntil(t, e, func() bool { return true }) // broadcast the approve, if that is what was signed
		}
		ids := make([]string, len(ws))
		for i, w := range ws {
			ids[i] = w.ID
		}
		drive(t, e, ids...)
	}
	var approves int
	if err := e.Store.DB.QueryRow(`SELECT COUNT(*) FROM sent_transactions WHERE kind = 'approve'`).Scan(&approves); err != nil || approves != 1 {
		t.Fatalf("%d approves (%v), want 1", approves, err)
	}
	for _, w := range all {
		got := e.Get(w.ID)
		bal, err := e.Client.TokenBalance(e.Ctx, e.Contracts.USDT, common.HexToAddress(w.To))
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.Confirmed || bal.Cmp(w.Amount) != 0 {
			t.Fatalf("withdrawal %s: %s, recipient holds %s, want %s once", w.ID, got.Status, bal, w.Amount)
		}
	}
	var inTwo int
	if err := e.Store.DB.QueryRow(`SELECT COUNT(*) FROM (SELECT withdrawal_id FROM withdrawal_history WHERE to_status = 'SIGNED'
		GROUP BY withdrawal_id HAVING COUNT(*) > 1) x`).Scan(&inTwo); err != nil || inTwo != 0 {
		t.Fatalf("%d withdrawals signed twice (%v)", inTwo, err)
	}
}
