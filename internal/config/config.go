// Package config owns Sluice's configuration: one YAML file listing backends and chains, with
// environment overrides for what differs per deployment (DSNs, endpoints, secrets' locations, fee caps,
// hot wallets). Every value is parsed once, at load, into its type (Wei, Address, Duration); a value
// that does not parse stops start-up with its key's full name, e.g.
// `chains[0].fees.max_fee_per_gas: "12abc" is not an amount of wei`.
package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration.
type Config struct {
	Database Database           `yaml:"database"`
	Redis    Redis              `yaml:"redis"`
	Queue    Queue              `yaml:"queue"`
	Keys     Keys               `yaml:"keys"`
	API      API                `yaml:"api"`
	Services map[string]Service `yaml:"services"`
	Chains   []Chain            `yaml:"chains"`
	Alerts   Alerts             `yaml:"alerts"` // see alerts.go
	Webhooks Webhooks           `yaml:"webhooks"`
	Metrics  Metrics            `yaml:"metrics"`
	Tracing  Tracing            `yaml:"tracing"`
	// AccountMgr tunes the account manager (see fleet.go).
	AccountMgr AccountMgr `yaml:"accountmgr"`
	// RecipientChecks tunes the API's recipient checks (see recipients.go).
	RecipientChecks RecipientChecks `yaml:"recipient_checks"`
}

// Metrics tunes what the process exports besides its counters.
type Metrics struct {
	// GaugeInterval is how often the monitor reads queue depths, wallet balances and nonce lags into
	// their gauges (default 15 s).
	GaugeInterval Duration `yaml:"gauge_interval"`
}

// Tracing sends OpenTelemetry traces to an OTLP/HTTP collector (Jaeger, the OpenTelemetry Collector).
type Tracing struct {
	// Endpoint is the collector's OTLP/HTTP base URL, e.g. http://jaeger:4318; empty turns tracing off.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces kept, in (0, 1] (default 1); a trace continues as its
	// parent decided.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName names the process in traces (default "sluice").
	ServiceName string `yaml:"service_name"`
}

// Database is the MySQL/MariaDB connection.
type Database struct {
	DSN          string `yaml:"dsn"`
	MaxOpenConns int    `yaml:"max_open_conns"`
}

// Redis is the nonce allocator's Redis.
type Redis struct {
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
}

// Queue selects and tunes the queue backend.
type Queue struct {
	Backend           string   `yaml:"backend"` // mysql or sqs
	VisibilityTimeout Duration `yaml:"visibility_timeout"`
	WaitTime          Duration `yaml:"wait_time"`
	SQS               SQS      `yaml:"sqs"`
}

// SQS locates the SQS queues: names are Prefix + logical name (+ ".fifo" for ordered queues).
type SQS struct {
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"` // empty for AWS itself
	Prefix   string `yaml:"prefix"`
}

// Keys selects where signing keys come from.
type Keys struct {
	Backend     string           `yaml:"backend"` // keystore: the backend of wallets not listed under wallets
	Dir         string           `yaml:"dir"`
	PasswordEnv string           `yaml:"password_env"` // name of the variable holding the keystore password
	KeySources  `yaml:",inline"` // per-wallet backends (keys.go)
}

// API configures the HTTP API.
type API struct {
	Listen string `yaml:"listen"`
	// BootstrapKeyEnv names a variable whose value, when set, is registered as the API key of the
	// "default" client at start (only its hash is stored).
	BootstrapKeyEnv string `yaml:"bootstrap_key_env"`
	// AdminListen is the admin API's and ops dashboard's own listener (package admin), kept apart so it
	// can stay off the public network; "off" serves neither.
	AdminListen string `yaml:"admin_listen"`
	// AdminJWTKeyEnv names the variable holding the admin API's JWT signing key (at least 32 bytes);
	// the API refuses to start without it while the admin listener is on.
	AdminJWTKeyEnv string `yaml:"admin_jwt_key_env"`
	// AdminApprovalTTL is how long a two-person action waits for its approver (default 1h).
	AdminApprovalTTL Duration `yaml:"admin_approval_ttl"`
	// RateLimit is each API client's sustained request rate, per second (default 2000), or "off".
	RateLimit RateLimit `yaml:"rate_limit"`
	// RateBurst is how many requests a client may send at once (default 4000, or the rate if higher).
	RateBurst int `yaml:"rate_burst"`
}

// RateLimit is a rate in requests per second, or off (no limit).
type RateLimit struct {
	PerSecond float64
	Off       bool
}

