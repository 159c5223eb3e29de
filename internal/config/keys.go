package config

import (
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Key backends a wallet can use.
const (
	KeyBackendKeystore       = "keystore"
	KeyBackendSecretsManager = "secretsmanager"
	KeyBackendKMS            = "kms"
)

// KeySources chooses, per wallet, where its key comes from (inlined into Keys). Wallets not listed
// use keys.backend (the keystore).
type KeySources struct {
	// CacheTTL bounds how long a decrypted key stays in the signer's memory (default 5m).
	CacheTTL       Duration           `yaml:"cache_ttl"`
	SecretsManager SecretsManagerKeys `yaml:"secretsmanager"`
	KMS            KMSKeys            `yaml:"kms"`
	Wallets        []WalletKey        `yaml:"wallets,omitempty"`
}

// SecretsManagerKeys reaches AWS Secrets Manager and names the master key that wraps data keys:
// exactly one of MasterKMSKeyID (a symmetric KMS key, reached with the kms settings) and
// MasterSecretID (a second secret holding a 32-byte master key, for setups without KMS).
type SecretsManagerKeys struct {
	Region         string `yaml:"region"`
	Endpoint       string `yaml:"endpoint"` // only for a stand-in; empty in production
	MasterKMSKeyID string `yaml:"master_kms_key_id"`
	MasterSecretID string `yaml:"master_secret_id"`
}

// KMSKeys reaches AWS KMS (asymmetric signing keys and the symmetric master key).
type KMSKeys struct {
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"` // only for local-kms; empty in production
}

// WalletKey is one wallet on one chain and where its key is.
type WalletKey struct {
	Chain    string `yaml:"chain"`
	Address  string `yaml:"address"`
	Backend  string `yaml:"backend"`    // keystore, secretsmanager or kms
	SecretID string `yaml:"secret_id"`  // secretsmanager: the secret's name or ARN
	KMSKeyID string `yaml:"kms_key_id"` // kms: key id, ARN or alias of an ECC_SECG_P256K1 key
}

func (k *Keys) applyKeyEnv(get func(string) string) {
	if v := get("SLUICE_SECRETSMANAGER_ENDPOINT"); v != "" {
		k.SecretsManager.Endpoint = v
	}
	if v := get("SLUICE_KMS_ENDPOINT"); v != "" {
		k.KMS.Endpoint = v
	}
}

func (k *Keys) keyDefaults() {
	if k.CacheTTL.Duration == 0 {
		k.CacheTTL.Duration = 5 * time.Minute
	}
}

// validateKeys names every bad field of the keys section.
func (c *Config) validateKeys(bad func(key, format string, args ...any)) {
	k := &c.Keys
	if k.Backend != KeyBackendKeystore {
		bad("keys.backend", "%q is not keystore (per-wallet backends go under keys.wallets)", k.Backend)
	}
	if k.CacheTTL.Duration < time.Second {
		bad("keys.cache_ttl", "%s is below 1s", k.CacheTTL.Duration)
	}
	usesSM := false
	seen := map[string]bool{}
	for i, w := range k.Wallets {
		at := fmt.Sprintf("keys.wallets[%d]", i)
		if _, ok := c.Chain(w.Chain); !ok {
			bad(at+".chain", "%q is not a configured chain", w.Chain)
		}
		if !common.IsHexAddress(w.Address) {
			bad(at+".address", "%q is not an address", w.Address)
		}
		id := w.Chain + "/" + common.HexToAddress(w.Address).Hex()
		if seen[id] {
			bad(at, "%s on %s listed twice", w.Address, w.Chain)
		}
		seen[id] = true
		switch w.Backend {
		case KeyBackendKeystore:
		case KeyBackendSecretsManager:
			usesSM = true
			if w.SecretID == "" {
				bad(at+".secret_id", "required for backend secretsmanager")
			}
		case KeyBackendKMS:
			if w.KMSKeyID == "" {
				bad(at+".kms_key_id", "required for backend kms")
			}
		default:
			bad(at+".backend", "%q is not keystore, secretsmanager or kms", w.Backend)
		}
	}
	if sm := k.SecretsManager; usesSM && (sm.MasterKMSKeyID == "") == (sm.MasterSecretID == "") {
		bad("keys.secretsmanager", "set exactly one of master_kms_key_id and master_secret_id")
	}
}

// WalletKeys returns the wallets configured on chain.
func (k *Keys) WalletKeys(chain string) []WalletKey {
	var out []WalletKey
	for _, w := range k.Wallets {
		if w.Chain == chain {
			out = append(out, w)
		}
	}
	return out
}
