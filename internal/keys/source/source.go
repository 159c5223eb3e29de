// Package source builds the key provider of the signing process from configuration: each wallet
// goes to the backend keys.wallets names for it (keystore, secretsmanager or kms), and wallets not
// listed go to the keystore. Only the signing process (and `sluice keys`) calls Open; the API,
// broadcaster and monitor never hold a key source.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/kms"
	"github.com/sluice-custody/sluice/internal/keys/secretsmanager"
)

// Set is the opened key sources: a keys.Provider routing each wallet to its backend.
type Set struct {
	keys.Provider
	closers []io.Closer
}

func (s *Set) String() string { return fmt.Sprintf("source.Set{%v}", s.Provider) }

// GoString and Format keep %#v and %+v from walking into the backends.
func (s *Set) GoString() string           { return s.String() }
func (s *Set) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// Close wipes every cached key and releases the backends.
func (s *Set) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Options are test and dev hooks; the zero value is production.
type Options struct {
	// Getenv reads the keystore password variable (os.Getenv when nil).
	Getenv func(string) string
	// Keystore options (keys.WithLightScrypt in dev and tests).
	Keystore []keys.KeystoreOption
}

// Open builds the provider for cfg. Nothing secret is fetched here: keys load when a signer is
// asked for. With no keys.wallets it is the keystore alone, exactly as before.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger, m keys.Metrics, o Options) (*Set, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = keys.NopMetrics()
	}
	set := &Set{}
	ok := false
	defer func() {
		if !ok {
			_ = set.Close()
		}
	}()
	var ks *keys.Keystore
	keystore := func() (*keys.Keystore, error) {
		if ks == nil {
			var err error
			opts := append([]keys.KeystoreOption{keys.WithUnlockTTL(cfg.Keys.CacheTTL.Duration)}, o.Keystore...)
			ks, err = keys.NewKeystore(cfg.Keys.Dir, o.Getenv(cfg.Keys.PasswordEnv), opts...)
			if err != nil {
				return nil, fmt.Errorf("open keystore %s: %w", cfg.Keys.Dir, err)
			}
			set.closers = append(set.closers, ks)
		}
		return ks, nil
	}
	if len(cfg.Keys.Wallets) == 0 {
		p, err := keystore()
		if err != nil {
			return nil, err
		}
		set.Provider, ok = p, true
		return set, nil
	}

	routes := map[common.Address]keys.Route{}
	route := func(addr common.Address, backend string, p keys.Provider) error {
		if r, dup := routes[addr]; dup && r.Backend != backend {
			return fmt.Errorf("keys.wallets: %s uses both %s and %s: one wallet, one backend", addr.Hex(), r.Backend, backend)
		}
		routes[addr] = keys.Route{Backend: backend, Provider: p}
		return nil
	}
	var smWallets []secretsmanager.Wallet
	var kmsWallets []kms.Wallet
	kmsKeyOf := map[common.Address]string{}
	for _, w := range cfg.Keys.Wallets {
		addr := common.HexToAddress(w.Address)
		ch, _ := cfg.Chain(w.Chain)
		switch w.Backend {
		case config.KeyBackendSecretsManager:
			smWallets = append(smWallets, secretsmanager.Wallet{Address: addr, ChainID: ch.ChainID, SecretID: w.SecretID})
		case config.KeyBackendKMS:
			if prev, seen := kmsKeyOf[addr]; seen {
				if prev != w.KMSKeyID {
					return nil, fmt.Errorf("keys.wallets: %s names KMS keys %s and %s", addr.Hex(), prev, w.KMSKeyID)
				}
				continue
			}
			kmsKeyOf[addr] = w.KMSKeyID
			kmsWallets = append(kmsWallets, kms.Wallet{Address: addr, KeyID: w.KMSKeyID})
		}
	}
	if len(smWallets) > 0 {
		api, err := SecretsManagerClient(ctx, cfg)
		if err != nil {
			return nil, err
		}
		master, err := Master(ctx, cfg, api)
		if err != nil {
			return nil, err
		}
		if c, isCloser := master.(io.Closer); isCloser {
			set.closers = append(set.closers, c)
		}
		p, err := secretsmanager.New(secretsmanager.Deps{Secrets: api, Master: master, Wallets: smWallets, TTL: cfg.Keys.CacheTTL.Duration}, log, m)
		if err != nil {
			return nil, err
		}
		set.closers = append(set.closers, p)
		for _, w := range smWallets {
			if err := route(w.Address, secretsmanager.Backend, p); err != nil {
				return nil, err
			}
		}
	}
	if len(kmsWallets) > 0 {
		api, err := KMSClient(ctx, cfg)
		if err != nil {
			return nil, err
		}
		p, err := kms.New(kms.Deps{KMS: api, Wallets: kmsWallets}, log, m)
		if err != nil {
			return nil, err
		}
		for _, w := range kmsWallets {
			if err := route(w.Address, kms.Backend, p); err != nil {
				return nil, err
			}
		}
	}
	// Keystore wallets: listed ones, and hot wallets nobody listed.
	var ksAddrs []common.Address
	for _, w := range cfg.Keys.Wallets {
		if w.Backend == config.KeyBackendKeystore {
			ksAddrs = append(ksAddrs, common.HexToAddress(w.Address))
		}
	}
	for _, ch := range cfg.Chains {
		for _, h := range ch.HotWallets {
			if a := h.Common(); !listed(cfg, a) {
				ksAddrs = append(ksAddrs, a)
			}
		}
	}
	for _, a := range ksAddrs {
		p, err := keystore()
		if err != nil {
			return nil, err
		}
		if err := route(a, config.KeyBackendKeystore, p); err != nil {
			return nil, err
		}
	}
	r, err := keys.NewRouter(routes)
	if err != nil {
		return nil, err
	}
	set.Provider, ok = r, true
	return set, nil
}

