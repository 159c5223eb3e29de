package keys

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Keystore is the local backend: a directory of go-ethereum encrypted key files sharing one password.
// A key is decrypted on the first Signer call for its address and then lives only inside
// go-ethereum's keystore, held unexported here: for good, or with WithUnlockTTL for a bounded time
// after which it is zeroed and decrypted again at the next signature. Close wipes the decrypted keys.
type Keystore struct {
	dir      string
	password string
	ks       *keystore.KeyStore
	ttl      time.Duration // 0: unlocked until Close

	mu      sync.Mutex // serialises unlocking: scrypt is expensive, do it once per address
	signers map[common.Address]*keystoreSigner
	closed  bool
}

var _ Provider = (*Keystore)(nil)

// KeystoreOption configures NewKeystore.
type KeystoreOption func(*keystoreConfig)

type keystoreConfig struct {
	scryptN, scryptP int
	ttl              time.Duration
}

// WithUnlockTTL zeroes each decrypted key ttl after it was decrypted; the next signature decrypts it
// again (one scrypt run, about a second with standard parameters). Without it a key stays decrypted
// until Close.
func WithUnlockTTL(ttl time.Duration) KeystoreOption {
	return func(c *keystoreConfig) { c.ttl = ttl }
}

// WithLightScrypt makes new and imported key files use light scrypt parameters (4 MB, fast): for dev
// and tests only. Existing files decrypt with whatever parameters they were written with.
func WithLightScrypt() KeystoreOption {
	return func(c *keystoreConfig) { c.scryptN, c.scryptP = keystore.LightScryptN, keystore.LightScryptP }
}

// NewKeystore opens (creating if needed, mode 0700) the key directory dir; password decrypts its keys.
// Nothing is decrypted until a Signer is asked for.
func NewKeystore(dir, password string, opts ...KeystoreOption) (*Keystore, error) {
	if dir == "" {
		return nil, errors.New("keys: keystore directory not set")
	}
	if password == "" {
		return nil, errors.New("keys: keystore password is empty")
	}
	cfg := keystoreConfig{scryptN: keystore.StandardScryptN, scryptP: keystore.StandardScryptP}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: keystore directory: %w", err)
	}
	return &Keystore{
		dir:      dir,
		password: password,
		ks:       keystore.NewKeyStore(dir, cfg.scryptN, cfg.scryptP),
		ttl:      cfg.ttl,
		signers:  map[common.Address]*keystoreSigner{},
	}, nil
}

// Addresses lists the addresses with a key file, sorted.
func (k *Keystore) Addresses(ctx context.Context) ([]common.Address, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []common.Address
	for _, a := range k.ks.Accounts() {
		if !slices.Contains(out, a.Address) {
			out = append(out, a.Address)
		}
	}
	slices.SortFunc(out, func(a, b common.Address) int { return a.Cmp(b) })
	return out, nil
}

// Signer returns the signer of addr, decrypting its key the first time. Every failure is an
// Unavailable error (retryable, never a fallback).
func (k *Keystore) Signer(ctx context.Context, addr common.Address) (Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, Unavailable(addr, "keystore", ErrClosed)
	}
	if s, ok := k.signers[addr]; ok {
		return s, nil
	}
	if !k.ks.HasAddress(addr) {
		return nil, Unavailable(addr, "keystore", fmt.Errorf("%w in keystore %s", ErrUnknownAddress, k.dir))
	}
	if err := k.unlock(addr); err != nil {
		return nil, err
	}
	s := &keystoreSigner{addr: addr, k: k}
	k.signers[addr] = s
	return s, nil
}

// unlock decrypts addr's key (k.mu held).
func (k *Keystore) unlock(addr common.Address) error {
	if err := k.ks.TimedUnlock(accounts.Account{Address: addr}, k.password, k.ttl); err != nil {
		return Unavailable(addr, "keystore", fmt.Errorf("unlock: %w", unlockError(err)))
	}
	return nil
}

// unlockAgain decrypts a key whose unlock TTL ran out, unless the keystore was closed meanwhile.
func (k *Keystore) unlockAgain(addr common.Address) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return Unavailable(addr, "keystore", ErrClosed)
	}
	return k.unlock(addr)
}

