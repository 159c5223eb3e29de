// Package config owns Sluice's configuration: one YAML file listing backends and chains, with
// environment overrides for what differs per deployment (DSNs, endpoints, secrets' locations).
package config

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
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
}

// Service holds per-service settings.
type Service struct {
	Listen      string `yaml:"listen"`
	Concurrency int    `yaml:"concurrency"`
}

// Chain is one EVM chain.
type Chain struct {
	Name          string   `yaml:"name"`
	ChainID       uint64   `yaml:"chain_id"`
	RPC           []string `yaml:"rpc"`
	Confirmations uint64   `yaml:"confirmations"`
	BlockTime     Duration `yaml:"block_time"`
	RPCTimeout    Duration `yaml:"rpc_timeout"`
	Fees          Fees     `yaml:"fees"`
	Multicall3    string   `yaml:"multicall3"`
	BatchContract string   `yaml:"batch_contract"`
	Assets        []Asset  `yaml:"assets"`
	HotWallets    []string `yaml:"hot_wallets"`
	Batching      Batching `yaml:"batching"`
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

// Fees caps what the signer pays; values in wei as decimal strings (so caps above 2^64 can be written).
type Fees struct {
	MaxFeePerGas      string `yaml:"max_fee_per_gas"`
	MaxPriorityFee    string `yaml:"max_priority_fee"`
	MinPriorityFee    string `yaml:"min_priority_fee"`
	BaseFeeMultiplier int    `yaml:"base_fee_multiplier"` // max fee = base fee × this + tip
}

// Asset is a coin or token on a chain. Address is empty for the native coin.
type Asset struct {
	Symbol   string `yaml:"symbol"`
	Decimals uint8  `yaml:"decimals"`
	Address  string `yaml:"address"`
}

// Native reports whether the asset is the chain's own coin.
func (a Asset) Native() bool { return a.Address == "" }

// Duration reads "2s"-style strings.
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: %w", n.Line, n.Value, err)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Load reads path (if not empty), applies environment overrides and defaults, and validates.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := yaml.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("parse config %s: %w", path, err)
		}
	}
	c.applyEnv(os.Getenv)
	if err := c.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// Finish fills in defaults and validates; for configurations built in code.
func (c *Config) Finish() error {
	c.applyDefaults()
	return c.Validate()
}

func (c *Config) applyEnv(get func(string) string) {
	set := func(dst *string, name string) {
		if v := get(name); v != "" {
			*dst = v
		}
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
	for i := range c.Chains {
		// SLUICE_CHAIN_<NAME>_RPC replaces a chain's endpoints with a comma-separated list.
		name := "SLUICE_CHAIN_" + strings.ToUpper(strings.ReplaceAll(c.Chains[i].Name, "-", "_")) + "_RPC"
		if v := get(name); v != "" {
			c.Chains[i].RPC = strings.Split(v, ",")
		}
	}
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
	if c.Database.MaxOpenConns == 0 {
		c.Database.MaxOpenConns = 20
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
		if ch.Fees.BaseFeeMultiplier == 0 {
			ch.Fees.BaseFeeMultiplier = 2
		}
		if ch.Fees.MaxFeePerGas == "" {
			ch.Fees.MaxFeePerGas = "500000000000" // 500 gwei
		}
		if ch.Fees.MaxPriorityFee == "" {
			ch.Fees.MaxPriorityFee = "100000000000" // 100 gwei
		}
		if ch.Fees.MinPriorityFee == "" {
			ch.Fees.MinPriorityFee = "1000000000" // 1 gwei
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
}

// Validate reports every problem at once, naming each field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Queue.Backend != "mysql" && c.Queue.Backend != "sqs" {
		bad("queue.backend: %q is not mysql or sqs", c.Queue.Backend)
	}
	c.validateKeys(bad)
	names := map[string]bool{}
	for i, ch := range c.Chains {
		at := fmt.Sprintf("chains[%d]", i)
		if ch.Name == "" {
			bad("%s.name: empty", at)
		}
		if names[ch.Name] {
			bad("%s.name: %q listed twice", at, ch.Name)
		}
		names[ch.Name] = true
		if ch.ChainID == 0 {
			bad("%s.chain_id: missing", at)
		}
		if len(ch.RPC) == 0 {
			bad("%s.rpc: no endpoints", at)
		}
		for _, f := range []struct{ name, v string }{{"max_fee_per_gas", ch.Fees.MaxFeePerGas}, {"max_priority_fee", ch.Fees.MaxPriorityFee}, {"min_priority_fee", ch.Fees.MinPriorityFee}} {
			if _, ok := new(big.Int).SetString(f.v, 10); !ok {
				bad("%s.fees.%s: %q is not a whole number of wei", at, f.name, f.v)
			}
		}
		for _, a := range []struct{ name, v string }{{"multicall3", ch.Multicall3}, {"batch_contract", ch.BatchContract}} {
			if a.v != "" && !common.IsHexAddress(a.v) {
				bad("%s.%s: %q is not an address", at, a.name, a.v)
			}
		}
		if b := ch.Batching; b.On() {
			if b.MinBatch < 1 || b.PerTokenThreshold < 1 || b.MaxSize < 1 {
				bad("%s.batching: min_batch, per_token_threshold and max_size must be at least 1", at)
			}
			if b.PerTokenThreshold > b.MinBatch {
				bad("%s.batching.per_token_threshold: %d is above min_batch %d", at, b.PerTokenThreshold, b.MinBatch)
			}
			if b.MaxSize < b.MinBatch {
				bad("%s.batching.max_size: %d is below min_batch %d", at, b.MaxSize, b.MinBatch)
			}
			if b.GasBudget < 100_000 || b.GasBudget > MaxTxGas {
				bad("%s.batching.gas_budget: %d is not within 100000..%d (EIP-7825 per-transaction cap)", at, b.GasBudget, MaxTxGas)
			}
			if b.MaxWait.Duration < 0 {
				bad("%s.batching.max_wait: negative", at)
			}
			if b.Prefer != "gas" && b.Prefer != "throughput" {
				bad("%s.batching.prefer: %q is not gas or throughput", at, b.Prefer)
			}
		}
		syms := map[string]bool{}
		for j, a := range ch.Assets {
			if a.Symbol == "" || syms[a.Symbol] {
				bad("%s.assets[%d].symbol: empty or repeated", at, j)
			}
			syms[a.Symbol] = true
			if a.Address != "" && !common.IsHexAddress(a.Address) {
				bad("%s.assets[%d].address: %q is not an address", at, j, a.Address)
			}
			if a.Decimals > 77 {
				bad("%s.assets[%d].decimals: %d is too many", at, j, a.Decimals)
			}
		}
		for j, w := range ch.HotWallets {
			if !common.IsHexAddress(w) {
				bad("%s.hot_wallets[%d]: %q is not an address", at, j, w)
			}
		}
	}
	return errors.Join(errs...)
}

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

// Wei parses one of the fee settings (validated at load).
func Wei(s string) *big.Int {
	v, _ := new(big.Int).SetString(s, 10)
	return v
}
