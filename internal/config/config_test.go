package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"gopkg.in/yaml.v3"
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
	if !ok || usdt.Native() || usdt.Decimals != 6 || usdt.Address.Common() != common.HexToAddress("0xc2132D05D31c914a87C6611C10748AEb04B58e8F") {
		t.Fatalf("USDT: %+v", usdt)
	}
	if pol, _ := pg.Asset("POL"); !pol.Native() {
		t.Fatal("POL should be native")
	}
	if got := pg.Fees.MaxFeePerGas.Int(); got.Cmp(big.NewInt(3000e9)) != 0 {
		t.Fatalf("polygon max_fee_per_gas %s, want 3000 gwei", got)
	}
	if got := pg.Fees.MinPriorityFee.Int(); got.Cmp(big.NewInt(30e9)) != 0 {
		t.Fatalf("polygon min_priority_fee %s, want 30 gwei", got)
	}
	if pg.Multicall3.Hex() != "0xcA11bde05977b3631167028862bE2a173976CA11" || !pg.BatchContract.IsZero() {
		t.Fatalf("polygon contracts: multicall3 %s, batch_contract %s (want not set)", pg.Multicall3, pg.BatchContract)
	}
	if len(pg.HotWallets) != 3 || pg.HotWallets[2].Common() != common.HexToAddress("0x3333333333333333333333333333333333333333") {
		t.Fatalf("polygon hot wallets: %v", pg.HotWallets)
	}
	if w := c.Keys.Wallets; len(w) != 3 || w[0].Backend != KeyBackendSecretsManager || w[2].Backend != KeyBackendKMS {
		t.Fatalf("key wallets: %+v, want two in Secrets Manager and one in KMS", w)
	}
	if c.Queue.VisibilityTimeout.Duration != 30*time.Second || c.Queue.WaitTime.Duration != 10*time.Second {
		t.Fatalf("queue durations: %+v", c.Queue)
	}
	amoy, _ := c.Chain("amoy")
	if got := amoy.Fees.MaxFeePerGas.Int(); got.Cmp(big.NewInt(500e9)) != 0 {
		t.Fatalf("amoy max_fee_per_gas %s, want the 500 gwei default", got)
	}
	if c.Services["signer"].Concurrency != 4 || c.Services["recovery"].Listen != "127.0.0.1:3006" {
		t.Fatalf("service defaults: %+v", c.Services)
	}
}

