package recovery_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/monitor"
	"github.com/sluice-custody/sluice/recovery"
)

// reorgEnv is a pipeline whose dev chain seals only when the test says, so that the test chooses where
// a transaction is mined and which branch is canonical.
type reorgEnv struct {
	*pipelinetest.Env
	to common.Address
}

func newReorgEnv(t *testing.T, confirmations uint64) *reorgEnv {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: confirmations})
	e.Chain.SealEvery(time.Hour)
	return &reorgEnv{Env: e, to: testenv.NewAccount(t).Address}
}

// send signs and broadcasts a USDT withdrawal of amount and mines it in the next block; it returns the
// withdrawal, its tx-monitor message and the header of the block it was mined in.
func (e *reorgEnv) send(amount int64) (*store.Withdrawal, queue.Message, *types.Header) {
	t := e.T
	t.Helper()
	w := e.Withdraw("USDT", e.to, amount)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	m := e.One(queue.TxMonitor)
	e.Chain.Commit()
	st, err := e.Store.GetSentTx(e.Ctx, *e.Get(w.ID).SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Client.TransactionReceipt(e.Ctx, common.HexToHash(st.Hash))
	if err != nil {
		t.Fatalf("not mined by the commit: %v", err)
	}
	h, err := e.Client.HeaderByNumber(e.Ctx, r.BlockNumber)
	if err != nil || h.Hash() != r.BlockHash {
		t.Fatalf("header of block %d: %v", r.BlockNumber, err)
	}
	return w, m, h
}

func (e *reorgEnv) commit(n int) {
	for range n {
		e.Chain.Commit()
	}
}

// fork makes the parent of block `of` the head: `of` and every block above it leave the canonical
// chain, their transactions go back to the pool.
func (e *reorgEnv) fork(of *types.Header) {
	e.T.Helper()
	if err := e.Chain.Fork(of.ParentHash); err != nil {
		e.T.Fatal(err)
	}
}

// settle runs the monitor on m until the withdrawal leaves BROADCASTED, sealing a block between looks.
func (e *reorgEnv) settle(mo *monitor.Monitor, m queue.Message, id string) *store.Withdrawal {
	e.T.Helper()
	for range 20 {
		if err := mo.Handle(e.Ctx, m); err != nil {
			e.T.Fatal(err)
		}
		if w := e.Get(id); w.Status != store.Broadcasted {
			return w
		}
		e.Chain.Commit()
	}
	e.T.Fatalf("withdrawal %s still BROADCASTED after 20 blocks", id)
	return nil
}

// checkPaidOnceOnCanonical checks that the withdrawal's transaction is recorded CONFIRMED in the block
// that is canonical at its height now, and that the recipient holds amount: paid once.
func (e *reorgEnv) checkPaidOnceOnCanonical(w *store.Withdrawal, amount int64) *store.SentTx {
	t := e.T
	t.Helper()
	st, err := e.Store.GetSentTx(e.Ctx, *w.SentTxID)
	if err != nil || st.Status != store.TxConfirmed || st.BlockNumber == nil {
		t.Fatalf("sent tx %+v (%v): want CONFIRMED", st, err)
	}
	h, err := e.Client.HeaderByNumber(e.Ctx, new(big.Int).SetUint64(*st.BlockNumber))
	if err != nil || !strings.EqualFold(h.Hash().Hex(), st.BlockHash) {
		t.Fatalf("recorded block %d %s, canonical %v (%v)", *st.BlockNumber, st.BlockHash, h.Hash(), err)
	}
	if w.BlockNumber == nil || *w.BlockNumber != *st.BlockNumber {
		t.Fatalf("withdrawal block %v, sent tx block %d", w.BlockNumber, *st.BlockNumber)
	}
	bal, err := contracts.TokenBalance(e.Ctx, e.Client, e.Contracts.USDT, e.to)
	if err != nil || bal.Int64() != amount {
		t.Fatalf("recipient holds %v (%v), want %d: paid once", bal, err, amount)
	}
	return st
}

// recordingChain is the node, with the hashes recovery sends recorded.
type recordingChain struct {
	recovery.Chain
	sent []common.Hash
}

func (c *recordingChain) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	c.sent = append(c.sent, tx.Hash())
	return c.Chain.SendTransaction(ctx, tx)
}

