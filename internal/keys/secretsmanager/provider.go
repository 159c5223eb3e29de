package secretsmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/keys"
)

// Backend is this backend's name in config, errors and metrics.
const Backend = "secretsmanager"

// API is what this backend asks of AWS Secrets Manager (the aws-sdk-go-v2 client satisfies it).
type API interface {
	GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, opts ...func(*sm.Options)) (*sm.GetSecretValueOutput, error)
	CreateSecret(ctx context.Context, in *sm.CreateSecretInput, opts ...func(*sm.Options)) (*sm.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *sm.PutSecretValueInput, opts ...func(*sm.Options)) (*sm.PutSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *sm.DescribeSecretInput, opts ...func(*sm.Options)) (*sm.DescribeSecretOutput, error)
	ListSecrets(ctx context.Context, in *sm.ListSecretsInput, opts ...func(*sm.Options)) (*sm.ListSecretsOutput, error)
}

// Wallet is one wallet's key on one chain: the secret holding it.
type Wallet struct {
	Address  common.Address
	ChainID  uint64
	SecretID string // name or ARN
}

// Deps are the collaborators of a Provider.
type Deps struct {
	Secrets API
	Master  MasterKey
	Wallets []Wallet
	// TTL bounds how long a decrypted key stays in memory (keys.DefaultTTL when zero).
	TTL time.Duration
}

// Provider signs with keys fetched from Secrets Manager when they are needed and forgotten TTL later.
type Provider struct {
	api    API
	master MasterKey
	log    *slog.Logger
	m      keys.Metrics
	byAddr map[common.Address][]Wallet
	cache  *keys.Cache[*keys.SecretKey]
}

var _ keys.Provider = (*Provider)(nil)

// New checks d and builds the provider; nothing is fetched until a signer is asked for. A nil log
// discards; m may be keys.NopMetrics().
func New(d Deps, log *slog.Logger, m keys.Metrics) (*Provider, error) {
	switch {
	case d.Secrets == nil:
		return nil, errors.New("secretsmanager: Deps.Secrets is nil")
	case d.Master == nil:
		return nil, errors.New("secretsmanager: Deps.Master is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = keys.NopMetrics()
	}
	p := &Provider{api: d.Secrets, master: d.Master, log: log, m: m, byAddr: map[common.Address][]Wallet{},
		cache: keys.NewCache[*keys.SecretKey](d.TTL)}
	for i, w := range d.Wallets {
		if w.SecretID == "" || w.ChainID == 0 || w.Address == (common.Address{}) {
			return nil, fmt.Errorf("secretsmanager: Deps.Wallets[%d]: address, chain id and secret id are required", i)
		}
		for _, o := range p.byAddr[w.Address] {
			if o.ChainID == w.ChainID {
				return nil, fmt.Errorf("secretsmanager: Deps.Wallets[%d]: %s on chain %d listed twice", i, w.Address.Hex(), w.ChainID)
			}
		}
		p.byAddr[w.Address] = append(p.byAddr[w.Address], w)
	}
	return p, nil
}

// Addresses lists the configured wallets, sorted.
func (p *Provider) Addresses(context.Context) ([]common.Address, error) {
	out := make([]common.Address, 0, len(p.byAddr))
	for a := range p.byAddr {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b common.Address) int { return a.Cmp(b) })
	return out, nil
}

// Signer loads (or finds cached) every key configured for addr, so that a key that cannot be opened
// is reported before the caller takes a nonce, and returns addr's signer.
func (p *Provider) Signer(ctx context.Context, addr common.Address) (keys.Signer, error) {
	ws := p.byAddr[addr]
	if len(ws) == 0 {
		return nil, keys.Unavailable(addr, Backend, keys.ErrUnknownAddress)
	}
	for _, w := range ws {
		if _, err := p.key(ctx, w); err != nil {
			return nil, err
		}
	}
	return &signer{p: p, addr: addr}, nil
}

func cacheID(w Wallet) string { return strconv.FormatUint(w.ChainID, 10) + "/" + w.Address.Hex() }

