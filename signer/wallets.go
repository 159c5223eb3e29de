package signer

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
)

// The wallet choice: the one place that decides which hot wallet of a chain pays what.
//
// Invariants:
//   - a wallet is given a transfer only when what it holds on chain, minus what it has signed and not yet
//     seen mined (store.Outflows), covers the transfer and its gas, with the gas of its transactions in
//     flight kept aside: so no signed transaction fails for want of funds and strands its nonce;
//   - a frozen wallet is given nothing; the chain's other wallets go on;
//   - a draining wallet (chains[].draining_wallets, being retired by `sluice keys rotate`) is not even
//     read: it is given nothing, never counts as able to fund, and raises no alert; what it already
//     signed is bumped by recovery and mined as usual;
//   - a wallet with chains[].max_in_flight transactions pending (default 16: the txpool's guaranteed
//     pending slots per sender) is given nothing more this round;
//   - among wallets that can pay, the least loaded (fewest transactions in flight) is served first, and a
//     round's withdrawals are shared out so that several wallets send at once;
//   - a withdrawal that no unfrozen wallet can fund with what is left is "unfunded" (it waits
//     awaiting_funds); one that could be funded but found no room this round is "deferred" (it waits for
//     the next round without a note).

// walletReadTimeout bounds reading every wallet's balances for one round.
const walletReadTimeout = 10 * time.Second

// walletState is one hot wallet as a round sees it.
type walletState struct {
	Addr common.Address
	// Asset is what it can still spend of the round's token (balance minus outflow); unused for the
	// native coin, which Native covers.
	Asset *big.Int
	// Native is the native coin it can still spend: balance minus native outflow minus the most its
	// transactions in flight may burn in gas.
	Native   *big.Int
	InFlight int // transactions signed and not mined
	Frozen   bool
}

// fundItem is one withdrawal to place.
type fundItem struct {
	ID     string
	Amount *big.Int
}

// planCost is what a transfer costs a wallet in gas, at the round's max fee.
type planCost struct {
	Native  bool     // the asset is the native coin: the amount comes out of Native too
	MaxFee  *big.Int // wei per gas
	PerItem uint64   // gas per transfer
	Fixed   uint64   // gas per transaction on top (a batch's base cost); 0 for singles
	// MaxPerWallet bounds one wallet's share (a batch's size); MinShare is the smallest share worth
	// splitting a round into (min_batch), so a handful of withdrawals is not spread one per wallet.
	MaxPerWallet int
	MinShare     int
	// MaxInFlight is the chain's max_in_flight: a wallet with that many transactions unmined gets nothing.
	MaxInFlight int
}

// walletPlan is what one wallet pays this round: indexes into the items.
type walletPlan struct {
	Wallet common.Address
	Items  []int
}

// planWallets places items (oldest first) on wallets. It never mutates its arguments.
func planWallets(ws []walletState, items []fundItem, c planCost) (plans []walletPlan, unfunded, deferred []int) {
	type rem = walletRem
	var open, all []*rem
	for _, w := range ws {
		if w.Frozen {
			continue
		}
		r := &rem{st: w, native: new(big.Int).Set(nz(w.Native)), asset: new(big.Int).Set(nz(w.Asset))}
		all = append(all, r)
		if c.MaxInFlight <= 0 || w.InFlight < c.MaxInFlight {
			open = append(open, r)
		}
	}
	sort.SliceStable(open, func(i, j int) bool {
		if open[i].st.InFlight != open[j].st.InFlight {
			return open[i].st.InFlight < open[j].st.InFlight
		}
		return open[i].spendable(c).Cmp(open[j].spendable(c)) > 0
	})
	gas := func(r *rem) *big.Int {
		g := c.PerItem
		if len(r.items) == 0 {
			g += c.Fixed
		}
		return new(big.Int).Mul(new(big.Int).SetUint64(g), nz(c.MaxFee))
	}
	fits := func(r *rem, amount *big.Int) bool {
		needNative := gas(r)
		if c.Native {
			needNative.Add(needNative, amount)
		} else if r.asset.Cmp(amount) < 0 {
			return false
		}
		return r.native.Cmp(needNative) >= 0
	}
	take := func(r *rem, i int) {
		g := gas(r)
		r.native.Sub(r.native, g)
		if c.Native {
			r.native.Sub(r.native, items[i].Amount)
		} else {
			r.asset.Sub(r.asset, items[i].Amount)
		}
		r.items = append(r.items, i)
	}
	maxPer := max(c.MaxPerWallet, 1)
	share := maxPer
	if len(open) > 0 {
		share = min(max((len(items)+len(open)-1)/len(open), c.MinShare, 1), maxPer)
	}
	placed := make([]bool, len(items))
	// First each wallet up to its share, then, for what is left (some wallets could not take their
	// share), any wallet up to a full batch.
	for _, limit := range []int{share, maxPer} {
		for i, it := range items {
			if placed[i] {
				continue
			}
			for _, r := range open {
				if len(r.items) < limit && fits(r, it.Amount) {
					take(r, i)
					placed[i] = true
					break
				}
			}
		}
	}
	for i, it := range items {
		if placed[i] {
			continue
		}
		fundable := false
		for _, r := range all {
			if fits(r, it.Amount) {
				fundable = true
				break
			}
		}
		if fundable || len(all) == 0 { // with every wallet frozen, nothing says funds are short
			deferred = append(deferred, i)
		} else {
			unfunded = append(unfunded, i)
		}
	}
	for _, r := range open {
		if len(r.items) > 0 {
			plans = append(plans, walletPlan{Wallet: r.st.Addr, Items: r.items})
		}
	}
	return plans, unfunded, deferred
}

