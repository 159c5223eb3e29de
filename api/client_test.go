package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/client"
	"github.com/sluice-custody/sluice/internal/policy"
)

// specTransport checks every response the client package receives against openapi.json.
type specTransport struct {
	t    *testing.T
	base http.RoundTripper
}

func (s specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	res, err := s.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(raw))
	checked, verr := specError(req, body, res.StatusCode, res.Header, raw)
	if !checked {
		s.t.Errorf("client called %s %s, which openapi.json does not document", req.Method, req.URL.Path)
	} else if verr != nil {
		s.t.Errorf("%s %s → %d does not match openapi.json: %v", req.Method, req.URL.Path, res.StatusCode, verr)
	}
	return res, nil
}

func jsonFields(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// TestClientMatchesDocument: the client's types have exactly the schemas' properties, and every call
// it makes gets an answer the document describes.
func TestClientMatchesDocument(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	for schema, v := range map[string]any{"Withdrawal": client.Withdrawal{}, "Approval": client.Approval{},
		"WebhookEndpoint": client.WebhookEndpoint{}, "WithdrawalList": client.WithdrawalList{},
		"CreateWithdrawalRequest": client.CreateWithdrawal{}, "WithdrawalError": client.WithdrawalError{},
		"WebhookDelivery": client.WebhookDelivery{}, "WebhookAttempt": client.WebhookAttempt{}} {
		var want []string
		for k := range doc.Components.Schemas[schema].Properties {
			want = append(want, k)
		}
		sort.Strings(want)
		if got := jsonFields(v); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("client type for %s has fields %v, the document %v", schema, got, want)
		}
	}

	e := newPolicyEnv(t, func(d *Deps) { d.WebhooksAllowPrivate = true })
	e.setLimits(policy.Limits{ApprovalThreshold: usdt(100_000_000), DailyLimit: usdt(1_000_000_000)})
	hc := &http.Client{Transport: specTransport{t: t, base: http.DefaultTransport}}
	c := client.New(e.ts.URL, aliceKey, hc)
	approver := client.New(e.ts.URL, approverKey1, hc)
	ctx := context.Background()

	w, created, err := c.CreateWithdrawal(ctx, client.CreateWithdrawal{ExternalID: "c1", Chain: "local", Asset: "USDT", To: toAddr, Amount: "12.5"})
	if err != nil || !created || w.Status != client.StatusPending || *w.Amount != "12.5" {
		t.Fatalf("create: %+v %v %v", w, created, err)
	}
	if again, created, err := c.CreateWithdrawal(ctx, client.CreateWithdrawal{ExternalID: "c1", Chain: "local", Asset: "USDT", To: toAddr, Amount: "12.50"}); err != nil || created || again.ID != w.ID {
		t.Fatalf("replay: %+v %v %v", again, created, err)
	}
	_, _, err = c.CreateWithdrawal(ctx, client.CreateWithdrawal{ExternalID: "c1", Chain: "local", Asset: "USDT", To: toAddr, Amount: "13"})
	if !client.IsCode(err, "idempotency_conflict") {
		t.Fatalf("conflict: %v", err)
	}
	_, _, err = c.CreateWithdrawal(ctx, client.CreateWithdrawal{ExternalID: "big", Chain: "local", Asset: "USDT", To: toAddr, Amount: "2000"})
	var apiErr *client.Error
	if !errorsAs(err, &apiErr) || apiErr.Code != "limit_exceeded" || apiErr.Field != "amount" || apiErr.Status != 422 || apiErr.Retryable() {
		t.Fatalf("limit: %v", err)
	}
	if got, err := c.GetWithdrawal(ctx, w.ID); err != nil || got.ID != w.ID {
		t.Fatalf("get: %v", err)
	}
	held, _, err := c.CreateWithdrawal(ctx, client.CreateWithdrawal{ExternalID: "held", Chain: "local", Asset: "USDT", To: toAddr, Amount: "150"})
	if err != nil || held.Status != client.StatusAwaitingApproval {
		t.Fatalf("held: %+v %v", held, err)
	}
	if a, err := approver.ApproveWithdrawal(ctx, held.ID); err != nil || a.Status != client.StatusPending {
		t.Fatalf("approve: %+v %v", a, err)
	}
	if _, err := c.ApproveWithdrawal(ctx, held.ID); !client.IsCode(err, "forbidden") {
		t.Fatalf("approve with a write key: %v", err)
	}
	l, err := c.ListWithdrawals(ctx, client.ListOptions{Asset: "USDT", Limit: 1})
	if err != nil || len(l.Withdrawals) != 1 || l.NextCursor == nil {
		t.Fatalf("list: %+v %v", l, err)
	}
	if l, err = c.ListWithdrawals(ctx, client.ListOptions{Asset: "USDT", Limit: 1, Cursor: *l.NextCursor}); err != nil || len(l.Withdrawals) != 1 {
		t.Fatalf("list page 2: %+v %v", l, err)
	}
	if cw, err := c.CancelWithdrawal(ctx, w.ID); err != nil || cw.Status != client.StatusCanceled {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := c.CancelWithdrawal(ctx, w.ID); !client.IsCode(err, "not_cancelable") {
		t.Fatalf("cancel twice: %v", err)
	}
	ep, err := c.CreateWebhookEndpoint(ctx, "http://127.0.0.1:9/hook")
	if err != nil || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("webhook: %+v %v", ep, err)
	}
	if rot, err := c.RotateWebhookSecret(ctx, ep.ID); err != nil || rot.Secret == ep.Secret || rot.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	r3, _, err := c.CreateWithdrawal(ctx, client.CreateWithdrawal{ExternalID: "r3", Chain: "local", Asset: "USDT", To: toAddr, Amount: "101"})
	if err != nil {
		t.Fatal(err)
	}
	if rw, err := approver.RejectWithdrawal(ctx, r3.ID, "no"); err != nil || rw.Status != client.StatusCanceled || rw.Error == nil {
		t.Fatalf("reject: %+v %v", rw, err)
	}

	// The event payload the outbox wrote decodes into client.Event with nothing left over.
	var payload string
	if err := e.st.DB.QueryRow(`SELECT payload FROM webhook_events WHERE withdrawal_id = ? ORDER BY id DESC LIMIT 1`, r3.ID).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.DisallowUnknownFields()
	var ev client.Event
	if err := dec.Decode(&ev); err != nil || ev.Type != "withdrawal.canceled" || ev.Data.WithdrawalID != r3.ID || ev.Data.AmountBaseUnits != "101000000" {
		t.Fatalf("event %s: %+v %v", payload, ev, err)
	}
}

func errorsAs(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}
