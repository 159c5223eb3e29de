package config

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// FuzzParseWei: ParseWei never panics; what it accepts is within uint256 and reads back from its decimal
// form to the same amount; a plain run of digits means that many wei.
func FuzzParseWei(f *testing.F) {
	for _, s := range []string{"0", "30 gwei", "0.5 ether", "1.5gwei", "12abc", "-1", "1e9", "0.1 wei", " 7 wei ", "1.", ".5",
		"115792089237316195423570985008687907853269984665640564039457584007913129639935", "1" + strings.Repeat("0", 78)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWei(s)
		if err != nil {
			if w.IsSet() || !strings.Contains(err.Error(), "is not an amount of wei") {
				t.Fatalf("ParseWei(%q): %v with value %s", s, err, w)
			}
			return
		}
		v := w.Int()
		if v.Sign() < 0 || v.Cmp(maxWei) > 0 {
			t.Fatalf("ParseWei(%q) = %s, outside 0..2^256-1", s, v)
		}
		again, err := ParseWei(w.String())
		if err != nil || again.Int().Cmp(v) != 0 {
			t.Fatalf("ParseWei(%q) = %s, which reads back as %s, %v", s, v, again, err)
		}
		if digits(s) {
			if want, _ := new(big.Int).SetString(s, 10); want.Cmp(v) != 0 {
				t.Fatalf("ParseWei(%q) = %s", s, v)
			}
		}
	})
}

// FuzzParseAddress: ParseAddress never panics; what it accepts is the same address as the text in any
// case, not zero, and its checksummed form reads back to it.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
		"0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "0x12", "0x0000000000000000000000000000000000000000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !a.IsZero() || !strings.Contains(err.Error(), "is not an address") {
				t.Fatalf("ParseAddress(%q): %v with value %s", s, err, a.Hex())
			}
			return
		}
		if a.IsZero() || !strings.EqualFold(a.Hex(), s) || a.Common() != common.HexToAddress(s) {
			t.Fatalf("ParseAddress(%q) = %s", s, a.Hex())
		}
		if again, err := ParseAddress(a.Hex()); err != nil || again != a {
			t.Fatalf("ParseAddress(%q) = %s, which reads back as %s, %v", s, a.Hex(), again.Hex(), err)
		}
	})
}
