package config

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"gopkg.in/yaml.v3"
)

// Wei is an amount of wei, parsed at load. The zero Wei is "not set" (defaults fill it in), which is
// distinct from a configured 0.
type Wei struct{ v *big.Int }

// NewWei wraps v (copied, so the caller may reuse it).
func NewWei(v *big.Int) Wei { return Wei{v: new(big.Int).Set(v)} }

// Int returns the amount as a fresh *big.Int the caller may modify; 0 when not set.
func (w Wei) Int() *big.Int {
	if w.v == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(w.v)
}

// IsSet reports whether the value was configured (or defaulted).
func (w Wei) IsSet() bool { return w.v != nil }

// String is the amount in wei, in decimal; empty when not set.
func (w Wei) String() string {
	if w.v == nil {
		return ""
	}
	return w.v.String()
}

// weiUnits are the suffixes ParseWei accepts, as powers of ten of a wei.
var weiUnits = map[string]int{"wei": 0, "gwei": 9, "ether": 18}

// maxWei is the largest amount a transaction field can hold (uint256).
var maxWei = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseWei reads an amount of wei: a whole number of wei ("30000000000"), or a decimal number followed by
// a unit, wei, gwei or ether, with or without a space ("30 gwei", "0.5 ether", "1.5gwei"), that comes to
// a whole number of wei. No sign, exponent or digit separators; at most 2^256-1 wei.
func ParseWei(s string) (Wei, error) {
	bad := func(why string) (Wei, error) {
		return Wei{}, fmt.Errorf("%q is not an amount of wei (%s)", s, why)
	}
	num, unit := strings.TrimSpace(s), ""
	if i := strings.IndexFunc(num, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }); i >= 0 {
		num, unit = strings.TrimRight(num[:i], " "), strings.ToLower(num[i:])
	}
	exp, ok := weiUnits[unit]
	if unit == "" {
		exp, ok = 0, true
	}
	if !ok {
		return bad("the unit must be wei, gwei or ether")
	}
	whole, frac, dotted := strings.Cut(num, ".")
	if !digits(whole) || dotted && !digits(frac) {
		return bad(`write a whole number of wei, or a number and a unit: "30 gwei", "0.5 ether"`)
	}
	if frac = strings.TrimRight(frac, "0"); len(frac) > exp {
		return bad("not a whole number of wei")
	}
	whole = strings.TrimLeft(whole, "0")
	// Checked before big.Int sees it, so that a megabyte of digits is refused without the arithmetic.
	if len(whole)+exp > 78 {
		return bad("above 2^256-1")
	}
	v, _ := new(big.Int).SetString("0"+whole+frac+strings.Repeat("0", exp-len(frac)), 10)
	if v.Cmp(maxWei) > 0 {
		return bad("above 2^256-1")
	}
	return Wei{v: v}, nil
}

func digits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// UnmarshalYAML reads a number or a string (see ParseWei); an empty string leaves the value not set.
func (w *Wei) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(n, w, "an amount of wei", ParseWei)
}

// MarshalYAML writes the amount in wei as a decimal string, which ParseWei reads back.
func (w Wei) MarshalYAML() (any, error) { return w.String(), nil }

// MarshalText is the decimal amount, so that JSON logs show a number of wei, not an empty object.
func (w Wei) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// Address is an EVM address, parsed at load. The zero Address is "not set": it is never a valid
// configured value.
type Address common.Address

// Common returns the go-ethereum address.
func (a Address) Common() common.Address { return common.Address(a) }

// IsZero reports whether the address is not set.
func (a Address) IsZero() bool { return a == Address{} }

// Hex is the EIP-55 checksummed form.
func (a Address) Hex() string { return common.Address(a).Hex() }

// String is the EIP-55 checksummed form, or empty when not set.
func (a Address) String() string {
	if a.IsZero() {
		return ""
	}
	return a.Hex()
}

// Why ParseAddress refuses a text; the API maps them to its error codes.
var (
	ErrNotAddress  = errors.New("want 0x and 40 hex digits")
	ErrChecksum    = errors.New("mixed case, but the EIP-55 checksum is wrong: check it for a typo")
	ErrZeroAddress = errors.New("the zero address")
)

// ParseAddress reads an address, in a configuration file or an API request alike: "0x" and 40 hex
// digits; when the letters are of mixed case they must carry a correct EIP-55 checksum (all lower or
// all upper case is unchecksummed and accepted). The zero address is refused: as a hot wallet, a
// contract or a recipient it can only be a mistake. The error wraps ErrNotAddress, ErrChecksum or
// ErrZeroAddress.
func ParseAddress(s string) (Address, error) {
	bad := func(why error) (Address, error) { return Address{}, fmt.Errorf("%q is not an address (%w)", s, why) }
	if len(s) != 42 || s[0] != '0' || s[1] != 'x' {
		return bad(ErrNotAddress)
	}
	var upper, lower bool
	for i := 2; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f':
			lower = true
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return bad(ErrNotAddress)
		}
	}
	a := common.HexToAddress(s)
	// The right checksum is not shown: it would be the checksum of a mistyped address too.
	if upper && lower && a.Hex() != s {
		return bad(ErrChecksum)
	}
	if a == (common.Address{}) {
		return bad(ErrZeroAddress)
	}
	return Address(a), nil
}

// UnmarshalYAML reads a string (see ParseAddress); an empty string leaves the address not set.
func (a *Address) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(n, a, "an address", ParseAddress)
}

// MarshalYAML writes the checksummed form (empty when not set), which ParseAddress reads back.
func (a Address) MarshalYAML() (any, error) { return a.String(), nil }

// MarshalText is the checksummed form, so that JSON logs show an address, not 20 numbers.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Duration reads "2s"-style strings (Go's time.ParseDuration); an empty string leaves it not set.
type Duration struct{ time.Duration }

// ParseDuration reads a Go duration string such as "30s" or "1m30s".
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("%q is not a duration (e.g. \"30s\", \"1m30s\", \"500ms\")", s)
	}
	return Duration{v}, nil
}

// UnmarshalYAML reads a string (see ParseDuration); an empty string leaves the duration not set.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(n, d, "a duration", ParseDuration)
}

// unmarshalScalar is the UnmarshalYAML of every parsed type: "" (or a key with no value) is "not set",
// so that defaults apply and a file written by yaml.Marshal reads back the same.
func unmarshalScalar[T any](n *yaml.Node, dst *T, what string, parse func(string) (T, error)) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("is not %s (want a single value, not a list or a mapping)", what)
	}
	var zero T
	if n.Value == "" {
		*dst = zero
		return nil
	}
	v, err := parse(n.Value)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
