package config

import (
	"strings"
	"testing"
)

func TestExampleLoads(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg, ok := c.Chain("polygon")
	if !ok || pg.ChainID != 137 || pg.Confirmations != 12 || len(pg.RPC) != 2 {
		t.Fatalf("polygon: %+v", pg)
	}
	usdt, ok := pg.Asset("USDT")
	if !ok || usdt.Native() || usdt.Decimals != 6 {
		t.Fatalf("USDT: %+v", usdt)
	}
	if pol, _ := pg.Asset("POL"); !pol.Native() {
		t.Fatal("POL should be native")
	}
	if c.Services["signer"].Concurrency != 4 || c.Services["recovery"].Listen != "127.0.0.1:3006" {
		t.Fatalf("service defaults: %+v", c.Services)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("SLUICE_DATABASE_DSN", "x@tcp(db:3306)/s")
	t.Setenv("SLUICE_CHAIN_POLYGON_RPC", "http://a,http://b,http://c")
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := c.Chain("polygon")
	if c.Database.DSN != "x@tcp(db:3306)/s" || len(pg.RPC) != 3 {
		t.Fatalf("overrides not applied: %q %v", c.Database.DSN, pg.RPC)
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	c := &Config{Queue: Queue{Backend: "kafka"}, Chains: []Chain{
		{Name: "a", Assets: []Asset{{Symbol: "X", Address: "nope"}}, HotWallets: []string{"0x12"}, Fees: Fees{MaxFeePerGas: "1e9"}},
		{Name: "a", ChainID: 1, RPC: []string{"http://x"}},
	}}
	err := c.Finish()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"queue.backend", "chains[0].chain_id", "chains[0].rpc", "chains[0].fees.max_fee_per_gas",
		"chains[0].assets[0].address", "chains[0].hot_wallets[0]", "chains[1].name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
