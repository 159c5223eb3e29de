package signer

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// fakeChain is a node in a fixed state; these tests run the signer's decisions without a database,
// queue or chain, in milliseconds.
type fakeChain struct {
	baseFee     *big.Int // nil: no EIP-1559
	tip         *big.Int
	coin        *big.Int
	token       *big.Int
	gas         uint64
	estimateErr error
	nodeErr     error
	estimated   []ethereum.CallMsg
}

func (f *fakeChain) HeaderByNumber(context.Context, *big.Int) (*types.Header, error) {
	if f.nodeErr != nil {
		return nil, f.nodeErr
	}
	return &types.Header{BaseFee: f.baseFee}, nil
}
func (f *fakeChain) SuggestGasTipCap(context.Context) (*big.Int, error) { return f.tip, f.nodeErr }
func (f *fakeChain) EstimateGas(_ context.Context, msg ethereum.CallMsg) (uint64, error) {
	f.estimated = append(f.estimated, msg)
	return f.gas, f.estimateErr
}
func (f *fakeChain) CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error) {
	return nil, errors.New("not simulated here")
}
func (f *fakeChain) BalanceAt(context.Context, common.Address) (*big.Int, error) { return f.coin, nil }
func (f *fakeChain) TokenBalance(context.Context, common.Address, common.Address) (*big.Int, error) {
	return f.token, nil
}
func (f *fakeChain) NonceAt(context.Context, common.Address) (uint64, error)        { return 0, nil }
func (f *fakeChain) PendingNonceAt(context.Context, common.Address) (uint64, error) { return 0, nil }

var (
	hot     = common.HexToAddress("0x00000000000000000000000000000000000000a1")
	usdt    = common.HexToAddress("0x00000000000000000000000000000000000000c0")
	payee   = common.HexToAddress("0x00000000000000000000000000000000000000b2")
	testCfg = config.Chain{Name: "test", ChainID: 1, HotWallets: []config.Address{config.Address(hot)},
		Fees:   config.Fees{MaxFeePerGas: config.NewWei(big.NewInt(1000)), MaxPriorityFee: config.NewWei(big.NewInt(100)), MinPriorityFee: config.NewWei(big.NewInt(1)), BaseFeeMultiplier: 2},
		Assets: []config.Asset{{Symbol: "ETH", Decimals: 18}, {Symbol: "USDT", Decimals: 6, Address: config.Address(usdt)}}}
)

// signerOn is a signer whose only chain is c; nothing else is wired, so a decision that would go on
// to record a transaction panics instead of passing unnoticed.
func signerOn(t *testing.T, c *fakeChain) *Signer {
	t.Helper()
	est, err := fees.New(testCfg.Name, testCfg.Fees, c)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{chains: map[string]ChainDeps{"test": {Config: testCfg, Client: c, Fees: est}}, m: NopMetrics()}
}

func withdrawal(chain, asset string, amount int64) *store.Withdrawal {
	return &store.Withdrawal{ID: "w1", Chain: chain, Asset: asset, To: payee.Hex(), Amount: big.NewInt(amount), CreatedAt: time.Now()}
}

func rich() *fakeChain {
	return &fakeChain{baseFee: big.NewInt(10), tip: big.NewInt(2), coin: big.NewInt(1e18), token: big.NewInt(1e18), gas: 21000}
}

// Every way signing stops before a nonce is taken, and the class it reports: permanent ones fail the
// withdrawal at once, retryable ones are retried.
func TestSigningRefusals(t *testing.T) {
	tests := []struct {
		name      string
		chain     func(*fakeChain)
		w         *store.Withdrawal
		want      txerr.Type
		retryable bool
	}{
		{"chain not configured", nil, withdrawal("other", "ETH", 1), txerr.InvalidTransaction, false},
		{"asset not configured", nil, withdrawal("test", "DAI", 1), txerr.InvalidTransaction, false},
		{"no EIP-1559 base fee", func(c *fakeChain) { c.baseFee = nil }, withdrawal("test", "ETH", 1), txerr.InvalidTransaction, false},
		{"base fee over the cap", func(c *fakeChain) { c.baseFee = big.NewInt(1000) }, withdrawal("test", "ETH", 1), txerr.GasPriceTooLow, true},
		{"node down", func(c *fakeChain) { c.nodeErr = txerr.New(txerr.Network, "", errors.New("connection refused")) }, withdrawal("test", "ETH", 1), txerr.Network, true},
		{"coin short of amount and gas", func(c *fakeChain) { c.coin = big.NewInt(1000) }, withdrawal("test", "ETH", 1), txerr.InsufficientFunds, false},
		{"token short", func(c *fakeChain) { c.token = big.NewInt(5) }, withdrawal("test", "USDT", 6), txerr.InsufficientFunds, false},
		{"coin short of gas for a token transfer", func(c *fakeChain) { c.coin = big.NewInt(100) }, withdrawal("test", "USDT", 6), txerr.InsufficientFunds, false},
		// chain.Client classifies a node's answer; the signer keeps that class.
		{"transfer reverts", func(c *fakeChain) {
			c.estimateErr = txerr.New(txerr.ExecutionReverted, "", errors.New("execution reverted: blocked"))
		}, withdrawal("test", "USDT", 6), txerr.ExecutionReverted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rich()
			if tt.chain != nil {
				tt.chain(c)
			}
			err := signerOn(t, c).sign(context.Background(), discard(), tt.w, hot, "")
			if got := txerr.Classify(err); got != tt.want || txerr.IsRetryable(err) != tt.retryable {
				t.Fatalf("err %v (%s), want %s retryable=%v", err, got, tt.want, tt.retryable)
			}
			// What Handle does with it: permanent and classified means FAILED now, but for short funds,
			// which wait for a top-up (awaiting_funds).
			wantFail := !tt.retryable && tt.want != txerr.InsufficientFunds
			if fails := permanent(err); fails != wantFail {
				t.Fatalf("would fail at once: %v, want %v", fails, wantFail)
			}
		})
	}
}

