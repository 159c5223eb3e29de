package signer

import (
	"math/big"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// The wallet choice, with fakes: which wallet pays what, what waits for funds and what waits for room.
func TestPlanWallets(t *testing.T) {
	a, b, c, d := common.Address{0xa}, common.Address{0xb}, common.Address{0xc}, common.Address{0xd}
	w := func(addr common.Address, asset, native int64, inflight int) walletState {
		return walletState{Addr: addr, Asset: big.NewInt(asset), Native: big.NewInt(native), InFlight: inflight}
	}
	frozen := func(s walletState) walletState { s.Frozen = true; return s }
	items := func(amounts ...int64) []fundItem {
		out := make([]fundItem, len(amounts))
		for i, v := range amounts {
			out[i] = fundItem{ID: string(rune('A' + i)), Amount: big.NewInt(v)}
		}
		return out
	}
	const maxInFlight = 16
	token := planCost{MaxFee: big.NewInt(1), PerItem: 10, Fixed: 100, MaxPerWallet: 50, MinShare: 2, MaxInFlight: maxInFlight}
	native := token
	native.Native = true
	tests := []struct {
		name     string
		ws       []walletState
		items    []fundItem
		cost     planCost
		plans    []walletPlan
		unfunded []int
		deferred []int
	}{
		{name: "one wallet pays all it can fund, the rest awaits funds",
			ws: []walletState{w(a, 100, 1e6, 0)}, items: items(40, 40, 40, 10), cost: token,
			plans: []walletPlan{{a, []int{0, 1, 3}}}, unfunded: []int{2}},
		{name: "larger than any wallet: awaits funds, newer ones still paid",
			ws: []walletState{w(a, 100, 1e6, 0), w(b, 50, 1e6, 0)}, items: items(500, 20), cost: token,
			plans: []walletPlan{{a, []int{1}}}, unfunded: []int{0}},
		{name: "a burst is shared out, least loaded first",
			ws:    []walletState{w(a, 1000, 1e6, 3), w(b, 1000, 1e6, 0), w(c, 1000, 1e6, 1), w(d, 1000, 1e6, 2)},
			items: items(1, 1, 1, 1, 1, 1, 1, 1), cost: token,
			plans: []walletPlan{{b, []int{0, 1}}, {c, []int{2, 3}}, {d, []int{4, 5}}, {a, []int{6, 7}}}},
		{name: "min share: a handful is not spread one per wallet",
			ws: []walletState{w(a, 1000, 1e6, 0), w(b, 1000, 1e6, 0), w(c, 1000, 1e6, 0)}, items: items(1, 1, 1),
			cost:  planCost{MaxFee: big.NewInt(1), PerItem: 10, Fixed: 100, MaxPerWallet: 50, MinShare: 5},
			plans: []walletPlan{{a, []int{0, 1, 2}}}},
		{name: "frozen wallet gets nothing, the others pay",
			ws: []walletState{frozen(w(a, 1000, 1e6, 0)), w(b, 1000, 1e6, 0)}, items: items(5, 5, 5), cost: token,
			plans: []walletPlan{{b, []int{0, 1, 2}}}},
		{name: "only a frozen wallet could fund it: awaits funds",
			ws: []walletState{frozen(w(a, 1000, 1e6, 0)), w(b, 10, 1e6, 0)}, items: items(500), cost: token,
			unfunded: []int{0}},
		{name: "every wallet frozen: nothing is unfunded, all waits for an unfreeze",
			ws: []walletState{frozen(w(a, 1000, 1e6, 0))}, items: items(5), cost: token,
			deferred: []int{0}},
		{name: "a full wallet (16 in flight) gets nothing; its funds make the item deferred, not unfunded",
			ws: []walletState{w(a, 1000, 1e6, maxInFlight), w(b, 10, 1e6, 0)}, items: items(500, 5), cost: token,
			plans: []walletPlan{{b, []int{1}}}, deferred: []int{0}},
		{name: "no native for gas: a token wallet cannot pay",
			ws: []walletState{w(a, 1000, 50, 0), w(b, 1000, 1e6, 0)}, items: items(5), cost: token,
			plans: []walletPlan{{b, []int{0}}}},
		{name: "native: amount and gas come out of one pool",
			ws: []walletState{w(a, 0, 230, 0)}, items: items(100, 100), cost: native,
			// 100 + 110 gas for the first, then 100 + 10 does not fit in the 20 left.
			plans: []walletPlan{{a, []int{0}}}, unfunded: []int{1}},
		{name: "share capped by the batch size, the rest goes to the next wallet",
			ws: []walletState{w(a, 1000, 1e6, 0), w(b, 1000, 1e6, 1)}, items: items(1, 1, 1),
			cost:  planCost{MaxFee: big.NewInt(1), PerItem: 10, MaxPerWallet: 2, MinShare: 5},
			plans: []walletPlan{{a, []int{0, 1}}, {b, []int{2}}}},
		{name: "nothing to place", ws: []walletState{w(a, 1, 1, 0)}, cost: token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.ws[0].Asset.String()
			plans, unfunded, deferred := planWallets(tt.ws, tt.items, tt.cost)
			if !reflect.DeepEqual(plans, tt.plans) || !reflect.DeepEqual(unfunded, tt.unfunded) || !reflect.DeepEqual(deferred, tt.deferred) {
				t.Fatalf("plans %v unfunded %v deferred %v\nwant  %v unfunded %v deferred %v", plans, unfunded, deferred, tt.plans, tt.unfunded, tt.deferred)
			}
			if tt.ws[0].Asset.String() != before {
				t.Fatal("planWallets changed its input")
			}
		})
	}
}
