package api

import (
	"context"
	"database/sql"
	"fmt"
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

// broadcast puts withdrawal id in BROADCASTED with a recorded transaction at nonce n; it returns the
// transaction's id and hash.
func broadcast(t *testing.T, e *env, id string, n int) (int64, string) {
	t.Helper()
	ctx := context.Background()
	hash := "0x" + strings.Repeat(fmt.Sprintf("%02x", n), 32)
	res, err := e.st.DB.ExecContext(ctx, `INSERT INTO sent_transactions (chain, chain_id, from_address, nonce, to_address,
		tx_hash, raw_tx, gas_limit, max_fee_per_gas, max_priority_fee, kind, source, status)
		VALUES ('local', 31337, ?, ?, ?, ?, x'00', 21000, '1', '1', 'withdrawal', 'signer', 'BROADCASTED')`,
		strings.ToLower(hotAddr), n, toAddr, hash)
	if err != nil {
		t.Fatal(err)
	}
	txID, _ := res.LastInsertId()
	if _, err := e.st.DB.ExecContext(ctx, `UPDATE withdrawals SET status = 'BROADCASTED', from_address = ?, sent_tx_id = ? WHERE id = ?`,
		strings.ToLower(hotAddr), txID, id); err != nil {
		t.Fatal(err)
	}
	return txID, hash
}

// cancel after broadcast: 202 cancel_requested, one request and one history row however often asked;
// inside a batch 202 too (an item cancel), unless the batch's call cannot be rebuilt (409
// cancel_not_supported_in_batch); once final 409 not_cancelable.
func TestCancelAfterBroadcast(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.post(aliceKey, body("cb-1")).json(t)["id"].(string)
	txID, _ := broadcast(t, e, id, 11)
	path := "/v1/withdrawals/" + id + "/cancel"
	for i := range 2 {
		r := e.do(http.MethodPost, path, aliceKey, nil)
		if m := r.json(t); r.status != 202 || m["cancel"] != "cancel_requested" || m["status"] != "BROADCASTED" || m["id"] != id {
			t.Fatalf("cancel %d: %d %s", i, r.status, r.raw)
		}
	}
	as, err := e.st.PendingTxActions(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range as {
		if a.WithdrawalID == id && a.Kind == store.ActionCancel && a.SentTxID == txID {
			n++
		}
	}
	hs, err := e.st.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	notes := 0
	for _, h := range hs {
		if h.Reason == store.ReasonCancelRequested && h.From == store.Broadcasted && h.To == store.Broadcasted && h.Actor == store.ActorAPI {
			notes++
		}
	}
	if n != 1 || notes != 1 {
		t.Fatalf("%d cancel requests and %d cancel_requested history rows after two cancels, want 1 and 1", n, notes)
	}
	if w, _ := e.st.GetWithdrawal(ctx, id); w.Status != store.Broadcasted {
		t.Fatalf("status %s right after the request, want BROADCASTED until something mines", w.Status)
	}

	// In a batch.
	id2 := e.post(aliceKey, body("cb-2")).json(t)["id"].(string)
	txID2, _ := broadcast(t, e, id2, 12)
	batch := "0190b2f6-0000-7000-8000-00000000b001"
	if _, err := e.st.DB.ExecContext(ctx, `INSERT INTO batches (id, chain, asset, from_address, mode, size, sent_tx_id)
		VALUES (?, 'local', 'ETH', ?, 'multicall3', 2, ?)`, batch, strings.ToLower(hotAddr), txID2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.DB.ExecContext(ctx, `UPDATE withdrawals SET batch_id = ? WHERE id = ?`, batch, id2); err != nil {
		t.Fatal(err)
	}
	r := e.do(http.MethodPost, "/v1/withdrawals/"+id2+"/cancel", aliceKey, nil)
	if m := r.json(t); r.status != 202 || m["cancel"] != "cancel_requested" || m["batch_id"] != batch {
		t.Fatalf("cancel in a batch: %d %s", r.status, r.raw)
	}
	var items int
	if err := e.st.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM tx_actions WHERE withdrawal_id = ? AND kind = ? AND sent_tx_id = ?`,
		id2, store.ActionCancelItem, txID2).Scan(&items); err != nil || items != 1 {
		t.Fatalf("%d item cancels recorded (%v), want 1", items, err)
	}
	// A batch whose call recovery cannot rebuild item by item keeps the 409.
	if _, err := e.st.DB.ExecContext(ctx, `UPDATE batches SET mode = 'single' WHERE id = ?`, batch); err != nil {
		t.Fatal(err)
	}
	id3 := e.post(aliceKey, body("cb-3")).json(t)["id"].(string)
	txID3, _ := broadcast(t, e, id3, 13)
	if _, err := e.st.DB.ExecContext(ctx, `UPDATE batches SET sent_tx_id = ? WHERE id = ?`, txID3, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.DB.ExecContext(ctx, `UPDATE withdrawals SET batch_id = ? WHERE id = ?`, batch, id3); err != nil {
		t.Fatal(err)
	}
	r = e.do(http.MethodPost, "/v1/withdrawals/"+id3+"/cancel", aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 409 || code != CodeCancelInBatch || !strings.Contains(string(r.raw), batch) {
		t.Fatalf("cancel in a batch of mode single: %d %s", r.status, r.raw)
	}

	// Final.
	if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
		return e.st.Transition(ctx, tx, id, store.Broadcasted, store.Confirmed, "test", store.ActorMonitor, store.Change{})
	}); err != nil {
		t.Fatal(err)
	}
	r = e.do(http.MethodPost, path, aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 409 || code != CodeNotCancelable || !strings.Contains(string(r.raw), "CONFIRMED") {
		t.Fatalf("cancel of CONFIRMED: %d %s", r.status, r.raw)
	}
}
