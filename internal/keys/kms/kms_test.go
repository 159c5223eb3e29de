package kms_test

import (
	"context"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/kms"
	"github.com/sluice-custody/sluice/internal/keys/kmstest"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// These tests run against local-kms (github.com/nsmithuk/local-kms, in-process on loopback), which
// supports ECC_SECG_P256K1 keys, GetPublicKey and Sign with MessageType DIGEST: the KMS signer is
// tested end to end, and ToEthereum is also tested against go-ethereum's own secp256k1 signatures.

func newClient(t testing.TB, endpoint string) *awskms.Client {
	t.Helper()
	a := keys.AWS{Region: "us-east-1", Endpoint: endpoint, StaticKeyID: "test", StaticSecret: "test"}
	cfg, err := a.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.BaseEndpoint = a.BaseEndpoint() })
}

func createKey(t testing.TB, c *awskms.Client, spec kmstypes.KeySpec) string {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{KeySpec: spec, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("create %s key: %v", spec, err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

func dynamicTx(nonce uint64) *types.Transaction {
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	return types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(31337), Nonce: nonce, GasTipCap: big.NewInt(1e9),
		GasFeeCap: big.NewInt(50e9), Gas: 21000, To: &to, Value: big.NewInt(12345)})
}

func TestKMSSignerAgainstLocalKMS(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, kmstest.Start(t).URL)
	keyID := createKey(t, c, kmstypes.KeySpecEccSecgP256k1)
	addr, err := kms.KeyAddress(ctx, c, keyID)
	if err != nil {
		t.Fatal(err)
	}
	spy := &highS{API: c}
	p, err := kms.New(kms.Deps{KMS: spy, Wallets: []kms.Wallet{{Address: addr, KeyID: keyID}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Signer(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	// local-kms draws a random nonce per signature, so about half of these have a high s that
	// ToEthereum must fold into the lower half.
	for n := uint64(0); n < 32; n++ {
		signed, err := s.SignTx(ctx, dynamicTx(n), big.NewInt(31337))
		if err != nil {
			t.Fatalf("sign nonce %d: %v", n, err)
		}
		from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(31337)), signed)
		if err != nil || from != addr {
			t.Fatalf("recovered %s, %v; want %s", from.Hex(), err, addr.Hex())
		}
		if _, _, sv := signed.RawSignatureValues(); sv.Cmp(new(big.Int).Rsh(crypto.S256().Params().N, 1)) > 0 {
			t.Fatalf("s is in the upper half")
		}
	}
	if spy.high == 0 || spy.high == spy.total {
		t.Fatalf("%d of %d KMS signatures had a high s: the normalisation was not exercised both ways", spy.high, spy.total)
	}
	if _, err := s.SignTx(ctx, dynamicTx(1), big.NewInt(1)); err == nil {
		t.Fatal("signing a chain-31337 tx for chain 1 succeeded")
	}
}

// highS counts the raw KMS signatures whose s is in the upper half.
type highS struct {
	kms.API
	high, total int
}

func (h *highS) Sign(ctx context.Context, in *awskms.SignInput, opts ...func(*awskms.Options)) (*awskms.SignOutput, error) {
	out, err := h.API.Sign(ctx, in, opts...)
	if err == nil {
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(out.Signature, &sig); err == nil {
			h.total++
			if sig.S.Cmp(new(big.Int).Rsh(crypto.S256().Params().N, 1)) > 0 {
				h.high++
			}
		}
	}
	return out, err
}

// A key the test already knows, imported into local-kms, signs exactly as go-ethereum would (up to the
// random nonce): the address KMS reports is the key's, and the signed transaction recovers to it.
func TestImportedKeySigns(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.Start(t)
	c := newClient(t, srv.URL)
	key, _ := crypto.GenerateKey()
	want := crypto.PubkeyToAddress(key.PublicKey)
	id := srv.ImportSecp256k1(t, key)
	if got, err := kms.KeyAddress(ctx, c, id); err != nil || got != want {
		t.Fatalf("KMS key address %s, %v; want %s", got.Hex(), err, want.Hex())
	}
	p, _ := kms.New(kms.Deps{KMS: c, Wallets: []kms.Wallet{{Address: want, KeyID: id}}}, nil, nil)
	s, err := p.Signer(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := s.SignTx(ctx, dynamicTx(0), big.NewInt(31337))
	if err != nil {
		t.Fatal(err)
	}
	if from, _ := types.Sender(types.LatestSignerForChainID(big.NewInt(31337)), signed); from != want {
		t.Fatalf("recovered %s", from.Hex())
	}
}

func TestKMSKeyOfAnotherWalletIsRefused(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, kmstest.Start(t).URL)
	keyID := createKey(t, c, kmstypes.KeySpecEccSecgP256k1)
	other := common.HexToAddress("0x1111111111111111111111111111111111111111")
	p, _ := kms.New(kms.Deps{KMS: c, Wallets: []kms.Wallet{{Address: other, KeyID: keyID}}}, nil, nil)
	_, err := p.Signer(ctx, other)
	if !errors.Is(err, keys.ErrKeyUnavailable) || !txerr.IsRetryable(err) || !strings.Contains(err.Error(), "is the key of") {
		t.Fatalf("err %v: want a retryable unavailable key naming the mismatch", err)
	}
	// A NIST P-256 key is not an Ethereum key.
	nist := createKey(t, c, kmstypes.KeySpecEccNistP256)
	if _, err := kms.KeyAddress(ctx, c, nist); err == nil || !strings.Contains(err.Error(), "ECC_SECG_P256K1") {
		t.Fatalf("P-256 key: %v", err)
	}
	// KMS unreachable: retryable, names the wallet.
	down := newClient(t, "http://127.0.0.1:1")
	p2, _ := kms.New(kms.Deps{KMS: down, Wallets: []kms.Wallet{{Address: other, KeyID: keyID}}}, nil, nil)
	if _, err := p2.Signer(ctx, other); !errors.Is(err, keys.ErrKeyUnavailable) || !txerr.IsRetryable(err) || !strings.Contains(err.Error(), other.Hex()) {
		t.Fatalf("KMS down: %v", err)
	}
}

// ToEthereum against signatures made by go-ethereum's secp256k1, in both s halves.
func TestToEthereumMatchesGoEthereum(t *testing.T) {
	n := crypto.S256().Params().N
	for i := 0; i < 32; i++ {
		key, _ := crypto.GenerateKey()
		addr := crypto.PubkeyToAddress(key.PublicKey)
		hash := crypto.Keccak256([]byte{byte(i)})
		want, err := crypto.Sign(hash, key)
		if err != nil {
			t.Fatal(err)
		}
		r, s := new(big.Int).SetBytes(want[:32]), new(big.Int).SetBytes(want[32:64])
		for _, sv := range []*big.Int{s, new(big.Int).Sub(n, s)} { // low s, then the same signature with high s
			der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, sv})
			got, err := kms.ToEthereum(der, hash, addr)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("got %x, want %x", got, want)
			}
		}
		if _, err := kms.ToEthereum(mustDER(r, s), hash, common.Address{1}); err == nil {
			t.Fatal("a signature recovering to another address was accepted")
		}
	}
	if _, err := kms.ToEthereum([]byte{0x30, 0x01}, make([]byte, 32), common.Address{}); err == nil {
		t.Fatal("garbage DER accepted")
	}
}

func mustDER(r, s *big.Int) []byte {
	b, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	return b
}
