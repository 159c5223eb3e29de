package recovery_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/recovery"
)

// requestCancel records a client's cancel of f's withdrawal as the API does.
func requestCancel(t *testing.T, e *pipelinetest.Env, f inFlight) bool {
	t.Helper()
	_, created, err := e.Store.RequestTxAction(e.Ctx, store.TxAction{WithdrawalID: f.w.ID, SentTxID: f.st.ID, Chain: "local",
		Kind: store.ActionCancel}, store.ReasonCancelRequested, store.Broadcasted, store.ActorAPI)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// settleAs resumes sealing and runs the monitor until f's withdrawal is terminal; it returns it.
func settleAs(t *testing.T, e *pipelinetest.Env, f inFlight, want store.Status) *store.Withdrawal {
	t.Helper()
	e.Chain.SealEvery(100 * time.Millisecond)
	mo := e.Monitor()
	deadline := time.Now().Add(45 * time.Second)
	for !e.Get(f.w.ID).Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("withdrawal never settled (%s)", e.Get(f.w.ID).Status)
		}
		if err := mo.Handle(e.Ctx, f.mon); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := e.Get(f.w.ID)
	if got.Status != want {
		t.Fatalf("withdrawal %s, want %s", got.Status, want)
	}
	return got
}

// attemptKinds lists the attempts of a sent transaction, oldest first, as "kind status".
func attemptKinds(t *testing.T, e *pipelinetest.Env, id int64) []string {
	t.Helper()
	rows, err := e.Store.DB.QueryContext(e.Ctx, `SELECT kind, status FROM tx_attempts WHERE sent_tx_id = ? ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k, s string
		if err := rows.Scan(&k, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, k+" "+s)
	}
	return out
}

// The payment sits unmined (the pool's floor rose above its tip); the client cancels: recovery replaces
// it at the same nonce by a zero-value self-transfer with a tip above the floor, which mines. The
// withdrawal ends CANCELED with the cancel's hash, the recipient holds nothing, the wallet's nonce is
// consumed by the self-transfer, and a second cancel request is the same one (one cancel).
func TestCancelBroadcastCancelWins(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	floor := new(big.Int).Mul(f.st.MaxPriorityFee, big.NewInt(3))
	if err := e.Chain.SetMinTip(e.Ctx, floor); err != nil {
		t.Fatal(err)
	}
	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 1000
	rs := newService(e, ch, alert.Nop{})
	if !requestCancel(t, e, f) || requestCancel(t, e, f) {
		t.Fatal("two cancel requests: want the first recorded and the second the same one")
	}
	got, err := rs.PerformActions(e.Ctx, "local")
	if err != nil || got.Done != 1 || got.Bumped != 0 {
		t.Fatalf("actions %+v err %v, want one cancel done", got, err)
	}
	cur, err := e.Store.GetSentTx(e.Ctx, f.st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Nonce != f.st.Nonce || cur.Hash == f.st.Hash || cur.MaxPriorityFee.Cmp(floor) < 0 {
		t.Fatalf("after cancel: nonce %d hash %s tip %s; want nonce %d, a new hash, tip ≥ %s", cur.Nonce, cur.Hash, cur.MaxPriorityFee, f.st.Nonce, floor)
	}
	// Asked again: nothing new is signed.
	requestCancel(t, e, f)
	n := len(attemptKinds(t, e, f.st.ID))
	if got, err := rs.PerformActions(e.Ctx, "local"); err != nil || got.Done != 0 {
		t.Fatalf("second round %+v err %v", got, err)
	}
	if m := len(attemptKinds(t, e, f.st.ID)); m != n {
		t.Fatalf("%d attempts after a repeated cancel, %d before", m, n)
	}
	w := settleAs(t, e, f, store.Canceled)
	bal, err := e.Client.BalanceAt(e.Ctx, f.to)
	if err != nil || bal.Sign() != 0 {
		t.Fatalf("recipient holds %v (%v), want nothing", bal, err)
	}
	mined, err := e.Client.NonceAt(e.Ctx, common.HexToAddress(f.st.From))
	if err != nil || mined != f.st.Nonce+1 {
		t.Fatalf("wallet nonce %d (%v), want %d: the self-transfer consumed it", mined, err, f.st.Nonce+1)
	}
	ks := attemptKinds(t, e, f.st.ID)
	if ks[0] != "payment replaced" || ks[len(ks)-1] != "cancel mined" {
		t.Fatalf("attempts %v: want the payment replaced and a cancel mined", ks)
	}
	hs, err := e.Store.History(e.Ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	var reqs int
	last := hs[len(hs)-1]
	for _, h := range hs {
		if h.Reason == store.ReasonCancelRequested {
			reqs++
		}
	}
	if reqs != 1 || last.To != store.Canceled || !strings.Contains(last.Reason, "cancel replacement "+cur.Hash) {
		t.Fatalf("history %+v: want one cancel_requested and CANCELED naming the cancel's hash", hs)
	}
}

// The payment was mined before the cancel could be: the cancel attempt is refused (nonce too low) and
// the payment stands, CONFIRMED and paid once.
func TestCancelBroadcastPaymentWins(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	e.Chain.Commit() // mines the payment; the monitor has not looked yet
	rs := newService(e, e.Config, alert.Nop{})
	requestCancel(t, e, f)
	var got recovery.Actions
	var err error
	if got, err = rs.PerformActions(e.Ctx, "local"); err != nil || got.Done != 1 {
		t.Fatalf("actions %+v err %v", got, err)
	}
	settleAs(t, e, f, store.Confirmed)
	bal, err := e.Client.BalanceAt(e.Ctx, f.to)
	if err != nil || bal.Cmp(big.NewInt(paid)) != 0 {
		t.Fatalf("recipient holds %v (%v), want exactly one payment", bal, err)
	}
	ks := attemptKinds(t, e, f.st.ID)
	if len(ks) < 2 || ks[0] != "payment mined" {
		t.Fatalf("attempts %v: want the payment mined and the cancel attempt signed after it recorded", ks)
	}
	for _, k := range ks[1:] {
		if k != "cancel replaced" {
			t.Fatalf("attempts %v: want every cancel attempt replaced", ks)
		}
	}
}

// Two recovery instances perform the same cancel at once: one cancel attempt is signed (the
// compare-and-swap on the current attempt), the pool takes it over the payment (+10 %), and it mines.
func TestCancelRacingInstancesSignOnce(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	a, b := newService(e, e.Config, alert.Nop{}), newService(e, e.Config, alert.Nop{})
	requestCancel(t, e, f)
	errs := make(chan error, 2)
	for _, rs := range []*recovery.Service{a, b} {
		go func() { _, err := rs.PerformActions(e.Ctx, "local"); errs <- err }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ks := attemptKinds(t, e, f.st.ID)
	if len(ks) != 2 || ks[0] != "payment signed" || ks[1] != "cancel signed" {
		t.Fatalf("attempts %v: want the payment and one cancel", ks)
	}
	settleAs(t, e, f, store.Canceled)
	if bal, err := e.Client.BalanceAt(e.Ctx, f.to); err != nil || bal.Sign() != 0 {
		t.Fatalf("recipient holds %v (%v), want nothing", bal, err)
	}
}
