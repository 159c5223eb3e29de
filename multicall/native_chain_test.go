package multicall_test

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/multicall"
)

type chainEnv struct {
	ctx     context.Context
	cl      *ethclient.Client
	chainID *big.Int
	sender  testenv.Account // funded; deployed the contracts
	addrs   contracts.Addresses
}

func startChain(t *testing.T, funded ...common.Address) *chainEnv {
	t.Helper()
	sender := testenv.NewAccount(t)
	chain := testenv.Chain(t, 100*time.Millisecond, append(funded, sender.Address)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cl, err := chain.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	addrs, err := contracts.DeployAll(ctx, cl, sender.Key, chain.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	return &chainEnv{ctx: ctx, cl: cl, chainID: chain.ChainID, sender: sender, addrs: addrs}
}

func (e *chainEnv) balance(t *testing.T, a common.Address) *big.Int {
	t.Helper()
	b, err := e.cl.BalanceAt(e.ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simulate eth_calls a NativeBatch from the sender and decodes the per-call results.
func (e *chainEnv) simulate(t *testing.T, data []byte, value *big.Int) []multicall.Result {
	t.Helper()
	out, err := e.cl.CallContract(e.ctx, ethereum.CallMsg{From: e.sender.Address, To: &e.addrs.Multicall3, Value: value, Data: data}, nil)
	if err != nil {
		t.Fatalf("eth_call aggregate3Value: %v", err)
	}
	res, err := multicall.DecodeResults(out)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func fee(r *types.Receipt) *big.Int {
	return new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
}

func gwei(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e9)) }

// aggregate3Value pays every recipient exactly and leaves nothing in Multicall3. The logged gas is
// that of the dev chain's rules (devchain enables every fork go-ethereum knows, including EIP-8037's
// state-creation gas, which makes paying a new account far dearer than on today's mainnets; a batch of
// 100 new accounts does not even fit EIP-7825's 16,777,216 gas cap per transaction there).
func TestNativeBatchPays(t *testing.T) {
	funded := make([]common.Address, 100)
	for i := range funded {
		funded[i] = testenv.NewAccount(t).Address
	}
	fresh := make([]common.Address, 20)
	for i := range fresh {
		fresh[i] = testenv.NewAccount(t).Address
	}
	e := startChain(t, funded...)
	for _, tc := range []struct {
		name       string
		recipients []common.Address
	}{
		{"funded recipients", funded},
		{"new recipients", fresh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.recipients)
			ts := make([]multicall.Transfer, n)
			before := make([]*big.Int, n)
			for i, to := range tc.recipients {
				ts[i] = multicall.Transfer{To: to, Amount: gwei(int64(1000 + i))}
				before[i] = e.balance(t, to)
			}
			data, total, err := multicall.NativeBatch(ts)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range e.simulate(t, data, total) {
				if !r.Success {
					t.Fatalf("simulated call %d failed", i)
				}
			}
			senderBefore := e.balance(t, e.sender.Address)
			rcpt, err := contracts.Transact(e.ctx, e.cl, e.sender.Key, e.chainID, e.addrs.Multicall3, total, data, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, to := range tc.recipients {
				if got := new(big.Int).Sub(e.balance(t, to), before[i]); got.Cmp(ts[i].Amount) != 0 {
					t.Errorf("recipient %d received %v, want %v", i, got, ts[i].Amount)
				}
			}
			spent := new(big.Int).Sub(senderBefore, e.balance(t, e.sender.Address))
			if want := new(big.Int).Add(total, fee(rcpt)); spent.Cmp(want) != 0 {
				t.Errorf("sender spent %v, want total %v + fee %v", spent, total, fee(rcpt))
			}
			if b := e.balance(t, e.addrs.Multicall3); b.Sign() != 0 {
				t.Errorf("Multicall3 holds %v wei after a fully successful batch", b)
			}
			t.Logf("native batch of %d to %s: %d gas, %d per transfer (a plain transfer: 21000)", n, tc.name, rcpt.GasUsed, rcpt.GasUsed/uint64(n))
		})
	}
}

// What Multicall3 does with the value of a call that fails: the finding behind the package doc.
func TestNativeBatchRejectingRecipient(t *testing.T) {
	thief := testenv.NewAccount(t)
	e := startChain(t, thief.Address)
	rejecter, err := contracts.Deploy(e.ctx, e.cl, e.sender.Key, e.chainID, &bindings.RejectingReceiverMetaData)
	if err != nil {
		t.Fatal(err)
	}
	a, b := testenv.NewAccount(t).Address, testenv.NewAccount(t).Address
	ts := []multicall.Transfer{{To: a, Amount: gwei(1)}, {To: rejecter, Amount: gwei(500)}, {To: b, Amount: gwei(3)}}
	stranded := ts[1].Amount

	t.Run("allowFailure=true strands the failed value in Multicall3", func(t *testing.T) {
		data, total, err := multicall.NativeBatch(ts)
		if err != nil {
			t.Fatal(err)
		}
		sim := e.simulate(t, data, total)
		if !sim[0].Success || sim[1].Success || !sim[2].Success {
			t.Fatalf("simulated results %+v, want ok, fail, ok", sim)
		}
		if lost, _ := multicall.FailedValue(ts, sim); lost.Cmp(stranded) != 0 {
			t.Fatalf("FailedValue %v, want %v", lost, stranded)
		}
		senderBefore := e.balance(t, e.sender.Address)
		rcpt, err := contracts.Transact(e.ctx, e.cl, e.sender.Key, e.chainID, e.addrs.Multicall3, total, data, 0)
		if err != nil {
			t.Fatalf("batch with a rejecting recipient: %v (want it mined successfully)", err)
		}
		if e.balance(t, a).Cmp(ts[0].Amount) != 0 || e.balance(t, b).Cmp(ts[2].Amount) != 0 {
			t.Fatal("the good recipients were not paid")
		}
		if got := e.balance(t, rejecter); got.Sign() != 0 {
			t.Fatalf("rejecting receiver holds %v", got)
		}
		// No refund: the sender paid the full total, including the failed item.
		spent := new(big.Int).Sub(senderBefore, e.balance(t, e.sender.Address))
		if want := new(big.Int).Add(total, fee(rcpt)); spent.Cmp(want) != 0 {
			t.Fatalf("sender spent %v, want %v (total + fee, no refund)", spent, want)
		}
		if got := e.balance(t, e.addrs.Multicall3); got.Cmp(stranded) != 0 {
			t.Fatalf("Multicall3 holds %v, want the failed call's %v", got, stranded)
		}
		t.Logf("the batch succeeded; the failed call's %v wei stayed in Multicall3", stranded)

		// Anyone can take it, sending no value: the second call's value wraps the unchecked sum to 0
		// (so msg.value 0 passes the check) and itself fails for lack of balance, which allowFailure hides.
		wrap := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), stranded)
		sweep := mc3.PackAggregate3Value([]bindings.Multicall3Call3Value{
			{Target: thief.Address, AllowFailure: true, Value: stranded, CallData: []byte{}},
			{Target: thief.Address, AllowFailure: true, Value: wrap, CallData: []byte{}},
		})
		thiefBefore := e.balance(t, thief.Address)
		srcpt, err := contracts.Transact(e.ctx, e.cl, thief.Key, e.chainID, e.addrs.Multicall3, nil, sweep, 0)
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		gained := new(big.Int).Sub(e.balance(t, thief.Address), thiefBefore)
		if want := new(big.Int).Sub(stranded, fee(srcpt)); gained.Cmp(want) != 0 {
			t.Fatalf("thief gained %v, want %v (stranded %v - fee %v)", gained, want, stranded, fee(srcpt))
		}
		if got := e.balance(t, e.addrs.Multicall3); got.Sign() != 0 {
			t.Fatalf("Multicall3 still holds %v after the sweep", got)
		}
		t.Logf("a stranger swept the %v wei out of Multicall3 with msg.value=0", stranded)
	})

	t.Run("allowFailure=false reverts the whole batch", func(t *testing.T) {
		data, total, err := multicall.NativeBatchAtomic(ts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.cl.CallContract(e.ctx, ethereum.CallMsg{From: e.sender.Address, To: &e.addrs.Multicall3, Value: total, Data: data}, nil)
		if err == nil || !strings.Contains(err.Error(), "Multicall3: call failed") {
			t.Fatalf("eth_call: %v, want a revert with Multicall3: call failed", err)
		}
		aBefore, bBefore, mcBefore := e.balance(t, a), e.balance(t, b), e.balance(t, e.addrs.Multicall3)
		senderBefore := e.balance(t, e.sender.Address)
		// Mined anyway (fixed gas limit, no estimate): it reverts and moves no coin.
		rcpt, err := contracts.Transact(e.ctx, e.cl, e.sender.Key, e.chainID, e.addrs.Multicall3, total, data, 300_000)
		if err == nil || rcpt == nil || rcpt.Status != types.ReceiptStatusFailed {
			t.Fatalf("receipt %+v, err %v; want a reverted receipt", rcpt, err)
		}
		if e.balance(t, a).Cmp(aBefore) != 0 || e.balance(t, b).Cmp(bBefore) != 0 || e.balance(t, e.addrs.Multicall3).Cmp(mcBefore) != 0 {
			t.Fatal("a reverted batch moved coin")
		}
		if spent := new(big.Int).Sub(senderBefore, e.balance(t, e.sender.Address)); spent.Cmp(fee(rcpt)) != 0 {
			t.Fatalf("sender spent %v, want only the fee %v", spent, fee(rcpt))
		}
	})
}
