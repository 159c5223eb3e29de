package source_test

// Secrets Manager is played by smstub, an in-repo stand-in for AWS (no emulator is reachable from
// here); KMS is nsmithuk/local-kms in-process. Both are reached through the real aws-sdk-go-v2
// clients built from configuration, exactly as in production except for the endpoints.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/keystest"
	"github.com/sluice-custody/sluice/internal/keys/source"
)

const chainID = 31337

type fixture struct {
	cfg                        *config.Config
	smAddr, kmsAddr, ksAddr    common.Address
	unlistedHot, strangerInKey common.Address
}

// newFixture stores one wallet in each backend and returns the configuration naming them.
func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	custody := keystest.Start(tb)
	dir := tb.TempDir()
	cfg := &config.Config{Chains: []config.Chain{{Name: "dev", ChainID: chainID, RPC: []string{"http://127.0.0.1:1"}}}}
	cfg.Keys.Dir = dir
	cfg.Keys.PasswordEnv = "TEST_KS_PASSWORD"
	custody.Configure(cfg)
	smKey, _ := crypto.GenerateKey()
	kmsKey, _ := crypto.GenerateKey()
	f := &fixture{cfg: cfg, smAddr: crypto.PubkeyToAddress(smKey.PublicKey), kmsAddr: crypto.PubkeyToAddress(kmsKey.PublicKey)}
	ks, err := keys.NewKeystore(dir, "pw", keys.WithLightScrypt())
	if err != nil {
		tb.Fatal(err)
	}
	f.ksAddr, _ = ks.NewAccount()
	f.unlistedHot, _ = ks.NewAccount()
	f.strangerInKey, _ = ks.NewAccount()
	ks.Close()
	cfg.Chains[0].HotWallets = []config.Address{config.Address(f.unlistedHot)}
	cfg.Keys.Wallets = []config.WalletKey{
		custody.SecretsManagerWallet(tb, "dev", chainID, "sluice/dev/hot", smKey),
		custody.KMSWallet(tb, "dev", kmsKey),
		{Chain: "dev", Address: f.ksAddr.Hex(), Backend: "keystore"},
	}
	if err := cfg.Finish(); err != nil {
		tb.Fatal(err)
	}
	return f
}

func open(tb testing.TB, cfg *config.Config) *source.Set {
	tb.Helper()
	set, err := source.Open(context.Background(), cfg, nil, nil, source.Options{
		Getenv: func(string) string { return "pw" }, Keystore: []keys.KeystoreOption{keys.WithLightScrypt()}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { set.Close() })
	return set
}

func sign(tb testing.TB, p keys.Provider, addr common.Address, nonce uint64) error {
	ctx := context.Background()
	s, err := p.Signer(ctx, addr)
	if err != nil {
		return err
	}
	to := common.Address{0xaa}
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(chainID), Nonce: nonce, Gas: 21000, To: &to, GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1e9)})
	signed, err := s.SignTx(ctx, tx, big.NewInt(chainID))
	if err != nil {
		return err
	}
	if from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(chainID)), signed); err != nil || from != addr {
		return fmt.Errorf("recovered %s, %v", from.Hex(), err)
	}
	return nil
}

func TestOpenRoutesEachWalletToItsBackend(t *testing.T) {
	f := newFixture(t)
	set := open(t, f.cfg)
	for _, a := range []common.Address{f.smAddr, f.kmsAddr, f.ksAddr, f.unlistedHot} {
		if err := sign(t, set, a, 1); err != nil {
			t.Fatalf("%s: %v", a.Hex(), err)
		}
	}
	// A key that happens to sit in the keystore but is no configured wallet is not used.
	if err := sign(t, set, f.strangerInKey, 1); !errors.Is(err, keys.ErrUnknownAddress) || !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Fatalf("unconfigured keystore key: %v", err)
	}
	r := set.Provider.(*keys.Router)
	if r.Backend(f.smAddr) != "secretsmanager" || r.Backend(f.kmsAddr) != "kms" || r.Backend(f.unlistedHot) != "keystore" {
		t.Fatal("backends")
	}
	// One wallet, one backend.
	bad := *f.cfg
	bad.Chains = append([]config.Chain{}, f.cfg.Chains...)
	bad.Chains = append(bad.Chains, config.Chain{Name: "dev2", ChainID: 5, RPC: []string{"x"}})
	bad.Keys.Wallets = append(append([]config.WalletKey{}, f.cfg.Keys.Wallets...), config.WalletKey{Chain: "dev2", Address: f.smAddr.Hex(), Backend: "keystore"})
	if _, err := source.Open(context.Background(), &bad, nil, nil, source.Options{Getenv: func(string) string { return "pw" }}); err == nil {
		t.Fatal("a wallet with two backends was accepted")
	}
	// No wallets listed: the keystore alone, as before this backend existed (sluice dev).
	plain := *f.cfg
	plain.Keys.Wallets = nil
	ps := open(t, &plain)
	if _, ok := ps.Provider.(*keys.Keystore); !ok {
		t.Fatalf("provider %T, want the keystore", ps.Provider)
	}
	if err := sign(t, ps, f.strangerInKey, 1); err != nil {
		t.Fatal(err)
	}
}

// The opened set, with keys loaded from every backend, prints as a summary under every fmt verb and
// slog handler: no SDK client (with its credentials), cache or key is walked into.
func TestSetPrintsNothingInside(t *testing.T) {
	f := newFixture(t)
	set := open(t, f.cfg)
	for _, a := range []common.Address{f.smAddr, f.kmsAddr, f.ksAddr} {
		if err := sign(t, set, a, 1); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		fmt.Fprintf(&out, verb+"\n", set)
		fmt.Fprintf(&out, verb+"\n", set.Provider)
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("keys", "set", set, "provider", set.Provider)
	slog.New(slog.NewTextHandler(&out, nil)).Info("keys", "set", set, "provider", set.Provider)
	for _, banned := range []string{"Credentials", "SecretAccessKey", "local", "0x", "Secret{"} {
		if strings.Contains(out.String(), banned) {
			t.Fatalf("output contains %q:\n%s", banned, out.String())
		}
	}
	if !strings.Contains(out.String(), "keys.Router{wallets: 4}") {
		t.Fatalf("output:\n%s", out.String())
	}
}

// BenchmarkSign reports signatures per second per backend, each through Provider.Signer + SignTx as
// the signer calls them: keystore (key unlocked once), secretsmanager with a warm cache (no AWS call
// per signature), and kms against local-kms (one Sign round trip per signature, on loopback).
func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	set := open(b, f.cfg)
	for _, c := range []struct {
		name string
		addr common.Address
	}{{"keystore", f.ksAddr}, {"secretsmanager-warm", f.smAddr}, {"kms-localkms", f.kmsAddr}} {
		b.Run(c.name, func(b *testing.B) {
			if err := sign(b, set, c.addr, 0); err != nil { // warm up: unlock / load / verify
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := sign(b, set, c.addr, uint64(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
		})
	}
}
