package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// accountmgr.interval defaults to 30s; a band out of order, a main account that is also a hot wallet,
// and a band without a main account are refused, each naming its key.
func TestAccountMgrConfig(t *testing.T) {
	load := func(chain, extra string) (*Config, error) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		body := extra + "chains:\n  - name: x\n    chain_id: 5\n    rpc: [\"http://127.0.0.1:1\"]\n" +
			"    hot_wallets: [\"0x1111111111111111111111111111111111111111\"]\n" + chain
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	asset := func(band string) string {
		return "    assets:\n      - symbol: POL\n        decimals: 18\n        top_up: {" + band + "}\n"
	}
	const main = "    main_account: \"0x2222222222222222222222222222222222222222\"\n"
	c, err := load(main+asset(`min: "1 ether", target: "5 ether", max: "9 ether"`), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.AccountMgr.Interval.Duration != 30*time.Second {
		t.Fatalf("interval %s, want 30s", c.AccountMgr.Interval.Duration)
	}
	if c.Chains[0].IsDraining(c.Chains[0].HotWallets[0]) {
		t.Fatal("a hot wallet drains with no draining_wallets")
	}
	if ms := c.Chains[0].ManagedAssets(); len(ms) != 1 || ms[0].TopUp.Max.String() != "9000000000000000000" {
		t.Fatalf("managed assets %+v", ms)
	}
	for _, bad := range []struct{ chain, extra, key string }{
		{main + asset(`min: "5 ether", target: "1 ether"`), "", "chains[0].assets[0].top_up.target"},
		{main + asset(`min: "1 ether", target: "5 ether", max: "2 ether"`), "", "chains[0].assets[0].top_up.max"},
		{main + asset(`min: "1 ether"`), "", "chains[0].assets[0].top_up.target"},
		{asset(`min: "1 ether", target: "5 ether"`), "", "chains[0].main_account"},
		{"    main_account: \"0x1111111111111111111111111111111111111111\"\n", "", "chains[0].main_account"},
		{main, "accountmgr:\n  interval: 10ms\n", "accountmgr.interval"},
		// Draining: only a hot wallet can drain, and never the last one.
		{"    draining_wallets: [\"0x3333333333333333333333333333333333333333\"]\n", "", "chains[0].draining_wallets[0]"},
		{"    draining_wallets: [\"0x1111111111111111111111111111111111111111\"]\n", "", "chains[0].draining_wallets"},
	} {
		if _, err := load(bad.chain, bad.extra); err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%q: %v, want %s named", bad.chain+bad.extra, err, bad.key)
		}
	}
}
