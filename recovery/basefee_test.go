package recovery_test

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// burnerInit deploys a contract whose code is an endless loop (JUMPDEST PUSH1 0 JUMP): every call runs
// out of gas and so uses all the gas it was given, which fills a block with two calls of half its limit.
var burnerInit = hexutil.MustDecode("0x635b6000566000526004601cf3")

// The market overtakes a signed batch the way it does on a busy chain: other accounts fill block after
// block, the base fee climbs 12.5% a block past the batch's max fee, and the batch can no longer be
// included. Recovery bumps it at the same nonce to at least the current estimate (base fee × multiplier +
// tip), and it is mined once: every recipient paid exactly once, the bump is what mined.
func TestBaseFeeSurgeFromFullBlocksIsBumped(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 2, Chain: func(c *config.Chain) {
		c.Fees.MaxFeePerGas = config.NewWei(big.NewInt(100e9)) // room above the surge for the bump
	}})
	e.Config.Multicall3 = config.Address(e.Contracts.Multicall3)
	e.Config.BatchContract = config.Address(e.Contracts.BatchTransfer)
	e.Config.Batching.Prefer = "throughput"
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	chainID := e.Chain.ChainID
	funderNonce, err := eth.PendingNonceAt(e.Ctx, e.Funder.Address)
	if err != nil {
		t.Fatal(err)
	}
	send := func(to *common.Address, data []byte, gas uint64) {
		t.Helper()
		tx, err := types.SignNewTx(e.Funder.Key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{ChainID: chainID,
			Nonce: funderNonce, To: to, Gas: gas, GasTipCap: big.NewInt(2e10), GasFeeCap: big.NewInt(5e10), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if err := eth.SendTransaction(e.Ctx, tx); err != nil {
			t.Fatal(err)
		}
		funderNonce++
	}
	e.Chain.SealEvery(time.Hour)
	send(nil, burnerInit, 100_000)
	burner := crypto.CreateAddress(e.Funder.Address, funderNonce-1)
	e.Chain.Commit()

	var ws []*store.Withdrawal
	for range 5 {
		ws = append(ws, e.Withdraw("POL", testenv.NewAccount(t).Address, paid))
	}
	e.Receive(queue.TxRequest) // the batcher finds them in the database
	if n, err := e.Signer().BatchOnce(e.Ctx); err != nil || n != 5 {
		t.Fatalf("batched %d (%v), want 5", n, err)
	}
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	mon := e.One(queue.TxMonitor)
	st, err := e.Store.GetSentTx(e.Ctx, *e.Get(ws[0].ID).SentTxID)
	if err != nil {
		t.Fatal(err)
	}

	// Fill blocks (the burner's calls tip far more than the batch, so they go first and leave no room)
	// until the base fee is above the batch's max fee. (Their fee cap, 50 gwei, keeps 15M gas under the node's
	// 1-ether cap on one transaction's fee.)
	top, err := eth.HeaderByNumber(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	half := top.GasLimit / 2
	blocks := 0
	for {
		head, err := eth.HeaderByNumber(e.Ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if head.BaseFee.Cmp(st.MaxFeePerGas) > 0 {
			t.Logf("base fee %s above the batch's max fee %s after %d full blocks", head.BaseFee, st.MaxFeePerGas, blocks)
			break
		}
		if blocks++; blocks > 150 {
			t.Fatalf("base fee %s still under the batch's max fee %s after 150 full blocks", head.BaseFee, st.MaxFeePerGas)
		}
		send(&burner, nil, half)
		send(&burner, nil, half)
		// The pool takes a sent transaction in asynchronously: a block sealed before both fillers are
		// pending would have room for the batch (a flake seen under load).
		waitPending(t, e.Ctx, eth, e.Funder.Address, funderNonce)
		e.Chain.Commit()
	}
	if n, err := e.Client.NonceAt(e.Ctx, e.Hot.Address); err != nil || n != st.Nonce {
		t.Fatalf("hot wallet nonce %d (%v), want %d: the batch must still be waiting", n, err, st.Nonce)
	}

	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 2
	rs := newService(e, ch, alert.Nop{})
	age(t, e, st.ID)
	if sw := sweep(t, e, rs); sw.Bumped != 1 {
		t.Fatalf("sweep %+v, want the batch bumped", sw)
	}
	cur, err := e.Store.GetSentTx(e.Ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	head, err := eth.HeaderByNumber(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Nonce != st.Nonce || cur.MaxFeePerGas.Cmp(head.BaseFee) <= 0 {
		t.Fatalf("bump: nonce %d max fee %s; want nonce %d and a max fee above the base fee %s", cur.Nonce, cur.MaxFeePerGas, st.Nonce, head.BaseFee)
	}

	e.Chain.SealEvery(100 * time.Millisecond)
	mo := e.Monitor()
	deadline := time.Now().Add(45 * time.Second)
	for _, w := range ws {
		for !e.Get(w.ID).Status.Terminal() {
			if time.Now().After(deadline) {
				t.Fatalf("withdrawal %s never settled", w.ID)
			}
			if err := mo.Handle(e.Ctx, mon); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, w := range ws {
		bal, err := e.Client.BalanceAt(e.Ctx, common.HexToAddress(w.To))
		if err != nil || bal.Cmp(big.NewInt(paid)) != 0 || e.Get(w.ID).Status != store.Confirmed {
			t.Fatalf("recipient %s holds %v (%v), withdrawal %s: want paid once, CONFIRMED", w.To, bal, err, e.Get(w.ID).Status)
		}
	}
	if as := attempts(t, e, st.ID); len(as) != 2 || strings.Fields(as[1])[1] != store.AttemptMined {
		t.Fatalf("attempts %v, want the original replaced and the bump mined", as)
	}
	if n, err := e.Client.NonceAt(e.Ctx, e.Hot.Address); err != nil || n != st.Nonce+1 {
		t.Fatalf("hot wallet nonce %d (%v), want %d: one transaction mined", n, err, st.Nonce+1)
	}
}

// waitPending waits until the node's pending nonce of addr is nonce: every transaction sent from it is in
// the pool's pending set, ready for the next block.
func waitPending(t *testing.T, ctx context.Context, eth *ethclient.Client, addr common.Address, nonce uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := eth.PendingNonceAt(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		if n >= nonce {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending nonce of %s is %d after 10 s, want %d", addr.Hex(), n, nonce)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
