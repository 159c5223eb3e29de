package secretsmanager

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sluice-custody/sluice/internal/keys"
)

// Wrap kinds.
const (
	WrapKMS          = "aws-kms"
	WrapMasterSecret = "master-secret"
)

// KMSAPI is what the KMS master key asks of AWS KMS.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, opts ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// KMSMaster wraps data keys with a symmetric AWS KMS key (GenerateDataKey / Decrypt). The wallet
// binding is the KMS encryption context, so KMS itself refuses a data key moved between wallets, and
// Decrypt names the configured key, so a data key of another KMS key is refused.
type KMSMaster struct {
	client KMSAPI
	keyID  string
}

// NewKMSMaster uses the KMS key keyID (id, ARN or alias).
func NewKMSMaster(client KMSAPI, keyID string) (*KMSMaster, error) {
	if client == nil || keyID == "" {
		return nil, fmt.Errorf("secretsmanager: KMS master key needs a client and a key id")
	}
	return &KMSMaster{client: client, keyID: keyID}, nil
}

// NewDataKey asks KMS for a new AES-256 data key.
func (m *KMSMaster) NewDataKey(ctx context.Context, b Binding) (*keys.Secret, WrappedKey, error) {
	out, err := m.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(m.keyID),
		KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: b.EncryptionContext()})
	if err != nil {
		return nil, WrappedKey{}, fmt.Errorf("%w: %w", ErrMasterMissing, keys.SafeCause("kms GenerateDataKey "+m.keyID, err))
	}
	if len(out.Plaintext) != 32 {
		clear(out.Plaintext)
		return nil, WrappedKey{}, fmt.Errorf("kms GenerateDataKey %s: data key is not 32 bytes", m.keyID)
	}
	return keys.SecretFrom(out.Plaintext), WrappedKey{Wrap: WrapKMS, MasterKeyID: m.keyID, Cipher: "KMS SYMMETRIC_DEFAULT",
		Ciphertext: out.CiphertextBlob}, nil
}

// Unwrap asks KMS to decrypt the data key.
func (m *KMSMaster) Unwrap(ctx context.Context, w WrappedKey, b Binding) (*keys.Secret, error) {
	if w.Wrap != WrapKMS {
		return nil, fmt.Errorf("%w: data key is wrapped by %q, the configured master is KMS key %s", ErrWrongMaster, w.Wrap, m.keyID)
	}
	out, err := m.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(m.keyID), CiphertextBlob: w.Ciphertext,
		EncryptionContext: b.EncryptionContext()})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongMaster, keys.SafeCause("kms Decrypt with "+m.keyID, err))
	}
	if len(out.Plaintext) != 32 {
		clear(out.Plaintext)
		return nil, fmt.Errorf("kms Decrypt with %s: data key is not 32 bytes", m.keyID)
	}
	// The SDK decoded the plaintext on the heap; copy it into protected memory and zero that copy.
	return keys.SecretFrom(out.Plaintext), nil
}

func (m *KMSMaster) String() string { return "kms:" + m.keyID }

// GoString and Format keep %#v and %+v from dumping the SDK client (and its credentials).
func (m *KMSMaster) GoString() string           { return m.String() }
func (m *KMSMaster) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(m.String())) }
func (m *KMSMaster) LogValue() slog.Value       { return slog.StringValue(m.String()) }

// SecretMaster wraps data keys with AES-256-GCM under a 32-byte master key held in a second secret
// (for setups without KMS). The master key is cached like a wallet key (bounded TTL, protected memory)
// and fetched by version id, so that wallet secrets sealed before a master rotation still open.
type SecretMaster struct {
	client   API
	secretID string
	cache    *keys.Cache[*keys.Secret]
}

// NewSecretMaster reads the master key from the secret secretID; ttl bounds how long it is cached.
func NewSecretMaster(client API, secretID string, ttl time.Duration) (*SecretMaster, error) {
	if client == nil || secretID == "" {
		return nil, fmt.Errorf("secretsmanager: master secret needs a client and a secret id")
	}
	return &SecretMaster{client: client, secretID: secretID, cache: keys.NewCache[*keys.Secret](ttl)}, nil
}

// CreateMasterSecret generates a master key and stores it as the new secret secretID.
func CreateMasterSecret(ctx context.Context, client API, secretID string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	defer clear(b)
	_, err := client.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(secretID), SecretBinary: b,
		Description: aws.String("sluice master key: wraps the data keys of wallet key secrets")})
	if err != nil {
		return fmt.Errorf("secretsmanager: create master secret %s: %w", secretID, keys.SafeCause("CreateSecret", err))
	}
	return nil
}