// ParseRateLimit reads a positive number of requests per second or "off".
func ParseRateLimit(s string) (RateLimit, error) {
	if s == "off" {
		return RateLimit{Off: true}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return RateLimit{}, fmt.Errorf("%q is not a positive number of requests per second or off", s)
	}
	return RateLimit{PerSecond: f}, nil
}

// UnmarshalYAML reads a rate or "off" (see ParseRateLimit); an empty value leaves the default.
func (r *RateLimit) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(n, r, "a rate or off", ParseRateLimit)
}

// MarshalYAML writes "off" or the rate, which ParseRateLimit reads back.
func (r RateLimit) MarshalYAML() (any, error) {
	switch {
	case r.Off:
		return "off", nil
	case r.PerSecond == 0:
		return "", nil // not set: the default
	}
	return r.PerSecond, nil
}

// AdminOff is the api.admin_listen value that turns the admin listener off.
const AdminOff = "off"

// Service holds per-service settings.
type Service struct {
	Listen      string `yaml:"listen"`
	Concurrency int    `yaml:"concurrency"`
}

// Chain is one EVM chain.
type Chain struct {
	Name          string    `yaml:"name"`
	ChainID       uint64    `yaml:"chain_id"`
	RPC           []string  `yaml:"rpc"`
	Confirmations uint64    `yaml:"confirmations"`
	BlockTime     Duration  `yaml:"block_time"`
	RPCTimeout    Duration  `yaml:"rpc_timeout"`
	Fees          Fees      `yaml:"fees"`
	Multicall3    Address   `yaml:"multicall3"`     // zero when not deployed
	BatchContract Address   `yaml:"batch_contract"` // zero when not deployed
	Assets        []Asset   `yaml:"assets"`
	HotWallets    []Address `yaml:"hot_wallets"`
	// MainAccount tops up the hot wallets (accountmgr); its key signs only top-ups, never withdrawals.
	// Zero: no top-ups on this chain.
	MainAccount Address `yaml:"main_account"`
	// DrainingWallets are hot wallets being retired (`sluice keys rotate`): the signer gives them no new
	// withdrawals, their transactions in flight finish, and accountmgr sweeps what they hold to the main
	// account once nothing is in flight. Each must also be in HotWallets (so its key still signs
	// recovery bumps and the sweep).
	DrainingWallets []Address `yaml:"draining_wallets,omitempty"`
	// FundsDeadline is how long a withdrawal no hot wallet can fund waits (awaiting_funds) before it
	// FAILS with INSUFFICIENT_FUNDS (default 1h).
	FundsDeadline Duration `yaml:"funds_deadline"`
	// MaxInFlight is how many transactions one hot wallet may have signed and not mined before the
	// signer gives it no more (default 16: the txpool's guaranteed pending slots per sender on geth and
	// bor; beyond them a node may evict a sender's transactions under load).
	MaxInFlight int      `yaml:"max_in_flight"`
	Batching    Batching `yaml:"batching"`
	Recovery    Recovery `yaml:"recovery"` // see recovery.go and alerts.go
	// Finality is when a mined transaction counts as final: FinalityDepth (the default) at the
	// confirmations, FinalityFinalized at the confirmations and once the node's `finalized` block has
	// reached its block.
	Finality string `yaml:"finality"`
	// ExplorerURL is a block explorer's transaction page with {hash} where the hash goes, e.g.
	// "https://polygonscan.com/tx/{hash}" (optional: the admin API links a withdrawal's transaction).
	ExplorerURL string `yaml:"explorer_url"`
}

// Batching tunes how the signer groups pending withdrawals of one (chain, asset) into one transaction.
type Batching struct {
	// Enabled turns batching on (the default). Set `enabled: false` to sign one transfer per transaction.
	Enabled *bool `yaml:"enabled"`
	// MinBatch is the group size that is batched at once, without waiting for MaxWait.
	MinBatch int `yaml:"min_batch"`
	// PerTokenThreshold is the smallest group worth a batch: smaller groups go out as single transfers.
	PerTokenThreshold int `yaml:"per_token_threshold"`
	// MaxWait is how long the oldest pending withdrawal waits for a group to fill (default: one block time).
	MaxWait Duration `yaml:"max_wait"`
	// GasBudget bounds one batch transaction's gas (default half a 30M block; never above MaxTxGas).
	GasBudget uint64 `yaml:"gas_budget"`
	// MaxSize bounds the number of transfers in one batch (default 500).
	MaxSize int `yaml:"max_size"`
	// Prefer is "gas" (batch only where it saves gas: no native batches to empty accounts) or
	// "throughput" (batch everything batchable).
	Prefer string `yaml:"prefer"`
}

