package api

import (
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/internal/config"
)

// An amount above the asset's max_withdrawal is refused with 422 naming amount, and nothing is stored;
// the maximum itself is accepted. A new withdrawal shows waiting: null.
func TestMaxWithdrawal(t *testing.T) {
	e := newEnv(t, func(d *Deps) {
		d.Chains[0].Assets[1].MaxWithdrawal = config.NewWei(big.NewInt(100_000_000)) // 100 USDT
		d.Chains[0].HotWallets = append(d.Chains[0].HotWallets, mustAddress("0x0000000000000000000000000000000000000007"))
	})
	r := e.post(aliceKey, body("big", "amount", "100.000001"))
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %s", r.status, r.raw)
	}
	if code, field := r.errorOf(t); code != CodeAmountTooLarge || field != "amount" || !strings.Contains(string(r.raw), "100") {
		t.Fatalf("error %s/%v, want %s/amount naming the maximum: %s", code, field, CodeAmountTooLarge, r.raw)
	}
	e.expectNothingWritten()
	r = e.post(aliceKey, body("max", "amount", "100"))
	if r.status != http.StatusCreated {
		t.Fatalf("the maximum itself: %d %s", r.status, r.raw)
	}
	if m := r.json(t); m["waiting"] != nil {
		t.Fatalf("waiting %v, want null for a new withdrawal", m["waiting"])
	}
	// A withdrawal the signer marked awaiting funds shows it, and only while PENDING.
	id := r.json(t)["id"].(string)
	if _, err := e.st.DB.Exec(`UPDATE withdrawals SET waiting = 'awaiting_funds', waiting_since = UTC_TIMESTAMP(6) WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	if g := e.do(http.MethodGet, "/v1/withdrawals/"+id, aliceKey, nil); g.json(t)["waiting"] != "awaiting_funds" {
		t.Fatalf("waiting withdrawal: %s, want waiting awaiting_funds", g.raw)
	}
	// Every hot wallet of the fleet is listed.
	c := e.do(http.MethodGet, "/v1/chains", aliceKey, nil)
	if !strings.Contains(string(c.raw), hotAddr) || !strings.Contains(string(c.raw), "0x0000000000000000000000000000000000000007") {
		t.Fatalf("chains %s, want both hot wallets", c.raw)
	}
}
