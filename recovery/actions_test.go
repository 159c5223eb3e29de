package recovery_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/store"
)

// A speed-up asked for a transaction the pool will not mine (its floor rose above the tip) is performed
// at once, without waiting for the stuck clock: one bump at the same nonce however often it was asked
// against the same attempt, the bumped attempt mined, the recipient paid once.
func TestSpeedUpBumpsNowOncePerAttempt(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	floor := new(big.Int).Mul(f.st.MaxPriorityFee, big.NewInt(3))
	if err := e.Chain.SetMinTip(e.Ctx, floor); err != nil {
		t.Fatal(err)
	}
	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 1000 // the stuck clock alone would never bump it in this test
	rs := newService(e, ch, alert.Nop{})
	req := store.TxAction{WithdrawalID: f.w.ID, SentTxID: f.st.ID, Chain: "local", Kind: store.ActionSpeedUp, BaseHash: f.st.Hash}
	a1, created1, err := e.Store.RequestTxAction(e.Ctx, req, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	a2, created2, err := e.Store.RequestTxAction(e.Ctx, req, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !created1 || created2 || a1.ID != a2.ID {
		t.Fatalf("two requests against one attempt: created %v,%v ids %d,%d; want one action", created1, created2, a1.ID, a2.ID)
	}
	got, err := rs.PerformActions(e.Ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	if got.Bumped != 1 || got.Done != 1 {
		t.Fatalf("actions %+v, want one done by one bump", got)
	}
	cur, err := e.Store.GetSentTx(e.Ctx, f.st.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A bump the node refuses below its floor is recorded and followed at once by one at the tip the
	// node named (the stuck path's rule): one action, possibly two new attempts.
	bumpedTo := len(attempts(t, e, f.st.ID))
	tenPct := new(big.Int).Div(new(big.Int).Mul(f.st.MaxPriorityFee, big.NewInt(110)), big.NewInt(100))
	if cur.Nonce != f.st.Nonce || cur.Hash == f.st.Hash || cur.MaxPriorityFee.Cmp(tenPct) < 0 || cur.MaxPriorityFee.Cmp(floor) < 0 {
		t.Fatalf("after speed-up: nonce %d hash %s tip %s; want nonce %d, a new hash, tip ≥ %s and ≥ the floor %s",
			cur.Nonce, cur.Hash, cur.MaxPriorityFee, f.st.Nonce, tenPct, floor)
	}
	// Asked again against the replaced attempt (a late retry): done, no second bump.
	if _, created, err := e.Store.RequestTxAction(e.Ctx, req, "", "", ""); err != nil || created {
		t.Fatalf("late retry: created %v err %v; want the same action", created, err)
	}
	if got, err := rs.PerformActions(e.Ctx, "local"); err != nil || got.Bumped != 0 || got.Done != 0 {
		t.Fatalf("second round %+v err %v, want nothing to do", got, err)
	}
	if n := len(attempts(t, e, f.st.ID)); n != bumpedTo || n < 2 {
		t.Fatalf("%d attempts after the second round, %d after the first; want no more", n, bumpedTo)
	}
	settle(t, e, f)
	as := attempts(t, e, f.st.ID)
	for i, a := range as {
		want := " replaced"
		if i == len(as)-1 {
			want = cur.Hash + " mined"
		}
		if !strings.Contains(a, want) {
			t.Fatalf("attempts %v: want every earlier attempt replaced and the sped-up one mined", as)
		}
	}
}

// A speed-up against a new attempt, after a bump, is a new action and bumps again.
func TestSpeedUpAgainAfterBumpBumpsAgain(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	rs := newService(e, e.Config, alert.Nop{})
	hash := f.st.Hash
	for i := range 2 {
		if _, created, err := e.Store.RequestTxAction(e.Ctx, store.TxAction{WithdrawalID: f.w.ID, SentTxID: f.st.ID, Chain: "local",
			Kind: store.ActionSpeedUp, BaseHash: hash}, "", "", ""); err != nil || !created {
			t.Fatalf("request %d: created %v err %v", i, created, err)
		}
		if got, err := rs.PerformActions(e.Ctx, "local"); err != nil || got.Bumped != 1 {
			t.Fatalf("round %d: %+v err %v, want one bump", i, got, err)
		}
		cur, err := e.Store.GetSentTx(e.Ctx, f.st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Hash == hash {
			t.Fatalf("round %d: hash unchanged", i)
		}
		hash = cur.Hash
	}
	settle(t, e, f)
	if n := len(attempts(t, e, f.st.ID)); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}
