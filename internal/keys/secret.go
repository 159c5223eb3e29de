package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// ErrDestroyed is returned by a Secret or SecretKey used after Destroy (its TTL expired or its
// provider closed); callers holding a cache entry load it again.
var ErrDestroyed = errors.New("key material already destroyed")

func allocHeap(n int) ([]byte, bool, func()) {
	b := make([]byte, n)
	return b, false, func() { clear(b) }
}

// Secret is a small buffer of key material (a private key, a data key, a master key) held in
// protected memory: outside the Go heap, excluded from core dumps and locked in RAM where the OS
// permits. Destroy zeroes it. It never prints.
type Secret struct {
	mu     sync.RWMutex
	b      []byte
	locked bool
	free   func()
}

// NewSecret allocates n zero bytes of protected memory.
func NewSecret(n int) *Secret {
	b, locked, free := allocProtected(n)
	return &Secret{b: b, locked: locked, free: free}
}

// SecretFrom copies raw into a new Secret and zeroes raw.
func SecretFrom(raw []byte) *Secret {
	s := NewSecret(len(raw))
	copy(s.b, raw)
	clear(raw)
	return s
}

// Locked reports whether the memory is locked against swapping.
func (s *Secret) Locked() bool { return s.locked }

// Use calls fn with the bytes while holding them against Destroy; fn must not keep or copy them out.
func (s *Secret) Use(fn func(b []byte) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.b == nil {
		return ErrDestroyed
	}
	return fn(s.b)
}

// Destroy zeroes and releases the memory; later Use calls get ErrDestroyed. Safe to call twice.
func (s *Secret) Destroy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil {
		return
	}
	s.free()
	s.b, s.free = nil, nil
}

func (s *Secret) String() string             { return "keys.Secret{" + redacted + "}" }
func (s *Secret) GoString() string           { return s.String() }
func (s *Secret) LogValue() slog.Value       { return slog.StringValue(redacted) }
func (s *Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// SecretKey is a decrypted secp256k1 private key in a Secret, with the address it belongs to. It
// signs 32-byte hashes without the key ever becoming a big.Int on the Go heap: each signature uses a
// scalar that is zeroed as soon as the signature is made.
type SecretKey struct {
	s    *Secret
	addr common.Address
}

// ErrInvalidKey is a 32-byte value that is not a usable secp256k1 private key.
var ErrInvalidKey = errors.New("not a valid secp256k1 private key")

// NewSecretKey takes over s (32 bytes) as a private key; s is destroyed if it is not a valid key.
func NewSecretKey(s *Secret) (*SecretKey, error) {
	var addr common.Address
	err := s.Use(func(b []byte) error {
		priv, err := scalarKey(b)
		if err != nil {
			return err
		}
		defer priv.Zero()
		addr = common.BytesToAddress(crypto.Keccak256(priv.PubKey().SerializeUncompressed()[1:])[12:])
		return nil
	})
	if err != nil {
		s.Destroy()
		return nil, err
	}
	return &SecretKey{s: s, addr: addr}, nil
}

// SecretKeyFrom copies raw (32 bytes) into protected memory and zeroes raw.
func SecretKeyFrom(raw []byte) (*SecretKey, error) {
	if len(raw) != 32 {
		clear(raw)
		return nil, ErrInvalidKey
	}
	return NewSecretKey(SecretFrom(raw))
}

// GenerateSecretKey makes a new random private key directly in protected memory.
func GenerateSecretKey() (*SecretKey, error) {
	for {
		s := NewSecret(32)
		if err := s.Use(func(b []byte) error { _, err := rand.Read(b); return err }); err != nil {
			s.Destroy()
			return nil, fmt.Errorf("keys: random: %w", err)
		}
		k, err := NewSecretKey(s)
		if errors.Is(err, ErrInvalidKey) {
			continue // a zero or ≥N scalar: astronomically unlikely, draw again
		}
		return k, err
	}
}

func scalarKey(b []byte) (*secp256k1.PrivateKey, error) {
	if len(b) != 32 {
		return nil, ErrInvalidKey
	}
	var sc secp256k1.ModNScalar
	if overflow := sc.SetByteSlice(b); overflow || sc.IsZero() {
		sc.Zero()
		return nil, ErrInvalidKey
	}
	p := secp256k1.NewPrivateKey(&sc)
	sc.Zero()
	return p, nil
}

// Address is the Ethereum address of the key.
func (k *SecretKey) Address() common.Address { return k.addr }

// Locked reports whether the key's memory is locked against swapping.
func (k *SecretKey) Locked() bool { return k.s.Locked() }

// SignHash signs a 32-byte hash and returns go-ethereum's 65-byte [R || S || V] form with V in {0, 1}
// and S in the lower half of the curve order (RFC 6979 deterministic nonces).
func (k *SecretKey) SignHash(hash []byte) ([]byte, error) {
	if len(hash) != 32 {
		return nil, fmt.Errorf("keys: hash is %d bytes, want 32", len(hash))
	}
	var sig []byte
	err := k.s.Use(func(b []byte) error {
		priv, err := scalarKey(b)
		if err != nil {
			return err
		}
		defer priv.Zero()
		c := secpecdsa.SignCompact(priv, hash, false) // [27+recid || R || S]
		sig = append(c[1:], c[0]-27)
		return nil
	})
	return sig, err
}

// Use lends the raw key bytes to fn (to encrypt them for storage); fn must not keep or copy them out.
func (k *SecretKey) Use(fn func(raw []byte) error) error { return k.s.Use(fn) }

// Destroy zeroes the key.
func (k *SecretKey) Destroy() { k.s.Destroy() }

func (k *SecretKey) String() string {
	return fmt.Sprintf("keys.SecretKey{address: %s, key: %s}", k.addr.Hex(), redacted)
}
func (k *SecretKey) GoString() string { return k.String() }
func (k *SecretKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("address", k.addr.Hex()), slog.String("key", redacted))
}
func (k *SecretKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }
