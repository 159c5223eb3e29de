package keyscli

// Secrets Manager is played by smstub, an in-repo stand-in for AWS (no Secrets Manager emulator is
// reachable here); KMS is nsmithuk/local-kms in-process. `sluice keys` talks to both through the
// real aws-sdk-go-v2 clients; only the endpoints in the config differ from production.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/kms"
	"github.com/sluice-custody/sluice/internal/keys/kmstest"
	"github.com/sluice-custody/sluice/internal/keys/secretsmanager"
	"github.com/sluice-custody/sluice/internal/keys/smstub"
	"github.com/sluice-custody/sluice/internal/keys/source"
)

func TestKeysCommand(t *testing.T) {
	ctx := context.Background()
	stub := smstub.New()
	ts := stub.Start()
	defer ts.Close()
	kmsURL := kmstest.Start(t).URL
	t.Setenv("SLUICE_KEYSTORE_PASSWORD", "ks-password")
	dir := t.TempDir()

	// Config without wallets first (create/import need only the Secrets Manager and master settings).
	cfgPath := filepath.Join(dir, "sluice.yaml")
	master := "MASTER"
	write := func(hot string, wallets ...string) {
		y := fmt.Sprintf(`
keys:
  dir: %s
  secretsmanager: {endpoint: %q, master_kms_key_id: %q}
  kms: {endpoint: %q}
  wallets: [%s]
chains:
  - {name: dev, chain_id: 31337, rpc: ["http://127.0.0.1:1"], hot_wallets: [%s]}
`, filepath.Join(dir, "keystore"), ts.URL, master, kmsURL, strings.Join(wallets, ", "), hot)
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A symmetric master key and a signing key in local-kms, made with the SDK like an operator would.
	write("")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := source.KMSClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := kc.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := kc.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccSecgP256k1, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	kmsAddr, err := kms.KeyAddress(ctx, kc, aws.ToString(sk.KeyMetadata.KeyId))
	if err != nil {
		t.Fatal(err)
	}
	master = aws.ToString(mk.KeyMetadata.KeyId)
	write("")

	var all bytes.Buffer // every byte the command printed or returned
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, append(args, "--config", cfgPath), strings.NewReader(stdin), &out)
		fmt.Fprintf(&all, "%s\n%v\n", out.String(), err)
		return out.String(), err
	}

	// create: only the address comes out.
	out, err := run("", "create", "--chain", "dev", "--secret-id", "sluice/dev/hot-1")
	if err != nil {
		t.Fatal(err)
	}
	if !common.IsHexAddress(strings.TrimSpace(out)) || strings.Count(out, "\n") != 1 {
		t.Fatalf("create printed %q, want one address", out)
	}
	created := common.HexToAddress(strings.TrimSpace(out))

	// import from stdin (hex with 0x), and from a keystore file whose password is on stdin.
	hexKey, _ := crypto.GenerateKey()
	hexAddr := crypto.PubkeyToAddress(hexKey.PublicKey)
	out, err = run("0x"+hex.EncodeToString(crypto.FromECDSA(hexKey))+"\n", "import", "--chain", "dev", "--secret-id", "sluice/dev/hot-2")
	if err != nil || strings.TrimSpace(out) != hexAddr.Hex() {
		t.Fatalf("import hex: %q, %v", out, err)
	}
	if _, err := run("not a key\n", "import", "--chain", "dev", "--secret-id", "sluice/dev/bad"); err == nil {
		t.Fatal("garbage on stdin imported")
	}
	fileKey, _ := crypto.GenerateKey()
	ksDir := filepath.Join(dir, "keystore")
	ks, err := keys.NewKeystore(ksDir, "ks-password", keys.WithLightScrypt())
	if err != nil {
		t.Fatal(err)
	}
	fileAddr, err := ks.ImportECDSA(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	ks.Close()
	files, _ := filepath.Glob(filepath.Join(ksDir, "*"))
	if _, err := run("wrong\n", "import", "--chain", "dev", "--secret-id", "sluice/dev/hot-3", "--keystore", files[0]); err == nil {
		t.Fatal("keystore opened with a wrong password")
	}
	out, err = run("ks-password\n", "import", "--chain", "dev", "--secret-id", "sluice/dev/hot-3", "--keystore", files[0])
	if err != nil || strings.TrimSpace(out) != fileAddr.Hex() {
		t.Fatalf("import keystore: %q, %v", out, err)
	}

	// The production shape: three wallets in Secrets Manager, one in KMS, one left in the keystore.
	write(fmt.Sprintf("%q", fileAddr.Hex()),
		fmt.Sprintf("{chain: dev, address: %q, backend: secretsmanager, secret_id: sluice/dev/hot-1}", created.Hex()),
		fmt.Sprintf("{chain: dev, address: %q, backend: secretsmanager, secret_id: sluice/dev/hot-2}", hexAddr.Hex()),
		fmt.Sprintf("{chain: dev, address: %q, backend: kms, kms_key_id: %s}", kmsAddr.Hex(), aws.ToString(sk.KeyMetadata.KeyId)))

	out, err = run("", "list")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	for _, want := range []string{created.Hex(), hexAddr.Hex(), kmsAddr.Hex(), fileAddr.Hex(), "secretsmanager", "kms", "keystore", "AWSCURRENT", "sluice/dev/hot-3"} {
		if !strings.Contains(out, want) {
			t.Fatalf("list does not show %s:\n%s", want, out)
		}
	}
	t.Logf("sluice keys list:\n%s", out)
	out, err = run("", "verify")
	if err != nil || strings.Count(out, "ok\t") != 4 {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	// Reseal: a new version under a fresh data key, the old one kept as AWSPREVIOUS, still verifying.
	out, err = run("", "reseal", "--chain", "dev", "--secret-id", "sluice/dev/hot-1")
	if err != nil || !strings.HasPrefix(out, created.Hex()+"\t") {
		t.Fatalf("reseal: %q, %v", out, err)
	}
	if out, err = run("", "list"); err != nil || !strings.Contains(out, "AWSPREVIOUS") {
		t.Fatalf("list after reseal: %v\n%s", err, out)
	}
	if out, err = run("", "verify"); err != nil {
		t.Fatalf("verify after reseal: %v\n%s", err, out)
	}

	// Tamper with one secret: verify fails for that wallet only, naming it.
	api, _ := source.SecretsManagerClient(ctx, cfg)
	v, err := api.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("sluice/dev/hot-2")})
	if err != nil {
		t.Fatal(err)
	}
	var env secretsmanager.Envelope
	_ = json.Unmarshal([]byte(*v.SecretString), &env)
	env.Ciphertext[0] ^= 1
	b, _ := json.Marshal(env)
	if _, err := api.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("sluice/dev/hot-2"), SecretString: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
	out, err = run("", "verify")
	if err == nil || strings.Count(out, "ok\t") != 3 || !strings.Contains(out, "FAILED\tdev\t"+hexAddr.Hex()) || !strings.Contains(out, "tampered") {
		t.Fatalf("verify after tampering: %v\n%s", err, out)
	}
	t.Logf("sluice keys verify after tampering: %v\n%s", err, out)

	// rotate: the new key is made (secretsmanager) or taken (kms), proven to sign through the signer's
	// path, and the configuration change that drains the old wallet is printed; nothing is stored in
	// the configuration, nothing secret printed.
	if _, err := run("", "rotate", "--chain", "dev", "--from", created.Hex(), "--backend", "secretsmanager", "--secret-id", "x"); err == nil ||
		!strings.Contains(err.Error(), "not a hot wallet") {
		t.Fatalf("rotate from a wallet that is not a hot wallet: %v", err)
	}
	if _, err := run("", "rotate", "--chain", "dev", "--from", fileAddr.Hex(), "--backend", "secretsmanager"); err == nil ||
		!strings.Contains(err.Error(), "--secret-id") {
		t.Fatalf("rotate without --secret-id: %v", err)
	}
	out, err = run("", "rotate", "--chain", "dev", "--from", fileAddr.Hex(), "--backend", "secretsmanager", "--secret-id", "sluice/dev/hot-9")
	if err != nil {
		t.Fatalf("rotate to secretsmanager: %v\n%s", err, out)
	}
	for _, want := range []string{"secret_id: sluice/dev/hot-9", "draining_wallets:", fmt.Sprintf("%q", fileAddr.Hex()), "sluice keys retire --chain dev --address " + fileAddr.Hex()} {
		if !strings.Contains(out, want) {
			t.Fatalf("rotate output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("sluice keys rotate:\n%s", out)
	sk2, err := kc.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccSecgP256k1, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	kmsAddr2, err := kms.KeyAddress(ctx, kc, aws.ToString(sk2.KeyMetadata.KeyId))
	if err != nil {
		t.Fatal(err)
	}
	out, err = run("", "rotate", "--chain", "dev", "--from", fileAddr.Hex(), "--backend", "kms", "--kms-key-id", aws.ToString(sk2.KeyMetadata.KeyId))
	if err != nil || !strings.Contains(out, "new wallet "+kmsAddr2.Hex()) || !strings.Contains(out, "backend: kms") {
		t.Fatalf("rotate to kms: %v\n%s", err, out)
	}
	// A KMS key for encryption, not secp256k1 signing, is refused before anything is printed.
	if out, err = run("", "rotate", "--chain", "dev", "--from", fileAddr.Hex(), "--backend", "kms", "--kms-key-id", master); err == nil {
		t.Fatalf("rotate to a symmetric KMS key: printed\n%s", out)
	}
	// keystore: a key that is not in keys.dir does not sign, so nothing is proposed.
	stranger, _ := crypto.GenerateKey()
	if out, err = run("", "rotate", "--chain", "dev", "--from", fileAddr.Hex(), "--backend", "keystore", "--new", crypto.PubkeyToAddress(stranger.PublicKey).Hex()); err == nil {
		t.Fatalf("rotate to a keystore address with no key: printed\n%s", out)
	}

	for _, k := range [][]byte{crypto.FromECDSA(hexKey), crypto.FromECDSA(fileKey)} {
		h := hex.EncodeToString(k)
		for _, enc := range []string{h, strings.ToUpper(h), base64.StdEncoding.EncodeToString(k), base64.RawStdEncoding.EncodeToString(k)} {
			if strings.Contains(all.String(), enc) {
				t.Fatalf("sluice keys printed a private key:\n%s", all.String())
			}
		}
	}
}
