// Package txerr is the one place where errors from chains, nodes and our own code are classified:
// permanent errors fail a withdrawal at once, retryable ones are retried and then dead-lettered.
package txerr

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
)

// Type is an error class from ARCHITECTURE.md.
type Type string

// Permanent types.
const (
	InsufficientFunds  Type = "INSUFFICIENT_FUNDS"
	InvalidTransaction Type = "INVALID_TRANSACTION"
	ExecutionReverted  Type = "EXECUTION_REVERTED"
	Unknown            Type = "UNKNOWN"
)

// Retryable types.
const (
	Network                Type = "NETWORK"
	Timeout                Type = "TIMEOUT"
	NonceTooLow            Type = "NONCE_TOO_LOW"
	NonceTooHigh           Type = "NONCE_TOO_HIGH"
	GasPriceTooLow         Type = "GAS_PRICE_TOO_LOW"
	ReplacementUnderpriced Type = "REPLACEMENT_UNDERPRICED"
	OutOfGas               Type = "OUT_OF_GAS"
)

// Retryable reports whether errors of this type are worth another attempt.
func (t Type) Retryable() bool {
	switch t {
	case Network, Timeout, NonceTooLow, NonceTooHigh, GasPriceTooLow, ReplacementUnderpriced, OutOfGas:
		return true
	}
	return false
}

// Error carries a classification through wrapping. Code is a short machine-readable detail.
type Error struct {
	Type Type
	Code string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Type)
	}
	return fmt.Sprintf("%s: %v", e.Type, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// New classifies err explicitly as t; use it where the code knows better than the message text.
func New(t Type, code string, err error) error { return &Error{Type: t, Code: code, Err: err} }

// Permanentf makes a permanent error of type t.
func Permanentf(t Type, format string, args ...any) error {
	return &Error{Type: t, Err: fmt.Errorf(format, args...)}
}

// patterns match the messages of geth, Erigon, Bor, Hardhat and the common RPC providers. Order
// matters: the first match wins, so specific phrases come before general ones.
var patterns = []struct {
	sub string
	t   Type
}{
	{"replacement transaction underpriced", ReplacementUnderpriced},
	{"replacement fee too low", ReplacementUnderpriced},
	{"nonce too low", NonceTooLow},
	{"nonce has already been used", NonceTooLow},
	{"nonce too high", NonceTooHigh},
	{"insufficient funds", InsufficientFunds},
	{"execution reverted", ExecutionReverted},
	{"reverted", ExecutionReverted},
	{"max fee per gas less than block base fee", GasPriceTooLow},
	{"transaction underpriced", GasPriceTooLow},
	{"fee cap less than block base fee", GasPriceTooLow},
	{"gas price too low", GasPriceTooLow},
	{"gas price below minimum", GasPriceTooLow}, // geth's txpool floor (--txpool.pricelimit)
	{"gas tip cap", GasPriceTooLow},             // bor: "gas tip cap X, minimum needed Y"
	{"feecap", GasPriceTooLow},
	{"tip above fee cap", InvalidTransaction},
	{"intrinsic gas too low", OutOfGas},
	{"out of gas", OutOfGas},
	{"gas required exceeds allowance", OutOfGas},
	{"exceeds block gas limit", InvalidTransaction},
	{"invalid sender", InvalidTransaction},
	{"invalid chain id", InvalidTransaction},
	{"only replay-protected", InvalidTransaction},
	{"oversized data", InvalidTransaction},
	{"rlp", InvalidTransaction},
	{"timeout", Timeout},
	{"deadline exceeded", Timeout},
	{"connection refused", Network},
	{"connection reset", Network},
	{"broken pipe", Network},
	{"unexpected eof", Network},
	{"no such host", Network},
	{"circuit breaker is open", Network},
	{"too many requests", Network},
	{"429", Network},
	{"502", Network},
	{"503", Network},
	{"504", Network},
}

// Classify returns err's type: an explicit *Error wins, then context and network errors, then the
// message text. Anything unrecognised is UNKNOWN, which is permanent: a withdrawal that fails for a
// reason nobody understands must stop and be looked at rather than be retried into a second payment.
func Classify(err error) Type {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Type
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return Timeout
		}
		return Network
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return Network
	}
	msg := strings.ToLower(err.Error())
	for _, p := range patterns {
		if strings.Contains(msg, p.sub) {
			return p.t
		}
	}
	return Unknown
}

// IsRetryable is Classify(err).Retryable().
func IsRetryable(err error) bool { return Classify(err).Retryable() }

// CodeOf returns the explicit code of a classified error, or the type name.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return string(Classify(err))
}

// MinTipNeeded reads the smallest tip a node said it would accept from a fee-floor refusal, such as
// Polygon's "gas tip cap 1000000000, minimum needed 25000000000". ok is false when the message names none.
func MinTipNeeded(err error) (tip *big.Int, ok bool) {
	if err == nil {
		return nil, false
	}
	msg := strings.ToLower(err.Error())
	const marker = "minimum needed "
	i := strings.Index(msg, marker)
	if i < 0 {
		return nil, false
	}
	rest := msg[i+len(marker):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 {
		return nil, false
	}
	return new(big.Int).SetString(rest[:j], 10)
}
