package policy

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestReserved(t *testing.T) {
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"0x0000000000000000000000000000000000000000", true},
		{"0x0000000000000000000000000000000000000001", true},
		{"0x000000000000000000000000000000000000000a", true},
		{"0x000000000000000000000000000000000000000b", false},
		{"0x0000000000000000000000000000000000000100", true},
		{"0x0000000000000000000000000000000000000101", false},
		{"0x0000000000000000000000000000000000010001", false},
		{"0x1000000000000000000000000000000000000001", false},
	} {
		if got := reserved(common.HexToAddress(c.addr)); got != c.want {
			t.Errorf("reserved(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}

func TestBreachNamesRule(t *testing.T) {
	b := &Breach{Rule: RuleDailyTotal, Field: "amount", Message: "too much"}
	if b.Error() != "too much (rule daily_total)" {
		t.Fatal(b.Error())
	}
}
