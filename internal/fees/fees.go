// Package fees is the one place that picks EIP-1559 fees, for a new transaction and for a replacement
// of one already signed: it reads the node (head base fee, suggested tip), applies the chain's floor and
// caps, and never goes over the cap (that is an error callers can alert on, not an overpayment).
package fees

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Fees are the EIP-1559 fields of a transaction.
type Fees struct {
	MaxFeePerGas   *big.Int
	MaxPriorityFee *big.Int
}

// Node is what fee estimation asks of a node.
type Node interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
}

// ErrOverCap is matched (errors.Is) by every *OverCapError.
var ErrOverCap = errors.New("fees over the configured cap")

// OverCapError says the fees a transaction needs are above the chain's configured cap. It classifies as
// a retryable GAS_PRICE_TOO_LOW (the market may come down), and callers alert on it: when a node's
// floor is above the cap, only an operator raising the cap gets the transaction out.
type OverCapError struct {
	Chain string
	What  string   // "fee cap" or "tip"
	Need  *big.Int // the least acceptable value
	Cap   *big.Int // the configured cap it is over
}

func (e *OverCapError) Error() string {
	return fmt.Sprintf("%s on %s: needs %s wei, above the configured cap %s", e.What, e.Chain, e.Need, e.Cap)
}

// Is makes errors.Is(err, ErrOverCap) hold.
func (e *OverCapError) Is(target error) bool { return target == ErrOverCap }

// Unwrap gives the classification, so txerr.Classify sees GAS_PRICE_TOO_LOW.
func (e *OverCapError) Unwrap() error {
	return &txerr.Error{Type: txerr.GasPriceTooLow, Code: "fee_cap"}
}

// DefaultPriceBump is the smallest raise, in percent, that nodes accept for a replacement (geth's
// txpool.pricebump).
const DefaultPriceBump = 10

// Estimator picks fees for one chain.
type Estimator struct {
	chain      string
	node       Node
	capFee     *big.Int // max_fee_per_gas
	maxTip     *big.Int // max_priority_fee
	minTip     *big.Int // min_priority_fee: the floor every tip is raised to
	multiplier int64    // max fee = base fee × multiplier + tip

	// PriceBump is the raise of a replacement over the attempt it replaces, in percent: the chain's
	// fees.price_bump (DefaultPriceBump when not set).
	PriceBump int64
}

// New builds the estimator of a chain from its fee configuration, parsing the wei values once.
func New(chain string, f config.Fees, node Node) (*Estimator, error) {
	if node == nil {
		return nil, fmt.Errorf("fees of %s: no node", chain)
	}
	e := &Estimator{chain: chain, node: node, multiplier: int64(f.BaseFeeMultiplier), PriceBump: DefaultPriceBump}
	// The config parsed and range-checked these at load; an unset one (a config built in code without
	// Finish) is refused here rather than read as zero.
	for _, v := range []struct {
		dst  **big.Int
		name string
		w    config.Wei
	}{{&e.capFee, "max_fee_per_gas", f.MaxFeePerGas}, {&e.maxTip, "max_priority_fee", f.MaxPriorityFee}, {&e.minTip, "min_priority_fee", f.MinPriorityFee}} {
		if !v.w.IsSet() || v.w.Int().Sign() < 0 {
			return nil, fmt.Errorf("fees of %s: %s is not set", chain, v.name)
		}
		*v.dst = v.w.Int()
	}
	if e.multiplier < 1 {
		e.multiplier = 1
	}
	if f.PriceBump > 0 {
		e.PriceBump = int64(f.PriceBump)
	}
	return e, nil
}

// market reads the head's base fee and the node's suggested tip. A chain without a base fee (no
// EIP-1559) cannot be paid with these transactions: a permanent error, never a panic further on.
func (e *Estimator) market(ctx context.Context) (baseFee, tip *big.Int, err error) {
	head, err := e.node.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("head of %s: %w", e.chain, err)
	}
	if head.BaseFee == nil {
		return nil, nil, txerr.Permanentf(txerr.InvalidTransaction, "chain %s has no EIP-1559 base fee", e.chain)
	}
	tip, err = e.node.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("tip on %s: %w", e.chain, err)
	}
	return head.BaseFee, tip, nil
}

