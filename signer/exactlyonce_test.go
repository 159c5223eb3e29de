package signer_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// A redelivered tx-request for a withdrawal that is already signed re-queues the recorded transaction:
// same sent tx, same hash, and no second nonce.
func TestRedeliveredRequestIsNotSignedTwice(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	m := e.One(queue.TxRequest)
	s := e.Signer()
	if err := s.Handle(e.Ctx, m); err != nil {
		t.Fatal(err)
	}
	first := e.Get(w.ID)
	if first.Status != store.Signed || first.SentTxID == nil || first.Nonce == nil || *first.Nonce != 0 {
		t.Fatalf("after signing: %+v", first)
	}
	if err := s.Handle(e.Ctx, m); err != nil { // the same message again, as a queue redelivers it
		t.Fatal(err)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d recorded transactions after a redelivery, want 1", n)
	}
	// signed-tx is ordered per address: the re-queue is delivered once the original is done with.
	original := e.One(queue.SignedTx)
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, original); err != nil {
		t.Fatal(err)
	}
	for _, m := range []queue.Message{original, e.One(queue.SignedTx)} {
		if !strings.Contains(string(m.Body), first.TxHash) {
			t.Fatalf("re-queued message does not carry the recorded hash %s: %s", first.TxHash, m.Body)
		}
	}
	st, err := e.Nonces.Peek(e.Ctx, e.Config.ChainID, e.Hot.Address)
	if err != nil || st.Next != 1 || len(st.Leases) != 0 {
		t.Fatalf("nonce state %+v (%v): want counter 1 and no lease", st, err)
	}
}

// Deliveries of one request racing each other (a visibility timeout ran out mid-signing) record one
// transaction; the losers' nonces go back and are handed out again, so the next withdrawals close the
// sequence with no gap, whichever nonce the winner took.
func TestConcurrentDeliveriesSignOnce(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	const racers = 6
	w := e.Withdraw("USDT", testenv.NewAccount(t).Address, 5_000_000)
	m := e.One(queue.TxRequest)
	var wg sync.WaitGroup
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Signer().Handle(e.Ctx, m); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d recorded transactions, want 1", n)
	}
	if got := e.Get(w.ID); got.Status != store.Signed {
		t.Fatalf("status %s", got.Status)
	}
	used := map[uint64]bool{*e.Get(w.ID).Nonce: true}
	for i := 1; i < racers; i++ {
		next := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e12)
		if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
			t.Fatal(err)
		}
		n := *e.Get(next.ID).Nonce
		if used[n] {
			t.Fatalf("nonce %d used twice", n)
		}
		used[n] = true
	}
	for n := uint64(0); n < racers; n++ {
		if !used[n] {
			t.Fatalf("nonces %v: %d was burned by a losing delivery and never reused", used, n)
		}
	}
}

// failingSender refuses to enqueue, like a database that fails at the last statement of the transaction.
type failingSender struct{}

func (failingSender) SendTx(context.Context, *sql.Tx, string, []byte, queue.SendOptions) error {
	return errors.New("queue insert failed")
}

// The signed transaction, the SIGNED transition and the signed-tx message commit together: when the
// message cannot be written, nothing is recorded, and the nonce is handed out again.
func TestSignedTxCommitsWithItsMessage(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	m := e.One(queue.TxRequest)
	d := e.SignerDeps()
	d.Queue = failingSender{}
	s := e.NewSigner(d)
	if err := s.Handle(e.Ctx, m); err == nil {
		t.Fatal("signing succeeded without its message")
	}
	if n := e.CountSent(); n != 0 {
		t.Fatalf("%d transactions recorded without their message", n)
	}
	if got := e.Get(w.ID); got.Status != store.Signing || got.SentTxID != nil {
		t.Fatalf("withdrawal %s with sent tx %v, want SIGNING with none", got.Status, got.SentTxID)
	}
	if err := e.Signer().Handle(e.Ctx, m); err != nil { // the redelivery, with the queue back
		t.Fatal(err)
	}
	if got := e.Get(w.ID); got.Status != store.Signed || got.Nonce == nil || *got.Nonce != 0 {
		t.Fatalf("after retry: %s nonce %v, want SIGNED with nonce 0", got.Status, derefOr(got.Nonce))
	}
}