// The other configuration committed to the repository loads too.
func TestHardhatConfigLoads(t *testing.T) {
	c, err := Load("../../hardhat/sluice.hardhat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ch, ok := c.Chain("local"); !ok || ch.BatchContract.Hex() != "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" || len(ch.HotWallets) != 1 {
		t.Fatalf("local: %+v", ch)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("SLUICE_DATABASE_DSN", "x@tcp(db:3306)/s")
	t.Setenv("SLUICE_CHAIN_POLYGON_RPC", "http://a,http://b,http://c")
	t.Setenv("SLUICE_QUEUE_VISIBILITY_TIMEOUT", "1m")
	t.Setenv("SLUICE_CHAIN_POLYGON_MAX_FEE_PER_GAS", "4000 gwei")
	t.Setenv("SLUICE_CHAIN_AMOY_BATCH_CONTRACT", "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512")
	t.Setenv("SLUICE_CHAIN_AMOY_HOT_WALLETS", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8, 0x0000000000000000000000000000000000000002")
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := c.Chain("polygon")
	if c.Database.DSN != "x@tcp(db:3306)/s" || len(pg.RPC) != 3 {
		t.Fatalf("overrides not applied: %q %v", c.Database.DSN, pg.RPC)
	}
	if c.Queue.VisibilityTimeout.Duration != time.Minute || pg.Fees.MaxFeePerGas.Int().Cmp(big.NewInt(4000e9)) != 0 {
		t.Fatalf("typed overrides not applied: %v %s", c.Queue.VisibilityTimeout, pg.Fees.MaxFeePerGas)
	}
	amoy, _ := c.Chain("amoy")
	if amoy.BatchContract.Hex() != "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" || len(amoy.HotWallets) != 2 ||
		amoy.HotWallets[1].Common() != common.HexToAddress("0x2") {
		t.Fatalf("address overrides not applied: %s %v", amoy.BatchContract, amoy.HotWallets)
	}
}

// goodChain is a valid chain; the tests below break one value of it at a time.
const goodChain = `
  - name: %s
    chain_id: 1
    rpc: ["http://x"]
    block_time: 2s
    fees: {max_fee_per_gas: "100 gwei", max_priority_fee: 2000000000, min_priority_fee: "1 gwei"}
    multicall3: "0xcA11bde05977b3631167028862bE2a173976CA11"
    assets:
      - {symbol: ETH, decimals: 18}
      - {symbol: USDT, decimals: 6, address: "0xc2132D05D31c914a87C6611C10748AEb04B58e8F"}
    hot_wallets: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x0000000000000000000000000000000000000001", "0x0000000000000000000000000000000000000002"]
    batching: {max_wait: 1s}
`

func configFile(t *testing.T, queue string, breakChain1 ...string) string {
	y := "queue: {backend: mysql, visibility_timeout: 30s" + queue + "}\nchains:" +
		strings.ReplaceAll(goodChain, "%s", "a") + strings.ReplaceAll(goodChain, "%s", "b")
	if len(breakChain1) == 2 {
		// Replace in the second chain only, so that the index in the key is checked too.
		i := strings.Index(y, "name: b")
		y = y[:i] + strings.Replace(y[i:], breakChain1[0], breakChain1[1], 1)
	}
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadValueNamesKey(t *testing.T) {
	if _, err := Load(configFile(t, "")); err != nil {
		t.Fatalf("the unbroken file: %v", err)
	}
	for _, tt := range []struct {
		name, queue, old, new, want string
	}{
		{"wei with junk", "", `max_fee_per_gas: "100 gwei"`, `max_fee_per_gas: "12abc"`,
			`chains[1].fees.max_fee_per_gas: "12abc" is not an amount of wei`},
		{"wei negative", "", `max_priority_fee: 2000000000`, `max_priority_fee: -5`,
			`chains[1].fees.max_priority_fee: "-5" is not an amount of wei`},
		{"wei exponent", "", `min_priority_fee: "1 gwei"`, `min_priority_fee: 1e9`,
			`chains[1].fees.min_priority_fee: "1e9" is not an amount of wei`},
		{"wei below one", "", `min_priority_fee: "1 gwei"`, `min_priority_fee: "0.5 wei"`,
			`chains[1].fees.min_priority_fee: "0.5 wei" is not an amount of wei`},
		{"wei as a list", "", `min_priority_fee: "1 gwei"`, `min_priority_fee: [1]`,
			`chains[1].fees.min_priority_fee: is not an amount of wei`},
		{"address too short", "", `"0x0000000000000000000000000000000000000002"]`, `"0x12"]`,
			`chains[1].hot_wallets[2]: "0x12" is not an address`},
		{"address bad checksum", "", `0x70997970C51812dc3A010C7d01b50e0d17dc79C8`, `0x70997970c51812dc3A010C7d01b50e0d17dc79C8`,
			`chains[1].hot_wallets[0]: "0x70997970c51812dc3A010C7d01b50e0d17dc79C8" is not an address (mixed case`},
		{"address zero", "", `multicall3: "0xcA11bde05977b3631167028862bE2a173976CA11"`, `multicall3: "0x0000000000000000000000000000000000000000"`,
			`chains[1].multicall3: "0x0000000000000000000000000000000000000000" is not an address (the zero address`},
		{"asset address not hex", "", `address: "0xc2132D05D31c914a87C6611C10748AEb04B58e8F"`, `address: "usdt.eth"`,
			`chains[1].assets[1].address: "usdt.eth" is not an address`},
		{"hot wallet empty", "", `"0x0000000000000000000000000000000000000002"]`, `""]`,
			`chains[1].hot_wallets[2]: empty`},
		{"duration in the queue", ", wait_time: 5 parsecs", "", "",
			`queue.wait_time: "5 parsecs" is not a duration`},
		{"duration in a chain", "", `block_time: 2s`, `block_time: 2`,
			`chains[1].block_time: "2" is not a duration`},
		{"duration nested", "", `max_wait: 1s`, `max_wait: soon`,
			`chains[1].batching.max_wait: "soon" is not a duration`},
		{"plain number", "", `chain_id: 1`, `chain_id: one`,
			`chains[1].chain_id: "one" is not a whole number from 0 to 18446744073709551615`},
		{"key set twice", "", `chain_id: 1`, "chain_id: 1\n    chain_id: 2",
			`chains[1].chain_id: set twice, on lines 16 and 17`},
		{"small number", "", `decimals: 6`, `decimals: 300`,
			`chains[1].assets[1].decimals: "300" is not a whole number from 0 to 255`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(configFile(t, tt.queue, tt.old, tt.new))
			wantOneProblem(t, err, tt.want)
		})
	}
}

func TestNotAMapping(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.yaml")
	if err := os.WriteFile(p, []byte("- queue: {backend: mysql}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	wantOneProblem(t, err, "the file is not a mapping")
}

func wantOneProblem(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("bad value accepted")
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error does not say %q:\n%v", want, err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
		t.Fatalf("one bad value, %d problems reported:\n%v", n, err)
	}
}

// Every bad value is reported, not only the first: yaml.v3 alone stops at the first.
func TestBadValuesAllReported(t *testing.T) {
	p := configFile(t, "")
	b, _ := os.ReadFile(p)
	y := strings.Replace(string(b), "visibility_timeout: 30s", "visibility_timeout: 5 parsecs", 1)
	y = strings.Replace(y, `"0x0000000000000000000000000000000000000002"]`, `"0x12"]`, 1)
	y = strings.Replace(y, `max_fee_per_gas: "100 gwei"`, `max_fee_per_gas: "12abc"`, 1)
	y = strings.Replace(y, `backend: mysql`, `backend: kafka`, 1)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, want := range []string{
		`queue.visibility_timeout: "5 parsecs" is not a duration`,
		`chains[0].fees.max_fee_per_gas: "12abc" is not an amount of wei`,
		`chains[0].hot_wallets[2]: "0x12" is not an address`,
		`queue.backend: "kafka" is not mysql or sqs`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q", want)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
		t.Errorf("%d problems reported, want 4:\n%v", n, err)
	}
}

func TestBadEnvOverrideNamesVariable(t *testing.T) {
	for _, tt := range []struct{ name, value, want string }{
		{"SLUICE_CHAIN_B_MAX_FEE_PER_GAS", "12abc",
			`SLUICE_CHAIN_B_MAX_FEE_PER_GAS (chains[1].fees.max_fee_per_gas): "12abc" is not an amount of wei`},
		{"SLUICE_CHAIN_A_MIN_PRIORITY_FEE", "1.5 shannon",
			`SLUICE_CHAIN_A_MIN_PRIORITY_FEE (chains[0].fees.min_priority_fee): "1.5 shannon" is not an amount of wei`},
		{"SLUICE_CHAIN_B_HOT_WALLETS", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8,0x12",
			`SLUICE_CHAIN_B_HOT_WALLETS (chains[1].hot_wallets[1]): "0x12" is not an address`},
		{"SLUICE_CHAIN_A_BATCH_CONTRACT", "0xE7f1725E7734CE288F8367e1Bb143E90bb3F0512",
			`SLUICE_CHAIN_A_BATCH_CONTRACT (chains[0].batch_contract): "0xE7f1725E7734CE288F8367e1Bb143E90bb3F0512" is not an address`},
		{"SLUICE_QUEUE_VISIBILITY_TIMEOUT", "5 parsecs",
			`SLUICE_QUEUE_VISIBILITY_TIMEOUT (queue.visibility_timeout): "5 parsecs" is not a duration`},
		{"SLUICE_QUEUE_WAIT_TIME", "-",
			`SLUICE_QUEUE_WAIT_TIME (queue.wait_time): "-" is not a duration`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := configFile(t, "")
			t.Setenv(tt.name, tt.value)
			_, err := Load(p)
			wantOneProblem(t, err, tt.want)
		})
	}
}

func TestParseWei(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"0", "0"},
		{"30000000000", "30000000000"},
		{"007", "7"},
		{"30 gwei", "30000000000"},
		{"30gwei", "30000000000"},
		{"1.5 GWei", "1500000000"},
		{"0.5 ether", "500000000000000000"},
		{"2.000 wei", "2"},
		{" 12 wei ", "12"},
		{"0.000000000000000001 ether", "1"},
		{"115792089237316195423570985008687907853269984665640564039457584007913129639935", "115792089237316195423570985008687907853269984665640564039457584007913129639935"},
	} {
		w, err := ParseWei(tt.in)
		if err != nil || w.String() != tt.want {
			t.Errorf("ParseWei(%q) = %s, %v; want %s", tt.in, w, err, tt.want)
		}
	}
	for _, in := range []string{"", " ", "-1", "+1", "1e9", "0x10", "1_000", "1.", ".5", "0.5 wei", "1.0000000001 gwei", "12abc",
		"gwei", "1 gwei gwei", "1,5 gwei", "0.0000000000000000001 ether",
		"115792089237316195423570985008687907853269984665640564039457584007913129639936", "1" + strings.Repeat("0", 80),
		"1000000000000000000000000000000000000000000000000000000000000 ether"} {
		if w, err := ParseWei(in); err == nil || !strings.Contains(err.Error(), "is not an amount of wei") {
			t.Errorf("ParseWei(%q) = %s, %v; want an error", in, w, err)
		}
	}
	// Int is a copy: a caller doing arithmetic on it cannot change the configuration.
	w, _ := ParseWei("5")
	w.Int().SetInt64(9)
	if w.String() != "5" {
		t.Fatalf("Int let the caller change the value to %s", w)
	}
}

