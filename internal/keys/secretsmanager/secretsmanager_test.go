package secretsmanager_test

// Secrets Manager is played by smstub, an in-repo stand-in for AWS: no Secrets Manager emulator is
// reachable from the machines these tests run on. It speaks the JSON 1.1 protocol of the real service
// and the code under test talks to it through the real aws-sdk-go-v2 client, only the endpoint
// differs. KMS (the master key that wraps data keys) is nsmithuk/local-kms, run in-process.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/kmstest"
	"github.com/sluice-custody/sluice/internal/keys/secretsmanager"
	"github.com/sluice-custody/sluice/internal/keys/smstub"
	"github.com/sluice-custody/sluice/internal/txerr"
)

const chainID = 31337

type env struct {
	stub *smstub.Server
	sm   *sm.Client
	kms  *awskms.Client
	// masters: one KMS key and one master secret, both usable.
	kmsMaster    *secretsmanager.KMSMaster
	secretMaster *secretsmanager.SecretMaster
	kmsKeyID     string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{stub: smstub.New()}
	ts := e.stub.Start()
	t.Cleanup(ts.Close)
	e.sm = smClient(t, ts.URL)
	e.kms = kmsClient(t, kmstest.Start(t).URL)
	out, err := e.kms.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: kmstypes.KeySpecSymmetricDefault})
	if err != nil {
		t.Fatalf("local-kms symmetric key: %v", err)
	}
	e.kmsKeyID = aws.ToString(out.KeyMetadata.KeyId)
	if e.kmsMaster, err = secretsmanager.NewKMSMaster(e.kms, e.kmsKeyID); err != nil {
		t.Fatal(err)
	}
	if err := secretsmanager.CreateMasterSecret(ctx, e.sm, "sluice/master"); err != nil {
		t.Fatal(err)
	}
	if e.secretMaster, err = secretsmanager.NewSecretMaster(e.sm, "sluice/master", time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.secretMaster.Close() })
	return e
}

func awsCfg(t testing.TB, endpoint string) (aws.Config, *string) {
	a := keys.AWS{Region: "us-east-1", Endpoint: endpoint, StaticKeyID: "test", StaticSecret: "test"}
	cfg, err := a.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg, a.BaseEndpoint()
}

func smClient(t testing.TB, endpoint string) *sm.Client {
	cfg, ep := awsCfg(t, endpoint)
	return sm.NewFromConfig(cfg, func(o *sm.Options) { o.BaseEndpoint = ep; o.RetryMaxAttempts = 1 })
}

func kmsClient(t testing.TB, endpoint string) *awskms.Client {
	cfg, ep := awsCfg(t, endpoint)
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.BaseEndpoint = ep; o.RetryMaxAttempts = 1 })
}

// testKey is a wallet key the test knows, so that outputs can be searched for it.
type testKey struct {
	ecdsa *ecdsa.PrivateKey
	addr  common.Address
}

func newTestKey(t testing.TB) testKey {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return testKey{ecdsa: k, addr: crypto.PubkeyToAddress(k.PublicKey)}
}

func (k testKey) secret(t testing.TB) *keys.SecretKey {
	sk, err := keys.SecretKeyFrom(crypto.FromECDSA(k.ecdsa))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// encodings are the forms a leaked key would take.
func (k testKey) encodings() []string {
	raw := crypto.FromECDSA(k.ecdsa)
	h := hex.EncodeToString(raw)
	return []string{h, "0x" + h, strings.ToUpper(h), base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw), base64.URLEncoding.EncodeToString(raw), k.ecdsa.D.String()}
}

func noKey(t testing.TB, what, s string, ks ...testKey) {
	t.Helper()
	for _, k := range ks {
		for _, enc := range k.encodings() {
			if strings.Contains(s, enc) {
				t.Fatalf("%s contains a private key (%q…): %s", what, enc[:8], s)
			}
		}
	}
}

func store(t testing.TB, e *env, m secretsmanager.MasterKey, id string, k testKey) {
	t.Helper()
	sk := k.secret(t)
	defer sk.Destroy()
	if _, err := secretsmanager.Create(context.Background(), e.sm, m, id, chainID, sk); err != nil {
		t.Fatal(err)
	}
}