// A nonce allocated by a signer that died before recording anything is handed out again once its lease
// runs out, so the address's nonce sequence has no gap on chain.
func TestNonceOfCrashedSignerIsReused(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{NonceTTL: 300 * time.Millisecond})
	if _, err := e.Nonces.Allocate(e.Ctx, e.Config.ChainID, e.Hot.Address, nonceFloors(0)); err != nil { // the crashed signer's
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(w.ID); got.Nonce == nil || *got.Nonce != 0 {
		t.Fatalf("nonce %v, want the abandoned 0", derefOr(got.Nonce))
	}
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	e.WaitMinedNonce(1)
}

// Errors that no retry can fix fail the withdrawal at once with the reason, before a nonce is spent;
// short funds are not one of them.
func TestPermanentErrorsFailBeforeSigning(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	blocked := testenv.NewAccount(t).Address
	e.BlockToken(blocked)
	tests := []struct {
		name   string
		asset  string
		to     [20]byte
		amount int64
		want   txerr.Type
	}{
		{"token transfer reverts", "USDT", blocked, 1_000_000, txerr.ExecutionReverted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.Withdraw(tt.asset, tt.to, tt.amount)
			if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
				t.Fatal(err)
			}
			got := e.Get(w.ID)
			if got.Status != store.Failed || got.ErrorType != string(tt.want) || got.ErrorMessage == "" {
				t.Fatalf("got %s %q %q, want FAILED %s with a reason", got.Status, got.ErrorType, got.ErrorMessage, tt.want)
			}
			h, err := e.Store.History(e.Ctx, w.ID)
			if err != nil || h[len(h)-1].To != store.Failed || h[len(h)-1].Reason == "" {
				t.Fatalf("history %+v (%v)", h, err)
			}
		})
	}
	// More than the hot wallet holds is not permanent: it waits for a top-up (awaiting_funds).
	short := e.Withdraw("USDT", testenv.NewAccount(t).Address, 2e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(short.ID); got.Status != store.Pending || got.Waiting != store.WaitingAwaitingFunds {
		t.Fatalf("short of funds: %s %q, want PENDING awaiting_funds", got.Status, got.Waiting)
	}
	if n := e.CountSent(); n != 0 {
		t.Fatalf("%d transactions signed for failing withdrawals", n)
	}
}

// A canceled withdrawal is never signed, even when its request is still queued.
func TestCanceledWithdrawalIsNotSigned(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error {
		return e.Store.Transition(e.Ctx, tx, w.ID, store.Pending, store.Canceled, "canceled by client", store.ActorAPI, store.Change{})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	if n := e.CountSent(); n != 0 || e.Get(w.ID).Status != store.Canceled {
		t.Fatalf("canceled withdrawal signed (%d txs, status %s)", n, e.Get(w.ID).Status)
	}
}

// A withdrawal whose signing keeps failing for a retryable reason (the node is down) is never stranded:
// on its last delivery it goes back to PENDING, says why, and is asked for again later.
func TestRetryableFailureOnLastDeliveryGoesBackToPending(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	dead, err := chain.Dial(e.Ctx, "local", e.Config.ChainID, []string{"http://" + closedAddr(t)}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	d := e.SignerDeps()
	cd := d.Chains["local"]
	cd.Client = dead
	d.Chains["local"] = cd
	s := e.NewSigner(d)
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	m := e.One(queue.TxRequest)

	m.ReceiveCount = 1
	if err := s.Handle(e.Ctx, m); err == nil || !txerr.IsRetryable(err) {
		t.Fatalf("early delivery: %v, want a retryable error for the queue to retry", err)
	}
	m.ReceiveCount = queue.MaxReceiveCount
	if err := s.Handle(e.Ctx, m); err != nil {
		t.Fatalf("last delivery: %v, want it handled", err)
	}
	if got := e.Get(w.ID); got.Status != store.Pending {
		t.Fatalf("status %s, want PENDING", got.Status)
	}
	h, err := e.Store.History(e.Ctx, w.ID)
	if err != nil || h[len(h)-1].To != store.Pending || !strings.Contains(h[len(h)-1].Reason, "retrying") {
		t.Fatalf("history %+v (%v)", h, err)
	}
	if d, err := e.Queue.Depth(e.Ctx, queue.TxRequest); err != nil || d != 2 {
		t.Fatalf("tx-request depth %d (%v), want the delivered message and a delayed new one", d, err)
	}
	if n := e.CountSent(); n != 0 {
		t.Fatalf("%d transactions recorded", n)
	}
}
