package fees_test

import (
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// fakeNode answers with a fixed head and tip; a nil baseFee is a chain without EIP-1559.
type fakeNode struct {
	baseFee, tip *big.Int
	err          error
}

func (f fakeNode) HeaderByNumber(context.Context, *big.Int) (*types.Header, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &types.Header{BaseFee: f.baseFee}, nil
}

func (f fakeNode) SuggestGasTipCap(context.Context) (*big.Int, error) { return f.tip, f.err }

var cfg = config.Fees{MaxFeePerGas: config.NewWei(big.NewInt(100)), MaxPriorityFee: config.NewWei(big.NewInt(10)), MinPriorityFee: config.NewWei(big.NewInt(2)), BaseFeeMultiplier: 2}

func estimator(t *testing.T, n fees.Node) *fees.Estimator {
	t.Helper()
	e, err := fees.New("test", cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func bi(v int64) *big.Int { return big.NewInt(v) }

func TestNewFees(t *testing.T) {
	tests := []struct {
		name             string
		base, tip        int64
		learned          *big.Int
		wantFee, wantTip int64
		wantOverCap      bool
	}{
		{"normal", 20, 5, nil, 45, 5, false},
		{"tip raised to the floor", 20, 0, nil, 42, 2, false},
		{"tip capped", 20, 50, nil, 50, 10, false},
		{"fee capped", 60, 5, nil, 100, 5, false},
		{"base fee at cap minus floor", 98, 5, nil, 100, 5, false},
		{"base fee above cap waits", 99, 5, nil, 0, 0, true},
		{"learned minimum raises the tip", 20, 3, bi(7), 47, 7, false},
		{"learned minimum below the floor changes nothing", 20, 3, bi(1), 43, 3, false},
		{"learned minimum above the tip cap", 20, 3, bi(11), 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := estimator(t, fakeNode{baseFee: bi(tt.base), tip: bi(tt.tip)}).New(context.Background(), tt.learned)
			if tt.wantOverCap {
				var oc *fees.OverCapError
				if !errors.As(err, &oc) || !errors.Is(err, fees.ErrOverCap) || txerr.Classify(err) != txerr.GasPriceTooLow || !txerr.IsRetryable(err) {
					t.Fatalf("err %v, want a retryable over-cap GAS_PRICE_TOO_LOW", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.MaxFeePerGas.Int64() != tt.wantFee || got.MaxPriorityFee.Int64() != tt.wantTip {
				t.Fatalf("fees %v/%v, want %d/%d", got.MaxFeePerGas, got.MaxPriorityFee, tt.wantFee, tt.wantTip)
			}
			if got.MaxPriorityFee.Cmp(got.MaxFeePerGas) > 0 {
				t.Fatal("tip above fee cap")
			}
		})
	}
}

// A chain without a base fee is a permanent INVALID_TRANSACTION, never a panic, on both paths.
func TestNoBaseFee(t *testing.T) {
	e := estimator(t, fakeNode{tip: bi(1)})
	if _, err := e.New(context.Background(), nil); txerr.Classify(err) != txerr.InvalidTransaction || txerr.IsRetryable(err) {
		t.Fatalf("new: %v, want permanent INVALID_TRANSACTION", err)
	}
	if _, err := e.Replacement(context.Background(), fees.Fees{MaxFeePerGas: bi(10), MaxPriorityFee: bi(2)}, nil); txerr.Classify(err) != txerr.InvalidTransaction {
		t.Fatalf("replacement: %v, want INVALID_TRANSACTION", err)
	}
}

func TestNodeErrorPassesThrough(t *testing.T) {
	boom := errors.New("connection refused")
	if _, err := estimator(t, fakeNode{err: boom}).New(context.Background(), nil); !errors.Is(err, boom) {
		t.Fatalf("err %v, want the node's", err)
	}
}

func TestReplacement(t *testing.T) {
	tests := []struct {
		name             string
		oldFee, oldTip   int64
		base, tip        int64
		learned          *big.Int
		wantFee, wantTip int64
		wantOverCap      bool
	}{
		// old + 10%, rounded up; the market is lower.
		{"bump over the old attempt", 40, 5, 10, 1, nil, 44, 6, false},
		// The market moved up: at least a new transaction's fees.
		{"at least the current estimate", 40, 5, 30, 8, nil, 68, 8, false},
		// The node said it needs 9: tip 9, fee cap still at least old + 10%.
		{"node's stated minimum", 40, 5, 10, 1, bi(9), 44, 9, false},
		{"tip floor applies", 10, 1, 2, 0, nil, 11, 2, false},
		{"tip bump over the tip cap", 50, 10, 10, 1, nil, 0, 0, true},
		{"fee bump over the fee cap", 95, 5, 10, 1, nil, 0, 0, true},
		{"stated minimum over the tip cap", 40, 5, 10, 1, bi(20), 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := estimator(t, fakeNode{baseFee: bi(tt.base), tip: bi(tt.tip)})
			old := fees.Fees{MaxFeePerGas: bi(tt.oldFee), MaxPriorityFee: bi(tt.oldTip)}
			got, err := e.Replacement(context.Background(), old, tt.learned)
			if tt.wantOverCap {
				if !errors.Is(err, fees.ErrOverCap) || !txerr.IsRetryable(err) {
					t.Fatalf("err %v, want over cap", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.MaxFeePerGas.Int64() != tt.wantFee || got.MaxPriorityFee.Int64() != tt.wantTip {
				t.Fatalf("fees %v/%v, want %d/%d", got.MaxFeePerGas, got.MaxPriorityFee, tt.wantFee, tt.wantTip)
			}
			// What every node requires of a replacement, whatever the row says.
			for _, p := range [][2]*big.Int{{got.MaxFeePerGas, old.MaxFeePerGas}, {got.MaxPriorityFee, old.MaxPriorityFee}} {
				if new(big.Int).Mul(p[0], bi(100)).Cmp(new(big.Int).Mul(p[1], bi(110))) < 0 {
					t.Fatalf("%v is under %v + 10%%", p[0], p[1])
				}
			}
		})
	}
}

func TestPriceBumpIsAField(t *testing.T) {
	e := estimator(t, fakeNode{baseFee: bi(1), tip: bi(0)})
	e.PriceBump = 50
	got, err := e.Replacement(context.Background(), fees.Fees{MaxFeePerGas: bi(40), MaxPriorityFee: bi(4)}, nil)
	if err != nil || got.MaxFeePerGas.Int64() != 60 || got.MaxPriorityFee.Int64() != 6 {
		t.Fatalf("fees %v (%v), want 60/6", got, err)
	}
}

// The chain's fees.price_bump sets it.
func TestPriceBumpFromConfig(t *testing.T) {
	c := cfg
	c.PriceBump = 25
	e, err := fees.New("local", c, fakeNode{baseFee: bi(1), tip: bi(0)})
	if err != nil || e.PriceBump != 25 {
		t.Fatalf("price bump %v (%v), want 25", e, err)
	}
	if e, _ := fees.New("local", cfg, fakeNode{}); e.PriceBump != fees.DefaultPriceBump {
		t.Fatalf("price bump unset: %d, want the default", e.PriceBump)
	}
}

func TestBadConfig(t *testing.T) {
	bad := cfg
	bad.MaxFeePerGas = config.Wei{} // a config built in code without Finish
	if _, err := fees.New("test", bad, fakeNode{}); err == nil {
		t.Fatal("an unset fee cap was accepted")
	}
}
