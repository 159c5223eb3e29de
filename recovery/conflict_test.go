package recovery_test

import (
	"context"
	"database/sql"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/recovery"
)

// foreignAtOurNonce signs and sends, with the hot wallet's own key but outside Sluice, a transfer that
// takes the next nonce (the one our recorded, not yet broadcast, transaction holds), and waits for it.
func foreignAtOurNonce(t *testing.T, e *drainEnv) (hash string, block uint64) {
	t.Helper()
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	rcpt, err := contracts.Transact(e.Ctx, eth, e.Hot.Key, e.Chain.ChainID, testenv.NewAccount(t).Address, big.NewInt(1), nil, 21000)
	if err != nil {
		t.Fatal(err)
	}
	return rcpt.TxHash.Hex(), rcpt.BlockNumber.Uint64()
}

func (e *drainEnv) waitHead(n uint64) {
	e.T.Helper()
	for {
		h, err := e.Client.BlockNumber(e.Ctx)
		if err == nil && h >= n {
			return
		}
		if e.Ctx.Err() != nil {
			e.T.Fatalf("head never reached %d", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *drainEnv) sentStatus(id int64) string {
	e.T.Helper()
	st, err := e.Store.GetSentTx(e.Ctx, id)
	if err != nil {
		e.T.Fatal(err)
	}
	return st.Status
}

func (e *drainEnv) lastHistory(id string) store.HistoryEntry {
	e.T.Helper()
	h, err := e.Store.History(e.Ctx, id)
	if err != nil || len(h) == 0 {
		e.T.Fatalf("history of %s: %v", id, err)
	}
	return h[len(h)-1]
}

// The hot key is used outside Sluice: a foreign transfer takes the nonce our recorded withdrawal holds.
// The broadcaster's nonce_conflict reaches the DLQ; nothing moves until the foreign transaction is at
// the confirmation depth; then the withdrawal goes back to PENDING, our transaction is CONFLICTED, a
// critical alert names the foreign hash and the wallet is frozen; the signer (single and batch paths)
// leaves the withdrawal PENDING until an operator unfreezes the wallet; then it is signed at a new
// nonce and the recipient is paid exactly once.
func TestForeignTransactionAtOurNonce(t *testing.T) {
	e := newDrainEnv(t, pipelinetest.Options{Confirmations: 3}, nil)
	to := testenv.NewAccount(t).Address
	const amount = 1e15
	w := e.Withdraw("POL", to, amount)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	signedW := e.Get(w.ID)
	if signedW.Nonce == nil || *signedW.Nonce != 0 {
		t.Fatalf("signed at nonce %v, want 0", signedW.Nonce)
	}
	sentID := *signedW.SentTxID
	sm := e.One(queue.SignedTx)

	foreign, block := foreignAtOurNonce(t, e)
	berr := e.Broadcaster().Handle(e.Ctx, sm)
	if txerr.CodeOf(berr) != "nonce_conflict" {
		t.Fatalf("broadcast: %v, want nonce_conflict", berr)
	}
	dm := e.deadLetter(queue.SignedTx, sm, berr)

	// Not final yet (a chain asking for 1000 confirmations): nothing moves, the message waits.
	strictCfg := e.Config
	strictCfg.Confirmations = 1000
	strict, err := recovery.NewConflictResolver(recovery.ConflictDeps{Store: e.Store, Queue: e.Queue, Alerts: e.alerts,
		Chains: map[string]recovery.ConflictChainDeps{"local": {Config: strictCfg, Client: e.Client}}}, e.Log, recovery.NopConflictMetrics())
	if err != nil {
		t.Fatal(err)
	}
	strictDrain, err := recovery.NewDrainer(recovery.DrainDeps{Store: e.Store, Queue: e.Queue, Alerts: e.alerts, Conflicts: strict},
		e.Log, recovery.NopDLQMetrics())
	if err != nil {
		t.Fatal(err)
	}
	if err := strictDrain.Handle(e.Ctx, queue.SignedTxDLQ, dm); !errors.Is(err, recovery.ErrNotDue) {
		t.Fatalf("before depth: %v, want ErrNotDue", err)
	}
	if got := e.Get(w.ID).Status; got != store.Signed || e.sentStatus(sentID) != store.TxSigned || len(e.alerts.kind("nonce_conflict")) != 0 {
		t.Fatalf("before depth: withdrawal %s, sent tx %s, alerts %d: want nothing changed", got, e.sentStatus(sentID), len(e.alerts.kind("nonce_conflict")))
	}

	// At depth: applied.
	e.waitHead(block + 2)
	if err := e.handle(queue.SignedTxDLQ, dm); err != nil {
		t.Fatal(err)
	}
	if a := e.finished(queue.SignedTxDLQ, dm); a != recovery.ActionConflict {
		t.Fatalf("decision %q, want conflict", a)
	}
	got := e.Get(w.ID)
	if got.Status != store.Pending || got.SentTxID != nil {
		t.Fatalf("withdrawal %s sent tx %v, want PENDING and detached", got.Status, got.SentTxID)
	}
	if h := e.lastHistory(w.ID); !strings.Contains(h.Reason, foreign) || h.Actor != store.ActorRecovery {
		t.Fatalf("history %+v, want the foreign hash %s", h, foreign)
	}
	if s := e.sentStatus(sentID); s != store.TxConflicted {
		t.Fatalf("sent tx %s, want CONFLICTED", s)
	}
	as := e.alerts.kind("nonce_conflict")
	if len(as) != 1 || as[0].Severity != alert.Critical || as[0].Details["foreign_tx_hash"] != foreign || !strings.Contains(as[0].Summary, "outside Sluice") {
		t.Fatalf("alerts %+v", as)
	}
	fz, err := e.Store.WalletFreeze(e.Ctx, e.Store.DB, "local", e.Hot.Address.Hex())
	if err != nil || fz == nil || !strings.Contains(fz.Reason, foreign) {
		t.Fatalf("freeze %+v (%v), want the wallet frozen naming %s", fz, err, foreign)
	}
	// The sweep finds nothing more to do, and the DLQ message delivered again changes nothing.
	if n, err := e.conflicts.Once(e.Ctx); err != nil || n != 0 {
		t.Fatalf("sweep applied %d (%v), want 0", n, err)
	}
	if err := e.handle(queue.SignedTxDLQ, dm); err != nil || len(e.alerts.kind("nonce_conflict")) != 1 {
		t.Fatalf("redelivery: %v, %d alerts", err, len(e.alerts.kind("nonce_conflict")))
	}

	// Frozen: the single path and the batcher leave it PENDING, with the reason, and sign nothing.
	req := e.One(queue.TxRequest)
	s := e.Signer()
	if err := s.Handle(e.Ctx, req); err != nil {
		t.Fatal(err)
	}
	if n, err := s.BatchOnce(e.Ctx); err != nil || n != 0 {
		t.Fatalf("batcher moved %d (%v) on a frozen wallet", n, err)
	}
	if got := e.Get(w.ID); got.Status != store.Pending || e.CountSent() != 1 {
		t.Fatalf("frozen: withdrawal %s, %d sent txs; want PENDING, 1", got.Status, e.CountSent())
	}
	if h := e.lastHistory(w.ID); !strings.Contains(h.Reason, "frozen") || h.To != store.Pending {
		t.Fatalf("history %+v, want the freeze as the reason", h)
	}

	// Unfrozen by an operator: signed at a new nonce, mined, paid once.
	if err := e.Store.UnfreezeWallet(e.Ctx, "local", e.Hot.Address.Hex(), "ops@example", "key rotated"); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.UnfreezeWallet(e.Ctx, "local", e.Hot.Address.Hex(), "ops@example", "again"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second unfreeze: %v, want ErrNotFound", err)
	}
	body, err := queue.NewEnvelope(context.Background(), queue.TypeWithdrawalRequested, queue.NewID(), w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error { return e.Queue.SendTx(e.Ctx, tx, queue.TxRequest, body, queue.SendOptions{}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	resigned := e.Get(w.ID)
	if resigned.Status != store.Signed || resigned.Nonce == nil || *resigned.Nonce != 1 || *resigned.SentTxID == sentID {
		t.Fatalf("after unfreeze: %s nonce %v, want SIGNED at nonce 1 in a new tx", resigned.Status, resigned.Nonce)
	}
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	mm := e.One(queue.TxMonitor)
	mon := e.Monitor()
	for e.Get(w.ID).Status != store.Confirmed {
		if err := mon.Handle(e.Ctx, mm); err != nil {
			t.Fatal(err)
		}
		if e.Ctx.Err() != nil {
			t.Fatal("never confirmed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	bal, err := e.Client.BalanceAt(e.Ctx, to)
	if err != nil || bal.Cmp(big.NewInt(amount)) != 0 {
		t.Fatalf("recipient holds %v (%v), want exactly %d: paid once", bal, err, int64(amount))
	}
	// The conflicted attempt can never be mined: its nonce is the foreign one's.
	if n, err := e.Client.NonceAt(e.Ctx, e.Hot.Address); err != nil || n != 2 {
		t.Fatalf("hot wallet nonce %d (%v), want 2 (foreign + ours)", n, err)
	}
}

// Found by the sweep (the chain's mined nonce passed a broadcast tx of ours, none of whose attempts was
// mined) on a chain that does not freeze: withdrawals return to PENDING, the alert fires, the wallet
// stays usable and the withdrawal is signed again at once.
func TestConflictSweepWithoutFreeze(t *testing.T) {
	off := false
	e := newDrainEnv(t, pipelinetest.Options{Confirmations: 2}, &off)
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	sentID := *e.Get(w.ID).SentTxID
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	// Mark it broadcast as if the node had taken it and then lost it to the foreign one.
	if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error {
		return e.Store.SetSentTxStatus(e.Ctx, tx, sentID, store.TxSigned, store.TxBroadcasted)
	}); err != nil {
		t.Fatal(err)
	}
	foreign, block := foreignAtOurNonce(t, e)
	e.waitHead(block + 1)
	if n, err := e.conflicts.Once(e.Ctx); err != nil || n != 1 {
		t.Fatalf("sweep applied %d (%v), want 1", n, err)
	}
	if got := e.Get(w.ID); got.Status != store.Pending {
		t.Fatalf("withdrawal %s", got.Status)
	}
	if as := e.alerts.kind("nonce_conflict"); len(as) != 1 || as[0].Details["foreign_tx_hash"] != foreign {
		t.Fatalf("alerts %+v", as)
	}
	if fz, err := e.Store.WalletFreeze(e.Ctx, e.Store.DB, "local", e.Hot.Address.Hex()); err != nil || fz != nil {
		t.Fatalf("freeze %+v (%v), want none (freeze_on_conflict: false)", fz, err)
	}
	ds, err := e.Store.Decisions(e.Ctx, "", "sweep")
	if err != nil || len(ds) != 1 || ds[0].Action != recovery.ActionConflict || *ds[0].SentTxID != sentID {
		t.Fatalf("decisions %+v (%v)", ds, err)
	}
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	again := e.Get(w.ID)
	if again.Status != store.Signed || *again.Nonce != 1 {
		t.Fatalf("re-signed %s at %v, want SIGNED at nonce 1", again.Status, again.Nonce)
	}
	// Ours, mined and not yet settled: the sweep leaves it to the monitor.
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	e.WaitMinedNonce(2)
	if n, err := e.conflicts.Once(e.Ctx); err != nil || n != 0 {
		t.Fatalf("sweep applied %d (%v) over our own mined tx", n, err)
	}
	if s := e.sentStatus(*again.SentTxID); s != store.TxBroadcasted {
		t.Fatalf("our mined tx %s, want left BROADCASTED for the monitor", s)
	}
}

// The client had asked for a cancel when a foreign transaction took the nonce: nothing of ours can mine
// there, so nothing was paid, and the cancel stands: CANCELED, not signed again.
func TestConflictKeepsARequestedCancel(t *testing.T) {
	off := false
	e := newDrainEnv(t, pipelinetest.Options{Confirmations: 2}, &off)
	to := testenv.NewAccount(t).Address
	w := e.Withdraw("POL", to, 1e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	sentID := *e.Get(w.ID).SentTxID
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error {
		return e.Store.SetSentTxStatus(e.Ctx, tx, sentID, store.TxSigned, store.TxBroadcasted)
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Store.RequestTxAction(e.Ctx, store.TxAction{WithdrawalID: w.ID, SentTxID: sentID, Chain: "local",
		Kind: store.ActionCancel}, store.ReasonCancelRequested, store.Signed, store.ActorAPI); err != nil {
		t.Fatal(err)
	}
	foreign, block := foreignAtOurNonce(t, e)
	e.waitHead(block + 1)
	if n, err := e.conflicts.Once(e.Ctx); err != nil || n != 1 {
		t.Fatalf("sweep applied %d (%v), want 1", n, err)
	}
	got := e.Get(w.ID)
	if got.Status != store.Canceled {
		t.Fatalf("withdrawal %s, want CANCELED", got.Status)
	}
	if h := e.lastHistory(w.ID); !strings.Contains(h.Reason, foreign) || !strings.Contains(h.Reason, "the cancel requested stands") {
		t.Fatalf("history %q", h.Reason)
	}
	if ms := e.Receive(queue.TxRequest); len(ms) != 0 {
		t.Fatalf("%d tx-requests queued: a canceled withdrawal must not be signed again", len(ms))
	}
	if bal, err := e.Client.BalanceAt(e.Ctx, to); err != nil || bal.Sign() != 0 {
		t.Fatalf("recipient holds %v (%v)", bal, err)
	}
}
