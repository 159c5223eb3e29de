package broadcaster_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// signOne creates a withdrawal, signs it, and returns it with its signed-tx message.
func signOne(t *testing.T, e *pipelinetest.Env) (*store.Withdrawal, queue.Message) {
	t.Helper()
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	return e.Get(w.ID), e.One(queue.SignedTx)
}

func TestBroadcastMarksAndHandsToMonitor(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	w, m := signOne(t, e)
	b := e.Broadcaster()
	if err := b.Handle(e.Ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(w.ID); got.Status != store.Broadcasted {
		t.Fatalf("status %s", got.Status)
	}
	mon := e.One(queue.TxMonitor)
	if !strings.Contains(string(mon.Body), w.TxHash) {
		t.Fatalf("monitor message %s lacks %s", mon.Body, w.TxHash)
	}
	// Redelivered after it was marked: nothing more happens, no second monitor message.
	if err := b.Handle(e.Ctx, m); err != nil {
		t.Fatal(err)
	}
	if n := len(e.Receive(queue.TxMonitor)); n != 0 {
		t.Fatalf("%d more monitor messages after a redelivery", n)
	}
}

// The process died after the node took the tx and before it was marked: sending again is a success
// ("already known"), and once mined, "nonce too low" with our own hash on chain is a success too.
func TestResendOfOurTxIsSuccess(t *testing.T) {
	for _, mined := range []bool{false, true} {
		name := map[bool]string{false: "still pooled", true: "already mined"}[mined]
		t.Run(name, func(t *testing.T) {
			e := pipelinetest.New(t, pipelinetest.Options{})
			w, m := signOne(t, e)
			st, err := e.Store.GetSentTx(e.Ctx, *w.SentTxID)
			if err != nil {
				t.Fatal(err)
			}
			tx := new(types.Transaction)
			if err := tx.UnmarshalBinary(st.Raw); err != nil {
				t.Fatal(err)
			}
			if err := e.Client.SendTransaction(e.Ctx, tx); err != nil { // the send whose answer was lost
				t.Fatal(err)
			}
			if mined {
				e.WaitMinedNonce(1)
			}
			if err := e.Broadcaster().Handle(e.Ctx, m); err != nil {
				t.Fatalf("resend of our own tx: %v", err)
			}
			if got := e.Get(w.ID); got.Status != store.Broadcasted {
				t.Fatalf("status %s", got.Status)
			}
		})
	}
}

// A nonce consumed by a transaction that is not ours can never carry ours: a permanent conflict for
// the DLQ and an operator, and the withdrawal is not marked sent.
func TestNonceTakenByAnotherTxIsConflict(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	w, m := signOne(t, e)
	head, err := e.Client.HeaderByNumber(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := types.MustSignNewTx(e.Hot.Key, types.LatestSignerForChainID(e.Chain.ChainID), &types.DynamicFeeTx{
		ChainID: e.Chain.ChainID, Nonce: 0, GasTipCap: big.NewInt(2e9), GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), big.NewInt(2e9)),
		Gas: 21000, To: &e.Funder.Address, Value: big.NewInt(1),
	})
	if err := e.Client.SendTransaction(e.Ctx, other); err != nil {
		t.Fatal(err)
	}
	e.WaitMinedNonce(1)
	err = e.Broadcaster().Handle(e.Ctx, m)
	if err == nil || txerr.IsRetryable(err) || txerr.CodeOf(err) != "nonce_conflict" {
		t.Fatalf("err %v (code %s), want a permanent nonce_conflict", err, txerr.CodeOf(err))
	}
	if got := e.Get(w.ID); got.Status != store.Signed {
		t.Fatalf("status %s, want SIGNED (not sent)", got.Status)
	}
}

// Signers commit concurrently, so nonce 1's message can arrive before nonce 0's. Broadcasting it sends
// nonce 0 first, so the address stays in nonce order even on a node that refuses future nonces.
func TestOutOfOrderMessageSendsLowerNoncesFirst(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	w0, m0 := signOne(t, e)
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, m0); err != nil { // nonce 0's message is late
		t.Fatal(err)
	}
	w1, _ := signOne(t, e)
	if *w0.Nonce != 0 || *w1.Nonce != 1 {
		t.Fatalf("nonces %d, %d", *w0.Nonce, *w1.Nonce)
	}
	if err := e.Broadcaster().Handle(e.Ctx, signedMessage(t, w1)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*store.Withdrawal{w0, w1} {
		if got := e.Get(w.ID); got.Status != store.Broadcasted {
			t.Fatalf("nonce %d: status %s, want BROADCASTED", *w.Nonce, got.Status)
		}
	}
	if n := len(e.Receive(queue.TxMonitor)); n != 2 {
		t.Fatalf("%d monitor messages, want one per transaction", n)
	}
	e.WaitMinedNonce(2)
}

// signedMessage builds the signed-tx message the signer sends for w.
func signedMessage(t *testing.T, w *store.Withdrawal) queue.Message {
	t.Helper()
	body, err := queue.NewEnvelope(t.Context(), queue.TypeTxSigned, queue.NewID(), w.CorrelationID, queue.TxSigned{SentTxID: *w.SentTxID, Chain: w.Chain})
	if err != nil {
		t.Fatal(err)
	}
	return queue.Message{ID: "late", Body: body}
}
