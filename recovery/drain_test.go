package recovery_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/store"
)

// A wallet that starts draining (`sluice keys rotate`) with a transaction stuck in the pool: recovery
// still bumps it at its nonce, with its key, and it is mined once; draining only stops new assignments.
func TestDrainingWalletStuckTxIsStillBumped(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Wallets: 2})
	f := sendPaused(t, e, nil)
	if !strings.EqualFold(f.st.From, e.Hot.Address.Hex()) {
		t.Fatalf("signed from %s, want the wallet about to drain %s", f.st.From, e.Hot.Address.Hex())
	}
	floor := new(big.Int).Mul(f.st.MaxPriorityFee, big.NewInt(3))
	if err := e.Chain.SetMinTip(e.Ctx, floor); err != nil {
		t.Fatal(err)
	}
	ch := e.Config
	ch.DrainingWallets = []config.Address{config.Address(e.Hot.Address)}
	if err := (&config.Config{Chains: []config.Chain{ch}}).Finish(); err != nil {
		t.Fatal(err)
	}
	ch.Recovery.StuckAfterBlocks = 2
	rs := newService(e, ch, alert.Nop{})
	sweep(t, e, rs)
	e.Chain.Commit()
	e.Chain.Commit()
	if sw := sweep(t, e, rs); sw.Stuck != 1 || sw.Bumped != 1 {
		t.Fatalf("sweep of the draining wallet after 2 blocks %+v, want one bump", sw)
	}
	cur, err := e.Store.GetSentTx(e.Ctx, f.st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Nonce != f.st.Nonce || cur.Hash == f.st.Hash || !strings.EqualFold(cur.From, e.Hot.Address.Hex()) {
		t.Fatalf("after the bump: from %s nonce %d hash %s; want the draining wallet, same nonce, new hash", cur.From, cur.Nonce, cur.Hash)
	}
	settle(t, e, f)
	if got := e.Get(f.w.ID); got.Status != store.Confirmed {
		t.Fatalf("withdrawal %s, want CONFIRMED", got.Status)
	}
}
