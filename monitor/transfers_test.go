package monitor

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/multicall"
)

// The items of a token top-up batch are matched to its transfers by recipient and amount: a failed
// item fails its transfer only, and two transfers alike are each matched once.
func TestUnpaidTransfers(t *testing.T) {
	a, b := common.HexToAddress("0xa"), common.HexToAddress("0xb")
	ts := []*store.BalanceTransfer{
		{ID: "1", To: a.Hex(), Amount: big.NewInt(5)},
		{ID: "2", To: b.Hex(), Amount: big.NewInt(7)},
		{ID: "3", To: a.Hex(), Amount: big.NewInt(5)},
	}
	item := func(to common.Address, v int64, ok bool) multicall.ItemResult {
		return multicall.ItemResult{To: to, Amount: big.NewInt(v), Success: ok}
	}
	for _, c := range []struct {
		name  string
		items []multicall.ItemResult
		want  map[string]bool
	}{
		{"all paid", []multicall.ItemResult{item(a, 5, true), item(b, 7, true), item(a, 5, true)}, map[string]bool{}},
		{"one failed", []multicall.ItemResult{item(a, 5, true), item(b, 7, false), item(a, 5, true)}, map[string]bool{"2": true}},
		{"one of two alike failed", []multicall.ItemResult{item(a, 5, true), item(b, 7, true), item(a, 5, false)}, map[string]bool{"3": true}},
		{"an amount that matches nothing", []multicall.ItemResult{item(a, 6, true), item(b, 7, true), item(a, 5, true)}, map[string]bool{"3": true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := unpaidTransfers(ts, c.items)
			if len(got) != len(c.want) {
				t.Fatalf("unpaid %v, want %v", got, c.want)
			}
			for id := range c.want {
				if !got[id] {
					t.Fatalf("unpaid %v, want %v", got, c.want)
				}
			}
		})
	}
}
