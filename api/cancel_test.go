package api

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/internal/store"
)

// speed-up: 422 before a transaction exists, 202 and one recorded request per attempt once it does,
// 409 once terminal, 404 for unknown ids and other clients' withdrawals.
func TestSpeedUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.post(aliceKey, body("s-1")).json(t)["id"].(string)
	path := "/v1/withdrawals/" + id + "/speed-up"
	r := e.do(http.MethodPost, path, aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 422 || code != CodeNotSigned || !strings.Contains(string(r.raw), "PENDING") {
		t.Fatalf("speed-up of PENDING: %d %s", r.status, r.raw)
	}
	if r := e.do(http.MethodPost, path, bobKey, nil); r.status != 404 {
		t.Fatalf("bob: %d", r.status)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals/0190b2f6-0000-7000-8000-000000000000/speed-up", aliceKey, nil); r.status != 404 {
		t.Fatalf("unknown: %d", r.status)
	}

	hash := "0x" + strings.Repeat("cd", 32)
	res, err := e.st.DB.ExecContext(ctx, `INSERT INTO sent_transactions (chain, chain_id, from_address, nonce, to_address,
		tx_hash, raw_tx, gas_limit, max_fee_per_gas, max_priority_fee, kind, source, status)
		VALUES ('local', 31337, ?, 7, ?, ?, x'00', 21000, '1', '1', 'withdrawal', 'signer', 'BROADCASTED')`,
		strings.ToLower(hotAddr), toAddr, hash)
	if err != nil {
		t.Fatal(err)
	}
	txID, _ := res.LastInsertId()
	if _, err := e.st.DB.ExecContext(ctx, `UPDATE withdrawals SET status = 'BROADCASTED', from_address = ?, sent_tx_id = ? WHERE id = ?`,
		strings.ToLower(hotAddr), txID, id); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r := e.do(http.MethodPost, path, aliceKey, nil)
		if r.status != 202 || r.json(t)["status"] != "BROADCASTED" || r.json(t)["tx_hash"] != hash {
			t.Fatalf("speed-up %d: %d %s", i, r.status, r.raw)
		}
		checkWithdrawalShape(t, r.json(t))
	}
	as, err := e.st.PendingTxActions(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range as {
		if a.WithdrawalID == id {
			n++
			if a.Kind != store.ActionSpeedUp || a.SentTxID != txID || a.BaseHash != hash {
				t.Fatalf("action %+v", a)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d pending speed-ups for the withdrawal after two identical requests, want 1", n)
	}

	if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
		return e.st.Transition(ctx, tx, id, store.Broadcasted, store.Confirmed, "test", store.ActorMonitor, store.Change{})
	}); err != nil {
		t.Fatal(err)
	}
	r = e.do(http.MethodPost, path, aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 409 || code != CodeTerminal || !strings.Contains(string(r.raw), "CONFIRMED") {
		t.Fatalf("speed-up of CONFIRMED: %d %s", r.status, r.raw)
	}
}
