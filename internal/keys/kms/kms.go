// Package kms is the key backend where the key never leaves AWS KMS: each wallet is a KMS asymmetric
// key of spec ECC_SECG_P256K1. Sluice computes the transaction's signing hash, asks KMS to Sign it
// (MessageType DIGEST, ECDSA_SHA_256), turns the DER signature into Ethereum's (r, s, v) with s in
// the lower half of the curve order, and checks that it recovers to the wallet's address.
package kms

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/keys"
)

// Backend is this backend's name in config, errors and metrics.
const Backend = "kms"

// API is what this backend asks of AWS KMS.
type API interface {
	Sign(ctx context.Context, in *awskms.SignInput, opts ...func(*awskms.Options)) (*awskms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *awskms.GetPublicKeyInput, opts ...func(*awskms.Options)) (*awskms.GetPublicKeyOutput, error)
}

// Wallet is one wallet whose key is the KMS key KeyID (id, ARN or alias).
type Wallet struct {
	Address common.Address
	KeyID   string
}

// Deps are the collaborators of a Provider.
type Deps struct {
	KMS     API
	Wallets []Wallet
}

// Provider signs with KMS keys.
type Provider struct {
	api     API
	log     *slog.Logger
	m       keys.Metrics
	wallets map[common.Address]Wallet

	mu       sync.Mutex
	verified map[common.Address]bool // public key checked against the address
}

var _ keys.Provider = (*Provider)(nil)

// New checks d and builds the provider. A nil log discards; m may be keys.NopMetrics().
func New(d Deps, log *slog.Logger, m keys.Metrics) (*Provider, error) {
	if d.KMS == nil {
		return nil, errors.New("kms: Deps.KMS is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = keys.NopMetrics()
	}
	p := &Provider{api: d.KMS, log: log, m: m, wallets: map[common.Address]Wallet{}, verified: map[common.Address]bool{}}
	for i, w := range d.Wallets {
		if w.KeyID == "" || w.Address == (common.Address{}) {
			return nil, fmt.Errorf("kms: Deps.Wallets[%d]: address and key id are required", i)
		}
		if _, dup := p.wallets[w.Address]; dup {
			return nil, fmt.Errorf("kms: Deps.Wallets[%d]: %s listed twice", i, w.Address.Hex())
		}
		p.wallets[w.Address] = w
	}
	return p, nil
}

// Addresses lists the configured wallets, sorted.
func (p *Provider) Addresses(context.Context) ([]common.Address, error) {
	out := make([]common.Address, 0, len(p.wallets))
	for a := range p.wallets {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b common.Address) int { return a.Cmp(b) })
	return out, nil
}

// Signer checks (once) that addr's KMS key is a secp256k1 key whose public key is addr's.
func (p *Provider) Signer(ctx context.Context, addr common.Address) (keys.Signer, error) {
	w, ok := p.wallets[addr]
	if !ok {
		return nil, keys.Unavailable(addr, Backend, keys.ErrUnknownAddress)
	}
	p.mu.Lock()
	done := p.verified[addr]
	p.mu.Unlock()
	if !done {
		err := Verify(ctx, p.api, w)
		p.m.Load(Backend, err == nil)
		if err != nil {
			p.log.Error("wallet key unavailable", "address", addr.Hex(), "kms_key", w.KeyID, "err", err)
			return nil, err
		}
		p.mu.Lock()
		p.verified[addr] = true
		p.mu.Unlock()
	}
	return &signer{p: p, w: w}, nil
}

// Verify reads w's public key from KMS and checks it is secp256k1 and belongs to w's address.
func Verify(ctx context.Context, api API, w Wallet) error {
	a, err := KeyAddress(ctx, api, w.KeyID)
	if err != nil {
		return keys.Unavailable(w.Address, Backend, err)
	}
	if a != w.Address {
		return keys.Unavailable(w.Address, Backend, fmt.Errorf("KMS key %s is the key of %s", w.KeyID, a.Hex()))
	}
	return nil
}

