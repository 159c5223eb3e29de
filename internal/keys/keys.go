// Package keys owns access to private keys: callers get a Signer per hot-wallet address and never see
// key material. Keys never leave this package — no type here prints, logs or wraps a key or the
// password that protects it (every type that can reach them implements fmt.Stringer, fmt.GoStringer
// and slog.LogValuer with a redacted form).
//
// Backends implement Provider: the local keystore (go-ethereum's encrypted JSON key files, scrypt) is
// here; Secrets Manager (internal/keys/secretsmanager: doubly encrypted keys loaded just in time) and
// AWS KMS (internal/keys/kms: the key never leaves KMS) are subpackages, and Router gives each wallet
// its own backend. Signer takes a context because a remote backend makes network calls. A key that
// cannot be loaded is an Unavailable error: retryable, alerted on, never a fallback to another key.
// docs/keys.md describes the scheme and the threat model.
package keys

import (
	"context"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Signer signs transactions for one address.
type Signer interface {
	Address() common.Address
	// SignTx signs tx for chainID with the latest signer for that chain (EIP-155/1559/2930/4844/7702).
	SignTx(ctx context.Context, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error)
}

// Provider gives out Signers for the addresses it holds keys for.
type Provider interface {
	// Signer returns the signer of addr; an Unavailable error wrapping ErrUnknownAddress (naming the
	// address) when there is no key for it.
	Signer(ctx context.Context, addr common.Address) (Signer, error)
	// Addresses lists the addresses this provider can sign for.
	Addresses(ctx context.Context) ([]common.Address, error)
}

// Errors, always wrapped with the address concerned; none ever carries key material.
var (
	ErrUnknownAddress = errors.New("no key for address")
	ErrBadPassword    = errors.New("wrong keystore password")
	ErrClosed         = errors.New("key provider closed")
)

// redacted is how key-holding types print.
const redacted = "[REDACTED]"