// key returns w's decrypted key from the cache or loads it.
func (p *Provider) key(ctx context.Context, w Wallet) (*keys.SecretKey, error) {
	k, err := p.cache.Get(ctx, cacheID(w), func(ctx context.Context) (*keys.SecretKey, error) {
		k, err := Load(ctx, p.api, p.master, w)
		p.m.Load(Backend, err == nil)
		if err != nil {
			p.log.Error("wallet key unavailable", "address", w.Address.Hex(), "chain_id", w.ChainID, "secret", w.SecretID, "err", err)
			return nil, err
		}
		if !k.Locked() {
			p.log.Warn("wallet key memory could not be locked against swapping (RLIMIT_MEMLOCK)", "address", w.Address.Hex())
		}
		p.log.Info("wallet key loaded", "address", w.Address.Hex(), "chain_id", w.ChainID, "secret", w.SecretID, "ttl", p.cache.TTL())
		return k, nil
	})
	if errors.Is(err, keys.ErrClosed) && !errors.Is(err, keys.ErrKeyUnavailable) {
		return nil, keys.Unavailable(w.Address, Backend, err)
	}
	return k, err
}

// Load fetches w's secret (version AWSCURRENT) and opens it; every failure is an Unavailable error
// naming the wallet and the secret.
func Load(ctx context.Context, api API, m MasterKey, w Wallet) (*keys.SecretKey, error) {
	fail := func(err error) error {
		return keys.Unavailable(w.Address, Backend, fmt.Errorf("secret %s, chain %d: %w", w.SecretID, w.ChainID, err))
	}
	out, err := api.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(w.SecretID)})
	if err != nil {
		return nil, fail(keys.SafeCause("GetSecretValue", err))
	}
	if out.SecretString == nil {
		return nil, fail(ErrBadFormat)
	}
	var env Envelope
	if err := json.Unmarshal([]byte(*out.SecretString), &env); err != nil {
		return nil, fail(ErrBadFormat) // the JSON error could quote the value: not passed on
	}
	k, err := Open(ctx, &env, w.Address, w.ChainID, m)
	if err != nil {
		return nil, fail(err)
	}
	return k, nil
}

// Close wipes every cached key; signers fail afterwards. The master key belongs to the caller, who
// closes it (a SecretMaster caches the master key).
func (p *Provider) Close() error {
	p.cache.Close()
	return nil
}

// Cached is the number of decrypted keys in memory (tests, and the process-role check).
func (p *Provider) Cached() int { return p.cache.Len() }

func (p *Provider) String() string {
	return fmt.Sprintf("secretsmanager.Provider{wallets: %d, ttl: %s, keys: %s}", len(p.byAddr), p.cache.TTL(), "[REDACTED]")
}
func (p *Provider) GoString() string           { return p.String() }
func (p *Provider) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }
func (p *Provider) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", Backend), slog.Int("wallets", len(p.byAddr)))
}

type signer struct {
	p    *Provider
	addr common.Address
}

func (s *signer) Address() common.Address { return s.addr }

// SignTx signs with the key for chainID, reloading it if its TTL ran out since Signer.
func (s *signer) SignTx(ctx context.Context, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if chainID == nil || !chainID.IsUint64() {
		return nil, fmt.Errorf("keys: sign for %s: a positive chain id is required", s.addr.Hex())
	}
	i := slices.IndexFunc(s.p.byAddr[s.addr], func(w Wallet) bool { return w.ChainID == chainID.Uint64() })
	if i < 0 {
		return nil, keys.Unavailable(s.addr, Backend, fmt.Errorf("%w on chain %d", keys.ErrUnknownAddress, chainID.Uint64()))
	}
	w := s.p.byAddr[s.addr][i]
	for attempt := 0; ; attempt++ {
		k, err := s.p.key(ctx, w)
		if err != nil {
			return nil, err
		}
		signed, err := keys.SignTx(tx, chainID, s.addr, k.SignHash)
		if errors.Is(err, keys.ErrDestroyed) && attempt == 0 {
			continue // expired between the lookup and the signature: load once more
		}
		if errors.Is(err, keys.ErrDestroyed) || errors.Is(err, keys.ErrClosed) {
			return nil, keys.Unavailable(s.addr, Backend, err)
		}
		return signed, err
	}
}

func (s *signer) String() string {
	return fmt.Sprintf("keys.Signer{backend: %s, address: %s, key: [REDACTED]}", Backend, s.addr.Hex())
}
func (s *signer) GoString() string           { return s.String() }
func (s *signer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
func (s *signer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", Backend), slog.String("address", s.addr.Hex()), slog.String("key", "[REDACTED]"))
}