// unlockError keeps go-ethereum's error classes but never passes on anything it does not know: a
// decryption error text is fixed, a file error names a path, nothing else is expected.
func unlockError(err error) error {
	switch {
	case errors.Is(err, keystore.ErrDecrypt):
		return ErrBadPassword
	case errors.Is(err, keystore.ErrNoMatch):
		return ErrUnknownAddress
	}
	var amb *keystore.AmbiguousAddrError
	if errors.As(err, &amb) {
		return fmt.Errorf("%d key files for the same address", len(amb.Matches))
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("read key file: %w", pe)
	}
	return errors.New("key file could not be decrypted")
}

// ImportECDSA stores key encrypted with the keystore's password (dev and tests) and returns its
// address. Importing an address that is already there is an error.
func (k *Keystore) ImportECDSA(key *ecdsa.PrivateKey) (common.Address, error) {
	if key == nil {
		return common.Address{}, errors.New("keys: import: nil key")
	}
	a, err := k.ks.ImportECDSA(key, k.password)
	if err != nil {
		if errors.Is(err, keystore.ErrAccountAlreadyExists) {
			return common.Address{}, fmt.Errorf("keys: import %s: already in keystore", a.Address.Hex())
		}
		return common.Address{}, fmt.Errorf("keys: import: %w", scrub(err))
	}
	return a.Address, nil
}

// NewAccount generates a fresh key, stores it encrypted and returns its address (dev and tests).
func (k *Keystore) NewAccount() (common.Address, error) {
	a, err := k.ks.NewAccount(k.password)
	if err != nil {
		return common.Address{}, fmt.Errorf("keys: new account: %w", scrub(err))
	}
	return a.Address, nil
}

// scrub passes on file-system errors (they name paths, not keys) and replaces anything else.
func scrub(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe
	}
	return errors.New("keystore write failed")
}

// Close wipes every decrypted key from memory; the Keystore and its Signers are unusable afterwards.
func (k *Keystore) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	for addr := range k.signers {
		_ = k.ks.Lock(addr)
	}
	k.signers = nil
	k.password = ""
	return nil
}

func (k *Keystore) String() string {
	return fmt.Sprintf("keys.Keystore{dir: %s, password: %s}", k.dir, redacted)
}

// GoString keeps %#v from dumping the fields.
func (k *Keystore) GoString() string { return k.String() }

// LogValue keeps slog from dumping the fields.
func (k *Keystore) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", "keystore"), slog.String("dir", k.dir))
}

// Format covers every verb, %x and %s included.
func (k *Keystore) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// keystoreSigner signs with a key unlocked in the Keystore.
type keystoreSigner struct {
	addr common.Address
	k    *Keystore
}

func (s *keystoreSigner) Address() common.Address { return s.addr }

func (s *keystoreSigner) SignTx(ctx context.Context, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if tx == nil || chainID == nil || chainID.Sign() <= 0 {
		return nil, fmt.Errorf("keys: sign for %s: transaction and a positive chain id are required", s.addr.Hex())
	}
	signed, err := s.k.ks.SignTx(accounts.Account{Address: s.addr}, tx, chainID)
	if errors.Is(err, keystore.ErrLocked) {
		// The unlock TTL ran out (or Close ran): decrypt again unless closed.
		if err := s.k.unlockAgain(s.addr); err != nil {
			return nil, err
		}
		signed, err = s.k.ks.SignTx(accounts.Account{Address: s.addr}, tx, chainID)
	}
	if err != nil {
		if errors.Is(err, keystore.ErrLocked) {
			return nil, Unavailable(s.addr, "keystore", ErrClosed)
		}
		// go-ethereum's signing errors are about the transaction (chain id mismatch, tx type).
		return nil, fmt.Errorf("keys: sign for %s: %w", s.addr.Hex(), err)
	}
	return signed, nil
}

func (s *keystoreSigner) String() string {
	return fmt.Sprintf("keys.Signer{address: %s, key: %s}", s.addr.Hex(), redacted)
}

func (s *keystoreSigner) GoString() string { return s.String() }

func (s *keystoreSigner) LogValue() slog.Value {
	return slog.GroupValue(slog.String("address", s.addr.Hex()), slog.String("key", redacted))
}

func (s *keystoreSigner) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
