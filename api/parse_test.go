package api

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/policy"
)

func codeOf(err error) string {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Code
	}
	if err != nil {
		return "?" + err.Error()
	}
	return ""
}

func TestParseAmount(t *testing.T) {
	max := MaxUint256.String() // 78 digits
	maxPlus1 := new(big.Int).Add(MaxUint256, big.NewInt(1)).String()
	for _, tc := range []struct {
		in   string
		dec  uint8
		want string // base units, or "" when an error is expected
		code string
	}{
		{"12.5", 6, "12500000", ""},
		{"12", 6, "12000000", ""},
		{"0.000001", 6, "1", ""},
		{"12.50", 6, "12500000", ""},
		{"0.5", 18, "500000000000000000", ""},
		{"1", 0, "1", ""},
		{max, 0, max, ""},
		{"115792089237316195423570985008687907853269984665640564039457.584007913129639935", 18, max, ""},
		{"", 6, "", CodeInvalidAmount},
		{".5", 6, "", CodeInvalidAmount},
		{"5.", 6, "", CodeInvalidAmount},
		{".", 6, "", CodeInvalidAmount},
		{"+1", 6, "", CodeInvalidAmount},
		{"-1", 6, "", CodeInvalidAmount},
		{"1e6", 6, "", CodeInvalidAmount},
		{"1E6", 6, "", CodeInvalidAmount},
		{"0x10", 6, "", CodeInvalidAmount},
		{" 1", 6, "", CodeInvalidAmount},
		{"1 ", 6, "", CodeInvalidAmount},
		{"1,000", 6, "", CodeInvalidAmount},
		{"1_000", 6, "", CodeInvalidAmount},
		{"012", 6, "", CodeInvalidAmount},
		{"00.5", 6, "", CodeInvalidAmount},
		{"1.2.3", 6, "", CodeInvalidAmount},
		{"NaN", 6, "", CodeInvalidAmount},
		{"Infinity", 6, "", CodeInvalidAmount},
		{"١٢", 6, "", CodeInvalidAmount}, // non-ASCII digits
		{"0", 6, "", CodeAmountNotPositive},
		{"0.0", 6, "", CodeAmountNotPositive},
		{"0.000000", 6, "", CodeAmountNotPositive},
		{"0.0000001", 6, "", CodeTooManyDecimals},
		{"1.5", 0, "", CodeTooManyDecimals},
		{"12.5000000", 6, "", CodeTooManyDecimals},
		{maxPlus1, 0, "", CodeAmountTooLarge},
		{"1" + strings.Repeat("0", 78), 0, "", CodeAmountTooLarge},
		{strings.Repeat("9", 5000), 6, "", CodeAmountTooLarge},
		{"115792089237316195423570985008687907853269984665640564039458", 18, "", CodeAmountTooLarge},
	} {
		got, err := ParseAmount(tc.in, tc.dec)
		if c := codeOf(err); c != tc.code {
			t.Errorf("ParseAmount(%q, %d): code %q, want %q", tc.in, tc.dec, c, tc.code)
			continue
		}
		if tc.code == "" && got.String() != tc.want {
			t.Errorf("ParseAmount(%q, %d) = %s, want %s", tc.in, tc.dec, got, tc.want)
		}
		if tc.code != "" {
			var ve *ValidationError
			if errors.As(err, &ve) && ve.Field != "amount" {
				t.Errorf("ParseAmount(%q): field %q", tc.in, ve.Field)
			}
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for _, tc := range []struct {
		v    string
		dec  uint8
		want string
	}{
		{"12500000", 6, "12.5"},
		{"12000000", 6, "12"},
		{"1", 6, "0.000001"},
		{"0", 6, "0"},
		{"100", 0, "100"},
		{"1", 18, "0.000000000000000001"},
		{"1000000000000000000", 18, "1"},
		{"-1500000", 6, "-1.5"},
	} {
		v, _ := new(big.Int).SetString(tc.v, 10)
		if got := FormatAmount(v, tc.dec); got != tc.want {
			t.Errorf("FormatAmount(%s, %d) = %q, want %q", tc.v, tc.dec, got, tc.want)
		}
	}
}

func TestValidateAddress(t *testing.T) {
	const good = "0x52908400098527886E0F7030069857D2E4169EE7" // EIP-55 test vector (all caps letters)
	const mixed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	for _, tc := range []struct {
		in, want, code string
	}{
		{mixed, mixed, ""},
		{strings.ToLower(mixed), mixed, ""},
		{"0x" + strings.ToUpper(mixed[2:]), mixed, ""},
		{good, good, ""},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "", CodeInvalidChecksum},
		{"0x0000000000000000000000000000000000000000", "", CodeInvalidAddress},
		{"0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "", CodeInvalidAddress},
		{"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "", CodeInvalidAddress},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", "", CodeInvalidAddress},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd", "", CodeInvalidAddress},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", "", CodeInvalidAddress},
		{" 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", "", CodeInvalidAddress},
		{"", "", CodeInvalidAddress},
		{"vitalik.eth", "", CodeInvalidAddress},
	} {
		got, err := ValidateAddress("to", tc.in)
		if c := codeOf(err); c != tc.code {
			t.Errorf("ValidateAddress(%q): code %q, want %q", tc.in, c, tc.code)
			continue
		}
		if tc.code == "" && got.Hex() != tc.want {
			t.Errorf("ValidateAddress(%q) = %s, want %s", tc.in, got.Hex(), tc.want)
		}
	}
}

// canonical is what FormatAmount must give back for an accepted amount string: the same digits
// without trailing fractional zeros (and without the point when nothing is left after it).
func canonical(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.5", "0.000001", "12", "0", ".5", "1e6", "-1", "+1", "0x10", " 1", "012",
		MaxUint256.String(), "1" + strings.Repeat("0", 78), "1.0000000000000000000", "99999999999999999999.999999"} {
		for _, d := range []uint8{0, 6, 18, 77} {
			f.Add(s, d)
		}
	}
	f.Fuzz(func(t *testing.T, s string, dec uint8) {
		dec %= 78 // config allows at most 77 decimals
		v, err := ParseAmount(s, dec)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "amount" || ve.Code == "" {
				t.Fatalf("ParseAmount(%q, %d): unclassified error %v", s, dec, err)
			}
			if v != nil {
				t.Fatalf("ParseAmount(%q, %d): value with error", s, dec)
			}
			return
		}
		if v.Sign() <= 0 {
			t.Fatalf("ParseAmount(%q, %d) = %s: not positive", s, dec, v)
		}
		if v.Cmp(MaxUint256) > 0 {
			t.Fatalf("ParseAmount(%q, %d) = %s: above uint256", s, dec, v)
		}
		out := FormatAmount(v, dec)
		if out != canonical(s) {
			t.Fatalf("ParseAmount(%q, %d) = %s formats back as %q, want %q", s, dec, v, out, canonical(s))
		}
		back, err := ParseAmount(out, dec)
		if err != nil || back.Cmp(v) != 0 {
			t.Fatalf("round trip of %q (dec %d): %v, %v", out, dec, back, err)
		}
	})
}