// New picks the fees of a new transaction. learnedMinTip, when not nil, is a tip a node said it needs
// at least (see txerr.MinTipNeeded); it raises the floor for this pick.
func (e *Estimator) New(ctx context.Context, learnedMinTip *big.Int) (Fees, error) {
	base, suggested, err := e.market(ctx)
	if err != nil {
		return Fees{}, err
	}
	return e.Pick(base, suggested, learnedMinTip)
}

// Pick chooses the tip and fee cap for the next block: the suggested tip raised to the floor (the
// configured minimum, or a higher one a node asked for) and clamped to the tip cap, and a fee cap of
// base fee × multiplier + tip (room for the base fee to rise for a few blocks) clamped to the fee cap.
// When the base fee plus the floor is above the fee cap, or the floor above the tip cap, it returns an
// *OverCapError: signing waits rather than overpays.
func (e *Estimator) Pick(baseFee, suggestedTip, learnedMinTip *big.Int) (Fees, error) {
	floor := e.floor(learnedMinTip)
	if floor.Cmp(e.maxTip) > 0 {
		return Fees{}, &OverCapError{Chain: e.chain, What: "tip", Need: floor, Cap: e.maxTip}
	}
	if need := new(big.Int).Add(baseFee, floor); need.Cmp(e.capFee) > 0 {
		return Fees{}, &OverCapError{Chain: e.chain, What: "fee cap", Need: need, Cap: e.capFee}
	}
	tip := bigMax(suggestedTip, floor)
	tip = bigMin(tip, e.maxTip)
	maxFee := new(big.Int).Mul(baseFee, big.NewInt(e.multiplier))
	maxFee.Add(maxFee, tip)
	maxFee = bigMin(maxFee, e.capFee)
	return Fees{MaxFeePerGas: maxFee, MaxPriorityFee: bigMin(tip, maxFee)}, nil
}

// Replacement picks the fees of a transaction replacing one signed with old at the same nonce: tip and
// fee cap each at least old + PriceBump% (what nodes require to replace), at least what a new
// transaction would get now, never under the floor (nor a tip a node said it needs, learnedMinTip),
// and never over the caps (an *OverCapError then).
func (e *Estimator) Replacement(ctx context.Context, old Fees, learnedMinTip *big.Int) (Fees, error) {
	base, suggested, err := e.market(ctx)
	if err != nil {
		return Fees{}, err
	}
	return e.Replace(old, base, suggested, learnedMinTip)
}

// Replace is Replacement on given market values.
func (e *Estimator) Replace(old Fees, baseFee, suggestedTip, learnedMinTip *big.Int) (Fees, error) {
	tip := bigMax(e.bump(old.MaxPriorityFee), e.floor(learnedMinTip))
	if tip.Cmp(e.maxTip) > 0 {
		return Fees{}, &OverCapError{Chain: e.chain, What: "tip", Need: tip, Cap: e.maxTip}
	}
	now, err := e.Pick(baseFee, suggestedTip, tip)
	if err != nil {
		return Fees{}, err
	}
	maxFee := bigMax(e.bump(old.MaxFeePerGas), now.MaxFeePerGas)
	tip = bigMax(tip, now.MaxPriorityFee)
	maxFee = bigMax(maxFee, tip)
	if maxFee.Cmp(e.capFee) > 0 {
		return Fees{}, &OverCapError{Chain: e.chain, What: "fee cap", Need: maxFee, Cap: e.capFee}
	}
	return Fees{MaxFeePerGas: maxFee, MaxPriorityFee: tip}, nil
}

// floor is the least tip: the configured minimum, or a higher one a node asked for.
func (e *Estimator) floor(learned *big.Int) *big.Int {
	if learned != nil {
		return bigMax(e.minTip, learned)
	}
	return new(big.Int).Set(e.minTip)
}

// bump is v raised by PriceBump percent, rounded up so the raise is never short by rounding.
func (e *Estimator) bump(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	n := new(big.Int).Mul(v, big.NewInt(100+e.PriceBump))
	n.Add(n, big.NewInt(99))
	return n.Quo(n, big.NewInt(100))
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return new(big.Int).Set(a)
	}
	return new(big.Int).Set(b)
}

func bigMin(a, b *big.Int) *big.Int {
	if a.Cmp(b) <= 0 {
		return new(big.Int).Set(a)
	}
	return new(big.Int).Set(b)
}