func TestParseAddress(t *testing.T) {
	const sum = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	for _, in := range []string{sum, strings.ToLower(sum), "0x" + strings.ToUpper(sum[2:])} {
		if a, err := ParseAddress(in); err != nil || a.Hex() != sum || a.Common() != common.HexToAddress(sum) {
			t.Errorf("ParseAddress(%q) = %s, %v; want %s", in, a.Hex(), err, sum)
		}
	}
	for _, tt := range []struct {
		in   string
		want error
	}{
		{"", ErrNotAddress}, {"0x12", ErrNotAddress}, {sum[2:], ErrNotAddress}, {"0X" + sum[2:], ErrNotAddress},
		{sum + "0", ErrNotAddress}, {" " + sum, ErrNotAddress}, {"0xg0997970c51812dc3a010c7d01b50e0d17dc79c8", ErrNotAddress},
		{"0x70997970c51812dc3A010C7d01b50e0d17dc79C8", ErrChecksum},
		{"0x0000000000000000000000000000000000000000", ErrZeroAddress},
	} {
		a, err := ParseAddress(tt.in)
		if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), fmt.Sprintf("%q is not an address (", tt.in)) || !a.IsZero() {
			t.Errorf("ParseAddress(%q) = %s, %v; want %v", tt.in, a.Hex(), err, tt.want)
		}
	}
}