func dynamicTx(nonce uint64) *types.Transaction {
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	return types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(chainID), Nonce: nonce, GasTipCap: big.NewInt(1e9),
		GasFeeCap: big.NewInt(50e9), Gas: 21000, To: &to, Value: big.NewInt(12345)})
}

func signAndRecover(t testing.TB, p keys.Provider, addr common.Address) {
	t.Helper()
	ctx := context.Background()
	s, err := p.Signer(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := s.SignTx(ctx, dynamicTx(3), big.NewInt(chainID))
	if err != nil {
		t.Fatal(err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(chainID)), signed)
	if err != nil || from != addr {
		t.Fatalf("recovered %s, %v; want %s", from.Hex(), err, addr.Hex())
	}
}

// loads counts key loads like the alerting metric does.
type loads struct {
	mu     sync.Mutex
	ok, ko int
}

func (l *loads) Load(_ string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		l.ok++
	} else {
		l.ko++
	}
}

func TestSignWithEitherMasterKey(t *testing.T) {
	e := newEnv(t)
	for _, m := range []secretsmanager.MasterKey{e.kmsMaster, e.secretMaster} {
		t.Run(fmt.Sprint(m), func(t *testing.T) {
			k := newTestKey(t)
			id := "sluice/hot/" + k.addr.Hex()
			store(t, e, m, id, k)

			// The stored value is doubly encrypted: no form of the key is in it, and it names the
			// wallet, the chain, the cipher and the master key.
			out, err := e.sm.GetSecretValue(context.Background(), &sm.GetSecretValueInput{SecretId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			noKey(t, "secret value", *out.SecretString, k)
			var envl secretsmanager.Envelope
			if err := json.Unmarshal([]byte(*out.SecretString), &envl); err != nil {
				t.Fatal(err)
			}
			if envl.Address != k.addr || envl.ChainID != chainID || envl.Cipher != "AES-256-GCM" || envl.Format != 1 || envl.DataKey.MasterKeyID == "" {
				t.Fatalf("envelope %+v", envl)
			}

			p, err := secretsmanager.New(secretsmanager.Deps{Secrets: e.sm, Master: m,
				Wallets: []secretsmanager.Wallet{{Address: k.addr, ChainID: chainID, SecretID: id}}}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			signAndRecover(t, p, k.addr)
			// Signing for a chain the wallet has no secret for is refused, not signed with another key.
			s, _ := p.Signer(context.Background(), k.addr)
			tx1 := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(1)})
			if _, err := s.SignTx(context.Background(), tx1, big.NewInt(1)); !errors.Is(err, keys.ErrKeyUnavailable) {
				t.Fatalf("chain 1: %v", err)
			}
		})
	}
}

// Just in time: nothing is fetched before a signer is asked for; the key is fetched once per TTL,
// destroyed when the TTL runs out, fetched again on the next signature, and wiped on Close.
func TestKeysLiveOnlyForTheirTTL(t *testing.T) {
	e := newEnv(t)
	k := newTestKey(t)
	store(t, e, e.kmsMaster, "w", k)
	base := e.stub.Calls("GetSecretValue")
	p, err := secretsmanager.New(secretsmanager.Deps{Secrets: e.sm, Master: e.kmsMaster, TTL: 300 * time.Millisecond,
		Wallets: []secretsmanager.Wallet{{Address: k.addr, ChainID: chainID, SecretID: "w"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cached() != 0 || e.stub.Calls("GetSecretValue") != base {
		t.Fatal("keys fetched before they were needed")
	}
	// Concurrent first use shares one load.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { signAndRecover(t, p, k.addr) })
	}
	wg.Wait()
	signAndRecover(t, p, k.addr)
	if got := e.stub.Calls("GetSecretValue") - base; got != 1 || p.Cached() != 1 {
		t.Fatalf("%d fetches, %d cached; want 1 and 1", got, p.Cached())
	}
	s, _ := p.Signer(context.Background(), k.addr)
	deadline := time.Now().Add(3 * time.Second)
	for p.Cached() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("key still cached after its TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A signer taken before expiry reloads the key.
	if _, err := s.SignTx(context.Background(), dynamicTx(4), big.NewInt(chainID)); err != nil {
		t.Fatal(err)
	}
	if got := e.stub.Calls("GetSecretValue") - base; got != 2 {
		t.Fatalf("%d fetches after expiry, want 2", got)
	}
	p.Close()
	if p.Cached() != 0 {
		t.Fatal("keys cached after Close")
	}
	_, err = s.SignTx(context.Background(), dynamicTx(5), big.NewInt(chainID))
	if !errors.Is(err, keys.ErrClosed) || !errors.Is(err, keys.ErrKeyUnavailable) || !txerr.IsRetryable(err) {
		t.Fatalf("sign after close: %v", err)
	}
}

// Every way a key can fail to load is refused with a retryable, classified error that names the
// wallet and the reason and carries no key material; the failure is counted (the alert) and nothing
// falls back to another key.
func TestTamperedOrMissingSecretsAreRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, b := newTestKey(t), newTestKey(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var errText strings.Builder

	// A second KMS key and a second master secret: real keys, just not the ones that wrapped.
	out, err := e.kms.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: kmstypes.KeySpecSymmetricDefault})
	if err != nil {
		t.Fatal(err)
	}
	otherKMS, _ := secretsmanager.NewKMSMaster(e.kms, aws.ToString(out.KeyMetadata.KeyId))
	if err := secretsmanager.CreateMasterSecret(ctx, e.sm, "sluice/master-2"); err != nil {
		t.Fatal(err)
	}
	otherSecret, _ := secretsmanager.NewSecretMaster(e.sm, "sluice/master-2", time.Minute)
	defer otherSecret.Close()

	// edit rewrites the stored envelope of id as a new AWSCURRENT version.
	edit := func(t *testing.T, id string, f func(*secretsmanager.Envelope)) {
		out, err := e.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		var envl secretsmanager.Envelope
		if err := json.Unmarshal([]byte(*out.SecretString), &envl); err != nil {
			t.Fatal(err)
		}
		f(&envl)
		v, _ := json.Marshal(envl)
		if _, err := e.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(string(v))}); err != nil {
			t.Fatal(err)
		}
	}
	valueOf := func(t *testing.T, id string) secretsmanager.Envelope {
		out, err := e.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		var envl secretsmanager.Envelope
		_ = json.Unmarshal([]byte(*out.SecretString), &envl)
		return envl
	}

	type tc struct {
		name   string
		master func() secretsmanager.MasterKey // wraps at creation
		use    func() secretsmanager.MasterKey // configured in the provider
		spoil  func(t *testing.T, idA, idB string)
		want   error  // errors.Is target, nil: any
		saying string // substring of the error
	}
	kmsM := func() secretsmanager.MasterKey { return e.kmsMaster }
	secM := func() secretsmanager.MasterKey { return e.secretMaster }
	cases := []tc{
		{"flipped ciphertext byte", kmsM, kmsM, func(t *testing.T, idA, _ string) {
			edit(t, idA, func(v *secretsmanager.Envelope) { v.Ciphertext[5] ^= 1 })
		}, secretsmanager.ErrTampered, "tampered"},
		{"flipped ciphertext byte (master secret)", secM, secM, func(t *testing.T, idA, _ string) {
			edit(t, idA, func(v *secretsmanager.Envelope) { v.Ciphertext[40] ^= 0x80 })
		}, secretsmanager.ErrTampered, "tampered"},
		{"flipped wrapped data key byte", secM, secM, func(t *testing.T, idA, _ string) {
			edit(t, idA, func(v *secretsmanager.Envelope) { v.DataKey.Ciphertext[0] ^= 1 })
		}, secretsmanager.ErrWrongMaster, "master"},
		{"secrets swapped between wallets", kmsM, kmsM, func(t *testing.T, idA, idB string) {
			vb := valueOf(t, idB)
			edit(t, idA, func(v *secretsmanager.Envelope) { *v = vb })
		}, secretsmanager.ErrWrongWallet, b.addr.Hex()},
		{"swapped and relabelled (AAD, KMS context)", kmsM, kmsM, func(t *testing.T, idA, idB string) {
			vb := valueOf(t, idB)
			edit(t, idA, func(v *secretsmanager.Envelope) { *v = vb; v.Address = a.addr })
		}, secretsmanager.ErrWrongMaster, "Decrypt"},
		{"swapped and relabelled (AAD, master secret)", secM, secM, func(t *testing.T, idA, idB string) {
			vb := valueOf(t, idB)
			edit(t, idA, func(v *secretsmanager.Envelope) { *v = vb; v.Address = a.addr })
		}, secretsmanager.ErrTampered, "tampered"},
		{"chain id relabelled", secM, secM, func(t *testing.T, idA, _ string) {
			edit(t, idA, func(v *secretsmanager.Envelope) { v.ChainID = 1 })
		}, secretsmanager.ErrWrongWallet, "chain 1"},
		{"wrong KMS master key", kmsM, func() secretsmanager.MasterKey { return otherKMS }, nil, secretsmanager.ErrWrongMaster, "Decrypt"},
		{"wrong master secret", secM, func() secretsmanager.MasterKey { return otherSecret }, nil, secretsmanager.ErrWrongMaster, "sluice/master"},
		{"wrapped under another master secret", secM, secM, func(t *testing.T, idA, _ string) {
			edit(t, idA, func(v *secretsmanager.Envelope) { v.DataKey.MasterKeyID = "sluice/master-2" })
		}, secretsmanager.ErrWrongMaster, "sluice/master-2"},
		{"missing secret", kmsM, kmsM, func(t *testing.T, idA, _ string) {}, nil, "ResourceNotFoundException"},
		{"not an envelope", kmsM, kmsM, func(t *testing.T, idA, _ string) {
			raw := crypto.FromECDSA(a.ecdsa)
			_, _ = e.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(idA), SecretString: aws.String(`{"key":"` + hex.EncodeToString(raw) + `"`)})
		}, secretsmanager.ErrBadFormat, "not a sluice key"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idA, idB := fmt.Sprintf("case%d/a", i), fmt.Sprintf("case%d/b", i)
			if c.name != "missing secret" {
				store(t, e, c.master(), idA, a)
			}
			store(t, e, c.master(), idB, b)
			if c.spoil != nil {
				c.spoil(t, idA, idB)
			}
			m := &loads{}
			p, err := secretsmanager.New(secretsmanager.Deps{Secrets: e.sm, Master: c.use(), Wallets: []secretsmanager.Wallet{
				{Address: a.addr, ChainID: chainID, SecretID: idA}, {Address: b.addr, ChainID: chainID, SecretID: idB}}}, log, m)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			s, err := p.Signer(ctx, a.addr)
			if err == nil {
				t.Fatalf("signer %v for a spoilt key", s)
			}
			errText.WriteString(fmt.Sprintf("%v\n%+v\n%#v\n", err, err, err))
			t.Logf("refused: %v", err)
			if !errors.Is(err, keys.ErrKeyUnavailable) || !txerr.IsRetryable(err) || txerr.CodeOf(err) != keys.CodeKeyUnavailable {
				t.Fatalf("err %v: want a retryable key_unavailable error", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v: want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.saying) || !strings.Contains(err.Error(), a.addr.Hex()) || !strings.Contains(err.Error(), idA) {
				t.Fatalf("err %q should name %q, the wallet and the secret", err, c.saying)
			}
			if m.ko != 1 || p.Cached() != 0 {
				t.Fatalf("failed loads %d (want 1, the alert), cached %d", m.ko, p.Cached())
			}
			// Nothing falls back: the refused wallet stays refused, the other wallet is unaffected
			// unless its own key is the one wrapped under a master that is not configured.
			if _, err := p.Signer(ctx, a.addr); !errors.Is(err, keys.ErrKeyUnavailable) {
				t.Fatalf("second try: %v", err)
			}
		})
	}
	noKey(t, "errors", errText.String(), a, b)
	noKey(t, "logs", logs.String(), a, b)
	if !strings.Contains(logs.String(), "wallet key unavailable") {
		t.Fatalf("no log line for the refused keys:\n%s", logs.String())
	}
}

