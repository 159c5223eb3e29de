package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/webhook"
)

// TestWebhookRedeliver: a receiver down long enough dead-letters three events; the client's
// redeliver of one and then of all brings each to the receiver again with its event id and a valid
// signature, in order per withdrawal, the attempts kept; a redelivered delivery that still fails dies
// again only after DeadAfter counted from the redelivery; two concurrent redelivers change it once.
func TestWebhookRedeliver(t *testing.T) {
	e := newPolicyEnv(t, func(d *Deps) { d.WebhooksAllowPrivate = true })
	rc := &receiver{t: t, failFirst: 1 << 30, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ep := e.do(http.MethodPost, "/v1/webhooks", aliceKey, []byte(`{"url":"`+srv.URL+`"}`)).json(t)
	rc.mu.Lock()
	rc.secret = ep["secret"].(string)
	rc.mu.Unlock()
	epID := int64(ep["id"].(float64))
	base := "/v1/webhooks/" + itoa(epID)

	w1 := e.post(aliceKey, body("rd1")).json(t)["id"].(string)
	w2 := e.post(aliceKey, body("rd2")).json(t)["id"].(string)
	e.move(w1, store.Pending, store.Signing, store.Signed, store.Broadcasted)
	e.move(w2, store.Pending, store.Canceled)
	const deadAfter = 400 * time.Millisecond
	startDispatcher(t, e.st, webhook.Deps{AllowPrivate: true, DeadAfter: deadAfter})
	dead := func() []deliveryJSON {
		var l struct {
			Deliveries []deliveryJSON `json:"deliveries"`
		}
		r := e.do(http.MethodGet, base+"/deliveries?state=dead", aliceKey, nil)
		if err := json.Unmarshal(r.raw, &l); err != nil {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		return l.Deliveries
	}
	waitFor(t, "three dead letters", func() bool { return len(dead()) == 3 })
	byWithdrawal := map[string]deliveryJSON{}
	for _, d := range dead() {
		if d.Seq == 1 {
			byWithdrawal[d.WithdrawalID] = d
		}
	}
	d2 := byWithdrawal[w2]
	if d2.ID == 0 || d2.EventType != "withdrawal.canceled" {
		t.Fatalf("dead letters %+v", dead())
	}
	one := base + "/deliveries/" + itoa(d2.ID) + "/redeliver"

	// Bad input, other clients, missing scope.
	for _, c := range []struct {
		path, key, body string
		status          int
		code, field     string
	}{
		{one, bobKey, "", http.StatusNotFound, CodeNotFound, ""},
		{base + "/redeliver", bobKey, "", http.StatusNotFound, CodeNotFound, ""},
		{one, readerKey, "", http.StatusForbidden, CodeForbidden, ""},
		{base + "/deliveries/abc/redeliver", aliceKey, "", http.StatusBadRequest, CodeInvalidParameter, "delivery_id"},
		{base + "/deliveries/999999/redeliver", aliceKey, "", http.StatusNotFound, CodeNotFound, "delivery_id"},
		{"/v1/webhooks/999999/redeliver", aliceKey, "", http.StatusNotFound, CodeNotFound, ""},
		{base + "/redeliver", aliceKey, `{"since":"yesterday"}`, http.StatusUnprocessableEntity, CodeInvalidTime, "since"},
		{base + "/redeliver", aliceKey, `{"from":"2026-01-01T00:00:00Z"}`, http.StatusBadRequest, CodeInvalidJSON, ""},
		{base + "/redeliver", aliceKey, `[1]`, http.StatusBadRequest, CodeInvalidJSON, ""},
	} {
		var b []byte
		if c.body != "" {
			b = []byte(c.body)
		}
		r := e.do(http.MethodPost, c.path, c.key, b)
		if r.status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.path, c.body, r.status, r.raw, c.status)
			continue
		}
		code, field := r.errorOf(t)
		if f, _ := field.(string); code != c.code || f != c.field {
			t.Errorf("%s %s: %s, want %s/%s", c.path, c.body, r.raw, c.code, c.field)
		}
	}
	if n := len(dead()); n != 3 {
		t.Fatalf("%d dead after refused requests, want 3", n)
	}

	// Two concurrent redelivers of one delivery (the receiver still down): one changes it, one is 409.
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range statuses {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i] = e.do(http.MethodPost, one, aliceKey, nil).status }()
	}
	wg.Wait()
	if !(statuses[0] == 200 && statuses[1] == 409 || statuses[0] == 409 && statuses[1] == 200) {
		t.Fatalf("concurrent redelivers: %v, want one 200 and one 409", statuses)
	}
	var redeliveries, attemptsBefore int
	if err := e.st.DB.QueryRow(`SELECT redeliveries, retry_base FROM webhook_deliveries WHERE id = ?`, d2.ID).Scan(&redeliveries, &attemptsBefore); err != nil || redeliveries != 1 {
		t.Fatalf("redeliveries %d (%v), want 1", redeliveries, err)
	}
	if attemptsBefore != len(d2.Attempts) {
		t.Fatalf("retry_base %d, the dead letter had %d attempts", attemptsBefore, len(d2.Attempts))
	}
	// Still failing, it dies again, after a new DeadAfter of retries rather than at its first failure
	// (its creation is long past the window).
	redelivered := time.Now()
	waitFor(t, "dead again", func() bool { return len(dead()) == 3 })
	if el := time.Since(redelivered); el < deadAfter-50*time.Millisecond {
		t.Errorf("dead again after %s, want about DeadAfter (%s) of retries", el, deadAfter)
	}
	var attempts int
	_ = e.st.DB.QueryRow(`SELECT attempts FROM webhook_deliveries WHERE id = ?`, d2.ID).Scan(&attempts)
	if attempts-attemptsBefore < 3 {
		t.Errorf("%d attempts after the redelivery, want several (backoff from the base wait)", attempts-attemptsBefore)
	}

	// The receiver is back: one delivery redelivered, then all the others.
	rc.mu.Lock()
	rc.failFirst = 0
	rc.mu.Unlock()
	r := e.do(http.MethodPost, one, aliceKey, nil)
	if r.status != http.StatusOK {
		t.Fatalf("redeliver: %d %s", r.status, r.raw)
	}
	var got deliveryJSON
	if err := json.Unmarshal(r.raw, &got); err != nil || got.State != "pending" || got.Redeliveries != 2 || len(got.Attempts) != attempts || got.EventID != d2.EventID {
		t.Fatalf("redelivered: %s", r.raw)
	}
	waitFor(t, "redelivered event", func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.seen[d2.EventID] == 1 })
	if r := e.do(http.MethodPost, base+"/redeliver", aliceKey, []byte(`{"since":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)); r.status != 200 || r.json(t)["queued"] != 0.0 {
		t.Fatalf("redeliver since the future: %d %s", r.status, r.raw)
	}
	r = e.do(http.MethodPost, base+"/redeliver", aliceKey, nil)
	if r.status != http.StatusOK || r.json(t)["queued"] != 2.0 {
		t.Fatalf("redeliver all: %d %s, want 2 queued", r.status, r.raw)
	}
	waitFor(t, "every event", func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.accepted) == 3 })
	rc.mu.Lock()
	var order []string
	for _, ev := range rc.accepted {
		if ev.Withdrawal == w1 {
			order = append(order, ev.Type)
		}
	}
	for id, n := range rc.seen {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
	rc.mu.Unlock()
	if len(order) != 2 || order[0] != "withdrawal.signed" || order[1] != "withdrawal.broadcasted" {
		t.Fatalf("withdrawal %s: events %v, want signed then broadcasted", w1, order)
	}
	waitFor(t, "all delivered", func() bool {
		var n int
		_ = e.st.DB.QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'delivered'`).Scan(&n)
		return n == 3
	})
	// The log keeps the failed attempts before the successful one.
	var l struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	_ = json.Unmarshal(e.do(http.MethodGet, base+"/deliveries", aliceKey, nil).raw, &l)
	for _, d := range l.Deliveries {
		last := d.Attempts[len(d.Attempts)-1]
		if d.State != "delivered" || len(d.Attempts) < 2 || last.StatusCode == nil || *last.StatusCode != http.StatusNoContent ||
			*d.Attempts[0].StatusCode != http.StatusInternalServerError {
			t.Errorf("delivery %d: %s with %d attempts", d.ID, d.State, len(d.Attempts))
		}
	}
	// A delivered delivery can be sent again too (a receiver that lost it); a pending one cannot.
	if r := e.do(http.MethodPost, one, aliceKey, nil); r.status != http.StatusOK {
		t.Fatalf("redeliver of a delivered one: %d %s", r.status, r.raw)
	}
}