// walletRem is a wallet while a round is being planned: what it has left and what it was given.
type walletRem struct {
	st            walletState
	asset, native *big.Int
	items         []int
}

// spendable is what orders equally loaded wallets: the pool the round's transfers come out of.
func (r *walletRem) spendable(c planCost) *big.Int {
	if c.Native {
		return r.native
	}
	return r.asset
}

func nz(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}

// wallets are chain's hot wallets that may be given withdrawals: the configured ones less the draining.
func wallets(c config.Chain) []common.Address {
	out := make([]common.Address, 0, len(c.HotWallets))
	for _, w := range c.HotWallets {
		if !c.IsDraining(w) {
			out = append(out, w.Common())
		}
	}
	return out
}

// readWallets reads every hot wallet of cd for asset: balances on chain (one read each, bounded by
// walletReadTimeout), what each has in flight (one store.Outflows query for the chain) and whether it is
// frozen. A wallet whose balance cannot be read counts as holding nothing this round, so an unreachable
// node makes withdrawals wait rather than be signed blind; an error is returned only when no wallet
// could be read, so that the round backs off.
func (s *Signer) readWallets(ctx context.Context, cd ChainDeps, asset *config.Asset) ([]walletState, error) {
	ctx, cancel := context.WithTimeout(ctx, walletReadTimeout)
	defer cancel()
	outs, err := s.store.Outflows(ctx, cd.Config.Name)
	if err != nil {
		return nil, err
	}
	type agg struct {
		asset, native, gas *big.Int
		txs                int
	}
	per := map[string]*agg{}
	for _, o := range outs {
		k := strings.ToLower(o.From)
		a := per[k]
		if a == nil {
			a = &agg{asset: new(big.Int), native: new(big.Int), gas: new(big.Int)}
			per[k] = a
		}
		a.gas.Add(a.gas, nz(o.MaxGasCost))
		a.txs += o.Txs
		if o.Asset == asset.Symbol {
			a.asset.Add(a.asset, o.Amount)
		}
		if na, ok := nativeAsset(cd.Config); ok && o.Asset == na {
			a.native.Add(a.native, o.Amount)
		}
	}
	var (
		out     []walletState
		errs    []string
		anyRead bool
	)
	for _, addr := range wallets(cd.Config) {
		st := walletState{Addr: addr, Asset: new(big.Int), Native: new(big.Int)}
		f, err := s.store.WalletFreeze(ctx, s.store.DB, cd.Config.Name, addr.Hex())
		if err != nil {
			return nil, err
		}
		st.Frozen = f != nil
		a := per[strings.ToLower(addr.Hex())]
		if a == nil {
			a = &agg{asset: new(big.Int), native: new(big.Int), gas: new(big.Int)}
		}
		st.InFlight = a.txs
		coin, err := cd.Client.BalanceAt(ctx, addr)
		if err != nil {
			errs = append(errs, fmt.Sprintf("balance of %s: %v", addr, err))
			out = append(out, st)
			continue
		}
		st.Native.Sub(coin, a.native)
		st.Native.Sub(st.Native, a.gas)
		if !asset.Native() {
			bal, err := cd.Client.TokenBalance(ctx, asset.Address.Common(), addr)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s balance of %s: %v", asset.Symbol, addr, err))
				st.Native = new(big.Int)
				out = append(out, st)
				continue
			}
			st.Asset.Sub(bal, a.asset)
		}
		if st.Native.Sign() < 0 {
			st.Native.SetInt64(0)
		}
		if st.Asset.Sign() < 0 {
			st.Asset.SetInt64(0)
		}
		anyRead = true
		out = append(out, st)
	}
	if !anyRead && len(errs) > 0 {
		return nil, fmt.Errorf("hot wallets of %s: %s", cd.Config.Name, strings.Join(errs, "; "))
	}
	if len(errs) > 0 {
		s.log.Warn("some hot wallets could not be read; they get nothing this round", "chain", cd.Config.Name, "errs", strings.Join(errs, "; "))
	}
	return out, nil
}

// nativeAsset is the symbol of chain's native coin among its assets.
func nativeAsset(c config.Chain) (string, bool) {
	for _, a := range c.Assets {
		if a.Native() {
			return a.Symbol, true
		}
	}
	return "", false
}
