package policy

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/config"
)

// The rule names and actions recipient_checks accepts are this package's: config cannot import policy
// (policy imports config), so it keeps its own list, and this test keeps the two equal.
func TestRecipientRulesMatchConfig(t *testing.T) {
	var fromConfig []string
	for _, r := range config.RecipientRules {
		fromConfig = append(fromConfig, string(r))
	}
	var ours []string
	for r := range maps.Keys(DefaultActions) {
		ours = append(ours, string(r))
	}
	slices.Sort(fromConfig)
	slices.Sort(ours)
	if !slices.Equal(fromConfig, ours) {
		t.Fatalf("config accepts rules %v, the checks have %v", fromConfig, ours)
	}
	for _, p := range [][2]string{
		{string(config.ActionReject), string(Reject)}, {string(config.ActionHold), string(Hold)}, {string(config.ActionAllow), string(Allow)},
	} {
		if p[0] != p[1] {
			t.Errorf("config action %q, policy action %q", p[0], p[1])
		}
	}
	if config.DefaultContractTTL != DefaultContractTTL {
		t.Errorf("contract_ttl default %s, the checks' %s", config.DefaultContractTTL, DefaultContractTTL)
	}
	if config.DefaultPoisoningWindow != DefaultPoisoningWindow || config.DefaultNodeTimeout != DefaultNodeTimeout {
		t.Errorf("poisoning_window and node_timeout defaults %s %s, the checks' %s %s", config.DefaultPoisoningWindow,
			config.DefaultNodeTimeout, DefaultPoisoningWindow, DefaultNodeTimeout)
	}
}

// A loaded recipient_checks section becomes the checks' settings: listed rules only, "off" as never
// remember.
func TestRecipientsFromConfig(t *testing.T) {
	c := &config.Config{RecipientChecks: config.RecipientChecks{
		Actions:     map[config.RecipientRule]config.RecipientAction{config.RuleContract: config.ActionReject, config.RulePoisoning: config.ActionAllow},
		ContractTTL: config.CacheTTL{Off: true},
	}}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	rc := &Recipients{Actions: ActionsFromConfig(c.RecipientChecks), ContractTTL: ContractTTLFromConfig(c.RecipientChecks)}
	want := map[Rule]Action{RuleOwnWallet: Reject, RuleReserved: Reject, RuleTokenSelf: Reject, RuleContract: Reject,
		RuleBlacklisted: Reject, RulePoisoning: Allow}
	for r, a := range want {
		if got := rc.action(r); got != a {
			t.Errorf("rule %s: %s, want %s", r, got, a)
		}
	}
	if len(rc.Actions) != 2 {
		t.Errorf("actions %v: only the listed rules belong there", rc.Actions)
	}
	if rc.ContractTTL >= 0 {
		t.Errorf("contract_ttl off: ContractTTL %s, want negative (never remember)", rc.ContractTTL)
	}
	c.RecipientChecks.ContractTTL = config.CacheTTL{Duration: config.Duration{Duration: 5 * time.Minute}}
	if got := ContractTTLFromConfig(c.RecipientChecks); got != 5*time.Minute {
		t.Errorf("contract_ttl 5m: %s", got)
	}
}

// The example configuration lists every rule with its default action, as the checks have it.
func TestExampleConfigShowsDefaultActions(t *testing.T) {
	c, err := config.Load("../config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := ActionsFromConfig(c.RecipientChecks); !maps.Equal(got, DefaultActions) {
		t.Fatalf("example.yaml's recipient_checks.actions %v, the defaults %v", got, DefaultActions)
	}
	if got := ContractTTLFromConfig(c.RecipientChecks); got != DefaultContractTTL {
		t.Fatalf("example.yaml's contract_ttl %s, the default %s", got, DefaultContractTTL)
	}
}
