package recovery_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/recovery"
)

// A transaction that reverted (the token refused the recipient) is settled FAILED at depth; then a reorg
// deeper than that takes its branch away, and on the new branch the recipient is not blocked, so the
// same signed transaction mines successfully: it paid, although Sluice recorded it as paying nothing
// (a reverted batch would have given its withdrawals back to be signed again). The reorg watch follows
// reverted transactions too: it finds it mined successfully, records its new block, notes "possibly
// paid twice" in each withdrawal's history and raises a critical reverted_remined alert naming them;
// a second sweep changes nothing.
func TestRevertedTransactionRemined(t *testing.T) {
	e := newReorgEnv(t, 2)
	al := &recAlerts{}
	rs := newService(e.Env, e.Config, al)
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()

	const amount = 3_000_000
	w := e.Withdraw("USDT", e.to, amount)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil { // signed while the recipient may be paid
		t.Fatal(err)
	}
	signed := e.One(queue.SignedTx)
	parent, err := e.Client.HeaderByNumber(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	funderNonce, err := e.Client.NonceAt(e.Ctx, e.Funder.Address)
	if err != nil {
		t.Fatal(err)
	}
	// Branch A: the token blocks the recipient, then our transfer mines and reverts.
	e.Chain.SealEvery(50 * time.Millisecond)
	e.BlockToken(e.to)
	e.Chain.SealEvery(time.Hour)
	if err := e.Broadcaster().Handle(e.Ctx, signed); err != nil {
		t.Fatal(err)
	}
	m := e.One(queue.TxMonitor)
	e.commit(1)
	st, err := e.Store.GetSentTx(e.Ctx, *e.Get(w.ID).SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Client.TransactionReceipt(e.Ctx, common.HexToHash(st.Hash))
	if err != nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("receipt on branch A %+v (%v), want reverted", r, err)
	}
	if got := e.settle(e.Monitor(), m, w.ID); got.Status != store.Failed {
		t.Fatalf("status %s, want FAILED", got.Status)
	}
	if sw, err := rs.WatchReorgs(e.Ctx, "local"); err != nil || sw.Remined != 0 || sw.Watched == 0 {
		t.Fatalf("sweep before the reorg %+v (%v): want the reverted transaction watched, nothing found", sw, err)
	}

	// Branch B, from before the block: the funder's blocking call is replaced in the pool by a transfer
	// to itself, so only our transfer, now payable, takes effect.
	if err := e.Chain.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	tip := big.NewInt(50e9)
	noop, err := types.SignNewTx(e.Funder.Key, types.LatestSignerForChainID(e.Chain.ChainID), &types.DynamicFeeTx{
		ChainID: e.Chain.ChainID, Nonce: funderNonce, GasTipCap: tip, GasFeeCap: new(big.Int).Mul(tip, big.NewInt(4)),
		Gas: 21000, To: &e.Funder.Address, Value: new(big.Int)})
	if err != nil {
		t.Fatal(err)
	}
	if err := eth.SendTransaction(e.Ctx, noop); err != nil {
		t.Fatalf("replace the blocking call: %v", err)
	}
	e.commit(int(r.BlockNumber.Uint64()-parent.Number.Uint64()) + 2) // past the old block's height
	r, err = e.Client.TransactionReceipt(e.Ctx, common.HexToHash(st.Hash))
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt on branch B %+v (%v), want mined successfully", r, err)
	}
	if bal, err := contracts.TokenBalance(e.Ctx, e.Client, e.Contracts.USDT, e.to); err != nil || bal.Int64() != amount {
		t.Fatalf("recipient holds %v (%v): the reorg was meant to pay it", bal, err)
	}

	sw, err := rs.WatchReorgs(e.Ctx, "local")
	if err != nil || sw.Remined != 1 {
		t.Fatalf("sweep after the reorg %+v (%v), want the reverted transaction found mined", sw, err)
	}
	got := al.kind(recovery.AlertRevertedRemined)
	if len(got) != 1 || !strings.Contains(got[0].Summary, w.ID) || !strings.Contains(got[0].Summary, "paid twice") {
		t.Fatalf("alerts %+v: want one reverted_remined naming %s", got, w.ID)
	}
	notes := func() int {
		hs, err := e.Store.History(e.Ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, h := range hs {
			if strings.HasPrefix(h.Reason, "POSSIBLY PAID TWICE") && h.From == store.Failed && h.To == store.Failed {
				n++
			}
		}
		return n
	}
	if n := notes(); n != 1 {
		t.Fatalf("%d history notes, want 1", n)
	}
	after, err := e.Store.GetSentTx(e.Ctx, st.ID)
	if err != nil || after.BlockNumber == nil || *after.BlockNumber != r.BlockNumber.Uint64() || after.ReceiptStatus == nil || *after.ReceiptStatus != 1 {
		t.Fatalf("sent tx after %+v (%v): want its new block and status recorded", after, err)
	}
	if sw, err := rs.WatchReorgs(e.Ctx, "local"); err != nil || sw.Remined != 0 || notes() != 1 || len(al.kind(recovery.AlertRevertedRemined)) != 1 {
		t.Fatalf("second sweep %+v (%v): want nothing new", sw, err)
	}
}
