package webhook_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/client"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/webhook"
)

// flakyReceiver fails a share of the requests at random, after a random pause, and logs every request
// and every acceptance in the order they happen.
type flakyReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	rnd    *rand.Rand
	fail   float64
	log    []logEntry
	seen   map[string]int
}

type logEntry struct {
	event, withdrawal string
	accepted          bool
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := client.VerifySignature(r.Header.Get(client.HeaderSignature), body, f.secret, client.DefaultTolerance, time.Now()); err != nil {
		f.t.Errorf("delivery does not verify: %v", err)
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Data struct {
			WithdrawalID string `json:"withdrawal_id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	f.mu.Lock()
	pause, fail := time.Duration(f.rnd.IntN(3000))*time.Microsecond, f.rnd.Float64() < f.fail
	f.log = append(f.log, logEntry{event: ev.ID, withdrawal: ev.Data.WithdrawalID})
	f.mu.Unlock()
	time.Sleep(pause)
	if fail {
		http.Error(w, "flaky", http.StatusServiceUnavailable)
		return
	}
	f.mu.Lock()
	f.log = append(f.log, logEntry{event: ev.ID, withdrawal: ev.Data.WithdrawalID, accepted: true})
	f.seen[ev.ID]++
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func run(t *testing.T, st *store.Store, d webhook.Deps) {
	t.Helper()
	d.Store = st
	p, err := webhook.New(d, nil, webhook.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func transition(t *testing.T, st *store.Store, id string, steps ...store.Status) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i+1 < len(steps); i++ {
		if err := st.InTx(ctx, func(tx *sql.Tx) error {
			return st.Transition(ctx, tx, id, steps[i], steps[i+1], "test", store.ActorSigner, store.Change{})
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func newWithdrawal(t *testing.T, st *store.Store, clientID int64, n int) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	w := &store.Withdrawal{ID: id, ClientID: clientID, ExternalID: fmt.Sprintf("order-%d", n), RequestHash: make([]byte, 32),
		Chain: "local", Asset: "USDT", To: "0x00000000000000000000000000000000000000b1", Amount: big.NewInt(1), CorrelationID: "c"}
	if _, _, err := st.CreateWithdrawal(context.Background(), w, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDeliveryOrderAcrossInstances: two API instances (two pools on one database), each with its own
// dispatcher, deliver to a receiver that fails a third of the requests, while the events are being
// written. Every event arrives exactly once, and for each withdrawal no request for an event reaches the
// receiver before the event ahead of it was accepted: a .confirmed never overtakes its .broadcasted,
// whichever instance holds which.
func TestDeliveryOrderAcrossInstances(t *testing.T) {
	st1, dsn := testenv.Store(t)
	st2, err := store.Open(context.Background(), dsn, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	ctx := context.Background()
	cl, err := st1.EnsureAPIClient(ctx, "exchange", "sk_test_exchange_0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	rc := &flakyReceiver{t: t, secret: "whsec_order", rnd: rand.New(rand.NewPCG(1, 2)), fail: 0.33, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	if _, err := st1.AddWebhookEndpoint(ctx, cl.ID, srv.URL+"/hooks", rc.secret); err != nil {
		t.Fatal(err)
	}
	d := webhook.Deps{AllowPrivate: true, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Poll: 5 * time.Millisecond, Concurrency: 4}
	run(t, st1, d)
	run(t, st2, d)

	const withdrawals = 12
	var ids []string
	for i := range withdrawals {
		ids = append(ids, newWithdrawal(t, st1, cl.ID, i))
	}
	// signed, broadcasted, confirmed, reorged, confirmed: written while both dispatchers run.
	var wg sync.WaitGroup
	for i, id := range ids {
		st := []*store.Store{st1, st2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			transition(t, st, id, store.Pending, store.Signing, store.Signed, store.Broadcasted, store.Confirmed, store.Broadcasted, store.Confirmed)
		}()
	}
	wg.Wait()
	var events int
	if err := st1.DB.QueryRow(`SELECT COUNT(*) FROM webhook_events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var delivered int
		if err := st1.DB.QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'delivered'`).Scan(&delivered); err != nil {
			t.Fatal(err)
		}
		if delivered == events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries delivered after 60 s", delivered, events)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The order each withdrawal's events were written in (seq of its deliveries to the one endpoint).
	order := map[string][]string{}
	rows, err := st1.DB.Query(`SELECT withdrawal_id, event_id FROM webhook_deliveries ORDER BY withdrawal_id, seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var w, ev string
		if err := rows.Scan(&w, &ev); err != nil {
			t.Fatal(err)
		}
		order[w] = append(order[w], ev)
	}
	rows.Close()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	failures := len(rc.log) - 2*len(rc.seen) // every request is logged once, and once more when accepted
	if failures < events/4 {
		t.Fatalf("only %d failed requests of %d: the receiver did not test retries", failures, len(rc.log))
	}
	for ev, n := range rc.seen {
		if n != 1 {
			t.Errorf("event %s accepted %d times", ev, n)
		}
	}
	if len(rc.seen) != events {
		t.Fatalf("%d events accepted, %d written", len(rc.seen), events)
	}
	for _, w := range ids {
		seq := map[string]int{}
		for i, ev := range order[w] {
			seq[ev] = i
		}
		if len(order[w]) != 5 { // signed, broadcasted, confirmed, reorged, confirmed
			t.Fatalf("withdrawal %s has %d events, want 5", w, len(order[w]))
		}
		accepted := 0 // events of w accepted so far, in the receiver's log order
		for _, e := range rc.log {
			if e.withdrawal != w {
				continue
			}
			s := seq[e.event]
			switch {
			case e.accepted && s != accepted:
				t.Fatalf("withdrawal %s: event #%d accepted when #%d was next", w, s, accepted)
			case e.accepted:
				accepted++
			case s != accepted:
				t.Fatalf("withdrawal %s: event #%d sent while #%d was not yet accepted", w, s, accepted)
			}
		}
		if accepted != len(order[w]) {
			t.Fatalf("withdrawal %s: %d of %d events accepted", w, accepted, len(order[w]))
		}
	}
}

// TestDeadLettersVisibleToOperators: a delivery that fails past DeadAfter is dead-lettered, listed by
// DeadWebhookDeliveries (endpoint and client, no secret) with its attempts' status codes and latencies.
func TestDeadLettersVisibleToOperators(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	cl, err := st.EnsureAPIClient(ctx, "exchange", "sk_test_exchange_0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusBadGateway) }))
	t.Cleanup(srv.Close)
	ep, err := st.AddWebhookEndpoint(ctx, cl.ID, srv.URL, "whsec_dead")
	if err != nil {
		t.Fatal(err)
	}
	id := newWithdrawal(t, st, cl.ID, 1)
	transition(t, st, id, store.Pending, store.Signing, store.Signed)
	run(t, st, webhook.Deps{AllowPrivate: true, BaseBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		DeadAfter: 300 * time.Millisecond, Poll: 5 * time.Millisecond})
	var dead []*store.WebhookDelivery
	deadline := time.Now().Add(20 * time.Second)
	for len(dead) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter after 20 s")
		}
		time.Sleep(20 * time.Millisecond)
		if dead, err = st.DeadWebhookDeliveries(ctx, store.DeadLetterFilter{}); err != nil {
			t.Fatal(err)
		}
	}
	d := dead[0]
	if len(dead) != 1 || d.WithdrawalID != id || d.EventType != "withdrawal.signed" || d.Endpoint.ID != ep.ID ||
		d.Endpoint.ClientID != cl.ID || d.Endpoint.URL != srv.URL || d.Endpoint.Secret != "" || d.Endpoint.PrevSecret != "" {
		t.Fatalf("dead letter %+v, endpoint %+v", d, d.Endpoint)
	}
	if d.LastStatusCode == nil || *d.LastStatusCode != http.StatusBadGateway || d.Attempts < 3 || len(d.Payload) == 0 {
		t.Fatalf("dead letter: status %v, %d attempts, payload %q", d.LastStatusCode, d.Attempts, d.Payload)
	}
	attempts, err := st.WebhookAttempts(ctx, d.ID)
	if err != nil || len(attempts) != d.Attempts {
		t.Fatalf("%d attempts logged, %d counted (%v)", len(attempts), d.Attempts, err)
	}
	for i, a := range attempts {
		if a.StatusCode != http.StatusBadGateway || a.Latency < 0 || a.CreatedAt.IsZero() {
			t.Fatalf("attempt %d: %+v", i, a)
		}
		// Capped backoff: no gap between attempts is longer than MaxBackoff plus the poll and some slack.
		if i > 0 && a.CreatedAt.Sub(attempts[i-1].CreatedAt) > 40*time.Millisecond+500*time.Millisecond {
			t.Fatalf("attempt %d came %s after the one before", i, a.CreatedAt.Sub(attempts[i-1].CreatedAt))
		}
	}
	// Filters and paging.
	if other, err := st.DeadWebhookDeliveries(ctx, store.DeadLetterFilter{ClientID: cl.ID + 1}); err != nil || len(other) != 0 {
		t.Fatalf("another client's dead letters: %d (%v)", len(other), err)
	}
	if page, err := st.DeadWebhookDeliveries(ctx, store.DeadLetterFilter{EndpointID: ep.ID, Before: d.ID}); err != nil || len(page) != 0 {
		t.Fatalf("page after the last: %d (%v)", len(page), err)
	}
	// A dead delivery no longer blocks the next event of the same withdrawal (it is dead, not pending).
	var pending int
	transition(t, st, id, store.Signed, store.Broadcasted)
	if err := st.DB.QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'`).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("pending after a dead one: %d (%v)", pending, err)
	}
}