// current loads the master key version labelled AWSCURRENT (version "") or a given version id.
func (m *SecretMaster) load(ctx context.Context, version string) (*keys.Secret, string, error) {
	in := &sm.GetSecretValueInput{SecretId: aws.String(m.secretID)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := m.client.GetSecretValue(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrMasterMissing, keys.SafeCause("GetSecretValue "+m.secretID, err))
	}
	raw := out.SecretBinary
	if raw == nil && out.SecretString != nil {
		raw, err = base64.StdEncoding.DecodeString(*out.SecretString)
		if err != nil {
			return nil, "", fmt.Errorf("%w: master secret %s is neither 32 bytes nor base64", ErrMasterMissing, m.secretID)
		}
	}
	if len(raw) != 32 {
		clear(raw)
		return nil, "", fmt.Errorf("%w: master secret %s does not hold a 32-byte key", ErrMasterMissing, m.secretID)
	}
	return keys.SecretFrom(raw), aws.ToString(out.VersionId), nil
}

// NewDataKey makes a random data key and wraps it under the current master key version.
func (m *SecretMaster) NewDataKey(ctx context.Context, b Binding) (*keys.Secret, WrappedKey, error) {
	mk, version, err := m.load(ctx, "")
	if err != nil {
		return nil, WrappedKey{}, err
	}
	defer mk.Destroy()
	dk := keys.NewSecret(32)
	w := WrappedKey{Wrap: WrapMasterSecret, MasterKeyID: m.secretID, MasterVersion: version, Cipher: CipherAESGCM, Nonce: make([]byte, 12)}
	err = mk.Use(func(mb []byte) error {
		gcm, err := newGCM(mb)
		if err != nil {
			return err
		}
		if _, err := rand.Read(w.Nonce); err != nil {
			return err
		}
		return dk.Use(func(d []byte) error {
			if _, err := rand.Read(d); err != nil {
				return err
			}
			w.Ciphertext = gcm.Seal(nil, w.Nonce, d, b.AAD())
			return nil
		})
	})
	if err != nil {
		dk.Destroy()
		return nil, WrappedKey{}, fmt.Errorf("secretsmanager: wrap data key: %w", err)
	}
	return dk, w, nil
}

// Unwrap opens a data key with the master key version it was wrapped under.
func (m *SecretMaster) Unwrap(ctx context.Context, w WrappedKey, b Binding) (*keys.Secret, error) {
	if w.Wrap != WrapMasterSecret || w.MasterKeyID != m.secretID {
		return nil, fmt.Errorf("%w: data key is wrapped by %s %q, the configured master is secret %s", ErrWrongMaster, w.Wrap, w.MasterKeyID, m.secretID)
	}
	if w.Cipher != CipherAESGCM || len(w.Nonce) != 12 || len(w.Ciphertext) != 32+16 {
		return nil, fmt.Errorf("%w: wrapped data key", ErrBadFormat)
	}
	for attempt := 0; ; attempt++ {
		dk, err := m.unwrapOnce(ctx, w, b)
		if errors.Is(err, keys.ErrDestroyed) && attempt == 0 {
			continue // the cached master key expired between lookup and use: load it again
		}
		return dk, err
	}
}

func (m *SecretMaster) unwrapOnce(ctx context.Context, w WrappedKey, b Binding) (*keys.Secret, error) {
	mk, err := m.cache.Get(ctx, w.MasterVersion, func(ctx context.Context) (*keys.Secret, error) {
		s, _, err := m.load(ctx, w.MasterVersion)
		return s, err
	})
	if err != nil {
		return nil, err
	}
	dk := keys.NewSecret(32)
	err = mk.Use(func(mb []byte) error {
		gcm, err := newGCM(mb)
		if err != nil {
			return err
		}
		return dk.Use(func(out []byte) error {
			pt, err := gcm.Open(out[:0], w.Nonce, w.Ciphertext, b.AAD())
			if err != nil {
				return fmt.Errorf("%w (master secret %s): %w", ErrWrongMaster, m.secretID, ErrTampered)
			}
			if len(pt) != 32 || &pt[0] != &out[0] {
				clear(pt)
				return ErrBadFormat
			}
			return nil
		})
	})
	if err != nil {
		dk.Destroy()
		return nil, err
	}
	return dk, nil
}

// Close wipes the cached master key.
func (m *SecretMaster) Close() error { m.cache.Close(); return nil }

func (m *SecretMaster) String() string { return "secret:" + m.secretID }

// GoString and Format keep %#v and %+v from dumping the client and the cached master key.
func (m *SecretMaster) GoString() string           { return m.String() }
func (m *SecretMaster) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(m.String())) }
func (m *SecretMaster) LogValue() slog.Value       { return slog.StringValue(m.String()) }
