// Package txerr is the one place where errors from chains, nodes and our own code are classified:
// permanent errors fail a withdrawal at once, retryable ones are retried and then dead-lettered.
//
// Classify reads, in this order: an explicit classification (New, Permanentf), the caller's deadline,
// go-ethereum's own error values (errors.Is), the HTTP status and JSON-RPC error code of a remote
// answer, network errors, and last the message text against the table in table.go, which holds the
// real texts of geth, bor, Erigon, Hardhat, anvil and the big RPC providers. A remote node's error
// reaches us as text only, so the text table is what classifies most node answers; the values cover
// errors that stay in process and give the table its geth texts.
package txerr

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/rpc"
)

// Type is an error class from the design (docs: error types).
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

// AlreadyKnown is a node saying it already has this very transaction (same bytes, same hash). It is
// an outcome, not a failure: whoever sent the transaction has succeeded (see IsAlreadyKnown). It is
// retryable so that, should it ever reach a retry loop, the retry resends the same bytes and meets the
// same success, instead of failing a withdrawal whose transaction is in the pool.
const AlreadyKnown Type = "ALREADY_KNOWN"

// Retryable reports whether errors of this type are worth another attempt.
func (t Type) Retryable() bool {
	switch t {
	case Network, Timeout, NonceTooLow, NonceTooHigh, GasPriceTooLow, ReplacementUnderpriced, OutOfGas, AlreadyKnown:
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

// Classify returns err's type (see the package doc for the order). Anything unrecognised is UNKNOWN,
// which is permanent: a withdrawal that fails for a reason nobody understands must stop and be looked
// at rather than be retried into a second payment.
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
	for _, r := range rows {
		if r.err != nil && errors.Is(err, r.err) {
			return r.typ
		}
	}
	if code, ok := httpStatus(err); ok {
		switch code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return Network
		case http.StatusRequestTimeout:
			return Timeout
		}
	}
	if rateLimitCode(err) {
		return Network
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
	if r := match(err.Error()); r != nil {
		return r.typ
	}
	return Unknown
}

// IsRetryable is Classify(err).Retryable().
func IsRetryable(err error) bool { return Classify(err).Retryable() }

// IsAlreadyKnown reports a node saying it already has this transaction ("already known", "known
// transaction", "transaction already imported", Nethermind's AlreadyKnown). For a sender that is
// success: the same signed bytes are in the pool.
func IsAlreadyKnown(err error) bool { return err != nil && Classify(err) == AlreadyKnown }

// IsTransient reports a node answer that another attempt, or another node, may well not give: a node
// that has not caught up ("header not found", "missing trie node"), is still indexing, or timed the
// request out. Such an answer is about the node's state, not the request, so it is worth failing over.
// Every transient answer classifies as retryable.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	r := match(err.Error())
	return r != nil && r.kind == transient
}

// IsRateLimited reports an endpoint refusing because of its rate limit or plan: HTTP 429, the
// JSON-RPC code -32005 ("limit exceeded", EIP-1474) or Alchemy's 429 in the JSON-RPC error, or a
// provider's rate-limit text. It is the endpoint's fault, not the request's.
func IsRateLimited(err error) bool {
	if err == nil {
		return false
	}
	if code, ok := httpStatus(err); ok && code == http.StatusTooManyRequests {
		return true
	}
	if rateLimitCode(err) {
		return true
	}
	r := match(err.Error())
	return r != nil && r.kind == rateLimited
}

// CodeOf returns the explicit code of a classified error, or the type name.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return string(Classify(err))
}

// MinTipNeeded reads the smallest tip a node said it would accept from a fee-floor refusal: geth's and
// bor's "…: gas tip cap 1000000000, minimum needed 25000000000". ok is false when the message names
// none. Other "minimum needed" figures (intrinsic gas, blob fee cap) are not tips and are not read.
func MinTipNeeded(err error) (tip *big.Int, ok bool) {
	if err == nil {
		return nil, false
	}
	msg := strings.ToLower(err.Error())
	const capMarker, needMarker = "gas tip cap ", ", minimum needed "
	i := strings.Index(msg, capMarker)
	if i < 0 {
		return nil, false
	}
	rest := msg[i+len(capMarker):]
	j := strings.Index(rest, needMarker)
	if j < 0 {
		return nil, false
	}
	// Only the cap's own figure may sit between the two markers.
	if strings.TrimLeft(rest[:j], "0123456789") != "" {
		return nil, false
	}
	rest = rest[j+len(needMarker):]
	k := 0
	for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
		k++
	}
	if k == 0 {
		return nil, false
	}
	return new(big.Int).SetString(rest[:k], 10)
}

// httpStatus is the status of a non-2xx HTTP answer, as go-ethereum's rpc client reports it.
func httpStatus(err error) (int, bool) {
	var he rpc.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode, true
	}
	var hp *rpc.HTTPError
	if errors.As(err, &hp) && hp != nil {
		return hp.StatusCode, true
	}
	return 0, false
}

// rateLimitCode reports a JSON-RPC error whose code says rate limited: -32005 ("limit exceeded",
// EIP-1474; Infura) or 429 (Alchemy puts the HTTP status in the JSON-RPC error).
func rateLimitCode(err error) bool {
	var re rpc.Error
	if !errors.As(err, &re) {
		return false
	}
	switch re.ErrorCode() {
	case -32005, http.StatusTooManyRequests:
		return true
	}
	return false
}