// The transaction paying a withdrawal: a plain transfer of the coin, or the token's transfer(to, amount)
// sent to the token, from the first hot wallet; estimated with the fees it will carry.
func TestTransferCandidate(t *testing.T) {
	native, err := transferOf(testCfg, withdrawal("test", "ETH", 7), hot)
	if err != nil || native.from != hot || native.to != payee || native.value.Int64() != 7 || native.data != nil {
		t.Fatalf("native %+v (%v)", native, err)
	}
	tok, err := transferOf(testCfg, withdrawal("test", "USDT", 7), hot)
	if err != nil || tok.to != usdt || tok.value.Sign() != 0 {
		t.Fatalf("token %+v (%v)", tok, err)
	}
	args, err := erc20ABI.Methods["transfer"].Inputs.Unpack(tok.data[4:])
	if err != nil || args[0].(common.Address) != payee || args[1].(*big.Int).Int64() != 7 {
		t.Fatalf("transfer args %v (%v)", args, err)
	}
	if withGasMargin(50000, tok.data) != 60000 || withGasMargin(21000, nil) != 21000 {
		t.Fatal("gas margin: 20% on contract calls, none on plain transfers")
	}
	noWallet := testCfg
	noWallet.HotWallets = nil
	if _, err := transferOf(noWallet, withdrawal("test", "ETH", 7), hot); txerr.Classify(err) != txerr.InvalidTransaction {
		t.Fatalf("no hot wallet: %v", err)
	}

	c := rich()
	c.coin = big.NewInt(1000) // stops at the funds check, after estimating
	_ = signerOn(t, c).sign(context.Background(), discard(), withdrawal("test", "ETH", 7), hot, "")
	if len(c.estimated) != 1 {
		t.Fatalf("%d estimates", len(c.estimated))
	}
	m := c.estimated[0]
	if m.GasFeeCap.Int64() != 22 || m.GasTipCap.Int64() != 2 || *m.To != payee || m.From != hot {
		t.Fatalf("estimated %+v, want fee cap 2×10+2, tip 2, to the payee from the hot wallet", m)
	}
}

// Which withdrawals of a claimed group go out in a batch and which alone.
func TestRoute(t *testing.T) {
	ws := func(n int) []*store.Withdrawal {
		out := make([]*store.Withdrawal, n)
		for i := range out {
			out[i] = &store.Withdrawal{ID: string(rune('a' + i)), To: payee.Hex()}
		}
		return out
	}
	// Even-indexed recipients exist on chain; odd ones are empty accounts.
	split := func(ws []*store.Withdrawal) (funded, empty []*store.Withdrawal) {
		for i, w := range ws {
			if i%2 == 0 {
				funded = append(funded, w)
			} else {
				empty = append(empty, w)
			}
		}
		return funded, empty
	}
	eth, tok := &testCfg.Assets[0], &testCfg.Assets[1]
	with := func(prefer string, mc3, batch string) config.Chain {
		c := testCfg
		c.Multicall3, c.BatchContract = addrOf(mc3), addrOf(batch)
		c.Batching = config.Batching{PerTokenThreshold: 3, Prefer: prefer}
		return c
	}
	const mc3, bt = "0x00000000000000000000000000000000000000d3", "0x00000000000000000000000000000000000000e4"
	tests := []struct {
		name              string
		c                 config.Chain
		asset             *config.Asset
		n                 int
		wantBatch, single int
		wantTo            string
	}{
		{"no batch contract: all alone", with("gas", mc3, ""), tok, 5, 0, 5, ""},
		{"no multicall3: all alone", with("gas", "", bt), eth, 5, 0, 5, ""},
		{"below threshold: all alone", with("throughput", mc3, bt), tok, 2, 0, 2, ""},
		{"tokens batch to the batch contract", with("gas", mc3, bt), tok, 5, 5, 0, bt},
		{"throughput batches every native payment", with("throughput", mc3, bt), eth, 5, 5, 0, mc3},
		{"gas sends empty accounts alone", with("gas", mc3, bt), eth, 6, 3, 3, mc3},
		{"gas: too few funded to batch, all alone", with("gas", mc3, bt), eth, 4, 0, 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, batch, single := route(tt.c, tt.asset, ws(tt.n), split)
			if len(batch) != tt.wantBatch || len(single) != tt.single {
				t.Fatalf("batch %d single %d, want %d/%d", len(batch), len(single), tt.wantBatch, tt.single)
			}
			if (tt.wantTo == "" && to != common.Address{}) || (tt.wantTo != "" && to != common.HexToAddress(tt.wantTo)) {
				t.Fatalf("batch to %s, want %q", to, tt.wantTo)
			}
		})
	}
}

// Batch size from the gas budget and the gas model's worst case per item.
func TestMaxItems(t *testing.T) {
	b := config.Batching{GasBudget: 15_000_000, MaxSize: 500}
	if n := maxItems(b, true); n != (15_000_000-50_000)/(GasNativeBatchedNew+GasNativeBatchedNew/4) {
		t.Fatalf("native %d", n)
	}
	b.MaxSize = 10
	if n := maxItems(b, false); n != 10 {
		t.Fatalf("capped by max_size: %d", n)
	}
	b.GasBudget = 60_000
	if n := maxItems(b, false); n != 1 {
		t.Fatalf("tiny budget: %d, want at least one", n)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// addrOf is s as a configured address; "" is not set.
func addrOf(s string) config.Address {
	if s == "" {
		return config.Address{}
	}
	return config.Address(common.HexToAddress(s))
}