// oidSecp256k1 is the named curve ECC_SECG_P256K1 keys carry in their SubjectPublicKeyInfo.
var oidSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}

// KeyAddress returns the Ethereum address of the KMS key keyID.
func KeyAddress(ctx context.Context, api API, keyID string) (common.Address, error) {
	out, err := api.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return common.Address{}, keys.SafeCause("kms GetPublicKey "+keyID, err)
	}
	return AddressOfSPKI(out.PublicKey)
}

// AddressOfSPKI parses a DER SubjectPublicKeyInfo of a secp256k1 key (crypto/x509 knows only the
// NIST curves) and returns its address.
func AddressOfSPKI(der []byte) (common.Address, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) != 0 {
		return common.Address{}, errors.New("kms: public key is not a DER SubjectPublicKeyInfo")
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(oidSecp256k1) {
		return common.Address{}, fmt.Errorf("kms: key is not ECC_SECG_P256K1 (curve %v)", curve)
	}
	pub, err := crypto.UnmarshalPubkey(spki.PublicKey.RightAlign())
	if err != nil {
		return common.Address{}, fmt.Errorf("kms: public key: %w", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

var (
	secpN     = crypto.S256().Params().N
	secpHalfN = new(big.Int).Rsh(secpN, 1)
)

// ToEthereum converts a DER ECDSA signature of hash into go-ethereum's 65-byte [R || S || V]: s is
// replaced by N-s when it is in the upper half (EIP-2 allows only low s), and V is the recovery id
// whose recovered public key is want's.
func ToEthereum(der, hash []byte, want common.Address) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
		return nil, errors.New("kms: signature is not DER (r, s)")
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.Cmp(secpN) >= 0 || sig.S.Cmp(secpN) >= 0 {
		return nil, errors.New("kms: signature values out of range")
	}
	if sig.S.Cmp(secpHalfN) > 0 {
		sig.S.Sub(secpN, sig.S)
	}
	out := make([]byte, 65)
	sig.R.FillBytes(out[0:32])
	sig.S.FillBytes(out[32:64])
	for v := byte(0); v < 2; v++ {
		out[64] = v
		pub, err := crypto.SigToPub(hash, out)
		if err == nil && crypto.PubkeyToAddress(*pub) == want {
			return out, nil
		}
	}
	return nil, fmt.Errorf("kms: signature does not recover to %s", want.Hex())
}

type signer struct {
	p *Provider
	w Wallet
}

func (s *signer) Address() common.Address { return s.w.Address }

// SignTx asks KMS to sign the transaction's signing hash.
func (s *signer) SignTx(ctx context.Context, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return keys.SignTx(tx, chainID, s.w.Address, func(hash []byte) ([]byte, error) {
		out, err := s.p.api.Sign(ctx, &awskms.SignInput{KeyId: aws.String(s.w.KeyID), Message: hash,
			MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
		if err != nil {
			return nil, keys.Unavailable(s.w.Address, Backend, keys.SafeCause("kms Sign with "+s.w.KeyID, err))
		}
		sig, err := ToEthereum(out.Signature, hash, s.w.Address)
		if err != nil {
			return nil, keys.Unavailable(s.w.Address, Backend, err)
		}
		return sig, nil
	})
}

func (s *signer) String() string {
	return fmt.Sprintf("keys.Signer{backend: kms, address: %s, key: %s}", s.w.Address.Hex(), s.w.KeyID)
}
func (s *signer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", Backend), slog.String("address", s.w.Address.Hex()), slog.String("kms_key", s.w.KeyID))
}

func (p *Provider) String() string {
	return fmt.Sprintf("kms.Provider{wallets: %d}", len(p.wallets))
}

// GoString and Format keep %#v and %+v from dumping the SDK client (and its credentials).
func (p *Provider) GoString() string           { return p.String() }
func (p *Provider) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }
func (p *Provider) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", Backend), slog.Int("wallets", len(p.wallets)))
}
func (s *signer) GoString() string           { return s.String() }
func (s *signer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