// A configuration written out with yaml.Marshal (as tools/chaos does) loads back to the same values.
func TestRoundTrip(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "again.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := Load(p)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(c, again) {
		t.Fatalf("round trip changed the configuration:\n%+v\n%+v", c, again)
	}
	// A configuration built in code (zero values for what is not set) also survives the trip.
	built := &Config{Chains: []Chain{{Name: "x", ChainID: 1, RPC: []string{"http://x"}, Assets: []Asset{{Symbol: "ETH", Decimals: 18}}, HotWallets: []Address{Address(common.HexToAddress("0x1"))}}}}
	if b, err = yaml.Marshal(built); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if again, err = Load(p); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if err := built.Finish(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(built, again) {
		t.Fatalf("round trip changed the configuration:\n%+v\n%+v", built, again)
	}
}

// In JSON (a log line, say) the values read as they are written in the file.
func TestJSON(t *testing.T) {
	w, _ := ParseWei("30 gwei")
	a, _ := ParseAddress("0x70997970c51812dc3a010c7d01b50e0d17dc79c8")
	b, err := json.Marshal(map[string]any{"wei": w, "addr": a, "unset": Address{}})
	if want := `{"addr":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","unset":"","wei":"30000000000"}`; err != nil || string(b) != want {
		t.Fatalf("JSON %s, %v; want %s", b, err, want)
	}
}

