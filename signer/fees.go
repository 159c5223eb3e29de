package signer

import (
	"fmt"
	"math/big"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Fees are the EIP-1559 fields of a transaction.
type Fees struct {
	MaxFeePerGas   *big.Int
	MaxPriorityFee *big.Int
}

// PickFees chooses the tip and fee cap for the next block: the node's suggested tip clamped to the
// configured band, and a fee cap of base fee × multiplier + tip (room for the base fee to rise for a
// few blocks) clamped to the configured cap. When even the current base fee plus the minimum tip is
// above the cap, signing waits: it is a retryable GAS_PRICE_TOO_LOW, never an overpayment.
func PickFees(f config.Fees, baseFee, suggestedTip *big.Int) (Fees, error) {
	capFee := f.MaxFeePerGas.Int()
	minTip, maxTip := f.MinPriorityFee.Int(), f.MaxPriorityFee.Int()
	tip := new(big.Int).Set(suggestedTip)
	if tip.Cmp(minTip) < 0 {
		tip.Set(minTip)
	}
	if tip.Cmp(maxTip) > 0 {
		tip.Set(maxTip)
	}
	if floor := new(big.Int).Add(baseFee, minTip); floor.Cmp(capFee) > 0 {
		return Fees{}, txerr.New(txerr.GasPriceTooLow, "fee_cap", fmt.Errorf("base fee %s + min tip %s above cap %s", baseFee, minTip, capFee))
	}
	maxFee := new(big.Int).Mul(baseFee, big.NewInt(int64(f.BaseFeeMultiplier)))
	maxFee.Add(maxFee, tip)
	if maxFee.Cmp(capFee) > 0 {
		maxFee.Set(capFee)
	}
	if tip.Cmp(maxFee) > 0 {
		tip.Set(maxFee)
	}
	return Fees{MaxFeePerGas: maxFee, MaxPriorityFee: tip}, nil
}
