package recovery_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// batchFlight is one batch signed by the real batcher and broadcast with sealing stopped.
type batchFlight struct {
	ws  []*store.Withdrawal
	to  []common.Address
	st  *store.SentTx
	mon queue.Message
}

// sendBatchPaused signs n withdrawals of asset as one batch and broadcasts it with sealing stopped.
func sendBatchPaused(t *testing.T, e *pipelinetest.Env, asset string, n int) batchFlight {
	t.Helper()
	e.Config.Multicall3 = config.Address(e.Contracts.Multicall3)
	e.Config.BatchContract = config.Address(e.Contracts.BatchTransfer)
	e.Config.Batching.Prefer = "throughput"
	e.Config.Batching.MaxWait.Duration = time.Millisecond
	var f batchFlight
	for i := range n {
		to := testenv.NewAccount(t).Address
		f.to = append(f.to, to)
		f.ws = append(f.ws, e.Withdraw(asset, to, amountOf(asset, i)))
	}
	e.Receive(queue.TxRequest) // the batcher claims from the database
	time.Sleep(5 * time.Millisecond)
	s := e.Signer()
	// A token group signs an approve first and waits for it to be mined.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := s.BatchOnce(e.Ctx); err != nil {
			t.Fatal(err)
		}
		if e.Get(f.ws[0].ID).Status == store.Signed {
			break
		}
		for _, m := range e.Receive(queue.SignedTx) {
			if err := e.Broadcaster().Handle(e.Ctx, m); err != nil {
				t.Fatal(err)
			}
			_ = e.Queue.Delete(e.Ctx, queue.SignedTx, m)
		}
		e.Receive(queue.TxMonitor)
		if time.Now().After(deadline) {
			t.Fatalf("batch never signed: %s", e.Get(f.ws[0].ID).Status)
		}
		time.Sleep(150 * time.Millisecond)
	}
	ms := e.Receive(queue.SignedTx)
	if len(ms) != 1 {
		t.Fatalf("signed-tx holds %d messages, want the batch", len(ms))
	}
	e.Chain.SealEvery(time.Hour)
	if err := e.Broadcaster().Handle(e.Ctx, ms[0]); err != nil {
		t.Fatal(err)
	}
	_ = e.Queue.Delete(e.Ctx, queue.SignedTx, ms[0])
	for i, w := range f.ws {
		f.ws[i] = e.Get(w.ID)
		if f.ws[i].BatchID == "" || f.ws[i].Status != store.Broadcasted || *f.ws[i].SentTxID != *f.ws[0].SentTxID {
			t.Fatalf("withdrawal %d: %s batch %q, want BROADCASTED in one batch", i, f.ws[i].Status, f.ws[i].BatchID)
		}
	}
	st, err := e.Store.GetSentTx(e.Ctx, *f.ws[0].SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	f.st, f.mon = st, e.One(queue.TxMonitor)
	return f
}

// amountOf is the amount of item i (the hot wallet holds 1e15 token units: a token batch of four fits).
func amountOf(asset string, i int) int64 {
	if asset == "POL" {
		return paid + int64(i)
	}
	return 1000 + int64(i)
}

func requestItemCancel(t *testing.T, e *pipelinetest.Env, f batchFlight, i int) {
	t.Helper()
	if _, _, err := e.Store.RequestTxAction(e.Ctx, store.TxAction{WithdrawalID: f.ws[i].ID, SentTxID: f.st.ID, Chain: "local",
		Kind: store.ActionCancelItem}, store.ReasonCancelRequested, store.Broadcasted, store.ActorAPI); err != nil {
		t.Fatal(err)
	}
}

