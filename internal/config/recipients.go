package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RecipientChecks tunes the recipient checks the API runs before it accepts a withdrawal
// (internal/policy, Recipients): what each rule does when it matches, and the bounds of the checks.
type RecipientChecks struct {
	// Actions sets a rule's action; a rule not listed keeps its default (policy.DefaultActions).
	Actions map[RecipientRule]RecipientAction `yaml:"actions,omitempty"`
	// PoisoningWindow is how far back a client's destinations are compared with a new one (default
	// 720h, 30 days; at most 8760h).
	PoisoningWindow Duration `yaml:"poisoning_window"`
	// ContractTTL is how long a destination found to have code is taken to still have it without asking
	// the node again (default 1h); "off" never remembers it: every native withdrawal asks the node.
	ContractTTL CacheTTL `yaml:"contract_ttl"`
	// NodeTimeout bounds the node calls of one check (default 3s, at most 1m): a slow node refuses
	// nothing, it fails the create with a 5xx the client retries.
	NodeTimeout Duration `yaml:"node_timeout"`
}

// RecipientRule names a recipient check, as recipient_checks.actions keys it and a refusal or a hold
// reports it.
type RecipientRule string

// The recipient checks' rules. internal/policy declares the same names as its Rule values (it imports
// this package, so this one cannot import it); TestRecipientRulesMatchConfig there keeps the two equal.
const (
	RuleOwnWallet   RecipientRule = "own_wallet"
	RuleReserved    RecipientRule = "reserved_address"
	RuleTokenSelf   RecipientRule = "token_contract"
	RuleContract    RecipientRule = "native_to_contract"
	RuleBlacklisted RecipientRule = "token_blacklist"
	RulePoisoning   RecipientRule = "address_poisoning"
)

// RecipientRules are the rules recipient_checks.actions accepts, in the order the checks run.
var RecipientRules = []RecipientRule{RuleOwnWallet, RuleReserved, RuleTokenSelf, RuleContract, RuleBlacklisted, RulePoisoning}

// RecipientAction is what a recipient check does when it matches: refuse the withdrawal (422 naming
// the rule), hold it for approval (AWAITING_APPROVAL), or let it through.
type RecipientAction string

// The actions; internal/policy's Action values are the same strings.
const (
	ActionReject RecipientAction = "reject"
	ActionHold   RecipientAction = "hold"
	ActionAllow  RecipientAction = "allow"
)

// ParseRecipientAction reads reject, hold or allow.
func ParseRecipientAction(s string) (RecipientAction, error) {
	switch a := RecipientAction(s); a {
	case ActionReject, ActionHold, ActionAllow:
		return a, nil
	}
	return "", fmt.Errorf("%q is not reject, hold or allow", s)
}

// UnmarshalYAML reads reject, hold or allow; an empty value is left unset, which validation refuses
// (a rule listed without an action is more likely a mistake than a wish for the default).
func (a *RecipientAction) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(n, a, "an action", ParseRecipientAction)
}

// CacheTTL is how long an answer is remembered: a duration, or "off" for never.
type CacheTTL struct {
	Duration
	// Off: the answer is never remembered (written "off").
	Off bool
}

// ParseCacheTTL reads a duration ("1h", "90s") or "off".
func ParseCacheTTL(s string) (CacheTTL, error) {
	if s == "off" {
		return CacheTTL{Off: true}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return CacheTTL{}, fmt.Errorf("%q is not a duration (e.g. \"1h\", \"90s\") or off", s)
	}
	return CacheTTL{Duration: Duration{d}}, nil
}

// UnmarshalYAML reads a duration or "off" (see ParseCacheTTL); an empty string leaves it not set.
func (t *CacheTTL) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(n, t, "a duration or off", ParseCacheTTL)
}

// MarshalYAML writes "off" or the duration, which ParseCacheTTL reads back.
func (t CacheTTL) MarshalYAML() (any, error) {
	if t.Off {
		return "off", nil
	}
	return t.Duration.String(), nil
}

// The recipient checks' defaults.
const (
	DefaultPoisoningWindow = 30 * 24 * time.Hour
	DefaultContractTTL     = time.Hour
	DefaultNodeTimeout     = 3 * time.Second
)

func (c *Config) applyRecipientDefaults() {
	r := &c.RecipientChecks
	if r.PoisoningWindow.Duration == 0 {
		r.PoisoningWindow.Duration = DefaultPoisoningWindow
	}
	if !r.ContractTTL.Off && r.ContractTTL.Duration.Duration == 0 {
		r.ContractTTL.Duration.Duration = DefaultContractTTL
	}
	if r.NodeTimeout.Duration == 0 {
		r.NodeTimeout.Duration = DefaultNodeTimeout
	}
}

// validateRecipientChecks names every unknown rule, missing action and out-of-range bound.
func (c *Config) validateRecipientChecks(bad func(key, format string, args ...any)) {
	r := c.RecipientChecks
	names := make([]string, len(RecipientRules))
	known := map[RecipientRule]bool{}
	for i, rule := range RecipientRules {
		names[i], known[rule] = string(rule), true
	}
	// Sorted: the same file gives the same report.
	for _, rule := range slices.Sorted(maps.Keys(r.Actions)) {
		a, key := r.Actions[rule], "recipient_checks.actions."+string(rule)
		if !known[rule] {
			bad(key, "unknown rule; rules are %s", strings.Join(names, ", "))
			continue
		}
		if _, err := ParseRecipientAction(string(a)); err != nil {
			bad(key, "no action; write reject, hold or allow, or leave the rule out for its default")
		}
	}
	if d := r.PoisoningWindow.Duration; d <= 0 || d > 365*24*time.Hour {
		bad("recipient_checks.poisoning_window", "%s is not within (0, 8760h]", d)
	}
	if d := r.ContractTTL.Duration.Duration; !r.ContractTTL.Off && d < 0 {
		bad("recipient_checks.contract_ttl", "%s is negative; write off to never remember", d)
	}
	if d := r.NodeTimeout.Duration; d <= 0 || d > time.Minute {
		bad("recipient_checks.node_timeout", "%s is not within (0, 1m]", d)
	}
}
