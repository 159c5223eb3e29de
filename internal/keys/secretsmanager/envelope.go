// Package secretsmanager is the production key backend: each wallet's private key is a secret in AWS
// Secrets Manager whose value is the key encrypted twice. The key is sealed with AES-256-GCM under a
// random per-secret data key; the data key is wrapped by a master key (AWS KMS, or a master key kept
// in a second secret). Both layers authenticate the wallet's address and chain id, so a ciphertext
// moved to another wallet's secret does not open. Keys are loaded just in time and kept decrypted for
// a bounded TTL in protected memory (see keys.Cache and keys.Secret).
package secretsmanager

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/keys"
)

// Format is the version of the secret's JSON layout; it is part of the authenticated data.
const Format = 1

// CipherAESGCM is the only cipher of format 1.
const CipherAESGCM = "AES-256-GCM"

// Envelope is the secret's value (JSON). Nothing in it is secret without the master key.
type Envelope struct {
	Format     int            `json:"sluice_key_format"`
	Address    common.Address `json:"address"`
	ChainID    uint64         `json:"chain_id"`
	Cipher     string         `json:"cipher"`
	Nonce      []byte         `json:"nonce"`      // 12 bytes
	Ciphertext []byte         `json:"ciphertext"` // 32-byte key + 16-byte tag
	DataKey    WrappedKey     `json:"data_key"`
	CreatedAt  time.Time      `json:"created_at"`
}

// WrappedKey is a data key encrypted under a master key.
type WrappedKey struct {
	Wrap        string `json:"wrap"`          // WrapKMS or WrapMasterSecret
	MasterKeyID string `json:"master_key_id"` // KMS key id/ARN/alias, or the master secret's name
	// MasterVersion is the master secret's version id the data key was wrapped under, so that a
	// rotated master secret still opens older wallet secrets (empty for KMS: KMS keeps its own).
	MasterVersion string `json:"master_version,omitempty"`
	Cipher        string `json:"cipher"`
	Nonce         []byte `json:"nonce,omitempty"`
	Ciphertext    []byte `json:"ciphertext"`
}

// Binding is what both encryption layers authenticate: which wallet, on which chain.
type Binding struct {
	Address common.Address
	ChainID uint64
}

// AAD is the additional authenticated data of both AES-GCM layers.
func (b Binding) AAD() []byte {
	return []byte("sluice-key/v" + strconv.Itoa(Format) + "\x00chain_id=" + strconv.FormatUint(b.ChainID, 10) +
		"\x00address=" + strings.ToLower(b.Address.Hex()))
}

// EncryptionContext is the binding as a KMS encryption context (KMS's own authenticated data).
func (b Binding) EncryptionContext() map[string]string {
	return map[string]string{
		"sluice:purpose":  "wallet-key",
		"sluice:address":  strings.ToLower(b.Address.Hex()),
		"sluice:chain_id": strconv.FormatUint(b.ChainID, 10),
	}
}

// MasterKey wraps and unwraps data keys.
type MasterKey interface {
	// NewDataKey returns a fresh 32-byte data key in protected memory and its wrapped form.
	NewDataKey(ctx context.Context, b Binding) (*keys.Secret, WrappedKey, error)
	// Unwrap opens a wrapped data key; a wrong master key or a wrong binding is an error.
	Unwrap(ctx context.Context, w WrappedKey, b Binding) (*keys.Secret, error)
}

// Errors of opening an envelope; each is wrapped with the wallet and secret concerned.
var (
	ErrTampered      = errors.New("ciphertext does not authenticate (tampered, or bound to another wallet or chain)")
	ErrWrongWallet   = errors.New("secret belongs to another wallet")
	ErrBadFormat     = errors.New("secret is not a sluice key envelope")
	ErrWrongMaster   = errors.New("data key does not open under the configured master key")
	ErrKeyMismatch   = errors.New("decrypted key does not match the wallet address")
	ErrMasterMissing = errors.New("master key unavailable")
)

// Seal encrypts key for chainID under a new data key wrapped by m.
func Seal(ctx context.Context, key *keys.SecretKey, chainID uint64, m MasterKey) (*Envelope, error) {
	b := Binding{Address: key.Address(), ChainID: chainID}
	dk, wrapped, err := m.NewDataKey(ctx, b)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	env := &Envelope{Format: Format, Address: b.Address, ChainID: chainID, Cipher: CipherAESGCM,
		Nonce: make([]byte, 12), DataKey: wrapped, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if _, err := rand.Read(env.Nonce); err != nil {
		return nil, fmt.Errorf("secretsmanager: nonce: %w", err)
	}
	err = dk.Use(func(d []byte) error {
		gcm, err := newGCM(d)
		if err != nil {
			return err
		}
		return key.Use(func(raw []byte) error {
			env.Ciphertext = gcm.Seal(nil, env.Nonce, raw, b.AAD())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("secretsmanager: seal %s: %w", b.Address.Hex(), err)
	}
	return env, nil
}

// Open checks that env belongs to want on chainID, unwraps its data key with m and decrypts the
// private key into protected memory. The returned error never carries key material.
func Open(ctx context.Context, env *Envelope, want common.Address, chainID uint64, m MasterKey) (*keys.SecretKey, error) {
	switch {
	case env.Format != Format || env.Cipher != CipherAESGCM || len(env.Nonce) != 12 || len(env.Ciphertext) != 32+16:
		return nil, fmt.Errorf("%w (format %d, cipher %q)", ErrBadFormat, env.Format, env.Cipher)
	case env.Address != want:
		return nil, fmt.Errorf("%w: it names %s", ErrWrongWallet, env.Address.Hex())
	case env.ChainID != chainID:
		return nil, fmt.Errorf("%w: it is for chain %d, not %d", ErrWrongWallet, env.ChainID, chainID)
	}
	b := Binding{Address: want, ChainID: chainID}
	dk, err := m.Unwrap(ctx, env.DataKey, b)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	s := keys.NewSecret(32)
	err = dk.Use(func(d []byte) error {
		gcm, err := newGCM(d)
		if err != nil {
			return err
		}
		return s.Use(func(out []byte) error {
			// Decrypt straight into protected memory: out has room for exactly the 32-byte key.
			pt, err := gcm.Open(out[:0], env.Nonce, env.Ciphertext, b.AAD())
			if err != nil {
				return ErrTampered
			}
			if len(pt) != 32 || &pt[0] != &out[0] {
				clear(pt)
				return ErrBadFormat
			}
			return nil
		})
	})
	if err != nil {
		s.Destroy()
		return nil, err
	}
	k, err := keys.NewSecretKey(s)
	if err != nil {
		return nil, err
	}
	if k.Address() != want {
		k.Destroy()
		return nil, ErrKeyMismatch
	}
	return k, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("data key is %d bytes, want 32", len(key))
	}
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(c)
}
