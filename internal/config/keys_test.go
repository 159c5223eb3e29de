package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const keysYAML = `
keys:
  backend: keystore
  dir: /var/lib/sluice/keystore
  cache_ttl: 2m
  secretsmanager:
    region: us-east-1
    master_kms_key_id: alias/sluice-master
  kms:
    region: us-east-1
  wallets:
    - {chain: polygon, address: "0x00000000000000000000000000000000000000a1", backend: secretsmanager, secret_id: sluice/prod/polygon/hot-1}
    - {chain: polygon, address: "0x00000000000000000000000000000000000000a2", backend: kms, kms_key_id: alias/sluice-polygon-main}
    - {chain: amoy, address: "0x00000000000000000000000000000000000000a1", backend: keystore}
chains:
  - {name: polygon, chain_id: 137, rpc: ["http://x"]}
  - {name: amoy, chain_id: 80002, rpc: ["http://y"]}
`

func loadString(t *testing.T, y string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func TestKeySourcesLoad(t *testing.T) {
	t.Setenv("SLUICE_KMS_ENDPOINT", "http://127.0.0.1:4599")
	c, err := loadString(t, keysYAML)
	if err != nil {
		t.Fatal(err)
	}
	k := c.Keys
	if k.Dir != "/var/lib/sluice/keystore" || k.CacheTTL.Duration != 2*time.Minute || k.SecretsManager.MasterKMSKeyID != "alias/sluice-master" ||
		k.KMS.Endpoint != "http://127.0.0.1:4599" || len(k.Wallets) != 3 || k.Wallets[1].KMSKeyID != "alias/sluice-polygon-main" {
		t.Fatalf("keys: %+v", k)
	}
	if ws := k.WalletKeys("polygon"); len(ws) != 2 || ws[0].SecretID != "sluice/prod/polygon/hot-1" {
		t.Fatalf("polygon wallets %+v", ws)
	}
	// Default TTL.
	c, err = loadString(t, "chains: []\n")
	if err != nil || c.Keys.CacheTTL.Duration != 5*time.Minute {
		t.Fatalf("default ttl: %v %v", c.Keys.CacheTTL, err)
	}
}

func TestKeySourcesValidation(t *testing.T) {
	bad := strings.NewReplacer(
		"backend: kms, kms_key_id: alias/sluice-polygon-main", "backend: kms",
		"chain: amoy", "chain: mainnet",
		"secret_id: sluice/prod/polygon/hot-1", "secret_id: ''",
		"master_kms_key_id: alias/sluice-master", "master_kms_key_id: alias/sluice-master\n    master_secret_id: sluice/master",
		`address: "0x00000000000000000000000000000000000000a2"`, `address: "0xnope"`,
	).Replace(keysYAML) + "  \n"
	bad = strings.Replace(bad, "backend: keystore}", "backend: vault}", 1)
	_, err := loadString(t, bad)
	if err == nil {
		t.Fatal("bad keys section accepted")
	}
	for _, want := range []string{"keys.wallets[1].kms_key_id", "keys.wallets[2].chain", "keys.wallets[0].secret_id",
		"keys.secretsmanager: set exactly one", "keys.wallets[1].address", "keys.wallets[2].backend"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}
