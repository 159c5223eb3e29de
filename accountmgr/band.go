package accountmgr

import (
	"math/big"

	"github.com/sluice-custody/sluice/internal/config"
)

// Band is one asset's top_up band per hot wallet, in base units. Max is nil when not set (no sweep).
type Band struct {
	Min, Target, Max *big.Int
}

// BandOf reads an asset's configured band.
func BandOf(t config.TopUp) Band {
	b := Band{Min: t.Min.Int(), Target: t.Target.Int()}
	if t.Max.IsSet() {
		b.Max = t.Max.Int()
	}
	return b
}

// Position is what one hot wallet holds of one asset and what is already on its way in and out.
type Position struct {
	// Balance is the balance on chain at the head.
	Balance *big.Int
	// Incoming is the top-ups queued or signed for it that the chain has not mined yet.
	Incoming *big.Int
	// Outgoing is what is signed out of it (withdrawals assigned to it, sweeps) and not mined yet.
	Outgoing *big.Int
}

// Effective is the balance the wallet will have once everything in flight is mined:
// Balance + Incoming − Outgoing.
func (p Position) Effective() *big.Int {
	e := new(big.Int).Set(orZero(p.Balance))
	e.Add(e, orZero(p.Incoming))
	return e.Sub(e, orZero(p.Outgoing))
}

// Need is what the band asks of a position: a top-up of Target − Effective when Effective is below Min;
// a sweep of Effective − Target when Max is set, Effective is above it and no top-up is on its way (at
// most what is on chain and not already leaving: Balance − Outgoing). Both nil when it is within the
// band. A wallet is never asked for both.
func Need(b Band, p Position) (topUp, sweep *big.Int) {
	eff := p.Effective()
	if eff.Cmp(orZero(b.Min)) < 0 {
		return new(big.Int).Sub(orZero(b.Target), eff), nil
	}
	if b.Max == nil || eff.Cmp(b.Max) <= 0 || orZero(p.Incoming).Sign() > 0 {
		return nil, nil
	}
	s := new(big.Int).Sub(eff, orZero(b.Target))
	if onChain := new(big.Int).Sub(orZero(p.Balance), orZero(p.Outgoing)); s.Cmp(onChain) > 0 {
		s = onChain
	}
	if s.Sign() <= 0 {
		return nil, nil
	}
	return nil, s
}

// Cover decides which deficits, in the order given (most urgent first), the main account pays from
// available (its balance less the top-ups already committed from it): each in full while what is left
// covers it, stopping at the first it cannot cover, so a later, smaller deficit never jumps the queue
// and no deficit is ever paid in part. n is how many are covered; missing is how much the main account
// lacks to cover them all (0 when it covers every one).
func Cover(available *big.Int, deficits []*big.Int) (n int, missing *big.Int) {
	left := new(big.Int).Set(orZero(available))
	total := new(big.Int)
	stopped := false
	for _, d := range deficits {
		total.Add(total, d)
		if stopped {
			continue
		}
		if d.Cmp(left) > 0 {
			stopped = true
			continue
		}
		left.Sub(left, d)
		n++
	}
	missing = new(big.Int).Sub(total, orZero(available))
	if missing.Sign() < 0 {
		missing.SetInt64(0)
	}
	return n, missing
}

// Urgency orders deficits: the wallet furthest below its min (as a share of min) comes first.
func Urgency(b Band, p Position) *big.Rat {
	min := orZero(b.Min)
	if min.Sign() == 0 {
		return new(big.Rat)
	}
	short := new(big.Int).Sub(min, p.Effective())
	return new(big.Rat).SetFrac(short, min)
}

func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}
