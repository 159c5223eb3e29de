package ops_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/admin"
	"github.com/sluice-custody/sluice/client"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// Webhook dead letters through the real binary: a receiver down past DeadAfter (the real dispatcher)
// dead-letters three events; status names them with the command; webhooks dead and show list them; a
// viewer cannot redeliver; a dry run changes nothing; the operator's redeliver of one id and of the
// endpoint bring every event to the receiver, verified, in order per withdrawal.
func TestWebhookDeadLettersThroughTheBinary(t *testing.T) {
	bin := buildSluice(t)
	e := pipelinetest.New(t, pipelinetest.Options{})
	ctx := e.Ctx
	boot := admin.Actor{Operator: "cli:test", Remote: "local"}
	for _, op := range []struct {
		name string
		role admin.Role
	}{{"bob", admin.RoleOperator}, {"vic", admin.RoleViewer}} {
		if _, err := admin.AddOperator(ctx, e.Store, boot, op.name, op.name+"-correct-horse", op.role); err != nil {
			t.Fatal(err)
		}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	srv, err := admin.New(admin.Deps{Store: e.Store, Redis: testenv.Redis(t), JWTKey: key, Chains: []config.Chain{e.Config},
		RedisPrefix: "test:" + testenv.UniqueName(t) + ":",
		Ops: admin.OpsDeps{Queue: e.Queue, Queues: e.Queue, Nonces: e.Nonces,
			Chains: map[string]admin.ChainDeps{"local": {Config: e.Config, Client: e.Client}}}}, nil, admin.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	spec := newSpecCheck(t)
	hs := httptest.NewServer(spec.wrap(srv.Handler()))
	t.Cleanup(hs.Close)
	t.Cleanup(func() { spec.report(t, 10) })
	bob := oncall{t: t, bin: bin, url: hs.URL, home: t.TempDir()}
	vic := oncall{t: t, bin: bin, url: hs.URL, home: t.TempDir()}
	bob.must(0, "bob-correct-horse\n", "login", "--username", "bob", "--password-stdin")
	vic.must(0, "vic-correct-horse\n", "login", "--username", "vic", "--password-stdin")

	// The exchange's receiver, down for now.
	const secret = "whsec_e2e"
	var mu sync.Mutex
	down := true
	var got []client.Event
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := client.VerifySignature(r.Header.Get(client.HeaderSignature), body, secret, client.DefaultTolerance, time.Now()); err != nil {
			t.Errorf("delivery does not verify: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var ev client.Event
		_ = json.Unmarshal(body, &ev)
		got = append(got, ev)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rs.Close)
	received := func() []client.Event { mu.Lock(); defer mu.Unlock(); return append([]client.Event(nil), got...) }
	ep, err := e.Store.AddWebhookEndpoint(ctx, e.ClientID, rs.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	w1 := e.Withdraw("POL", testenv.NewAccount(t).Address, 1)
	w2 := e.Withdraw("POL", testenv.NewAccount(t).Address, 1)
	e.Move(w1.ID, store.Pending, store.Signing, store.Signed, store.Broadcasted)
	e.Move(w2.ID, store.Pending, store.Canceled)
	e.RunWebhooks(300 * time.Millisecond)

	var page admin.Page[admin.WebhookDeliveryView]
	deadline := time.Now().Add(30 * time.Second)
	for {
		page = admin.Page[admin.WebhookDeliveryView]{}
		out, _ := vic.must(0, "", "webhooks", "dead", "--json", "--endpoint", strconv.FormatInt(ep.ID, 10))
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("webhooks dead --json: %v\n%s", err, out)
		}
		if len(page.Items) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters, want 3", len(page.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var canceled admin.WebhookDeliveryView
	for _, d := range page.Items {
		if d.WithdrawalID == w2.ID {
			canceled = d
		}
	}
	id := strconv.FormatInt(canceled.ID, 10)

	out, _ := bob.must(0, "", "status")
	if !strings.Contains(out, "3 webhook deliveries dead-lettered") || !strings.Contains(out, "sluice ops webhooks dead") {
		t.Fatalf("status does not name the dead letters with the command:\n%s", out)
	}
	out, _ = bob.must(0, "", "webhooks", "dead")
	t.Logf("sluice ops webhooks dead:\n%s", out)
	if !strings.Contains(out, id) || !strings.Contains(out, rs.URL) || !strings.Contains(out, "withdrawal.canceled") || strings.Contains(out, secret) {
		t.Fatalf("webhooks dead:\n%s", out)
	}
	out, _ = bob.must(0, "", "webhooks", "show", id)
	if !strings.Contains(out, canceled.EventID) || !strings.Contains(out, "502") || !strings.Contains(out, "attempts:") {
		t.Fatalf("webhooks show:\n%s", out)
	}

	// A viewer cannot act; bad input names the field; a dry run changes nothing.
	if _, errs := vic.must(1, "", "webhooks", "redeliver", id, "--yes"); !strings.Contains(errs, "operator role") {
		t.Fatalf("viewer's redeliver: %q", errs)
	}
	if _, errs := bob.must(1, "", "webhooks", "redeliver", "abc", "--yes"); !strings.Contains(errs, "(field: target)") {
		t.Fatalf("redeliver abc: %q", errs)
	}
	out, _ = bob.must(0, "", "webhooks", "redeliver", id, "--dry-run")
	if !strings.Contains(out, "dry run: nothing was changed") || !strings.Contains(out, "state dead → pending") {
		t.Fatalf("redeliver --dry-run:\n%s", out)
	}
	if d, err := e.Store.WebhookDeliveryByID(ctx, 0, 0, canceled.ID); err != nil || d.State != "dead" {
		t.Fatalf("after the dry run: %+v %v", d, err)
	}

	// The receiver is back.
	mu.Lock()
	down = false
	mu.Unlock()
	out, _ = bob.must(0, "", "webhooks", "redeliver", id, "--yes")
	if !strings.Contains(out, "done: webhook.redeliver "+id) {
		t.Fatalf("redeliver:\n%s", out)
	}
	out, _ = bob.must(0, "", "webhooks", "redeliver", "--endpoint", strconv.FormatInt(ep.ID, 10), "--yes")
	if !strings.Contains(out, "done: webhook.redeliver endpoint/"+strconv.FormatInt(ep.ID, 10)) {
		t.Fatalf("redeliver --endpoint:\n%s", out)
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(received()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("received %+v, want 3 events", received())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var order []string
	seen := map[string]int{}
	for _, ev := range received() {
		seen[ev.ID]++
		if ev.Data.WithdrawalID == w1.ID {
			order = append(order, ev.Type)
		}
	}
	if len(seen) != 3 || seen[canceled.EventID] != 1 || strings.Join(order, ",") != "withdrawal.signed,withdrawal.broadcasted" {
		t.Fatalf("received %+v: want each event once, w1's in order", received())
	}
	out, _ = bob.must(0, "", "webhooks", "dead")
	if !strings.Contains(out, "no dead-lettered webhook deliveries") {
		t.Fatalf("webhooks dead after the redeliveries:\n%s", out)
	}
}