// settleBatch runs the monitor until every withdrawal of f is terminal.
func settleBatch(t *testing.T, e *pipelinetest.Env, f batchFlight) {
	t.Helper()
	e.Chain.SealEvery(100 * time.Millisecond)
	mo := e.Monitor()
	deadline := time.Now().Add(45 * time.Second)
	for {
		open := 0
		for _, w := range f.ws {
			if !e.Get(w.ID).Status.Terminal() {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d withdrawals never settled", open)
		}
		if err := mo.Handle(e.Ctx, f.mon); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// balance is what addr holds of asset.
func balance(t *testing.T, e *pipelinetest.Env, asset string, addr common.Address) *big.Int {
	t.Helper()
	var (
		b   *big.Int
		err error
	)
	if asset == "POL" {
		b, err = e.Client.BalanceAt(e.Ctx, addr)
	} else {
		b, err = e.Client.TokenBalance(e.Ctx, e.Contracts.USDT, addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two clients cancel their payments out of a batch of four before it mines (the pool's floor rose above
// its tip, so it waits): recovery replaces the batch at its nonce by one paying the other two (the second
// cancel builds on the first's replacement), with a bump to the floor. The replacement mines: the two
// canceled withdrawals end CANCELED and their recipients hold nothing, the two others are paid exactly
// once, and the wallet's nonce moved by one. Native (Multicall3) and token (BatchTransfer) batches.
func TestCancelItemOfBatchReplacementWins(t *testing.T) {
	for _, asset := range []string{"POL", "USDT"} {
		t.Run(asset, func(t *testing.T) {
			e := pipelinetest.New(t, pipelinetest.Options{})
			f := sendBatchPaused(t, e, asset, 4)
			floor := new(big.Int).Mul(f.st.MaxPriorityFee, big.NewInt(3))
			if err := e.Chain.SetMinTip(e.Ctx, floor); err != nil {
				t.Fatal(err)
			}
			nonceBefore, err := e.Client.NonceAt(e.Ctx, e.Hot.Address)
			if err != nil {
				t.Fatal(err)
			}
			ch := e.Config
			ch.Recovery.StuckAfterBlocks = 1000
			rs := newService(e, ch, alert.Nop{})
			requestItemCancel(t, e, f, 1)
			requestItemCancel(t, e, f, 3)
			got, err := rs.PerformActions(e.Ctx, "local")
			if err != nil || got.Done != 2 {
				t.Fatalf("actions %+v err %v, want both cancels done", got, err)
			}
			// Asked again: the same requests, nothing new signed.
			requestItemCancel(t, e, f, 1)
			n := len(attemptKinds(t, e, f.st.ID))
			if got, err := rs.PerformActions(e.Ctx, "local"); err != nil || got.Done != 0 || len(attemptKinds(t, e, f.st.ID)) != n {
				t.Fatalf("second round %+v err %v, %d attempts (was %d)", got, err, len(attemptKinds(t, e, f.st.ID)), n)
			}
			cur, err := e.Store.GetSentTx(e.Ctx, f.st.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Nonce != f.st.Nonce || cur.MaxPriorityFee.Cmp(floor) < 0 {
				t.Fatalf("replacement nonce %d tip %s, want nonce %d and tip ≥ %s", cur.Nonce, cur.MaxPriorityFee, f.st.Nonce, floor)
			}
			drops, err := e.Store.AttemptDrops(e.Ctx, e.Store.DB, cur.Hash)
			if err != nil || len(drops) != 2 || !drops[f.ws[1].ID] || !drops[f.ws[3].ID] {
				t.Fatalf("current attempt leaves out %v (%v), want items 1 and 3", drops, err)
			}
			settleBatch(t, e, f)
			for i, w := range f.ws {
				got := e.Get(w.ID)
				want, pay := store.Confirmed, big.NewInt(amountOf(asset, i))
				if i == 1 || i == 3 {
					want, pay = store.Canceled, new(big.Int)
				}
				if got.Status != want {
					t.Fatalf("withdrawal %d: %s, want %s", i, got.Status, want)
				}
				if b := balance(t, e, asset, f.to[i]); b.Cmp(pay) != 0 {
					t.Fatalf("recipient %d holds %s, want %s", i, b, pay)
				}
				if want == store.Canceled {
					hs, _ := e.Store.History(e.Ctx, w.ID)
					if last := hs[len(hs)-1]; !strings.Contains(last.Reason, "canceled out of batch") {
						t.Fatalf("withdrawal %d: last history %q", i, last.Reason)
					}
				}
			}
			if after, err := e.Client.NonceAt(e.Ctx, e.Hot.Address); err != nil || after != nonceBefore+1 {
				t.Fatalf("wallet nonce %d (%v), want %d: one of the attempts mined", after, err, nonceBefore+1)
			}
			ks := attemptKinds(t, e, f.st.ID)
			if ks[0] != "payment replaced" || ks[len(ks)-1] != "payment mined" {
				t.Fatalf("attempts %v: want the first batch replaced and the last replacement mined", ks)
			}
		})
	}
}

// The old batch mines before the replacement can: every payment stands, paid once, and the withdrawal
// whose cancel lost says so in its history.
func TestCancelItemOfBatchOldBatchWins(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendBatchPaused(t, e, "POL", 3)
	e.Chain.Commit() // mines the batch; the monitor has not looked yet
	rs := newService(e, e.Config, alert.Nop{})
	requestItemCancel(t, e, f, 0)
	if got, err := rs.PerformActions(e.Ctx, "local"); err != nil || got.Done+got.Waiting != 1 {
		t.Fatalf("actions %+v err %v", got, err)
	}
	settleBatch(t, e, f)
	for i, w := range f.ws {
		got := e.Get(w.ID)
		if got.Status != store.Confirmed {
			t.Fatalf("withdrawal %d: %s, want CONFIRMED", i, got.Status)
		}
		if b := balance(t, e, "POL", f.to[i]); b.Cmp(big.NewInt(paid+int64(i))) != 0 {
			t.Fatalf("recipient %d holds %s, want one payment", i, b)
		}
	}
	hs, _ := e.Store.History(e.Ctx, f.ws[0].ID)
	if last := hs[len(hs)-1]; !strings.Contains(last.Reason, "cancel requested lost the race") {
		t.Fatalf("history of the canceled item ends %q, want the lost race named", last.Reason)
	}
	hs, _ = e.Store.History(e.Ctx, f.ws[1].ID)
	if last := hs[len(hs)-1]; strings.Contains(last.Reason, "cancel") {
		t.Fatalf("an item nobody canceled: %q", last.Reason)
	}
	ks := attemptKinds(t, e, f.st.ID)
	if ks[0] != "payment mined" {
		t.Fatalf("attempts %v: want the first batch mined", ks)
	}
}

// Every item of a batch canceled: the last cancel replaces what is left by the plain cancel, a
// zero-value self-transfer, and nobody is paid.
func TestCancelEveryItemOfBatch(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendBatchPaused(t, e, "POL", 3)
	floor := new(big.Int).Mul(f.st.MaxPriorityFee, big.NewInt(3))
	if err := e.Chain.SetMinTip(e.Ctx, floor); err != nil {
		t.Fatal(err)
	}
	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 1000
	rs := newService(e, ch, alert.Nop{})
	for i := range f.ws {
		requestItemCancel(t, e, f, i)
	}
	if got, err := rs.PerformActions(e.Ctx, "local"); err != nil || got.Done != 3 {
		t.Fatalf("actions %+v err %v", got, err)
	}
	settleBatch(t, e, f)
	for i, w := range f.ws {
		if got := e.Get(w.ID); got.Status != store.Canceled {
			t.Fatalf("withdrawal %d: %s, want CANCELED", i, got.Status)
		}
		if b := balance(t, e, "POL", f.to[i]); b.Sign() != 0 {
			t.Fatalf("recipient %d holds %s", i, b)
		}
	}
	ks := attemptKinds(t, e, f.st.ID)
	if ks[len(ks)-1] != "cancel mined" {
		t.Fatalf("attempts %v: want the plain cancel mined", ks)
	}
}
