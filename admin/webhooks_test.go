package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/client"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// hookReceiver is an exchange's endpoint: it verifies every delivery, answers 503 while down, and
// records the events it accepted in order.
type hookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	down   bool
	got    []client.Event
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := client.VerifySignature(r.Header.Get(client.HeaderSignature), body, h.secret, client.DefaultTolerance, time.Now()); err != nil {
		h.t.Errorf("delivery does not verify: %v", err)
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var ev client.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get(client.HeaderEventID) {
		h.t.Errorf("event %s (%v), header id %s", body, err, r.Header.Get(client.HeaderEventID))
	}
	h.got = append(h.got, ev)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) events() []client.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]client.Event(nil), h.got...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Webhook dead letters through the admin API, with the real dispatcher: a receiver down past
// DeadAfter dead-letters three events; the operators' list, detail and status show them (never a
// secret); a viewer cannot redeliver; bad targets are 4xx naming the field; an operator's dry run
// changes nothing; the redeliver of one and of a whole endpoint bring each event to the receiver
// again, signed, with its event id, in order per withdrawal, the attempts kept and the action audited.
func TestWebhookDeadLettersHTTP(t *testing.T) {
	e, pe, _ := newOpsHTTP(t)
	alice := bearer(e.login("alice", e.addOperator("alice", RoleOperator)).AccessToken)
	victor := bearer(e.login("victor", e.addOperator("victor", RoleViewer)).AccessToken)
	ctx := context.Background()

	rc := &hookReceiver{t: t, secret: "whsec_admin_test", down: true}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ep, err := pe.Store.AddWebhookEndpoint(ctx, pe.ClientID, srv.URL+"/hook?token=t0ps3cret", rc.secret)
	if err != nil {
		t.Fatal(err)
	}
	w1 := pe.Withdraw("POL", testenv.NewAccount(t).Address, 1)
	w2 := pe.Withdraw("POL", testenv.NewAccount(t).Address, 1)
	pe.Move(w1.ID, store.Pending, store.Signing, store.Signed, store.Broadcasted)
	pe.Move(w2.ID, store.Pending, store.Canceled)
	pe.RunWebhooks(300 * time.Millisecond)

	var page Page[WebhookDeliveryView]
	eventually(t, "three dead letters", func() bool {
		e.do("GET", "/admin/v1/webhooks/dead", victor, nil).json(t, &page)
		return len(page.Items) == 3
	})
	r := e.do("GET", "/admin/v1/webhooks/dead", victor, nil)
	if strings.Contains(string(r.raw), "whsec_") || strings.Contains(string(r.raw), "t0ps3cret") {
		t.Fatalf("the dead-letter list shows a secret: %s", r.raw)
	}
	var canceled WebhookDeliveryView
	for _, d := range page.Items {
		if d.State != "dead" || d.EndpointID != ep.ID || d.EndpointURL != srv.URL+"/hook?…" || d.Client != "test" ||
			d.ClientID != pe.ClientID || d.Attempts < 1 || d.LastStatusCode == nil || *d.LastStatusCode != 503 || d.LastError != "HTTP 503" {
			t.Fatalf("dead letter %+v", d)
		}
		if d.WithdrawalID == w2.ID {
			canceled = d
		}
	}
	if canceled.EventType != "withdrawal.canceled" {
		t.Fatalf("dead letters %+v: want w2's withdrawal.canceled", page.Items)
	}

	// Filters and paging.
	e.do("GET", "/admin/v1/webhooks/dead?endpoint="+strconv.FormatInt(ep.ID, 10)+"&client="+strconv.FormatInt(pe.ClientID, 10), victor, nil).json(t, &page)
	if len(page.Items) != 3 {
		t.Fatalf("filtered by endpoint and client: %d items", len(page.Items))
	}
	e.do("GET", "/admin/v1/webhooks/dead?client=999999", victor, nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("another client: %d items", len(page.Items))
	}
	e.do("GET", "/admin/v1/webhooks/dead?limit=2", victor, nil).json(t, &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("page 1: %+v", page)
	}
	cur := page.NextCursor
	page = Page[WebhookDeliveryView]{}
	e.do("GET", "/admin/v1/webhooks/dead?limit=2&cursor="+cur, victor, nil).json(t, &page)
	if len(page.Items) != 1 || page.NextCursor != "" {
		t.Fatalf("page 2: %+v", page)
	}
	for _, c := range []struct{ path, field string }{
		{"/webhooks/dead?endpoint=abc", "endpoint"}, {"/webhooks/dead?client=-1", "client"},
		{"/webhooks/dead?cursor=x", "cursor"}, {"/webhooks/dead?limit=0", "limit"}, {"/webhooks/deliveries/abc", "id"},
	} {
		if er := e.want(e.do("GET", "/admin/v1"+c.path, victor, nil), 400, CodeInvalidParameter); er.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.path, er.Field, c.field)
		}
	}
	e.want(e.do("GET", "/admin/v1/webhooks/deliveries/999999", victor, nil), 404, CodeNotFound)

	// The status read names them, with the command.
	var s Status
	e.do("GET", "/admin/v1/status", victor, nil).json(t, &s)
	found := false
	for _, p := range s.Problems {
		found = found || p.Kind == "webhook_dead" && p.Hint == "sluice ops webhooks dead" && strings.HasPrefix(p.Message, "3 webhook deliveries dead-lettered")
	}
	if !found {
		t.Fatalf("status %+v: no webhook_dead problem", s.Problems)
	}

	// One delivery in detail.
	var det WebhookDeliveryDetail
	e.do("GET", "/admin/v1/webhooks/deliveries/"+strconv.FormatInt(canceled.ID, 10), victor, nil).json(t, &det)
	var ev client.Event
	if err := json.Unmarshal(det.Event, &ev); err != nil || ev.ID != canceled.EventID || len(det.Attempts) != canceled.Attempts ||
		det.Attempts[0].StatusCode == nil || *det.Attempts[0].StatusCode != 503 {
		t.Fatalf("detail %+v (%v)", det, err)
	}
	before := len(det.Attempts)

	// Refusals: a viewer; bad targets and parameters (4xx naming the field).
	one := ActionRequest{Action: ActionWebhookRedeliver, Target: strconv.FormatInt(canceled.ID, 10), RequestID: "wr-1"}
	e.want(e.do("POST", "/admin/v1/actions", victor, one), http.StatusForbidden, CodeForbidden)
	for _, c := range []struct {
		req    ActionRequest
		status int
		field  string
	}{
		{ActionRequest{Target: "abc"}, 400, "target"},
		{ActionRequest{Target: "endpoint/x"}, 400, "target"},
		{ActionRequest{Target: "999999"}, 404, "target"},
		{ActionRequest{Target: "endpoint/999999"}, 404, "target"},
		{ActionRequest{Target: "endpoint/" + strconv.FormatInt(ep.ID, 10), Params: map[string]string{"since": "yesterday"}}, 422, "params.since"},
		{ActionRequest{Target: one.Target, Params: map[string]string{"since": "2026-01-01T00:00:00Z"}}, 422, "params.since"},
		{ActionRequest{Target: one.Target, Params: map[string]string{"force": "true"}}, 422, "params.force"},
	} {
		c.req.Action, c.req.RequestID = ActionWebhookRedeliver, "bad-"+strconv.Itoa(c.status)+c.field
		r := e.do("POST", "/admin/v1/actions", alice, c.req)
		if r.status != c.status || r.errorOf(t).Field != c.field {
			t.Errorf("%+v: %d %s, want %d naming %s", c.req, r.status, r.raw, c.status, c.field)
		}
	}

	// A dry run plans and changes nothing.
	dry := one
	dry.DryRun, dry.RequestID = true, "wr-dry"
	var res ActionResult
	r = e.do("POST", "/admin/v1/actions", alice, dry)
	e.want(r, 200, "")
	r.json(t, &res)
	if res.Status != ActionPlanned || len(res.Plan.Rows) != 1 || res.Plan.Rows[0].Change != "state dead → pending, due now" {
		t.Fatalf("dry run: %s", r.raw)
	}
	e.do("GET", "/admin/v1/webhooks/dead", victor, nil).json(t, &page)
	if len(page.Items) != 3 {
		t.Fatalf("%d dead after a dry run, want 3", len(page.Items))
	}

	// The receiver is back: the operator redelivers one, then the rest of the endpoint.
	rc.mu.Lock()
	rc.down = false
	rc.mu.Unlock()
	r = e.do("POST", "/admin/v1/actions", alice, one)
	e.want(r, 200, "")
	r.json(t, &res)
	if res.Status != ActionDone || res.Result["event_id"] != canceled.EventID {
		t.Fatalf("redeliver: %s", r.raw)
	}
	eventually(t, "the redelivered event", func() bool { return len(rc.events()) == 1 })
	if got := rc.events()[0]; got.ID != canceled.EventID || got.Type != "withdrawal.canceled" {
		t.Fatalf("received %+v, want event %s", got, canceled.EventID)
	}
	eventually(t, "delivered", func() bool {
		e.do("GET", "/admin/v1/webhooks/deliveries/"+one.Target, victor, nil).json(t, &det)
		return det.Delivery.State == "delivered"
	})
	if len(det.Attempts) != before+1 || det.Delivery.Redeliveries != 1 || det.Delivery.RedeliveredBy != "operator:alice" ||
		*det.Attempts[before].StatusCode != http.StatusNoContent {
		t.Fatalf("after the redelivery: %+v", det)
	}

	bulk := ActionRequest{Action: ActionWebhookRedeliver, Target: "endpoint/" + strconv.FormatInt(ep.ID, 10), DryRun: true, RequestID: "wr-all-dry"}
	r = e.do("POST", "/admin/v1/actions", alice, bulk)
	e.want(r, 200, "")
	r.json(t, &res)
	if len(res.Plan.Rows) != 2 || !strings.Contains(res.Plan.Rows[0].Change, "withdrawal.signed") || !strings.Contains(res.Plan.Rows[1].Change, "withdrawal.broadcasted") {
		t.Fatalf("bulk plan (oldest first): %s", r.raw)
	}
	bulk.DryRun, bulk.RequestID = false, "wr-all"
	r = e.do("POST", "/admin/v1/actions", alice, bulk)
	e.want(r, 200, "")
	r.json(t, &res)
	if res.Status != ActionDone || res.Result["queued"] != 2.0 {
		t.Fatalf("bulk redeliver: %s", r.raw)
	}
	eventually(t, "every event", func() bool { return len(rc.events()) == 3 })
	var order []string
	for _, ev := range rc.events()[1:] {
		if ev.Data.WithdrawalID != w1.ID {
			t.Fatalf("unexpected event %+v", ev)
		}
		order = append(order, ev.Type)
	}
	if strings.Join(order, ",") != "withdrawal.signed,withdrawal.broadcasted" {
		t.Fatalf("withdrawal %s: events %v, want signed then broadcasted", w1.ID, order)
	}
	e.do("GET", "/admin/v1/webhooks/dead", victor, nil).json(t, &page)
	e.do("GET", "/admin/v1/status", victor, nil).json(t, &s)
	for _, p := range s.Problems {
		if p.Kind == "webhook_dead" {
			t.Fatalf("status still shows %+v", p)
		}
	}
	if len(page.Items) != 0 {
		t.Fatalf("%d dead after the redeliveries", len(page.Items))
	}
	var audit Page[AuditEntry]
	e.do("GET", "/admin/v1/audit?kind=action", victor, nil).json(t, &audit)
	n := 0
	for _, a := range audit.Items {
		if a.Operator == "alice" && strings.Contains(a.What, ActionWebhookRedeliver) && a.Outcome == "done" {
			n++
		}
	}
	if n < 2 {
		t.Fatalf("audit: %d done webhook.redeliver entries, want 2: %+v", n, audit.Items)
	}
}
