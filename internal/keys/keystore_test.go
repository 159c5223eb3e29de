package keys_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/testenv"
)

const password = "correct horse battery staple"

func newKeystore(t *testing.T, dir, pw string) *keys.Keystore {
	t.Helper()
	k, err := keys.NewKeystore(dir, pw, keys.WithLightScrypt())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func keyHex(k *ecdsa.PrivateKey) string { return hex.EncodeToString(crypto.FromECDSA(k)) }

// noKey fails when s contains the key in any common encoding.
func noKey(t *testing.T, what, s string, key *ecdsa.PrivateKey) {
	t.Helper()
	h := keyHex(key)
	for _, enc := range []string{h, strings.ToUpper(h), key.D.String(), fmt.Sprint(crypto.FromECDSA(key))} {
		if strings.Contains(s, enc) {
			t.Fatalf("%s contains the private key: %q", what, s)
		}
	}
	if strings.Contains(s, password) {
		t.Fatalf("%s contains the password: %q", what, s)
	}
}

func dynamicTx(nonce uint64) *types.Transaction {
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	return types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(31337), Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(50e9),
		Gas: 21000, To: &to, Value: big.NewInt(12345),
	})
}

func TestSignDynamicFeeTxAndRecoverSender(t *testing.T) {
	dir := t.TempDir()
	k := newKeystore(t, dir, password)
	acct := testenv.NewAccount(t)
	addr, err := k.ImportECDSA(acct.Key)
	if err != nil || addr != acct.Address {
		t.Fatalf("import: %s, %v; want %s", addr.Hex(), err, acct.Address.Hex())
	}
	generated, err := k.NewAccount()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := k.Addresses(ctx)
	if err != nil || len(got) != 2 || !containsAddr(got, addr) || !containsAddr(got, generated) {
		t.Fatalf("addresses %v, %v", got, err)
	}

	for _, a := range []common.Address{addr, generated} {
		s, err := k.Signer(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if s.Address() != a {
			t.Fatalf("signer address %s, want %s", s.Address().Hex(), a.Hex())
		}
		signed, err := s.SignTx(ctx, dynamicTx(7), big.NewInt(31337))
		if err != nil {
			t.Fatal(err)
		}
		from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(31337)), signed)
		if err != nil || from != a {
			t.Fatalf("recovered %s, %v; want %s", from.Hex(), err, a.Hex())
		}
		if signed.Type() != types.DynamicFeeTxType || signed.Nonce() != 7 {
			t.Fatalf("signed tx changed: type %d nonce %d", signed.Type(), signed.Nonce())
		}
		// A chain id that is not the tx's own is refused.
		if _, err := s.SignTx(ctx, dynamicTx(7), big.NewInt(1)); err == nil {
			t.Fatal("signing a chain-31337 tx for chain 1 succeeded")
		}
	}

	// A second Keystore on the same directory (another process) decrypts the same keys.
	k2 := newKeystore(t, dir, password)
	s2, err := k2.Signer(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.SignTx(ctx, dynamicTx(8), big.NewInt(31337)); err != nil {
		t.Fatal(err)
	}

	// After Close no key is usable.
	s, _ := k.Signer(ctx, addr)
	k.Close()
	if _, err := s.SignTx(ctx, dynamicTx(9), big.NewInt(31337)); !errors.Is(err, keys.ErrClosed) {
		t.Fatalf("sign after close: %v, want ErrClosed", err)
	}
}

func containsAddr(list []common.Address, a common.Address) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func TestUnknownAddressIsNamed(t *testing.T) {
	k := newKeystore(t, t.TempDir(), password)
	missing := testenv.NewAccount(t).Address
	_, err := k.Signer(context.Background(), missing)
	if !errors.Is(err, keys.ErrUnknownAddress) {
		t.Fatalf("err %v, want ErrUnknownAddress", err)
	}
	if !strings.Contains(err.Error(), missing.Hex()) {
		t.Fatalf("error %q does not name %s", err, missing.Hex())
	}
}

func TestWrongPasswordLeaksNothing(t *testing.T) {
	dir := t.TempDir()
	k := newKeystore(t, dir, password)
	acct := testenv.NewAccount(t)
	if _, err := k.ImportECDSA(acct.Key); err != nil {
		t.Fatal(err)
	}
	bad := newKeystore(t, dir, "not the password")
	_, err := bad.Signer(context.Background(), acct.Address)
	if !errors.Is(err, keys.ErrBadPassword) {
		t.Fatalf("err %v, want ErrBadPassword", err)
	}
	if !strings.Contains(err.Error(), acct.Address.Hex()) {
		t.Fatalf("error %q does not name the address", err)
	}
	noKey(t, "error", fmt.Sprintf("%v %+v %#v", err, err, err), acct.Key)
	// Still unusable on a second try (nothing half-unlocked is cached).
	if _, err := bad.Signer(context.Background(), acct.Address); !errors.Is(err, keys.ErrBadPassword) {
		t.Fatalf("second try: %v", err)
	}
}

func TestKeyFilesAreEncrypted(t *testing.T) {
	dir := t.TempDir()
	k := newKeystore(t, dir, password)
	acct := testenv.NewAccount(t)
	if _, err := k.ImportECDSA(acct.Key); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("key files %v, %v", files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	noKey(t, "key file", string(b), acct.Key)
	if !bytes.Contains(b, []byte(`"kdf":"scrypt"`)) || !bytes.Contains(b, []byte(`"ciphertext"`)) {
		t.Fatalf("key file is not a scrypt-encrypted keystore file: %s", b)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("key file mode %v is readable by others", fi.Mode())
	}
}

// Nothing that holds key material prints it: fmt verbs, slog text and JSON.
func TestNoKeyMaterialInOutput(t *testing.T) {
	k := newKeystore(t, t.TempDir(), password)
	acct := testenv.NewAccount(t)
	if _, err := k.ImportECDSA(acct.Key); err != nil {
		t.Fatal(err)
	}
	s, err := k.Signer(context.Background(), acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, v := range []any{s, k} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		fmt.Fprintf(&out, "%v\n", struct{ S any }{v})
		fmt.Fprintf(&out, "%+v\n", []any{v})
		slog.New(slog.NewJSONHandler(&out, nil)).Info("signer", "signer", v, "nested", map[string]any{"v": v})
		slog.New(slog.NewTextHandler(&out, nil)).Info("signer", "signer", v)
	}
	got := out.String()
	noKey(t, "output", got, acct.Key)
	if !strings.Contains(got, acct.Address.Hex()) || !strings.Contains(got, "REDACTED") {
		t.Fatalf("output should name the address and show the redaction:\n%s", got)
	}
}
