package admin

// Webhook dead letters for operators: the deliveries the dispatcher gave up on (GET /webhooks/dead),
// one delivery with its attempts (GET /webhooks/deliveries/{id}), and webhook.redeliver, which sends
// them again. A redelivery moves no funds and changes no withdrawal: one operator is enough.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
)

// ActionWebhookRedeliver sends webhook deliveries again: target a delivery id, or "endpoint/<id>" for
// every dead delivery of that endpoint (params since: only those created at or after an RFC 3339 time).
const ActionWebhookRedeliver = "webhook.redeliver"

// WebhookDeliveryView is a webhook delivery as operators see it: its endpoint's id, client and URL
// (without query or credentials), never its secrets.
type WebhookDeliveryView struct {
	ID             int64   `json:"id"`
	EventID        string  `json:"event_id"`
	EventType      string  `json:"event_type"`
	WithdrawalID   string  `json:"withdrawal_id"`
	Seq            int     `json:"seq"`
	State          string  `json:"state"`
	ClientID       int64   `json:"client_id"`
	Client         string  `json:"client"`
	EndpointID     int64   `json:"endpoint_id"`
	EndpointURL    string  `json:"endpoint_url"`
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"last_status_code"`
	LastError      string  `json:"last_error"`
	CreatedAt      string  `json:"created_at"`
	NextAttemptAt  *string `json:"next_attempt_at"`
	DeliveredAt    *string `json:"delivered_at"`
	Redeliveries   int     `json:"redeliveries"`
	RedeliveredBy  string  `json:"redelivered_by,omitempty"`
}

// WebhookAttemptView is one attempt of a delivery.
type WebhookAttemptView struct {
	StatusCode *int   `json:"status_code"`
	Error      string `json:"error"`
	LatencyMS  int64  `json:"latency_ms"`
	At         string `json:"at"`
}

// WebhookDeliveryDetail is GET /admin/v1/webhooks/deliveries/{id}: the delivery, its attempts oldest
// first, and the event body it sends.
type WebhookDeliveryDetail struct {
	Delivery WebhookDeliveryView  `json:"delivery"`
	Attempts []WebhookAttemptView `json:"attempts"`
	Event    json.RawMessage      `json:"event"`
}

// displayURL is an endpoint URL without what may be a credential (user info, query, fragment).
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.RawQuery != ""
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	s := u.String()
	if q {
		s += "?…"
	}
	return s
}

func (o *ops) deliveryView(ctx context.Context, d *store.WebhookDelivery, names map[int64]string) (WebhookDeliveryView, error) {
	name, ok := names[d.Endpoint.ClientID]
	if !ok {
		var err error
		if name, err = o.st.ClientName(ctx, d.Endpoint.ClientID); err != nil {
			return WebhookDeliveryView{}, err
		}
		names[d.Endpoint.ClientID] = name
	}
	v := WebhookDeliveryView{ID: d.ID, EventID: d.EventID, EventType: d.EventType, WithdrawalID: d.WithdrawalID, Seq: d.Seq,
		State: d.State, ClientID: d.Endpoint.ClientID, Client: name, EndpointID: d.Endpoint.ID, EndpointURL: displayURL(d.Endpoint.URL),
		Attempts: d.Attempts, LastStatusCode: d.LastStatusCode, LastError: d.LastError, CreatedAt: ts(d.CreatedAt),
		Redeliveries: d.Redeliveries, RedeliveredBy: d.RedeliveredBy}
	if d.State == "pending" {
		t := ts(d.NextAttemptAt)
		v.NextAttemptAt = &t
	}
	if d.DeliveredAt != nil {
		t := ts(*d.DeliveredAt)
		v.DeliveredAt = &t
	}
	return v, nil
}

func parsePositive(c echo.Context, field, what string) (int64, error) {
	s := c.QueryParam(field)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, badParam(field, field+" must be "+what)
	}
	return n, nil
}

func (o *ops) deadWebhooks(c echo.Context) (Page[WebhookDeliveryView], error) {
	var f store.DeadLetterFilter
	var err error
	if f.ClientID, err = parsePositive(c, "client", "an API client id (a positive integer)"); err != nil {
		return Page[WebhookDeliveryView]{}, err
	}
	if f.EndpointID, err = parsePositive(c, "endpoint", "a webhook endpoint id (a positive integer)"); err != nil {
		return Page[WebhookDeliveryView]{}, err
	}
	if f.Before, err = parsePositive(c, "cursor", "the next_cursor of a previous page"); err != nil {
		return Page[WebhookDeliveryView]{}, err
	}
	lim, err := parseLimit(c, defaultLimit, maxLimit)
	if err != nil {
		return Page[WebhookDeliveryView]{}, err
	}
	f.Limit = lim + 1 // one more tells whether there is a next page
	ctx := c.Request().Context()
	ds, err := o.st.DeadWebhookDeliveries(ctx, f)
	if err != nil {
		return Page[WebhookDeliveryView]{}, err
	}
	p := Page[WebhookDeliveryView]{Items: []WebhookDeliveryView{}}
	names := map[int64]string{}
	for i, d := range ds {
		if i == lim {
			p.NextCursor = strconv.FormatInt(ds[i-1].ID, 10)
			break
		}
		v, err := o.deliveryView(ctx, d, names)
		if err != nil {
			return Page[WebhookDeliveryView]{}, err
		}
		p.Items = append(p.Items, v)
	}
	return p, nil
}

func parseDeliveryID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badParam(field, field+" must be a webhook delivery id (the number GET /admin/v1/webhooks/dead shows)")
	}
	return id, nil
}

func (o *ops) delivery(ctx context.Context, field, s string) (*store.WebhookDelivery, error) {
	id, err := parseDeliveryID(field, s)
	if err != nil {
		return nil, err
	}
	d, err := o.st.WebhookDeliveryByID(ctx, 0, 0, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing(field, "no webhook delivery "+s)
	}
	return d, err
}

func (o *ops) webhookDelivery(ctx context.Context, s string) (*WebhookDeliveryDetail, error) {
	d, err := o.delivery(ctx, "id", s)
	if err != nil {
		return nil, err
	}
	v, err := o.deliveryView(ctx, d, map[int64]string{})
	if err != nil {
		return nil, err
	}
	as, err := o.st.WebhookAttempts(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	out := &WebhookDeliveryDetail{Delivery: v, Attempts: []WebhookAttemptView{}, Event: json.RawMessage(d.Payload)}
	if !json.Valid(out.Event) {
		out.Event = json.RawMessage("null")
	}
	for _, a := range as {
		av := WebhookAttemptView{Error: a.Error, LatencyMS: a.Latency.Milliseconds(), At: ts(a.CreatedAt)}
		if a.StatusCode != 0 {
			code := a.StatusCode
			av.StatusCode = &code
		}
		out.Attempts = append(out.Attempts, av)
	}
	return out, nil
}

// ---- webhook.redeliver ----

// redeliverTarget is what a webhook.redeliver request names: one delivery, or the dead ones of an
// endpoint (created at or after since).
type redeliverTarget struct {
	delivery int64
	endpoint int64
	since    time.Time
}

func parseRedeliver(r ActionRequest) (redeliverTarget, error) {
	var t redeliverTarget
	for k, v := range r.Params {
		if k != "since" {
			return t, invalid("params."+k, fmt.Sprintf("%s takes no parameter %q (only since)", r.Action, k))
		}
		s, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return t, invalid("params.since", "params.since must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		t.since = s
	}
	if ep, ok := strings.CutPrefix(r.Target, "endpoint/"); ok {
		id, err := strconv.ParseInt(ep, 10, 64)
		if err != nil || id <= 0 {
			return t, badParam("target", `target must be a webhook delivery id or "endpoint/<endpoint id>"`)
		}
		t.endpoint = id
		return t, nil
	}
	id, err := strconv.ParseInt(r.Target, 10, 64)
	if err != nil || id <= 0 {
		return t, badParam("target", `target must be a webhook delivery id or "endpoint/<endpoint id>"`)
	}
	if !t.since.IsZero() {
		return t, invalid("params.since", `params.since only applies to a target "endpoint/<id>" (every dead delivery of an endpoint)`)
	}
	t.delivery = id
	return t, nil
}

func (o *ops) validRedeliver(ctx context.Context, r ActionRequest) error {
	t, err := parseRedeliver(r)
	if err != nil {
		return err
	}
	if t.endpoint != 0 {
		_, err = o.endpoint(ctx, t.endpoint)
		return err
	}
	_, err = o.delivery(ctx, "target", r.Target)
	return err
}

func (o *ops) endpoint(ctx context.Context, id int64) (*store.WebhookEndpoint, error) {
	e, err := o.st.WebhookEndpointByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing("target", fmt.Sprintf("no webhook endpoint %d", id))
	}
	return e, err
}

const redeliverWarning = "a redelivery is a replay of the same event id: it may arrive after later events of its withdrawal (receivers de-duplicate on the id and compare the status)"

// maxPlanRows bounds the rows a bulk plan lists one by one.
const maxPlanRows = 50

func (o *ops) planRedeliver(ctx context.Context, r ActionRequest) (Plan, error) {
	t, err := parseRedeliver(r)
	if err != nil {
		return Plan{}, err
	}
	if t.delivery != 0 {
		d, err := o.delivery(ctx, "target", r.Target)
		if err != nil {
			return Plan{}, err
		}
		if d.State == "pending" {
			return Plan{}, refuse("target", fmt.Sprintf("webhook delivery %d is pending: it is being delivered already", d.ID))
		}
		p := Plan{Summary: fmt.Sprintf("send webhook delivery %d (%s of withdrawal %s) to %s again: the same event %s, its %d attempts kept; retried for webhooks' dead_after from now",
			d.ID, d.EventType, d.WithdrawalID, displayURL(d.Endpoint.URL), d.EventID, d.Attempts),
			Rows:     []RowChange{{Table: "webhook_deliveries", Key: strconv.FormatInt(d.ID, 10), Change: "state " + d.State + " → pending, due now"}},
			Warnings: []string{redeliverWarning}}
		if d.State == "delivered" {
			p.Warnings = append(p.Warnings, "it was delivered already: the receiver gets it a second time")
		}
		return p, nil
	}
	e, err := o.endpoint(ctx, t.endpoint)
	if err != nil {
		return Plan{}, err
	}
	f := store.DeadLetterFilter{EndpointID: e.ID, Since: t.since, Limit: maxPlanRows}
	n, oldest, err := o.st.CountDeadWebhookDeliveries(ctx, f)
	if err != nil {
		return Plan{}, err
	}
	if n == 0 {
		return Plan{Summary: fmt.Sprintf("nothing to send: endpoint %d (%s) has no dead deliveries%s", e.ID, displayURL(e.URL), sinceText(t.since))}, nil
	}
	ds, err := o.st.DeadWebhookDeliveries(ctx, f)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Summary: fmt.Sprintf("send the %d dead deliveries of endpoint %d (%s)%s again, the oldest (%s) first and in order per withdrawal; their attempts kept",
		n, e.ID, displayURL(e.URL), sinceText(t.since), ts(oldest)), Warnings: []string{redeliverWarning}}
	for i := len(ds) - 1; i >= 0; i-- { // oldest first, as they will be sent
		d := ds[i]
		p.Rows = append(p.Rows, RowChange{Table: "webhook_deliveries", Key: strconv.FormatInt(d.ID, 10),
			Change: fmt.Sprintf("state dead → pending (%s of withdrawal %s)", d.EventType, d.WithdrawalID)})
	}
	if n > len(ds) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("only the newest %d of the %d are listed", len(ds), n))
	}
	return p, nil
}

func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " created since " + ts(t)
}

func (o *ops) doRedeliver(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
	t, err := parseRedeliver(r)
	if err != nil {
		return nil, err
	}
	by = "operator:" + by
	if t.endpoint != 0 {
		n, err := o.st.RedeliverDeadWebhooks(ctx, 0, t.endpoint, t.since, by)
		if err != nil {
			return nil, err
		}
		return map[string]any{"queued": n}, nil
	}
	d, err := o.st.RedeliverWebhook(ctx, 0, 0, t.delivery, by)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, missing("target", "no webhook delivery "+r.Target)
	case errors.Is(err, store.ErrConflict) && d != nil && d.RedeliveredBy == by:
		return map[string]any{"queued": 1, "event_id": d.EventID}, nil // done before a crash, or by a concurrent replay
	case errors.Is(err, store.ErrConflict):
		return nil, refuse("target", fmt.Sprintf("webhook delivery %d is pending: it is being delivered already", t.delivery))
	case err != nil:
		return nil, err
	}
	return map[string]any{"queued": 1, "event_id": d.EventID}, nil
}
