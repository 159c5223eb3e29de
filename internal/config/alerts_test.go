package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAlertsAndRecoveryConfig(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := c.Chain("polygon")
	amoy, _ := c.Chain("amoy")
	if pg.Recovery.StuckAfterBlocks != 5 || amoy.Recovery.StuckAfterBlocks != 5 {
		t.Fatalf("stuck_after_blocks polygon %d amoy %d, want 5 (set) and 5 (2 s blocks default)", pg.Recovery.StuckAfterBlocks, amoy.Recovery.StuckAfterBlocks)
	}
	if c.Alerts.WebhookURL != "" || c.Alerts.WebhookTimeout.Seconds() != 5 || c.Alerts.WebhookRetries != 3 {
		t.Fatalf("alerts %+v", c.Alerts)
	}

	t.Setenv("SLUICE_ALERTS_WEBHOOK_URL", "https://hooks.example/services/T0/B0/secret")
	if c, err = Load(configFile(t, "")); err != nil || c.Alerts.WebhookURL != "https://hooks.example/services/T0/B0/secret" {
		t.Fatalf("env webhook: %q (%v)", c.Alerts.WebhookURL, err)
	}

	for _, tt := range []struct{ yaml, want string }{
		{"alerts: {webhook_retries: 99}", "alerts.webhook_retries: 99 is not within -1..10"},
		{"alerts: {webhook_timeout: 2h}", "alerts.webhook_timeout: 2h0m0s is not within 0..1m"},
		{"alerts: {webhook_timeout: soon}", `alerts.webhook_timeout: "soon" is not a duration`},
	} {
		t.Setenv("SLUICE_ALERTS_WEBHOOK_URL", "")
		p := filepath.Join(t.TempDir(), "s.yaml")
		if err := os.WriteFile(p, []byte(tt.yaml+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		wantOneProblem(t, err, tt.want)
	}
	// A bad webhook URL is named by its key, never echoed (it holds a token).
	t.Setenv("SLUICE_ALERTS_WEBHOOK_URL", "hooks.example/secret-token")
	_, err = Load(configFile(t, ""))
	wantOneProblem(t, err, "alerts.webhook_url: not an http(s) URL")
	if strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("the webhook URL was echoed: %v", err)
	}
	t.Setenv("SLUICE_ALERTS_WEBHOOK_URL", "")
	_, err = Load(configFile(t, "", "block_time: 2s", "block_time: 2s\n    recovery: {stuck_after_blocks: 20000}"))
	wantOneProblem(t, err, "chains[1].recovery.stuck_after_blocks: 20000 is more than 10000 blocks")
}

func TestPriceBump(t *testing.T) {
	c, err := Load(configFile(t, "", "base_fee_multiplier", "base_fee_multiplier"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Chains[0].Fees.PriceBump != 10 {
		t.Fatalf("price_bump default %d, want 10", c.Chains[0].Fees.PriceBump)
	}
	_, err = Load(configFile(t, "", `min_priority_fee: "1 gwei"}`, `min_priority_fee: "1 gwei", price_bump: 2000}`))
	wantOneProblem(t, err, "chains[1].fees.price_bump: 2000 is not within 1..1000 percent")
	if c, err = Load(configFile(t, "", `min_priority_fee: "1 gwei"}`, `min_priority_fee: "1 gwei", price_bump: 25}`)); err != nil || c.Chains[1].Fees.PriceBump != 25 {
		t.Fatalf("price_bump 25: %+v (%v)", c.Chains[1].Fees, err)
	}
}