func FuzzValidateAddress(f *testing.F) {
	for _, s := range []string{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
		"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
		"0x0000000000000000000000000000000000000000", "0x", "", "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ValidateAddress("to", s)
		if err != nil {
			c := codeOf(err)
			if c != CodeInvalidAddress && c != CodeInvalidChecksum {
				t.Fatalf("ValidateAddress(%q): code %q", s, c)
			}
			return
		}
		if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") || len(s) != 42 {
			t.Fatalf("ValidateAddress accepted %q", s)
		}
		if a == (common.Address{}) {
			t.Fatalf("ValidateAddress accepted the zero address %q", s)
		}
		if !strings.EqualFold(a.Hex(), s) {
			t.Fatalf("ValidateAddress(%q) = %s: different address", s, a.Hex())
		}
		lowerOrUpper := s[2:] == strings.ToLower(s[2:]) || s[2:] == strings.ToUpper(s[2:])
		if !lowerOrUpper && a.Hex() != s {
			t.Fatalf("ValidateAddress accepted %q with a bad checksum", s)
		}
		// The checksummed form is accepted and means the same address.
		b, err := ValidateAddress("to", a.Hex())
		if err != nil || b != a {
			t.Fatalf("checksummed %s refused: %v", a.Hex(), err)
		}
	})
}

// A create must commit well within the overlap other instances' destination indexes read back, or a
// late commit could be missed by them (policy.Destinations).
func TestCreateTimeoutUnderDestinationsOverlap(t *testing.T) {
	if CreateTimeout >= policy.DestinationsOverlap/2 {
		t.Fatalf("CreateTimeout %v must stay under half of policy.DestinationsOverlap %v", CreateTimeout, policy.DestinationsOverlap)
	}
}
