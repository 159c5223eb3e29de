package accountmgr

import (
	"fmt"
	"math/big"
	"testing"
)

func b(v int64) *big.Int { return big.NewInt(v) }

func str(v *big.Int) string {
	if v == nil {
		return "-"
	}
	return v.String()
}

func TestNeed(t *testing.T) {
	band := Band{Min: b(100), Target: b(500)}
	capped := Band{Min: b(100), Target: b(500), Max: b(1000)}
	for _, c := range []struct {
		name          string
		band          Band
		pos           Position
		topUp, sweeps string
	}{
		{"within the band", band, Position{Balance: b(300)}, "-", "-"},
		{"at min is within", band, Position{Balance: b(100)}, "-", "-"},
		{"below min: up to target", band, Position{Balance: b(40)}, "460", "-"},
		{"empty wallet", band, Position{}, "500", "-"},
		{"a top-up in flight covers it", band, Position{Balance: b(40), Incoming: b(460)}, "-", "-"},
		{"a top-up in flight too small", band, Position{Balance: b(10), Incoming: b(50)}, "440", "-"},
		{"assigned withdrawals deepen the deficit", band, Position{Balance: b(300), Outgoing: b(250)}, "450", "-"},
		{"withdrawals beyond the balance", band, Position{Balance: b(100), Outgoing: b(300)}, "700", "-"},
		{"no max: never swept", band, Position{Balance: b(1_000_000)}, "-", "-"},
		{"at max is within", capped, Position{Balance: b(1000)}, "-", "-"},
		{"above max: back to target", capped, Position{Balance: b(1500)}, "-", "1000"},
		{"above max counting what leaves", capped, Position{Balance: b(1500), Outgoing: b(200)}, "-", "800"},
		{"no sweep while a top-up is in flight", capped, Position{Balance: b(1500), Incoming: b(10)}, "-", "-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up, sw := Need(c.band, c.pos)
			if str(up) != c.topUp || str(sw) != c.sweeps {
				t.Fatalf("Need(%+v) = top-up %s, sweep %s; want %s, %s", c.pos, str(up), str(sw), c.topUp, c.sweeps)
			}
			// Whatever is asked lands the effective balance on the target.
			if up != nil {
				if got := new(big.Int).Add(c.pos.Effective(), up); got.Cmp(c.band.Target) != 0 {
					t.Fatalf("after the top-up: %s, want target %s", got, c.band.Target)
				}
			}
		})
	}
}

func TestCover(t *testing.T) {
	for _, c := range []struct {
		name      string
		available int64
		deficits  []int64
		n         int
		missing   string
	}{
		{"covers all", 1000, []int64{300, 200}, 2, "0"},
		{"exactly", 500, []int64{300, 200}, 2, "0"},
		{"none: the first is not covered, the later smaller one does not jump it", 250, []int64{300, 200}, 0, "250"},
		{"the first only", 350, []int64{300, 200}, 1, "150"},
		{"nothing to cover", 0, nil, 0, "0"},
		{"empty main account", 0, []int64{10}, 0, "10"},
		{"already overcommitted", -50, []int64{10}, 0, "60"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ds []*big.Int
			for _, d := range c.deficits {
				ds = append(ds, b(d))
			}
			n, missing := Cover(b(c.available), ds)
			if n != c.n || missing.String() != c.missing {
				t.Fatalf("Cover(%d, %v) = %d, %s; want %d, %s", c.available, c.deficits, n, missing, c.n, c.missing)
			}
		})
	}
}

func TestUrgencyPutsTheEmptierWalletFirst(t *testing.T) {
	band := Band{Min: b(100), Target: b(500)}
	low, lower := Urgency(band, Position{Balance: b(50)}), Urgency(band, Position{Balance: b(10)})
	if lower.Cmp(low) <= 0 {
		t.Fatalf("urgency of 10 (%s) should exceed urgency of 50 (%s)", lower, low)
	}
}

// A draining wallet sweeps nothing while busy, all of a token, and its coin only once no token is left
// and less the reserve for that sweep's gas.
func TestDrain(t *testing.T) {
	p := Position{Balance: big.NewInt(1000), Outgoing: big.NewInt(100)}
	reserve := big.NewInt(300)
	for _, c := range []struct {
		name               string
		native, idle, left bool
		want               string
	}{
		{"busy token", false, false, false, "<nil>"},
		{"idle token", false, true, true, "900"},
		{"busy coin", true, false, false, "<nil>"},
		{"coin while a token is left", true, true, true, "<nil>"},
		{"idle coin", true, true, false, "600"},
	} {
		if got := Drain(c.native, p, c.idle, c.left, reserve); fmt.Sprint(got) != c.want {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
	}
	if got := Drain(true, Position{Balance: big.NewInt(200)}, true, false, reserve); got != nil {
		t.Errorf("coin below the reserve: %v, want nothing", got)
	}
}