// Nothing that holds or logs keys prints them: providers, signers, SecretKeys, log lines of a
// successful load, with fmt's verbs and slog's handlers.
func TestNoKeyMaterialInOutput(t *testing.T) {
	e := newEnv(t)
	k := newTestKey(t)
	store(t, e, e.secretMaster, "w", k)
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	p, err := secretsmanager.New(secretsmanager.Deps{Secrets: e.sm, Master: e.secretMaster,
		Wallets: []secretsmanager.Wallet{{Address: k.addr, ChainID: chainID, SecretID: "w"}}}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := p.Signer(context.Background(), k.addr)
	if err != nil {
		t.Fatal(err)
	}
	sk := k.secret(t)
	defer sk.Destroy()
	for _, v := range []any{p, s, sk, e.secretMaster} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		fmt.Fprintf(&out, "%+v\n", struct{ V any }{v})
		log.Info("value", "v", v, "nested", map[string]any{"v": v})
		slog.New(slog.NewTextHandler(&out, nil)).Info("value", "v", v)
	}
	got := out.String()
	noKey(t, "output", got, k)
	if !strings.Contains(got, k.addr.Hex()) || !strings.Contains(got, "REDACTED") || !strings.Contains(got, "wallet key loaded") {
		t.Fatalf("output should name the address, show the redaction and log the load:\n%s", got)
	}
}