// YAML's anchors, aliases and merge keys work as they did with yaml.Unmarshal.
func TestAnchorsAndMerges(t *testing.T) {
	y := `
chains:
  - &base
    name: a
    chain_id: 1
    rpc: ["http://x"]
    fees: &fees {max_fee_per_gas: "7 gwei"}
    hot_wallets: &hot ["0x0000000000000000000000000000000000000001"]
  - <<: *base
    name: b
    fees: *fees
`
	p := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Chain("b")
	if b == nil || b.ChainID != 1 || b.Fees.MaxFeePerGas.Int().Cmp(big.NewInt(7e9)) != 0 || len(b.HotWallets) != 1 {
		t.Fatalf("merged chain: %+v", b)
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	c := &Config{Queue: Queue{Backend: "kafka"}, Chains: []Chain{
		{Name: "a", Assets: []Asset{{Symbol: "X"}, {Symbol: "X"}}, HotWallets: []Address{{}}},
		{Name: "a", ChainID: 1, RPC: []string{"http://x"}},
	}}
	err := c.Finish()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"queue.backend", "chains[0].chain_id", "chains[0].rpc", "chains[0].assets[1].symbol",
		"chains[0].hot_wallets[0]: empty", "chains[1].name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// With no file, the whole configuration can come from SLUICE_CONFIG_YAML (a container started with
// environment variables only), and the usual overrides still apply on top of it.
func TestLoadFromEnvironmentYAML(t *testing.T) {
	t.Setenv(EnvConfigYAML, "chains:\n  - {name: polygon, chain_id: 137, rpc: [\"http://a\"]}\nservices: {signer: {listen: \"0.0.0.0:3002\"}}\n")
	t.Setenv("SLUICE_CHAIN_POLYGON_RPC", "http://b,http://c")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Chains) != 1 || c.Chains[0].ChainID != 137 || strings.Join(c.Chains[0].RPC, ",") != "http://b,http://c" {
		t.Fatalf("chains %+v", c.Chains)
	}
	if c.Services["signer"].Listen != "0.0.0.0:3002" {
		t.Fatalf("signer listen %q", c.Services["signer"].Listen)
	}
	t.Setenv(EnvConfigYAML, "chains: [{name: x, chain_id: nope}]")
	if _, err := Load(""); err == nil || !strings.Contains(err.Error(), "chains[0].chain_id") {
		t.Fatalf("bad YAML in %s: %v", EnvConfigYAML, err)
	}
}

func TestAdminListener(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.API.AdminListen != "127.0.0.1:3001" || c.API.AdminJWTKeyEnv != "SLUICE_ADMIN_JWT_KEY" || c.API.AdminApprovalTTL.Duration != time.Hour {
		t.Errorf("admin settings %+v", c.API)
	}
	for _, tc := range []struct {
		listen, ttl string
		key         string
	}{
		{"nonsense", "1h", "api.admin_listen"},
		{c.API.Listen, "1h", "api.admin_listen"},
		{"127.0.0.1:3001", "10s", "api.admin_approval_ttl"},
	} {
		c2 := *c
		c2.API.AdminListen = tc.listen
		c2.API.AdminApprovalTTL, _ = ParseDuration(tc.ttl)
		err := c2.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s / %s: %v, want an error naming %s", tc.listen, tc.ttl, err, tc.key)
		}
	}
	c.API.AdminListen = AdminOff
	if err := c.Validate(); err != nil {
		t.Errorf("admin_listen off: %v", err)
	}
}

// api.rate_limit: a positive rate or off; api.rate_burst: not negative. Bad values are refused naming
// the key.
func TestRateLimitConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml  string
		want  RateLimit
		burst int
		bad   string
	}{
		{yaml: "", want: RateLimit{}},
		{yaml: "api: {rate_limit: 500, rate_burst: 50}", want: RateLimit{PerSecond: 500}, burst: 50},
		{yaml: "api: {rate_limit: 0.5}", want: RateLimit{PerSecond: 0.5}},
		{yaml: "api: {rate_limit: off}", want: RateLimit{Off: true}},
		{yaml: "api: {rate_limit: 0}", bad: "api.rate_limit"},
		{yaml: "api: {rate_limit: -3}", bad: "api.rate_limit"},
		{yaml: "api: {rate_limit: fast}", bad: "api.rate_limit"},
		{yaml: "api: {rate_limit: [1]}", bad: "api.rate_limit"},
		{yaml: "api: {rate_burst: -1}", bad: "api.rate_burst"},
	} {
		c, err := loadYAML(t, "queue: {backend: mysql}\n"+tc.yaml+"\n")
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%q: %v, want an error naming %s", tc.yaml, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if c.API.RateLimit != tc.want || c.API.RateBurst != tc.burst {
			t.Errorf("%q: rate %+v burst %d, want %+v %d", tc.yaml, c.API.RateLimit, c.API.RateBurst, tc.want, tc.burst)
		}
		// What is written back reads back the same.
		out, err := yaml.Marshal(c.API.RateLimit)
		if err != nil {
			t.Fatal(err)
		}
		var back RateLimit
		if err := yaml.Unmarshal(out, &back); err != nil || back != c.API.RateLimit {
			t.Errorf("%q: round trip %s → %+v (%v)", tc.yaml, out, back, err)
		}
	}
}
