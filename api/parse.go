package api

import (
	"errors"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
)

// ValidationError is a client error naming the offending field: it becomes
// {"error":{"code","field","message"}} in a response.
type ValidationError struct {
	Code    string
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Code + ": " + e.Message
	}
	return e.Field + ": " + e.Code + ": " + e.Message
}

// MaxUint256 is the largest amount a withdrawal can carry, in base units (2^256 - 1).
var MaxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// maxAmountIntDigits: 2^256-1 has 78 decimal digits, so an integer part longer than that is too large
// whatever the asset's decimals (checked before any big-number work, so huge inputs stay cheap).
const maxAmountIntDigits = 78

// ParseAmount parses a decimal amount in asset units into base units of an asset with the given decimals.
//
// The accepted grammar is strictly `(0|[1-9][0-9]*)(\.[0-9]+)?`: plain ASCII digits, an optional point
// followed by at least one digit. Rejected as invalid_amount: empty strings, signs ("+1", "-1"),
// exponents ("1e6"), hex ("0x10"), spaces, leading zeros ("012"), a leading point (".5"), a trailing
// point ("5."), separators ("1,000" / "1_000"). Then, in this order: more fractional digits than the asset
// has, even if they are zeros → too_many_decimals; zero → amount_not_positive; above 2^256-1 base units →
// amount_too_large.
func ParseAmount(s string, decimals uint8) (*big.Int, error) {
	bad := func(code, msg string) (*big.Int, error) {
		return nil, &ValidationError{Code: code, Field: "amount", Message: msg}
	}
	if s == "" {
		return bad(CodeInvalidAmount, "amount is empty")
	}
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if !allDigits(intPart) || (hasPoint && !allDigits(frac)) {
		return bad(CodeInvalidAmount, "amount must be a plain decimal string such as \"12.5\": digits, optionally a point and more digits; no sign, exponent, spaces or hex")
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return bad(CodeInvalidAmount, "amount must not have leading zeros")
	}
	if len(frac) > int(decimals) {
		return bad(CodeTooManyDecimals, "amount has "+strconv.Itoa(len(frac))+" decimal places; the asset has "+strconv.Itoa(int(decimals)))
	}
	if len(intPart) > maxAmountIntDigits {
		return bad(CodeAmountTooLarge, "amount exceeds 2^256-1 base units")
	}
	var b strings.Builder
	b.Grow(len(intPart) + int(decimals))
	b.WriteString(intPart)
	b.WriteString(frac)
	for i := len(frac); i < int(decimals); i++ {
		b.WriteByte('0')
	}
	v, ok := new(big.Int).SetString(b.String(), 10)
	if !ok { // unreachable: only digits were written
		return bad(CodeInvalidAmount, "amount is not a number")
	}
	if v.Sign() == 0 {
		return bad(CodeAmountNotPositive, "amount must be greater than zero")
	}
	if v.Cmp(MaxUint256) > 0 {
		return bad(CodeAmountTooLarge, "amount exceeds 2^256-1 base units")
	}
	return v, nil
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatAmount renders base units as a decimal string in asset units, without trailing fractional zeros
// (1250000 with 6 decimals → "1.25"; 12000000 → "12"). It is the inverse of ParseAmount.
func FormatAmount(v *big.Int, decimals uint8) string {
	s := v.String()
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	d := int(decimals)
	if d > 0 {
		if len(s) <= d {
			s = strings.Repeat("0", d-len(s)+1) + s
		}
		i := len(s) - d
		frac := strings.TrimRight(s[i:], "0")
		s = s[:i]
		if frac != "" {
			s += "." + frac
		}
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ValidateAddress checks an EVM address as the API accepts it, by the rules of config.ParseAddress (the
// one place for them): "0x" followed by 40 hex digits; if the letters are of mixed case the EIP-55
// checksum must be right (all-lower or all-upper is unchecksummed and accepted); the zero address is
// refused. It returns the address, whose Hex() is the checksummed form.
func ValidateAddress(field, s string) (common.Address, error) {
	a, err := config.ParseAddress(s)
	switch {
	case err == nil:
		return a.Common(), nil
	case errors.Is(err, config.ErrChecksum):
		return common.Address{}, &ValidationError{Code: CodeInvalidChecksum, Field: field,
			Message: field + " has mixed case but fails the EIP-55 checksum; send it checksummed or all lower case"}
	case errors.Is(err, config.ErrZeroAddress):
		return common.Address{}, &ValidationError{Code: CodeInvalidAddress, Field: field,
			Message: field + " must not be the zero address"}
	default:
		return common.Address{}, &ValidationError{Code: CodeInvalidAddress, Field: field,
			Message: field + " must be a 0x-prefixed 20-byte hex address (42 characters)"}
	}
}
