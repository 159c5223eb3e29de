package devchain_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// The chain must behave like a real node over HTTP: the configured chain id, interval sealing, a txpool
// that accepts a signed transaction, and a receipt once it is mined.
func TestChainServesRealRPC(t *testing.T) {
	from := testenv.NewAccount(t)
	to := testenv.NewAccount(t)
	c := testenv.Chain(t, 100*time.Millisecond, from.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := c.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	id, err := cl.ChainID(ctx)
	if err != nil || id.Uint64() != 31337 {
		t.Fatalf("chain id %v, %v; want 31337", id, err)
	}
	head, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip := big.NewInt(1e9)
	fee := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx := types.MustSignNewTx(from.Key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{
		ChainID: id, Nonce: 0, GasTipCap: tip, GasFeeCap: fee, Gas: 21000, To: &to.Address, Value: big.NewInt(12345),
	})
	if err := cl.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("send: %v", err)
	}
	for {
		r, err := cl.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("receipt status %d", r.Status)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no receipt: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bal, err := cl.BalanceAt(ctx, to.Address, nil)
	if err != nil || bal.Int64() != 12345 {
		t.Fatalf("balance %v, %v; want 12345", bal, err)
	}
}

func TestStartRejectsTakenPort(t *testing.T) {
	c := testenv.Chain(t, time.Second)
	addr := c.URL[len("http://"):]
	if _, err := devchain.Start(devchain.Options{Addr: addr}); err == nil {
		t.Fatal("second chain on the same port started")
	}
}

func TestSealEveryChangesInterval(t *testing.T) {
	c := testenv.Chain(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := c.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c.SealEvery(20 * time.Millisecond)
	for {
		n, err := cl.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 3 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
