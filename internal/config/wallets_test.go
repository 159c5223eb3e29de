package config

import (
	"testing"
	"time"
)

// The keys of the wallet fleet and of waiting for funds: defaults, and each bad value named by its key.
func TestFleetKeys(t *testing.T) {
	c, err := Load(configFile(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Chains[1].FundsDeadline.Duration; d != time.Hour {
		t.Fatalf("funds_deadline default %s, want 1h", d)
	}
	if n := c.Chains[1].MaxInFlight; n != 16 {
		t.Fatalf("max_in_flight default %d, want 16", n)
	}
	if len(c.Chains[1].HotWallets) != 3 {
		t.Fatalf("hot wallets %v, want the three listed", c.Chains[1].HotWallets)
	}
	for _, tt := range []struct{ name, old, new, want string }{
		{"funds deadline too short", `block_time: 2s`, "block_time: 2s\n    funds_deadline: 100ms",
			`chains[1].funds_deadline: 100ms is below 1s`},
		{"max in flight negative", `block_time: 2s`, "block_time: 2s\n    max_in_flight: -1",
			`chains[1].max_in_flight: -1 is below 1`},
		{"max withdrawal zero", `decimals: 6, address:`, `decimals: 6, max_withdrawal: 0, address:`,
			`chains[1].assets[1].max_withdrawal: must be above zero`},
		{"max withdrawal not wei", `decimals: 6, address:`, `decimals: 6, max_withdrawal: lots, address:`,
			`chains[1].assets[1].max_withdrawal: "lots" is not an amount of wei`},
		{"hot wallet twice", `"0x0000000000000000000000000000000000000002"]`, `"0x0000000000000000000000000000000000000001"]`,
			`chains[1].hot_wallets[2]: 0x0000000000000000000000000000000000000001 listed twice`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(configFile(t, "", tt.old, tt.new))
			wantOneProblem(t, err, tt.want)
		})
	}
	c, err = Load(configFile(t, "", `decimals: 6, address:`, `decimals: 6, max_withdrawal: "5000000", address:`))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.Chains[1].Asset("USDT"); a.MaxWithdrawal.Int().Int64() != 5_000_000 {
		t.Fatalf("max_withdrawal %s, want 5000000", a.MaxWithdrawal)
	}
}
