package signer_test

import (
	"math/big"
	"testing"

	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// A node that refuses a tip under its floor (Polygon's validators under 25 gwei; here geth's pool:
// "transaction gas price below minimum: gas tip cap X, minimum needed Y") does not fail the withdrawal:
// the broadcaster asks for a new attempt, the signer signs the same nonce with a tip of at least what the
// node named, both attempts are recorded, and the withdrawal is paid exactly once and CONFIRMED.
func TestTooLowTipIsRetriedWithHigherFee(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 2})
	est, err := fees.New("local", e.Config.Fees, e.Client)
	if err != nil {
		t.Fatal(err)
	}
	now, err := est.New(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A floor well above what the signer picks, well under the configured tip cap.
	floor := new(big.Int).Add(new(big.Int).Mul(now.MaxPriorityFee, big.NewInt(3)), big.NewInt(1e9))
	if err := e.Chain.SetMinTip(e.Ctx, floor); err != nil {
		t.Fatal(err)
	}
	to := testenv.NewAccount(t).Address
	const amount = 1e15
	w := e.Withdraw("POL", to, amount)
	s := e.Signer()
	if err := s.Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	first := e.Get(w.ID)
	if first.Status != store.Signed {
		t.Fatalf("status %s, want SIGNED", first.Status)
	}

	m := e.One(queue.SignedTx)
	if err := e.Broadcaster().Handle(e.Ctx, m); err != nil {
		t.Fatalf("broadcast of a refused attempt: %v, want it handled by a re-fee request", err)
	}
	_ = e.Queue.Delete(e.Ctx, queue.SignedTx, m)
	if got := e.Get(w.ID); got.Status != store.Signed {
		t.Fatalf("after the refusal: %s, want still SIGNED", got.Status)
	}
	refee := e.One(queue.TxRequest)
	env, p, err := queue.Decode[queue.TxRefeeRequested](refee.Body, queue.TypeTxRefeeRequested)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hash != first.TxHash || p.MinTipCap != floor.String() || env.CorrelationID != w.CorrelationID {
		t.Fatalf("re-fee request %+v (%s), want hash %s, min tip %s", p, env.CorrelationID, first.TxHash, floor)
	}
	for i := 0; i < 2; i++ { // the second is a redelivery: the attempt it names is replaced already
		if err := s.Handle(e.Ctx, refee); err != nil {
			t.Fatalf("re-fee delivery %d: %v", i+1, err)
		}
	}
	st, err := e.Store.GetSentTx(e.Ctx, *first.SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := e.Store.AttemptHashes(e.Ctx, st.ID)
	if err != nil || len(hashes) != 2 || hashes[1] != first.TxHash || hashes[0] != st.Hash {
		t.Fatalf("attempts %v (%v), want the new one and %s", hashes, err, first.TxHash)
	}
	if st.Nonce != *first.Nonce || st.MaxPriorityFee.Cmp(floor) < 0 || st.Status != store.TxSigned {
		t.Fatalf("new attempt nonce %d tip %s status %s, want nonce %d, tip ≥ %s, SIGNED", st.Nonce, st.MaxPriorityFee, st.Status, *first.Nonce, floor)
	}
	signed := e.Receive(queue.SignedTx)
	if len(signed) != 1 {
		t.Fatalf("%d signed-tx messages after two re-fee deliveries, want 1", len(signed))
	}
	if err := e.Broadcaster().Handle(e.Ctx, signed[0]); err != nil {
		t.Fatalf("broadcast of the new attempt: %v", err)
	}
	_ = e.Queue.Delete(e.Ctx, queue.SignedTx, signed[0])
	drive(t, e, w.ID)

	got := e.Get(w.ID)
	if got.Status != store.Confirmed || got.TxHash != st.Hash {
		t.Fatalf("withdrawal %s paid by %s, want CONFIRMED by %s", got.Status, got.TxHash, st.Hash)
	}
	bal, err := e.Client.BalanceAt(e.Ctx, to)
	if err != nil || bal.Cmp(big.NewInt(amount)) != 0 {
		t.Fatalf("recipient holds %v (%v), want exactly %d", bal, err, int64(amount))
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d sent transactions, want 1", n)
	}
}
