package accountmgr

import (
	"math/big"

	"github.com/sluice-custody/sluice/internal/config"
)

// A draining wallet (chains[].draining_wallets, see docs/keys.md "Rotating a wallet key") is being
// retired: it gets no top-up, and once nothing of its own is under way (store.DrainState) everything it
// holds of each managed asset is swept to the main account through the ordinary sweep path
// (balance_transfers, signed by the signer). The tokens go first; the native coin last, less what that
// last sweep may burn in gas at the chain's fee cap, so the sweep can always pay for itself.

// nativeSweepGas is the gas of a plain coin transfer to an account (the main account has no code).
const nativeSweepGas = 21_000

// SweepReserve is the native coin a draining wallet keeps for its last sweep's gas: 21 000 gas at the
// chain's fees.max_fee_per_gas. What is left of it after that sweep is the dust `sluice keys retire`
// accepts.
func SweepReserve(c config.Chain) *big.Int {
	return new(big.Int).Mul(big.NewInt(nativeSweepGas), c.Fees.MaxFeePerGas.Int())
}

// Drain is what a draining wallet sweeps of one asset: nil while anything of its own is under way
// (idle false: a sweep now would race its withdrawals or an earlier sweep); everything on chain for a
// token; for the native coin, nothing while a token is still to be swept (its sweeps need gas), then the
// balance less reserve.
func Drain(native bool, p Position, idle, tokensLeft bool, reserve *big.Int) *big.Int {
	if !idle {
		return nil
	}
	s := new(big.Int).Sub(orZero(p.Balance), orZero(p.Outgoing))
	if native {
		if tokensLeft {
			return nil
		}
		s.Sub(s, orZero(reserve))
	}
	if s.Sign() <= 0 {
		return nil
	}
	return s
}