// On reports whether batching is enabled.
func (b Batching) On() bool { return b.Enabled == nil || *b.Enabled }

// MaxTxGas is the per-transaction gas cap of EIP-7825 (Osaka).
const MaxTxGas = 1 << 24

// Fees caps what the signer pays. Amounts are written as a whole number of wei ("30000000000", quoted
// or not: caps above 2^64 can be written) or as a number and a unit, wei, gwei or ether ("30 gwei").
type Fees struct {
	MaxFeePerGas      Wei `yaml:"max_fee_per_gas"`
	MaxPriorityFee    Wei `yaml:"max_priority_fee"`
	MinPriorityFee    Wei `yaml:"min_priority_fee"`
	BaseFeeMultiplier int `yaml:"base_fee_multiplier"` // max fee = base fee × this + tip
	// PriceBump is the raise, in percent, a replacement at the same nonce needs over the attempt it
	// replaces (the txpool's pricebump: 10 on geth and bor). Default 10; see alerts.go.
	PriceBump int `yaml:"price_bump"`
}

// Asset is a coin or token on a chain. Address is the token contract, not set for the native coin.
type Asset struct {
	Symbol   string  `yaml:"symbol"`
	Decimals uint8   `yaml:"decimals"`
	Address  Address `yaml:"address"`
	// MaxWithdrawal is the largest single withdrawal of the asset, in base units (zero: no maximum); a
	// larger one is refused at the API with 422.
	MaxWithdrawal Wei `yaml:"max_withdrawal"`
	// TopUp is the balance every hot wallet keeps of this asset (accountmgr), in base units.
	TopUp TopUp `yaml:"top_up"`
}

// TopUp is one asset's balance band per hot wallet: below Min it is topped up to Target from the main
// account; above Max (when set) the excess is swept back to the main account. All zero: not managed.
type TopUp struct {
	Min    Wei `yaml:"min"`
	Target Wei `yaml:"target"`
	Max    Wei `yaml:"max"`
}

// Native reports whether the asset is the chain's own coin.
func (a Asset) Native() bool { return a.Address.IsZero() }

// EnvConfigYAML names the variable holding the whole YAML configuration, read when no file is given.
const EnvConfigYAML = "SLUICE_CONFIG_YAML"