// A master secret rotated after a wallet secret was sealed still opens it (the envelope names the
// master version), and Reseal moves the wallet to the new master version with AWSPREVIOUS kept.
func TestMasterSecretRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	k := newTestKey(t)
	store(t, e, e.secretMaster, "w", k)
	before := valueMasterVersion(t, e, "w")
	newMaster := make([]byte, 32)
	newMaster[0] = 7
	if _, err := e.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("sluice/master"), SecretBinary: newMaster}); err != nil {
		t.Fatal(err)
	}
	fresh, _ := secretsmanager.NewSecretMaster(e.sm, "sluice/master", time.Minute)
	defer fresh.Close()
	w := secretsmanager.Wallet{Address: k.addr, ChainID: chainID, SecretID: "w"}
	if err := secretsmanager.Verify(ctx, e.sm, fresh, w); err != nil {
		t.Fatalf("old wallet secret after master rotation: %v", err)
	}
	sk := k.secret(t)
	if _, err := secretsmanager.Reseal(ctx, e.sm, fresh, "w", chainID, sk); err != nil {
		t.Fatal(err)
	}
	sk.Destroy()
	after := valueMasterVersion(t, e, "w")
	if after == before || after == "" {
		t.Fatalf("reseal kept master version %q", after)
	}
	if err := secretsmanager.Verify(ctx, e.sm, fresh, w); err != nil {
		t.Fatal(err)
	}
	d, err := e.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("w")})
	if err != nil {
		t.Fatal(err)
	}
	stages := fmt.Sprint(d.VersionIdsToStages)
	if !strings.Contains(stages, "AWSCURRENT") || !strings.Contains(stages, "AWSPREVIOUS") {
		t.Fatalf("stages %s", stages)
	}
	list, err := secretsmanager.List(ctx, e.sm)
	if err != nil || len(list) != 1 || list[0].Address != k.addr || list[0].ChainID != chainID || len(list[0].Versions) != 2 {
		t.Fatalf("list %+v, %v", list, err)
	}
}

func valueMasterVersion(t *testing.T, e *env, id string) string {
	out, err := e.sm.GetSecretValue(context.Background(), &sm.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	var envl secretsmanager.Envelope
	_ = json.Unmarshal([]byte(*out.SecretString), &envl)
	return envl.DataKey.MasterVersion
}
