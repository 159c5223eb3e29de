package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/client"
	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/webhook"
)

// receiver is an exchange's webhook endpoint: it verifies every delivery with the client package's
// example verifier, fails the first failFirst requests with 500, and records what it accepted.
type receiver struct {
	t         *testing.T
	mu        sync.Mutex
	secret    string
	failFirst int
	requests  int
	accepted  []receivedEvent
	seen      map[string]int // event id → times accepted
	sigs      []string
}

type receivedEvent struct {
	ID, Type, Withdrawal string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	sig := r.Header.Get(client.HeaderSignature)
	rc.sigs = append(rc.sigs, sig)
	if err := client.VerifySignature(sig, body, rc.secret, client.DefaultTolerance, time.Now()); err != nil {
		rc.t.Errorf("delivery does not verify: %v (%s)", err, sig)
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if rc.requests <= rc.failFirst {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			WithdrawalID string `json:"withdrawal_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("body: %v", err)
	}
	if ev.ID != r.Header.Get(client.HeaderEventID) || ev.Type != r.Header.Get(client.HeaderEventType) {
		rc.t.Errorf("headers %s/%s, body %s/%s", r.Header.Get(client.HeaderEventID), r.Header.Get(client.HeaderEventType), ev.ID, ev.Type)
	}
	rc.seen[ev.ID]++
	rc.accepted = append(rc.accepted, receivedEvent{ev.ID, ev.Type, ev.Data.WithdrawalID})
	w.WriteHeader(http.StatusNoContent)
}

func startDispatcher(t *testing.T, st *store.Store, d webhook.Deps) {
	t.Helper()
	d.Store = st
	if d.BaseBackoff == 0 {
		d.BaseBackoff, d.MaxBackoff = 10*time.Millisecond, 40*time.Millisecond
	}
	d.Poll = 10 * time.Millisecond
	p, err := webhook.New(d, nil, webhook.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) move(id string, steps ...store.Status) {
	e.t.Helper()
	ctx := context.Background()
	for i := 0; i+1 < len(steps); i++ {
		if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
			return e.st.Transition(ctx, tx, id, steps[i], steps[i+1], "test", store.ActorSigner, store.Change{})
		}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestWebhooksDeliveredSignedInOrderOnce(t *testing.T) {
	e := newPolicyEnv(t, func(d *Deps) { d.WebhooksAllowPrivate = true })
	e.setLimits(policy.Limits{ApprovalThreshold: usdt(1_000_000_000)})
	rc := &receiver{t: t, failFirst: 5, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)

	r := e.do(http.MethodPost, "/v1/webhooks", aliceKey, []byte(`{"url":"`+srv.URL+`/hooks"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("add endpoint: %d %s", r.status, r.raw)
	}
	ep := r.json(t)
	rc.mu.Lock()
	rc.secret = ep["secret"].(string)
	rc.mu.Unlock()
	if !strings.HasPrefix(rc.secret, "whsec_") {
		t.Fatalf("secret %q", rc.secret)
	}
	if r := e.do(http.MethodPost, "/v1/webhooks", readerKey, []byte(`{"url":"`+srv.URL+`"}`)); r.status != http.StatusForbidden {
		t.Fatalf("read-only key adding an endpoint: %d", r.status)
	}

	// Three withdrawals: one goes all the way, one is canceled, one is held and rejected.
	w1 := e.post(aliceKey, body("wh1")).json(t)["id"].(string)
	w2 := e.post(aliceKey, body("wh2")).json(t)["id"].(string)
	w3 := e.post(aliceKey, body("wh3", "amount", "5000")).json(t)["id"].(string)
	e.move(w1, store.Pending, store.Signing, store.Signed, store.Broadcasted, store.Confirmed)
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+w2+"/cancel", aliceKey, nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+w3+"/reject", approverKey1, nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	want := map[string][]string{
		w1: {"withdrawal.signed", "withdrawal.broadcasted", "withdrawal.confirmed"},
		w2: {"withdrawal.canceled"},
		w3: {"withdrawal.awaiting_approval", "withdrawal.canceled"},
	}
	total := 6
	if n := e.count("webhook_events"); n != total {
		t.Fatalf("%d events written, want %d", n, total)
	}

	startDispatcher(t, e.st, webhook.Deps{AllowPrivate: true})
	waitFor(t, "every delivery delivered", func() bool {
		var n int
		_ = e.st.DB.QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'delivered'`).Scan(&n)
		return n == total
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.accepted) != total || len(rc.seen) != total {
		t.Fatalf("accepted %d deliveries of %d event ids, want %d of %d", len(rc.accepted), len(rc.seen), total, total)
	}
	for id, n := range rc.seen {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
	got := map[string][]string{}
	for _, ev := range rc.accepted {
		got[ev.Withdrawal] = append(got[ev.Withdrawal], ev.Type)
	}
	for w, types := range want {
		if strings.Join(got[w], ",") != strings.Join(types, ",") {
			t.Errorf("withdrawal %s: events %v, want %v in that order", w, got[w], types)
		}
	}
	if rc.requests != total+5 {
		t.Errorf("%d requests, want %d (5 failures, then each event once)", rc.requests, total+5)
	}

	// The delivery log shows the failed attempts with their status codes.
	epID := int64(ep["id"].(float64))
	r = e.do(http.MethodGet, "/v1/webhooks/"+itoa(epID)+"/deliveries", aliceKey, nil)
	var log struct {
		Deliveries []struct {
			State    string `json:"state"`
			Attempts []struct {
				StatusCode *int `json:"status_code"`
			} `json:"attempts"`
		} `json:"deliveries"`
	}
	if err := json.Unmarshal(r.raw, &log); err != nil || len(log.Deliveries) != total {
		t.Fatalf("delivery log %d %s", r.status, r.raw)
	}
	attempts, fails := 0, 0
	for _, d := range log.Deliveries {
		if d.State != "delivered" {
			t.Errorf("state %s", d.State)
		}
		// Each delivery has its own attempts: at least one, the last a success.
		if n := len(d.Attempts); n == 0 || d.Attempts[n-1].StatusCode == nil || *d.Attempts[n-1].StatusCode >= 300 {
			t.Errorf("a delivered delivery's attempts: %d, last %v", n, d.Attempts)
		}
		for _, a := range d.Attempts {
			attempts++
			if a.StatusCode != nil && *a.StatusCode == 500 {
				fails++
			}
		}
	}
	if attempts != total+5 || fails != 5 {
		t.Errorf("log: %d attempts, %d of them 500; want %d and 5", attempts, fails, total+5)
	}

	// Replays beyond the window and tampered bodies are refused by the verifier.
	now := time.Now()
	b := []byte(`{"id":"x"}`)
	sig := webhook.Sign(now, b, rc.secret)
	if err := client.VerifySignature(sig, b, rc.secret, client.DefaultTolerance, now.Add(time.Minute)); err != nil {
		t.Fatalf("fresh signature: %v", err)
	}
	if err := client.VerifySignature(sig, b, rc.secret, client.DefaultTolerance, now.Add(6*time.Minute)); !errors.Is(err, client.ErrSignatureTooOld) {
		t.Fatalf("replay after 6 min: %v", err)
	}
	if err := client.VerifySignature(sig, []byte(`{"id":"y"}`), rc.secret, client.DefaultTolerance, now); !errors.Is(err, client.ErrSignatureMismatch) {
		t.Fatalf("tampered body: %v", err)
	}
	if err := client.VerifySignature(sig, b, "whsec_other", client.DefaultTolerance, now); !errors.Is(err, client.ErrSignatureMismatch) {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := client.VerifySignature("v1=ab", b, rc.secret, client.DefaultTolerance, now); !errors.Is(err, client.ErrSignatureHeader) {
		t.Fatalf("no timestamp: %v", err)
	}
}

func TestWebhookSecretRotation(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.WebhooksAllowPrivate = true })
	rc := &receiver{t: t, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ep := e.do(http.MethodPost, "/v1/webhooks", aliceKey, []byte(`{"url":"`+srv.URL+`"}`)).json(t)
	oldSecret := ep["secret"].(string)
	r := e.do(http.MethodPost, "/v1/webhooks/"+itoa(int64(ep["id"].(float64)))+"/rotate", aliceKey, nil)
	if r.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	newSecret := r.json(t)["secret"].(string)
	if newSecret == oldSecret || r.json(t)["previous_secret_expires_at"] == nil {
		t.Fatalf("rotation: %s", r.raw)
	}
	rc.mu.Lock()
	rc.secret = oldSecret // a receiver not yet switched keeps verifying during the overlap
	rc.mu.Unlock()
	id := e.post(aliceKey, body("rot")).json(t)["id"].(string)
	e.move(id, store.Pending, store.Canceled)
	startDispatcher(t, e.st, webhook.Deps{AllowPrivate: true})
	waitFor(t, "delivery", func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.accepted) == 1 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if n := strings.Count(rc.sigs[0], "v1="); n != 2 {
		t.Fatalf("signature %s: want two v1 during the overlap", rc.sigs[0])
	}
}

func TestWebhookSSRFRefused(t *testing.T) {
	e := newEnv(t) // allow_private off
	for _, u := range []string{"http://127.0.0.1:8080/", "http://localhost/", "http://10.1.2.3/", "http://192.168.0.10/",
		"http://172.16.5.4/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[fe80::1]/", "http://0.0.0.0/",
		"ftp://example.com/", "not a url", "http://user:pw@example.com/"} {
		r := e.do(http.MethodPost, "/v1/webhooks", aliceKey, []byte(`{"url":"`+u+`"}`))
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s", u, r.status, r.raw)
			continue
		}
		if c, f := r.errorOf(t); c != CodeInvalidURL || f != "url" {
			t.Errorf("%s: %s", u, r.raw)
		}
	}
	if n := e.count("webhook_endpoints"); n != 0 {
		t.Fatalf("%d endpoints stored", n)
	}
	// The dialer refuses too (an endpoint whose name later resolves inside): registered straight in the
	// store, its delivery fails without reaching the loopback receiver.
	rc := &receiver{t: t, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	if _, err := e.st.AddWebhookEndpoint(context.Background(), e.alice.ID, srv.URL, "whsec_x"); err != nil {
		t.Fatal(err)
	}
	id := e.post(aliceKey, body("ssrf")).json(t)["id"].(string)
	e.move(id, store.Pending, store.Canceled)
	startDispatcher(t, e.st, webhook.Deps{})
	waitFor(t, "a refused attempt", func() bool {
		var msg string
		_ = e.st.DB.QueryRow(`SELECT error FROM webhook_attempts LIMIT 1`).Scan(&msg)
		return strings.Contains(msg, webhook.ErrPrivateAddress.Error())
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.requests != 0 {
		t.Fatalf("the loopback receiver got %d requests", rc.requests)
	}
}

func TestWebhookDeadLetter(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.WebhooksAllowPrivate = true })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(srv.Close)
	ep := e.do(http.MethodPost, "/v1/webhooks", aliceKey, []byte(`{"url":"`+srv.URL+`"}`)).json(t)
	a := e.post(aliceKey, body("dl1")).json(t)["id"].(string)
	e.move(a, store.Pending, store.Signing, store.Signed)
	// 24 h in production; 300 ms here.
	startDispatcher(t, e.st, webhook.Deps{AllowPrivate: true, DeadAfter: 300 * time.Millisecond})
	path := "/v1/webhooks/" + itoa(int64(ep["id"].(float64))) + "/deliveries?state=dead"
	waitFor(t, "dead letter", func() bool {
		r := e.do(http.MethodGet, path, aliceKey, nil)
		return strings.Count(string(r.raw), `"state":"dead"`) == 1
	})
	var attempts int
	if err := e.st.DB.QueryRow(`SELECT attempts FROM webhook_deliveries`).Scan(&attempts); err != nil || attempts < 3 {
		t.Fatalf("dead after %d attempts (%v)", attempts, err)
	}
	// A later event of the same withdrawal is not blocked forever by the dead one.
	e.move(a, store.Signed, store.Broadcasted)
	waitFor(t, "second dead letter", func() bool {
		r := e.do(http.MethodGet, path, aliceKey, nil)
		return strings.Count(string(r.raw), `"state":"dead"`) == 2
	})
}

func TestBackoffCapped(t *testing.T) {
	want := []time.Duration{5, 10, 20, 40, 60, 60}
	for i, w := range want {
		if got := webhook.Backoff(i+1, 5*time.Second, time.Minute); got != w*time.Second {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w*time.Second)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
