package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/monitor"
)

// sendOne signs and broadcasts a withdrawal and returns its tx-monitor message.
func sendOne(t *testing.T, e *pipelinetest.Env, asset string, amount int64, beforeBroadcast func(w *store.Withdrawal)) (*store.Withdrawal, queue.Message) {
	t.Helper()
	w := e.Withdraw(asset, testenv.NewAccount(t).Address, amount)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	if beforeBroadcast != nil {
		beforeBroadcast(e.Get(w.ID))
	}
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	return w, e.One(queue.TxMonitor)
}

// The monitor confirms only at the configured depth; before that it looks again later through a fresh
// delayed message (so waiting never counts as a failed delivery).
func TestConfirmsAtDepth(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 5})
	w, m := sendOne(t, e, "USDT", 1_000_000, nil)
	mo := e.Monitor()
	if err := mo.Handle(e.Ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(w.ID); got.Status != store.Broadcasted {
		t.Fatalf("status %s before depth", got.Status)
	}
	if d, err := e.Queue.Depth(e.Ctx, queue.TxMonitor); err != nil || d != 2 {
		t.Fatalf("tx-monitor depth %d (%v): want the original and a delayed re-check", d, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.Get(w.ID).Status != store.Confirmed {
		if time.Now().After(deadline) {
			t.Fatalf("not confirmed: %s", e.Get(w.ID).Status)
		}
		time.Sleep(100 * time.Millisecond)
		if err := mo.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := e.Get(w.ID)
	head, err := e.Client.BlockNumber(e.Ctx)
	if err != nil || got.BlockNumber == nil || head-*got.BlockNumber+1 < 5 {
		t.Fatalf("confirmed at block %v with head %d (%v)", got.BlockNumber, head, err)
	}
	st, err := e.Store.GetSentTx(e.Ctx, *got.SentTxID)
	if err != nil || st.Status != store.TxConfirmed || st.ReceiptStatus == nil || *st.ReceiptStatus != 1 || st.GasUsed == nil {
		t.Fatalf("sent tx %+v (%v)", st, err)
	}
}

// A transaction mined with status 0 fails its withdrawal with the reason from the receipt.
func TestRevertedReceiptFails(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 2})
	w, m := sendOne(t, e, "USDT", 1_000_000, func(w *store.Withdrawal) {
		// Blocked after the signer's estimate passed and before the tx is mined: it reverts on chain.
		e.BlockToken(common(w.To))
	})
	mo := e.Monitor()
	deadline := time.Now().Add(30 * time.Second)
	for !e.Get(w.ID).Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatal("never settled")
		}
		if err := mo.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := e.Get(w.ID)
	if got.Status != store.Failed || got.ErrorType != string(txerr.ExecutionReverted) || got.BlockNumber == nil {
		t.Fatalf("got %s %s block %v, want FAILED EXECUTION_REVERTED with the block", got.Status, got.ErrorType, got.BlockNumber)
	}
}

// resendCounter counts the monitor's resends.
type resendCounter struct {
	monitor.Metrics
	n int
}

func (c *resendCounter) Resent(string) { c.n++ }

// A transaction the node does not know (dropped: here, recorded but never sent) is resent from its
// recorded bytes and counted once; while the node holds it, looking again resends nothing new and
// counts nothing; then it mines and is confirmed.
func TestResendOfDroppedTransactionIsCounted(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 1})
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	e.Receive(queue.SignedTx) // never broadcast: the node has never seen it
	w = e.Get(w.ID)
	if _, err := e.Store.DB.ExecContext(e.Ctx, `UPDATE sent_transactions SET status = 'BROADCASTED' WHERE id = ?`, *w.SentTxID); err != nil {
		t.Fatal(err)
	}
	st, err := e.Store.GetSentTx(e.Ctx, *w.SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	body, err := queue.NewEnvelope(e.Ctx, queue.TypeTxBroadcasted, queue.NewID(), w.CorrelationID,
		queue.TxBroadcasted{SentTxID: st.ID, Chain: "local", Hash: st.Hash})
	if err != nil {
		t.Fatal(err)
	}
	e.Chain.SealEvery(time.Hour)
	cnt := &resendCounter{Metrics: monitor.NopMetrics()}
	mo, err := monitor.New(monitor.Deps{Store: e.Store, Queue: e.Queue,
		Chains: map[string]monitor.ChainDeps{"local": {Config: e.Config, Client: e.Client}}}, e.Log, cnt)
	if err != nil {
		t.Fatal(err)
	}
	m := queue.Message{Body: body}
	for range 2 {
		if err := mo.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if cnt.n != 1 {
		t.Fatalf("%d resends counted after two looks, want 1 (the node took it back once, then held it)", cnt.n)
	}
	e.Chain.SealEvery(100 * time.Millisecond)
	deadline := time.Now().Add(30 * time.Second)
	for e.Get(w.ID).Status != store.Confirmed {
		if time.Now().After(deadline) {
			t.Fatalf("never confirmed: %s", e.Get(w.ID).Status)
		}
		if err := mo.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cnt.n != 1 {
		t.Fatalf("%d resends counted in all, want 1", cnt.n)
	}
}

// A transaction reverts while its client's cancel is pending: nothing was paid, and the cancel stands
// (CANCELED, not FAILED: a failed withdrawal is one the exchange would issue again).
func TestRevertedWithCancelRequestedIsCanceled(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 2})
	w, m := sendOne(t, e, "USDT", 1_000_000, func(w *store.Withdrawal) {
		e.BlockToken(common(w.To))
		if _, _, err := e.Store.RequestTxAction(e.Ctx, store.TxAction{WithdrawalID: w.ID, SentTxID: *w.SentTxID, Chain: "local",
			Kind: store.ActionCancel}, store.ReasonCancelRequested, w.Status, store.ActorAPI); err != nil {
			t.Fatal(err)
		}
	})
	mo := e.Monitor()
	deadline := time.Now().Add(30 * time.Second)
	for !e.Get(w.ID).Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatal("never settled")
		}
		if err := mo.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := e.Get(w.ID); got.Status != store.Canceled {
		t.Fatalf("got %s, want CANCELED", got.Status)
	}
	hs, err := e.Store.History(e.Ctx, w.ID)
	if err != nil || !strings.Contains(hs[len(hs)-1].Reason, "the cancel requested stands") {
		t.Fatalf("history %+v (%v)", hs, err)
	}
}