func listed(cfg *config.Config, a common.Address) bool {
	for _, w := range cfg.Keys.Wallets {
		if common.HexToAddress(w.Address) == a {
			return true
		}
	}
	return false
}

// awsFor returns the SDK settings for a service; an endpoint (a stand-in) gets dummy credentials
// unless the environment provides some, so that dev and tests never reach for instance metadata.
func awsFor(region, endpoint string) keys.AWS {
	a := keys.AWS{Region: region, Endpoint: endpoint}
	if endpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		a.StaticKeyID, a.StaticSecret = "local", "local"
	}
	if a.Region == "" && endpoint != "" {
		a.Region = "us-east-1"
	}
	return a
}

// SecretsManagerClient is the SDK client of keys.secretsmanager.
func SecretsManagerClient(ctx context.Context, cfg *config.Config) (*sm.Client, error) {
	a := awsFor(cfg.Keys.SecretsManager.Region, cfg.Keys.SecretsManager.Endpoint)
	c, err := a.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys.secretsmanager: %w", err)
	}
	return sm.NewFromConfig(c, func(o *sm.Options) { o.BaseEndpoint = a.BaseEndpoint() }), nil
}

// KMSClient is the SDK client of keys.kms.
func KMSClient(ctx context.Context, cfg *config.Config) (*awskms.Client, error) {
	a := awsFor(cfg.Keys.KMS.Region, cfg.Keys.KMS.Endpoint)
	c, err := a.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys.kms: %w", err)
	}
	return awskms.NewFromConfig(c, func(o *awskms.Options) { o.BaseEndpoint = a.BaseEndpoint() }), nil
}

// Master is the master key keys.secretsmanager names. A SecretMaster must be closed by the caller.
func Master(ctx context.Context, cfg *config.Config, api secretsmanager.API) (secretsmanager.MasterKey, error) {
	s := cfg.Keys.SecretsManager
	switch {
	case s.MasterKMSKeyID != "" && s.MasterSecretID == "":
		c, err := KMSClient(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return secretsmanager.NewKMSMaster(c, s.MasterKMSKeyID)
	case s.MasterSecretID != "" && s.MasterKMSKeyID == "":
		return secretsmanager.NewSecretMaster(api, s.MasterSecretID, cfg.Keys.CacheTTL.Duration)
	}
	return nil, errors.New("keys.secretsmanager: set exactly one of master_kms_key_id and master_secret_id")
}
