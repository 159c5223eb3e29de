package chaos

import (
	"testing"

	"github.com/sluice-custody/sluice/internal/store"
)

func TestCancelDue(t *testing.T) {
	for _, c := range []struct {
		moment  string
		st      store.Status
		inBatch bool
		at      string
		ok      bool
	}{
		{cancelPending, store.Pending, false, cancelPending, true},
		{cancelPending, store.Signing, false, cancelPending, true},
		{cancelPending, store.Broadcasted, true, cancelBatch, true}, // passed by: caught up where it is
		{cancelSigned, store.Pending, false, "", false},
		{cancelSigned, store.Signed, false, cancelSigned, true},
		{cancelSigned, store.Signed, true, cancelBatch, true},
		{cancelBroadcast, store.Signed, false, "", false},
		{cancelBroadcast, store.Broadcasted, false, cancelBroadcast, true},
		{cancelBatch, store.Pending, false, "", false},
		{cancelBatch, store.Signed, false, "", false},                  // a single, signed: wait for its broadcast
		{cancelBatch, store.Broadcasted, false, cancelBroadcast, true}, // a single: canceled broadcast instead
		{cancelBatch, store.Signed, true, cancelBatch, true},
		{cancelBroadcast, store.Confirmed, false, "", true}, // ended first
		{cancelPending, store.Canceled, false, "", true},
	} {
		at, ok := cancelDue(c.moment, c.st, c.inBatch)
		if at != c.at || ok != c.ok {
			t.Errorf("cancelDue(%s, %s, batch %v) = %q %v, want %q %v", c.moment, c.st, c.inBatch, at, ok, c.at, c.ok)
		}
	}
}

func TestCancelPicksAreTheSeeds(t *testing.T) {
	a, b := cancelPicks(7, 20, 200), cancelPicks(7, 20, 200)
	if len(a) != 20 || len(b) != 20 {
		t.Fatalf("%d and %d picks, want 20", len(a), len(b))
	}
	moments := map[string]bool{}
	for i, m := range a {
		if b[i] != m {
			t.Fatalf("pick %d: %q then %q from one seed", i, m, b[i])
		}
		moments[m] = true
	}
	if len(moments) < 3 {
		t.Fatalf("moments %v: want most of them drawn", moments)
	}
	if c := cancelPicks(8, 20, 200); len(c) == 20 {
		same := true
		for i := range c {
			if _, ok := a[i]; !ok {
				same = false
			}
		}
		if same {
			t.Fatal("seeds 7 and 8 picked the same withdrawals")
		}
	}
	if got := cancelPicks(1, 50, 10); len(got) != 10 {
		t.Fatalf("%d picks of 10 withdrawals", len(got))
	}
}
