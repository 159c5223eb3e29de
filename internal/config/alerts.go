package config

import (
	"fmt"
	"net/url"
	"time"
)

// Alerts configures where alerts go besides the log and the metrics.
type Alerts struct {
	// WebhookURL receives each alert and its resolution as Slack-compatible JSON ({"text": …}); empty
	// for none. It is a secret (Slack's URL carries its token): set it per deployment with
	// SLUICE_ALERTS_WEBHOOK_URL rather than in the file, and it is never logged.
	WebhookURL string `yaml:"webhook_url"`
	// WebhookTimeout bounds one post (default 5s).
	WebhookTimeout Duration `yaml:"webhook_timeout"`
	// WebhookRetries is how many times a failed post is tried again, with a doubling pause from 1 s
	// (default 3; 0 in the file means the default, -1 none).
	WebhookRetries int `yaml:"webhook_retries"`
}

// StuckAfterBlocksFor is the default stuck threshold of a chain with this block time: ceil(10 s / block
// time), within 3..20. Chainlink's transaction manager waits 3 blocks by default and 5 on Polygon.
func StuckAfterBlocksFor(blockTime time.Duration) uint64 {
	if blockTime <= 0 {
		return 5
	}
	n := uint64((10*time.Second + blockTime - 1) / blockTime)
	return min(max(n, 3), 20)
}

func (c *Config) applyAlertEnv(get func(string) string) {
	if v := get("SLUICE_ALERTS_WEBHOOK_URL"); v != "" {
		c.Alerts.WebhookURL = v
	}
}

func (c *Config) applyRecoveryDefaults() {
	if c.Alerts.WebhookTimeout.Duration == 0 {
		c.Alerts.WebhookTimeout.Duration = 5 * time.Second
	}
	if c.Alerts.WebhookRetries == 0 {
		c.Alerts.WebhookRetries = 3
	}
	for i := range c.Chains {
		ch := &c.Chains[i]
		if ch.Fees.PriceBump == 0 {
			ch.Fees.PriceBump = 10
		}
		if ch.Recovery.StuckAfterBlocks == 0 {
			ch.Recovery.StuckAfterBlocks = StuckAfterBlocksFor(ch.BlockTime.Duration)
		}
		if ch.Recovery.ReorgWatchBlocks == 0 {
			ch.Recovery.ReorgWatchBlocks = 2 * ch.Confirmations
		}
		if ch.Finality == "" {
			ch.Finality = FinalityDepth
		}
	}
}

func (c *Config) validateRecovery(bad func(key, format string, args ...any)) {
	if c.Alerts.WebhookURL != "" {
		// The value is a secret: say what is wrong with it, never echo it.
		u, err := url.Parse(c.Alerts.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("alerts.webhook_url", "not an http(s) URL (value not shown: it is a secret)")
		}
	}
	if d := c.Alerts.WebhookTimeout.Duration; d < 0 || d > time.Minute {
		bad("alerts.webhook_timeout", "%s is not within 0..1m", d)
	}
	if r := c.Alerts.WebhookRetries; r < -1 || r > 10 {
		bad("alerts.webhook_retries", "%d is not within -1..10", r)
	}
	for i, ch := range c.Chains {
		if p := ch.Fees.PriceBump; p < 1 || p > 1000 {
			bad(fmt.Sprintf("chains[%d].fees.price_bump", i), "%d is not within 1..1000 percent", p)
		}
		if n := ch.Recovery.StuckAfterBlocks; n > 10_000 {
			bad(fmt.Sprintf("chains[%d].recovery.stuck_after_blocks", i), "%d is more than 10000 blocks", n)
		}
		// Watching less than the confirmations would leave a gap: a transaction confirmed at depth would
		// be dropped from the watch before it was ever checked.
		if n := ch.Recovery.ReorgWatchBlocks; n < ch.Confirmations || n > 100_000 {
			bad(fmt.Sprintf("chains[%d].recovery.reorg_watch_blocks", i), "%d is not within the confirmations (%d)..100000 blocks", n, ch.Confirmations)
		}
		if f := ch.Finality; f != FinalityDepth && f != FinalityFinalized {
			bad(fmt.Sprintf("chains[%d].finality", i), "%q is neither %q nor %q", f, FinalityDepth, FinalityFinalized)
		}
	}
}