// Load reads path (if not empty; else the YAML in $SLUICE_CONFIG_YAML, if set), applies environment overrides and defaults, and validates. The error
// lists every problem, each naming its key (or environment variable).
func Load(path string) (*Config, error) {
	c := &Config{}
	var errs []*keyError
	src, name := []byte(nil), path
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		src = b
	} else if v := os.Getenv(EnvConfigYAML); v != "" {
		// A container started with environment variables only (no mounted file) can still list chains.
		src, name = []byte(v), EnvConfigYAML
	}
	if src != nil {
		var root yaml.Node
		if err := yaml.Unmarshal(src, &root); err != nil {
			return nil, fmt.Errorf("parse config %s: %w", name, err)
		}
		errs = decode(&root, reflect.ValueOf(c).Elem(), "")
	}
	errs = append(errs, c.applyEnv(os.Getenv)...)
	c.applyDefaults()
	// A value that did not parse was left unset; what Validate says of that same key would only repeat it.
	reported := map[string]bool{}
	for _, e := range errs {
		reported[e.key] = true
	}
	for _, e := range c.validate() {
		if !reported[e.key] {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}

// Finish fills in defaults and validates; for configurations built in code.
func (c *Config) Finish() error {
	c.applyDefaults()
	return c.Validate()
}

// envChain is the prefix of a chain's environment overrides: SLUICE_CHAIN_<NAME>_, NAME upper-cased
// with dashes as underscores.
func envChain(name string) string {
	return "SLUICE_CHAIN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
}

// applyEnv applies the environment overrides, parsing typed ones as the file's values are parsed; a
// value that does not parse is named by its variable and the key it overrides.
func (c *Config) applyEnv(get func(string) string) []*keyError {
	var errs []*keyError
	set := func(dst *string, name string) {
		if v := get(name); v != "" {
			*dst = v
		}
	}
	parsed := func(name, key string, parse func(string) error) {
		if v := get(name); v != "" {
			if err := parse(v); err != nil {
				errs = append(errs, &keyError{name + " (" + key + ")", err})
			}
		}
	}
	duration := func(dst *Duration, name, key string) {
		parsed(name, key, func(v string) (err error) {
			*dst, err = ParseDuration(v)
			return err
		})
	}
	wei := func(dst *Wei, name, key string) {
		parsed(name, key, func(v string) (err error) {
			*dst, err = ParseWei(v)
			return err
		})
	}
	set(&c.Database.DSN, "SLUICE_DATABASE_DSN")
	set(&c.Redis.Addr, "SLUICE_REDIS_ADDR")
	set(&c.Redis.Password, "SLUICE_REDIS_PASSWORD")
	set(&c.Queue.Backend, "SLUICE_QUEUE_BACKEND")
	set(&c.Queue.SQS.Endpoint, "SLUICE_SQS_ENDPOINT")
	set(&c.Queue.SQS.Region, "SLUICE_SQS_REGION")
	set(&c.Queue.SQS.Prefix, "SLUICE_SQS_PREFIX")
	set(&c.Keys.Dir, "SLUICE_KEYSTORE_DIR")
	c.Keys.applyKeyEnv(get)
	set(&c.API.Listen, "SLUICE_API_LISTEN")
	set(&c.API.AdminListen, "SLUICE_API_ADMIN_LISTEN")
	set(&c.Tracing.Endpoint, "SLUICE_TRACING_ENDPOINT")
	duration(&c.Queue.VisibilityTimeout, "SLUICE_QUEUE_VISIBILITY_TIMEOUT", "queue.visibility_timeout")
	duration(&c.Queue.WaitTime, "SLUICE_QUEUE_WAIT_TIME", "queue.wait_time")
	c.applyAlertEnv(get)
	for i := range c.Chains {
		ch, env, at := &c.Chains[i], envChain(c.Chains[i].Name), fmt.Sprintf("chains[%d]", i)
		// SLUICE_CHAIN_<NAME>_RPC replaces a chain's endpoints with a comma-separated list.
		if v := get(env + "RPC"); v != "" {
			ch.RPC = strings.Split(v, ",")
		}
		wei(&ch.Fees.MaxFeePerGas, env+"MAX_FEE_PER_GAS", at+".fees.max_fee_per_gas")
		wei(&ch.Fees.MaxPriorityFee, env+"MAX_PRIORITY_FEE", at+".fees.max_priority_fee")
		wei(&ch.Fees.MinPriorityFee, env+"MIN_PRIORITY_FEE", at+".fees.min_priority_fee")
		parsed(env+"BATCH_CONTRACT", at+".batch_contract", func(v string) (err error) {
			ch.BatchContract, err = ParseAddress(v)
			return err
		})
		// SLUICE_CHAIN_<NAME>_HOT_WALLETS replaces the hot wallets with a comma-separated list.
		if v := get(env + "HOT_WALLETS"); v != "" {
			ch.HotWallets = nil
			for j, s := range strings.Split(v, ",") {
				a, err := ParseAddress(strings.TrimSpace(s))
				if err != nil {
					errs = append(errs, &keyError{fmt.Sprintf("%sHOT_WALLETS (%s.hot_wallets[%d])", env, at, j), err})
					continue
				}
				ch.HotWallets = append(ch.HotWallets, a)
			}
		}
	}
	return errs
}

func (c *Config) applyDefaults() {
	if c.Queue.Backend == "" {
		c.Queue.Backend = "mysql"
	}
	if c.Queue.VisibilityTimeout.Duration == 0 {
		c.Queue.VisibilityTimeout.Duration = 30 * time.Second
	}
	if c.Queue.WaitTime.Duration == 0 {
		c.Queue.WaitTime.Duration = time.Second
	}
	if c.Queue.SQS.Region == "" {
		c.Queue.SQS.Region = "us-east-1"
	}
	if c.Keys.Backend == "" {
		c.Keys.Backend = "keystore"
	}
	if c.Keys.PasswordEnv == "" {
		c.Keys.PasswordEnv = "SLUICE_KEYSTORE_PASSWORD"
	}
	c.Keys.keyDefaults()
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:3000"
	}
	if c.API.BootstrapKeyEnv == "" {
		c.API.BootstrapKeyEnv = "SLUICE_API_KEY"
	}
	if c.API.AdminListen == "" {
		c.API.AdminListen = "127.0.0.1:3001"
	}
	if c.API.AdminJWTKeyEnv == "" {
		c.API.AdminJWTKeyEnv = "SLUICE_ADMIN_JWT_KEY"
	}
	if c.API.AdminApprovalTTL.Duration == 0 {
		c.API.AdminApprovalTTL.Duration = time.Hour
	}
	if c.Database.MaxOpenConns == 0 {
		c.Database.MaxOpenConns = 20
	}
	if c.Metrics.GaugeInterval.Duration == 0 {
		c.Metrics.GaugeInterval.Duration = 15 * time.Second
	}
	if c.Tracing.SampleRatio == 0 {
		c.Tracing.SampleRatio = 1
	}
	if c.Tracing.ServiceName == "" {
		c.Tracing.ServiceName = "sluice"
	}
	defaults := map[string]string{"signer": "127.0.0.1:3002", "monitor": "127.0.0.1:3003", "broadcaster": "127.0.0.1:3004", "accountmgr": "127.0.0.1:3005", "recovery": "127.0.0.1:3006"}
	if c.Services == nil {
		c.Services = map[string]Service{}
	}
	for name, listen := range defaults {
		s := c.Services[name]
		if s.Listen == "" {
			s.Listen = listen
		}
		if s.Concurrency == 0 {
			s.Concurrency = 4
		}
		c.Services[name] = s
	}
	for i := range c.Chains {
		ch := &c.Chains[i]
		if ch.Confirmations == 0 {
			ch.Confirmations = 12
		}
		if ch.BlockTime.Duration == 0 {
			ch.BlockTime.Duration = 2 * time.Second
		}
		if ch.RPCTimeout.Duration == 0 {
			ch.RPCTimeout.Duration = 10 * time.Second
		}
		if ch.FundsDeadline.Duration == 0 {
			ch.FundsDeadline.Duration = time.Hour
		}
		if ch.MaxInFlight == 0 {
			ch.MaxInFlight = 16
		}
		if ch.Fees.BaseFeeMultiplier == 0 {
			ch.Fees.BaseFeeMultiplier = 2
		}
		if !ch.Fees.MaxFeePerGas.IsSet() {
			ch.Fees.MaxFeePerGas = gwei(500)
		}
		if !ch.Fees.MaxPriorityFee.IsSet() {
			ch.Fees.MaxPriorityFee = gwei(100)
		}
		if !ch.Fees.MinPriorityFee.IsSet() {
			ch.Fees.MinPriorityFee = gwei(1)
		}
		b := &ch.Batching
		if b.Enabled == nil {
			on := true
			b.Enabled = &on
		}
		if b.MinBatch == 0 {
			b.MinBatch = 5
		}
		if b.PerTokenThreshold == 0 {
			b.PerTokenThreshold = 3
		}
		if b.MaxWait.Duration == 0 {
			b.MaxWait.Duration = ch.BlockTime.Duration
		}
		if b.GasBudget == 0 {
			b.GasBudget = 15_000_000
		}
		if b.MaxSize == 0 {
			b.MaxSize = 500
		}
		if b.Prefer == "" {
			b.Prefer = "gas"
		}
	}
	c.applyRecoveryDefaults()
	c.applyAccountMgrDefaults()
	c.applyRecipientDefaults()
}

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	if errs := c.validate(); len(errs) > 0 {
		return joinErrors(errs)
	}
	return nil
}

