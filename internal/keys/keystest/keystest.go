// Package keystest puts test wallets' keys where production keeps them, for integration and e2e
// tests: a Secrets Manager stand-in (smstub: no emulator is reachable from the build machines) with a
// local-kms master key, and local-kms signing keys. Tests then open the key source from configuration
// (source.Open) exactly as the signer does in production, with only the endpoints pointing here.
package keystest

import (
	"context"
	"crypto/ecdsa"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/kmstest"
	"github.com/sluice-custody/sluice/internal/keys/secretsmanager"
	"github.com/sluice-custody/sluice/internal/keys/smstub"
)

// Custody is a running Secrets Manager stand-in and local-kms, with a KMS master key.
type Custody struct {
	SM          *smstub.Server
	SMURL       string
	KMS         *kmstest.Server
	MasterKeyID string

	sm     secretsmanager.API
	master secretsmanager.MasterKey
}

// Start runs both services for the test's lifetime.
func Start(t testing.TB) *Custody {
	t.Helper()
	c := &Custody{SM: smstub.New(), KMS: kmstest.Start(t)}
	ts := c.SM.Start()
	t.Cleanup(ts.Close)
	c.SMURL = ts.URL
	ctx := context.Background()
	a := keys.AWS{Region: "us-east-1", StaticKeyID: "test", StaticSecret: "test"}
	cfg, err := a.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kc := awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.BaseEndpoint = aws.String(c.KMS.URL) })
	out, err := kc.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("sluice test master key")})
	if err != nil {
		t.Fatalf("keystest: master key: %v", err)
	}
	c.MasterKeyID = aws.ToString(out.KeyMetadata.KeyId)
	c.sm = c.SecretsManagerClient(t)
	if c.master, err = secretsmanager.NewKMSMaster(kc, c.MasterKeyID); err != nil {
		t.Fatal(err)
	}
	return c
}

// SecretsManagerClient is an SDK client of the stand-in.
func (c *Custody) SecretsManagerClient(t testing.TB) secretsmanager.API {
	a := keys.AWS{Region: "us-east-1", StaticKeyID: "test", StaticSecret: "test", Endpoint: c.SMURL}
	cfg, err := a.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sm.NewFromConfig(cfg, func(o *sm.Options) { o.BaseEndpoint = a.BaseEndpoint() })
}

// Configure points cfg's keys sections at these services (call before cfg.Finish, or Finish again).
func (c *Custody) Configure(cfg *config.Config) {
	cfg.Keys.SecretsManager = config.SecretsManagerKeys{Region: "us-east-1", Endpoint: c.SMURL, MasterKMSKeyID: c.MasterKeyID}
	cfg.Keys.KMS = config.KMSKeys{Region: "us-east-1", Endpoint: c.KMS.URL}
}

// SecretsManagerWallet stores key, doubly encrypted, as secret secretID for chain and returns the
// wallet's configuration entry.
func (c *Custody) SecretsManagerWallet(t testing.TB, chain string, chainID uint64, secretID string, key *ecdsa.PrivateKey) config.WalletKey {
	t.Helper()
	sk, err := keys.SecretKeyFrom(crypto.FromECDSA(key))
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Destroy()
	if _, err := secretsmanager.Create(context.Background(), c.sm, c.master, secretID, chainID, sk); err != nil {
		t.Fatal(err)
	}
	return config.WalletKey{Chain: chain, Address: sk.Address().Hex(), Backend: config.KeyBackendSecretsManager, SecretID: secretID}
}

// KMSWallet puts key behind local-kms (so a funded account can sign through KMS) and returns the
// wallet's configuration entry.
func (c *Custody) KMSWallet(t testing.TB, chain string, key *ecdsa.PrivateKey) config.WalletKey {
	t.Helper()
	id := c.KMS.ImportSecp256k1(t, key)
	return config.WalletKey{Chain: chain, Address: crypto.PubkeyToAddress(key.PublicKey).Hex(), Backend: config.KeyBackendKMS, KMSKeyID: id}
}
