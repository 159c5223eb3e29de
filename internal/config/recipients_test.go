package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func loadYAML(t *testing.T, y string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// recipient_checks: defaults when absent, every good value read into its type, and every bad value
// refused naming its key.
func TestRecipientChecksConfig(t *testing.T) {
	c, err := loadYAML(t, "queue: {backend: mysql}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := RecipientChecks{PoisoningWindow: Duration{720 * time.Hour}, ContractTTL: CacheTTL{Duration: Duration{time.Hour}},
		NodeTimeout: Duration{3 * time.Second}}
	if !reflect.DeepEqual(c.RecipientChecks, want) {
		t.Fatalf("defaults %+v, want %+v", c.RecipientChecks, want)
	}

	for _, tt := range []struct {
		name, yaml string
		want       RecipientChecks
	}{
		{"every rule and action", `recipient_checks:
  actions:
    own_wallet: reject
    reserved_address: hold
    token_contract: allow
    native_to_contract: allow
    token_blacklist: hold
    address_poisoning: reject
  poisoning_window: 168h
  contract_ttl: 10m
  node_timeout: 750ms
`, RecipientChecks{
			Actions: map[RecipientRule]RecipientAction{RuleOwnWallet: ActionReject, RuleReserved: ActionHold, RuleTokenSelf: ActionAllow,
				RuleContract: ActionAllow, RuleBlacklisted: ActionHold, RulePoisoning: ActionReject},
			PoisoningWindow: Duration{168 * time.Hour}, ContractTTL: CacheTTL{Duration: Duration{10 * time.Minute}},
			NodeTimeout: Duration{750 * time.Millisecond}}},
		// A rule left out keeps its default: only the listed ones are in the map.
		{"one rule", "recipient_checks: {actions: {native_to_contract: allow}}",
			RecipientChecks{Actions: map[RecipientRule]RecipientAction{RuleContract: ActionAllow},
				PoisoningWindow: Duration{720 * time.Hour}, ContractTTL: CacheTTL{Duration: Duration{time.Hour}}, NodeTimeout: Duration{3 * time.Second}}},
		{"contract_ttl off", "recipient_checks: {contract_ttl: off}",
			RecipientChecks{PoisoningWindow: Duration{720 * time.Hour}, ContractTTL: CacheTTL{Off: true}, NodeTimeout: Duration{3 * time.Second}}},
		// Zero means default, as everywhere in the file.
		{"zeros", "recipient_checks: {poisoning_window: 0s, contract_ttl: 0s, node_timeout: 0s}", want},
		{"upper bounds", "recipient_checks: {poisoning_window: 8760h, node_timeout: 1m, contract_ttl: 10000h}",
			RecipientChecks{PoisoningWindow: Duration{8760 * time.Hour}, ContractTTL: CacheTTL{Duration: Duration{10000 * time.Hour}}, NodeTimeout: Duration{time.Minute}}},
	} {
		c, err := loadYAML(t, tt.yaml+"\n")
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(c.RecipientChecks, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, c.RecipientChecks, tt.want)
		}
	}

	for _, tt := range []struct{ yaml, want string }{
		{"recipient_checks: {actions: {native_to_contract: block}}",
			`recipient_checks.actions.native_to_contract: "block" is not reject, hold or allow`},
		{"recipient_checks: {actions: {native_to_contract: Reject}}",
			`recipient_checks.actions.native_to_contract: "Reject" is not reject, hold or allow`},
		{"recipient_checks: {actions: {foo: reject}}",
			"recipient_checks.actions.foo: unknown rule; rules are own_wallet, reserved_address, token_contract, native_to_contract, token_blacklist, address_poisoning"},
		{"recipient_checks: {actions: {address_poisoning: }}",
			"recipient_checks.actions.address_poisoning: no action; write reject, hold or allow"},
		{"recipient_checks: {actions: {token_blacklist: [reject]}}",
			"recipient_checks.actions.token_blacklist: is not an action (want a single value"},
		{"recipient_checks: {actions: [own_wallet]}", "recipient_checks.actions: is not a mapping"},
		{"recipient_checks:\n  actions:\n    own_wallet: hold\n    own_wallet: allow",
			"recipient_checks.actions.own_wallet: set twice, on lines 3 and 4"},
		{"recipient_checks: {poisoning_window: -1h}", "recipient_checks.poisoning_window: -1h0m0s is not within (0, 8760h]"},
		{"recipient_checks: {poisoning_window: 8761h}", "recipient_checks.poisoning_window: 8761h0m0s is not within (0, 8760h]"},
		{"recipient_checks: {poisoning_window: 30d}", `recipient_checks.poisoning_window: "30d" is not a duration`},
		{"recipient_checks: {contract_ttl: -1s}", "recipient_checks.contract_ttl: -1s is negative; write off to never remember"},
		{"recipient_checks: {contract_ttl: never}", `recipient_checks.contract_ttl: "never" is not a duration (e.g. "1h", "90s") or off`},
		{"recipient_checks: {node_timeout: -3s}", "recipient_checks.node_timeout: -3s is not within (0, 1m]"},
		{"recipient_checks: {node_timeout: 2m}", "recipient_checks.node_timeout: 2m0s is not within (0, 1m]"},
		{"recipient_checks: {node_timeout: fast}", `recipient_checks.node_timeout: "fast" is not a duration`},
	} {
		_, err := loadYAML(t, tt.yaml+"\n")
		wantOneProblem(t, err, tt.want)
	}

	// Every problem of the section at once, in a stable order.
	_, err = loadYAML(t, "recipient_checks: {actions: {zz: hold, aa: allow, own_wallet: nope}, node_timeout: 2m}\n")
	const all = "recipient_checks.actions.own_wallet: \"nope\" is not reject, hold or allow\n" +
		"recipient_checks.actions.aa: unknown rule; rules are own_wallet, reserved_address, token_contract, native_to_contract, token_blacklist, address_poisoning\n" +
		"recipient_checks.actions.zz: unknown rule; rules are own_wallet, reserved_address, token_contract, native_to_contract, token_blacklist, address_poisoning\n" +
		"recipient_checks.node_timeout: 2m0s is not within (0, 1m]"
	if err == nil || err.Error() != all {
		t.Fatalf("got\n%v\nwant\n%s", err, all)
	}
}

// A CacheTTL reads back what it writes, alone and in a whole configuration written by yaml.Marshal.
func TestCacheTTLRoundTrip(t *testing.T) {
	c, err := loadYAML(t, "recipient_checks: {contract_ttl: off, actions: {token_blacklist: hold}}\n")
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadYAML(t, string(b))
	if err != nil || !reflect.DeepEqual(c.RecipientChecks, again.RecipientChecks) || !again.RecipientChecks.ContractTTL.Off {
		t.Fatalf("round trip: %+v, want %+v (%v)", again.RecipientChecks, c.RecipientChecks, err)
	}
	for _, s := range []string{"off", "1h0m0s", "1m30s"} {
		v, err := ParseCacheTTL(s)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := v.MarshalYAML()
		if out != s {
			t.Errorf("%s: written back as %v", s, out)
		}
	}
}