func transitionsTo(t *testing.T, e *reorgEnv, id string, to store.Status) []store.HistoryEntry {
	t.Helper()
	hs, err := e.Store.History(e.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.HistoryEntry
	for _, h := range hs {
		if h.To == to {
			out = append(out, h)
		}
	}
	return out
}

// A reorg below the depth is the monitor's: the receipt's block leaves the chain before the depth, the
// node re-mines the transaction on the new branch, and the withdrawal is CONFIRMED once, there.
func TestReorgBelowDepth(t *testing.T) {
	e := newReorgEnv(t, 3)
	mo := e.Monitor()
	w, m, old := e.send(1_000_000)
	if err := mo.Handle(e.Ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(w.ID); got.Status != store.Broadcasted {
		t.Fatalf("status %s one block deep", got.Status)
	}
	e.commit(1) // two deep: still below the 3 confirmations
	e.fork(old)
	got := e.settle(mo, m, w.ID)
	if got.Status != store.Confirmed {
		t.Fatalf("status %s, want CONFIRMED", got.Status)
	}
	st := e.checkPaidOnceOnCanonical(got, 1_000_000)
	if strings.EqualFold(st.BlockHash, old.Hash().Hex()) {
		t.Fatalf("confirmed in the reorged-out block %s", old.Hash())
	}
	if c := transitionsTo(t, e, w.ID, store.Confirmed); len(c) != 1 {
		t.Fatalf("%d transitions to CONFIRMED, want 1", len(c))
	}
}

// A reorg beyond the depth takes back a CONFIRMED transaction: the reorg watch re-opens it (history
// `reorged`, BROADCASTED), resends it and hands it to the monitor, which confirms it again at depth on
// the new branch; the critical deep_reorg alert fires, is not fired twice, and is resolved then. A
// second instance's sweep of the same reorg changes nothing. Paid once throughout.
func TestReorgBeyondDepth(t *testing.T) {
	e := newReorgEnv(t, 3)
	hub, err := alert.New(alert.Deps{Book: e.Store}, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := e.Config // reorg_watch_blocks: 6 by default (2 × 3)
	rec := &recordingChain{Chain: e.Client}
	rs, err := recovery.New(recovery.Deps{Store: e.Store, Queue: e.Queue, Keys: e.Keys, Leases: e.Nonces, Alerts: hub,
		Chains: map[string]recovery.ChainDeps{"local": {Config: ch, Client: rec}}}, e.Log, recovery.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	other := newService(e.Env, ch, hub)
	mo := e.Monitor()
	w, m, old := e.send(2_000_000)
	e.commit(2)
	if got := e.settle(mo, m, w.ID); got.Status != store.Confirmed {
		t.Fatalf("status %s, want CONFIRMED at depth", got.Status)
	}
	before, err := e.Store.GetSentTx(e.Ctx, *e.Get(w.ID).SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	e.commit(2) // five deep: past the depth, inside the watch
	if sw, err := rs.WatchReorgs(e.Ctx, "local"); err != nil || sw.Watched != 1 || sw.Reorged != 0 {
		t.Fatalf("watch before the reorg: %+v (%v), want it watched and left alone", sw, err)
	}

	e.fork(old)
	e.commit(1) // the new branch reaches the old block's height
	sw, err := rs.WatchReorgs(e.Ctx, "local")
	if err != nil || sw.Reorged != 1 {
		t.Fatalf("watch after the reorg: %+v (%v), want one re-opened", sw, err)
	}
	if sw, err := other.WatchReorgs(e.Ctx, "local"); err != nil || sw.Reorged != 0 {
		t.Fatalf("second instance: %+v (%v), want nothing more re-opened", sw, err)
	}
	got := e.Get(w.ID)
	if got.Status != store.Broadcasted || got.BlockNumber != nil {
		t.Fatalf("after the reorg: %s block %v, want BROADCASTED without a block", got.Status, got.BlockNumber)
	}
	back := transitionsTo(t, e, w.ID, store.Broadcasted)
	if last := back[len(back)-1]; last.From != store.Confirmed || !strings.HasPrefix(last.Reason, "reorged") || last.Actor != store.ActorRecovery {
		t.Fatalf("last transition %+v, want CONFIRMED→BROADCASTED reorged by recovery", last)
	}
	open, err := e.Store.OpenAlerts(e.Ctx, recovery.AlertDeepReorg)
	if err != nil || len(open) != 1 || open[0].Severity != string(alert.Critical) || !strings.Contains(open[0].Key, "local") {
		t.Fatalf("open deep_reorg alerts %+v (%v), want one critical", open, err)
	}
	// The monitor is asked again, through the queue.
	var again *queue.Message
	for _, qm := range e.Receive(queue.TxMonitor) {
		_, p, err := queue.Decode[queue.TxBroadcasted](qm.Body, queue.TypeTxBroadcasted)
		if err == nil && p.SentTxID == *got.SentTxID {
			again = &qm
		}
	}
	if again == nil {
		t.Fatal("no tx-monitor message for the re-opened transaction")
	}
	// The sweep resent the recorded bytes (or the node had them back already): the same transaction is
	// mined on the new branch.
	st, err := e.Store.GetSentTx(e.Ctx, *got.SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.sent) != 1 || rec.sent[0] != common.HexToHash(st.Hash) || st.Hash != before.Hash || !bytes.Equal(st.Raw, before.Raw) {
		t.Fatalf("resent %v, want the recorded tx %s once", rec.sent, st.Hash)
	}
	if _, err := e.Client.TransactionReceipt(e.Ctx, common.HexToHash(st.Hash)); err != nil {
		e.commit(1)
	}
	if sw, err := rs.WatchReorgs(e.Ctx, "local"); err != nil || sw.Resolved != 0 {
		t.Fatalf("watch before re-confirmation: %+v (%v), want the alert still open", sw, err)
	}
	got = e.settle(mo, *again, w.ID)
	if got.Status != store.Confirmed {
		t.Fatalf("status %s, want CONFIRMED again", got.Status)
	}
	st2 := e.checkPaidOnceOnCanonical(got, 2_000_000)
	if st2.Hash != st.Hash || strings.EqualFold(st2.BlockHash, old.Hash().Hex()) {
		t.Fatalf("re-confirmed tx %s in %s; want the same tx %s, not in the old block", st2.Hash, st2.BlockHash, st.Hash)
	}
	if c := transitionsTo(t, e, w.ID, store.Confirmed); len(c) != 2 {
		t.Fatalf("%d transitions to CONFIRMED, want 2 (before and after the reorg)", len(c))
	}
	if sw, err := rs.WatchReorgs(e.Ctx, "local"); err != nil || sw.Resolved != 1 || sw.Reorged != 0 {
		t.Fatalf("watch after re-confirmation: %+v (%v), want the alert resolved", sw, err)
	}
	if open, err := e.Store.OpenAlerts(e.Ctx, recovery.AlertDeepReorg); err != nil || len(open) != 0 {
		t.Fatalf("open deep_reorg alerts %+v (%v), want none", open, err)
	}
	var fired int
	if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT COUNT(*) FROM alerts WHERE kind = ? AND severity = ? AND resolved_at IS NOT NULL`,
		recovery.AlertDeepReorg, string(alert.Critical)).Scan(&fired); err != nil || fired != 1 {
		t.Fatalf("%d resolved critical deep_reorg alerts (%v), want 1", fired, err)
	}
	// Out of the watch window, nothing is checked any more.
	e.commit(int(ch.Recovery.ReorgWatchBlocks) + 1)
	if sw, err := rs.WatchReorgs(e.Ctx, "local"); err != nil || sw.Watched != 0 {
		t.Fatalf("watch past the window: %+v (%v), want nothing watched", sw, err)
	}
}

// With finality: finalized, a transaction at depth waits for the node's finalized block. The dev
// chain finalizes every 32nd block (go-ethereum's simulated beacon), so a transaction mined just after
// one is at depth long before it is final.
func TestFinalityFinalized(t *testing.T) {
	e := newReorgEnv(t, 2)
	e.Config.Finality = "finalized"
	mo := e.Monitor()
	head, err := e.Client.BlockNumber(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.commit(int((32 - head%32) % 32)) // head on an epoch boundary: the next block is the first after it
	w, m, mined := e.send(3_000_000)
	n := mined.Number.Uint64()
	if n%32 != 1 {
		t.Fatalf("mined in block %d, want the first after an epoch boundary", n)
	}
	e.commit(5) // well past the 2 confirmations
	for range 3 {
		if err := mo.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	fin, err := e.Client.HeaderByNumber(e.Ctx, big.NewInt(-3)) // rpc.FinalizedBlockNumber
	if err != nil || fin.Number.Uint64() >= n {
		t.Fatalf("finalized %v (%v): want it below block %d here", fin, err, n)
	}
	if got := e.Get(w.ID); got.Status != store.Broadcasted {
		t.Fatalf("status %s at depth with finalized block %d < %d, want BROADCASTED", got.Status, fin.Number, n)
	}
	e.commit(int(32 - (n+5)%32)) // to the next epoch boundary: finalized passes the block
	if got := e.settle(mo, m, w.ID); got.Status != store.Confirmed {
		t.Fatalf("status %s, want CONFIRMED once finalized", got.Status)
	}
	fin, err = e.Client.HeaderByNumber(e.Ctx, big.NewInt(-3))
	if err != nil || fin.Number.Uint64() < n {
		t.Fatalf("finalized %v (%v) at confirmation, want at or past %d", fin, err, n)
	}
	e.checkPaidOnceOnCanonical(e.Get(w.ID), 3_000_000)
}

// doubtfulChain is the node, with its head and header answers overridden.
type doubtfulChain struct {
	recovery.Chain
	head      uint64 // when non-zero
	headerErr error
	headers   int
}

func (c *doubtfulChain) BlockNumber(ctx context.Context) (uint64, error) {
	if c.head != 0 {
		return c.head, nil
	}
	return c.Chain.BlockNumber(ctx)
}

func (c *doubtfulChain) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	c.headers++
	if c.headerErr != nil {
		return nil, c.headerErr
	}
	return c.Chain.HeaderByNumber(ctx, n)
}

// The watch re-opens nothing on doubt: a node whose head is behind the receipt's block (another
// endpoint gave the receipt) is not asked for the block, and a failing header lookup is an error of the
// sweep, not a reorg.
func TestReorgWatchNeverReopensOnDoubt(t *testing.T) {
	e := newReorgEnv(t, 2)
	w, m, mined := e.send(1_000)
	e.commit(1)
	if got := e.settle(e.Monitor(), m, w.ID); got.Status != store.Confirmed {
		t.Fatalf("status %s, want CONFIRMED", got.Status)
	}
	for _, c := range []struct {
		name    string
		chain   *doubtfulChain
		wantErr bool
		headers int
	}{
		{name: "node behind the receipt's block", chain: &doubtfulChain{head: mined.Number.Uint64() - 1}},
		{name: "header lookup fails", chain: &doubtfulChain{headerErr: errors.New("connection refused")}, wantErr: true, headers: 1},
	} {
		c.chain.Chain = e.Client
		rs, err := recovery.New(recovery.Deps{Store: e.Store, Queue: e.Queue, Keys: e.Keys, Leases: e.Nonces, Alerts: alert.Nop{},
			Chains: map[string]recovery.ChainDeps{"local": {Config: e.Config, Client: c.chain}}}, e.Log, recovery.NopMetrics())
		if err != nil {
			t.Fatal(err)
		}
		sw, err := rs.WatchReorgs(e.Ctx, "local")
		if (err != nil) != c.wantErr || sw.Reorged != 0 || c.chain.headers != c.headers {
			t.Fatalf("%s: %+v (%v), %d header lookups; want error %v, nothing re-opened, %d lookups", c.name, sw, err, c.chain.headers, c.wantErr, c.headers)
		}
		if got := e.Get(w.ID); got.Status != store.Confirmed {
			t.Fatalf("%s: status %s, want still CONFIRMED", c.name, got.Status)
		}
	}
}
