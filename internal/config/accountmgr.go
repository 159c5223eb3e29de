package config

import (
	"fmt"
	"time"
)

// Managed reports whether the band is configured (any of its values set): accountmgr then keeps every
// hot wallet of the chain within it.
func (t TopUp) Managed() bool { return t.Min.IsSet() || t.Target.IsSet() || t.Max.IsSet() }

// ManagedAssets lists the chain's assets with a top_up band.
func (ch *Chain) ManagedAssets() []Asset {
	var out []Asset
	for _, a := range ch.Assets {
		if a.TopUp.Managed() {
			out = append(out, a)
		}
	}
	return out
}

// IsHotWallet reports whether addr is one of the chain's hot wallets.
func (ch *Chain) IsHotWallet(addr Address) bool {
	for _, w := range ch.HotWallets {
		if w == addr {
			return true
		}
	}
	return false
}

// IsDraining reports whether addr is one of the chain's draining wallets.
func (ch *Chain) IsDraining(addr Address) bool {
	for _, w := range ch.DrainingWallets {
		if w == addr {
			return true
		}
	}
	return false
}

func (c *Config) applyAccountMgrDefaults() {
	if c.AccountMgr.Interval.Duration == 0 {
		c.AccountMgr.Interval.Duration = 30 * time.Second
	}
}

// validateAccountMgr names every bad field of the account manager's settings: the interval, each
// asset's top_up band, and each chain's main account.
func (c *Config) validateAccountMgr(bad func(key, format string, args ...any)) {
	if d := c.AccountMgr.Interval.Duration; d < time.Second {
		bad("accountmgr.interval", "%s is below 1s", d)
	}
	for i := range c.Chains {
		ch := &c.Chains[i]
		at := fmt.Sprintf("chains[%d]", i)
		for j, w := range ch.DrainingWallets {
			if !ch.IsHotWallet(w) {
				bad(fmt.Sprintf("%s.draining_wallets[%d]", at, j), "%s is not in hot_wallets: a draining wallet stays listed there until it is retired", w.Hex())
			}
		}
		if len(ch.DrainingWallets) > 0 && len(ch.DrainingWallets) >= len(ch.HotWallets) {
			bad(at+".draining_wallets", "every hot wallet is draining: add the new wallet to hot_wallets first")
		}
		managed := false
		for j, a := range ch.Assets {
			t := a.TopUp
			if !t.Managed() {
				continue
			}
			managed = true
			key := fmt.Sprintf("%s.assets[%d].top_up", at, j)
			if !t.Target.IsSet() || t.Target.Int().Sign() == 0 {
				bad(key+".target", "required (above 0) when top_up is set")
			}
			if t.Target.IsSet() && t.Min.Int().Cmp(t.Target.Int()) > 0 {
				bad(key+".target", "%s is below min %s", t.Target, t.Min.Int())
			}
			if t.Max.IsSet() && t.Max.Int().Cmp(t.Target.Int()) < 0 {
				bad(key+".max", "%s is below target %s", t.Max, t.Target.Int())
			}
		}
		if ch.MainAccount.IsZero() {
			if managed {
				bad(at+".main_account", "required when an asset has a top_up band (the account top-ups are paid from; its key comes from keys.wallets or the keystore)")
			}
			continue
		}
		if ch.IsHotWallet(ch.MainAccount) {
			bad(at+".main_account", "%s is also a hot wallet: the main account's key must never sign a withdrawal", ch.MainAccount)
		}
	}
}