func joinErrors(errs []*keyError) error {
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

func (c *Config) validate() []*keyError {
	var errs []*keyError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &keyError{key, fmt.Errorf(format, args...)})
	}
	if c.Queue.Backend != "mysql" && c.Queue.Backend != "sqs" {
		bad("queue.backend", "%q is not mysql or sqs", c.Queue.Backend)
	}
	c.validateKeys(bad)
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 {
		bad("tracing.sample_ratio", "%v is not in (0, 1]", r)
	}
	if e := c.Tracing.Endpoint; e != "" && !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
		bad("tracing.endpoint", "%q is not an http(s) URL (the collector's OTLP/HTTP address, e.g. http://jaeger:4318)", e)
	}
	if c.Metrics.GaugeInterval.Duration < 0 {
		bad("metrics.gauge_interval", "must be positive")
	}
	if l := c.API.AdminListen; l != AdminOff {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("api.admin_listen", "%q is not host:port (or off)", l)
		} else if l == c.API.Listen {
			bad("api.admin_listen", "%q is api.listen's address too: the admin API needs its own", l)
		}
	}
	if c.API.RateBurst < 0 {
		bad("api.rate_burst", "%d is negative (0 is the default)", c.API.RateBurst)
	}
	if d := c.API.AdminApprovalTTL.Duration; d < time.Minute || d > 7*24*time.Hour {
		bad("api.admin_approval_ttl", "%s is not within 1m..168h", d)
	}
	names := map[string]bool{}
	for i, ch := range c.Chains {
		at := fmt.Sprintf("chains[%d]", i)
		if ch.Name == "" {
			bad(at+".name", "empty")
		}
		if names[ch.Name] {
			bad(at+".name", "%q listed twice", ch.Name)
		}
		names[ch.Name] = true
		if ch.ChainID == 0 {
			bad(at+".chain_id", "missing")
		}
		if len(ch.RPC) == 0 {
			bad(at+".rpc", "no endpoints")
		}
		if b := ch.Batching; b.On() {
			if b.MinBatch < 1 || b.PerTokenThreshold < 1 || b.MaxSize < 1 {
				bad(at+".batching", "min_batch, per_token_threshold and max_size must be at least 1")
			}
			if b.PerTokenThreshold > b.MinBatch {
				bad(at+".batching.per_token_threshold", "%d is above min_batch %d", b.PerTokenThreshold, b.MinBatch)
			}
			if b.MaxSize < b.MinBatch {
				bad(at+".batching.max_size", "%d is below min_batch %d", b.MaxSize, b.MinBatch)
			}
			if b.GasBudget < 100_000 || b.GasBudget > MaxTxGas {
				bad(at+".batching.gas_budget", "%d is not within 100000..%d (EIP-7825 per-transaction cap)", b.GasBudget, MaxTxGas)
			}
			if b.MaxWait.Duration < 0 {
				bad(at+".batching.max_wait", "negative")
			}
			if b.Prefer != "gas" && b.Prefer != "throughput" {
				bad(at+".batching.prefer", "%q is not gas or throughput", b.Prefer)
			}
		}
		syms := map[string]bool{}
		for j, a := range ch.Assets {
			if a.Symbol == "" || syms[a.Symbol] {
				bad(fmt.Sprintf("%s.assets[%d].symbol", at, j), "empty or repeated")
			}
			syms[a.Symbol] = true
			if a.Decimals > 77 {
				bad(fmt.Sprintf("%s.assets[%d].decimals", at, j), "%d is too many", a.Decimals)
			}
			if a.MaxWithdrawal.IsSet() && a.MaxWithdrawal.Int().Sign() <= 0 {
				bad(fmt.Sprintf("%s.assets[%d].max_withdrawal", at, j), "must be above zero (leave it out for no maximum)")
			}
		}
		if ch.MaxInFlight < 1 {
			bad(at+".max_in_flight", "%d is below 1", ch.MaxInFlight)
		}
		if ch.FundsDeadline.Duration < time.Second {
			bad(at+".funds_deadline", "%s is below 1s", ch.FundsDeadline.Duration)
		}
		wallets := map[Address]bool{}
		for j, w := range ch.HotWallets {
			if w.IsZero() {
				bad(fmt.Sprintf("%s.hot_wallets[%d]", at, j), "empty")
			}
			if wallets[w] {
				bad(fmt.Sprintf("%s.hot_wallets[%d]", at, j), "%s listed twice", w.Hex())
			}
			wallets[w] = true
		}
	}
	c.validateRecovery(bad)
	c.validateAccountMgr(bad)
	c.validateRecipientChecks(bad)
	return errs
}

func gwei(n int64) Wei { return Wei{v: new(big.Int).Mul(big.NewInt(n), big.NewInt(1e9))} }

// Chain returns the chain named name.
func (c *Config) Chain(name string) (*Chain, bool) {
	for i := range c.Chains {
		if c.Chains[i].Name == name {
			return &c.Chains[i], true
		}
	}
	return nil, false
}

// Asset returns the asset with symbol sym.
func (ch *Chain) Asset(sym string) (*Asset, bool) {
	for i := range ch.Assets {
		if ch.Assets[i].Symbol == sym {
			return &ch.Assets[i], true
		}
	}
	return nil, false
}

// Webhooks tunes webhook delivery (internal/webhook), which the api service runs.
type Webhooks struct {
	// AllowPrivate accepts endpoints resolving to loopback, private or link-local addresses. Off by
	// default: a client could otherwise make Sluice call into our own network (SSRF).
	AllowPrivate bool `yaml:"allow_private"`
}
