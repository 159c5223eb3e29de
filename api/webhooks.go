package api

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/webhook"
)

// SecretOverlap is how long the previous signing secret keeps signing after a rotation.
const SecretOverlap = 24 * time.Hour

type endpointJSON struct {
	ID                      int64   `json:"id"`
	URL                     string  `json:"url"`
	Secret                  *string `json:"secret,omitempty"` // only when created or rotated
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	Enabled                 bool    `json:"enabled"`
	CreatedAt               string  `json:"created_at"`
}

func renderEndpoint(e *store.WebhookEndpoint, withSecret bool) endpointJSON {
	out := endpointJSON{ID: e.ID, URL: e.URL, Enabled: e.Enabled, CreatedAt: e.CreatedAt.UTC().Format(timeFormat)}
	if withSecret {
		out.Secret = &e.Secret
	}
	if e.PrevSecret != "" {
		t := e.PrevExpiresAt.UTC().Format(timeFormat)
		out.PreviousSecretExpiresAt = &t
	}
	return out
}

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "whsec_" + hex.EncodeToString(b), nil
}

type createEndpointRequest struct {
	URL string `json:"url"`
}

func (s *Server) createWebhook(c echo.Context) error {
	var buf bytes.Buffer
	if err := readBody(c, &buf); err != nil {
		return err
	}
	var req createEndpointRequest
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return newErr(CodeInvalidJSON, "", `body must be a JSON object {"url": string}`)
	}
	if req.URL == "" {
		return newErr(CodeRequired, "url", "url is required")
	}
	if len(req.URL) > 2048 {
		return newErr(CodeInvalidURL, "url", "url must be at most 2048 characters")
	}
	ctx := c.Request().Context()
	if err := webhook.CheckURL(ctx, req.URL, s.allowPrivate); err != nil {
		return newErr(CodeInvalidURL, "url", "url refused: "+err.Error())
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	e, err := s.st.AddWebhookEndpoint(ctx, state(c).client.ID, req.URL, secret)
	if err != nil {
		return err
	}
	state(c).log.Info("webhook endpoint added", "endpoint", e.ID)
	return c.JSON(http.StatusCreated, renderEndpoint(e, true))
}

func (s *Server) listWebhooks(c echo.Context) error {
	es, err := s.st.WebhookEndpoints(c.Request().Context(), state(c).client.ID)
	if err != nil {
		return err
	}
	out := struct {
		Endpoints []endpointJSON `json:"endpoints"`
	}{Endpoints: []endpointJSON{}}
	for _, e := range es {
		out.Endpoints = append(out.Endpoints, renderEndpoint(e, false))
	}
	return c.JSON(http.StatusOK, out)
}

var errEndpointNotFound = newErr(CodeNotFound, "", "webhook endpoint not found")

func endpointID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errEndpointNotFound
	}
	return id, nil
}

// rotateWebhook gives the endpoint a new secret; the old one keeps signing (a second v1) for
// SecretOverlap.
func (s *Server) rotateWebhook(c echo.Context) error {
	id, err := endpointID(c)
	if err != nil {
		return err
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	e, err := s.st.RotateWebhookSecret(c.Request().Context(), state(c).client.ID, id, secret, SecretOverlap)
	if errors.Is(err, store.ErrNotFound) {
		return errEndpointNotFound
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, renderEndpoint(e, true))
}

type deliveryJSON struct {
	ID             int64         `json:"id"`
	EventID        string        `json:"event_id"`
	EventType      string        `json:"event_type"`
	WithdrawalID   string        `json:"withdrawal_id"`
	Seq            int           `json:"seq"`
	State          string        `json:"state"`
	Attempts       []attemptJSON `json:"attempts"`
	NextAttemptAt  *string       `json:"next_attempt_at"`
	CreatedAt      string        `json:"created_at"`
	DeliveredAt    *string       `json:"delivered_at"`
	LastStatusCode *int          `json:"last_status_code"`
	Redeliveries   int           `json:"redeliveries"`
}

type attemptJSON struct {
	StatusCode *int   `json:"status_code"`
	Error      string `json:"error"`
	LatencyMS  int64  `json:"latency_ms"`
	At         string `json:"at"`
}

// webhookDeliveries is the delivery log of an endpoint (?state=dead is the dead-letter view).
func (s *Server) webhookDeliveries(c echo.Context) error {
	id, err := s.clientEndpoint(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	rs := state(c)
	st := c.QueryParam("state")
	switch st {
	case "", "pending", "delivered", "dead":
	default:
		return newErr(CodeInvalidParameter, "state", "state must be pending, delivered or dead")
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return newErr(CodeInvalidParameter, "limit", "limit must be an integer from 1 to "+strconv.Itoa(MaxListLimit))
		}
		limit = n
	}
	ds, err := s.st.WebhookDeliveries(ctx, rs.client.ID, id, st, limit)
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}{Deliveries: []deliveryJSON{}}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	attempts, err := s.st.WebhookAttemptsOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, renderDelivery(d, attempts[d.ID]))
	}
	return c.JSON(http.StatusOK, out)
}

// renderDelivery is a delivery with its attempts (as, oldest first).
func renderDelivery(d *store.WebhookDelivery, as []store.WebhookAttempt) deliveryJSON {
	dj := deliveryJSON{ID: d.ID, EventID: d.EventID, EventType: d.EventType, WithdrawalID: d.WithdrawalID, Seq: d.Seq,
		State: d.State, Attempts: []attemptJSON{}, CreatedAt: d.CreatedAt.UTC().Format(timeFormat), LastStatusCode: d.LastStatusCode,
		Redeliveries: d.Redeliveries}
	if d.State == "pending" {
		t := d.NextAttemptAt.UTC().Format(timeFormat)
		dj.NextAttemptAt = &t
	}
	if d.DeliveredAt != nil {
		t := d.DeliveredAt.UTC().Format(timeFormat)
		dj.DeliveredAt = &t
	}
	for _, a := range as {
		aj := attemptJSON{Error: a.Error, LatencyMS: a.Latency.Milliseconds(), At: a.CreatedAt.UTC().Format(timeFormat)}
		if a.StatusCode != 0 {
			code := a.StatusCode
			aj.StatusCode = &code
		}
		dj.Attempts = append(dj.Attempts, aj)
	}
	return dj
}

var errDeliveryNotFound = newErr(CodeNotFound, "delivery_id", "webhook delivery not found")

// clientEndpoint is the endpoint of the path's id when it is the caller's (404 otherwise, as for one
// that does not exist).
func (s *Server) clientEndpoint(c echo.Context) (int64, error) {
	id, err := endpointID(c)
	if err != nil {
		return 0, err
	}
	if _, err := s.st.WebhookEndpoint(c.Request().Context(), state(c).client.ID, id); errors.Is(err, store.ErrNotFound) {
		return 0, errEndpointNotFound
	} else if err != nil {
		return 0, err
	}
	return id, nil
}

// redeliverWebhook sends one delivery of the endpoint again (a dead one, or a delivered one the
// receiver lost): the same event id and body, signed anew, with its attempts kept.
func (s *Server) redeliverWebhook(c echo.Context) error {
	epID, err := s.clientEndpoint(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("delivery_id"), 10, 64)
	if err != nil || id <= 0 {
		return newErr(CodeInvalidParameter, "delivery_id", "delivery_id must be a positive integer (the id of a delivery in the endpoint's delivery log)")
	}
	ctx := c.Request().Context()
	rs := state(c)
	d, err := s.st.RedeliverWebhook(ctx, rs.client.ID, epID, id, "client:"+rs.client.Actor())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errDeliveryNotFound
	case errors.Is(err, store.ErrConflict):
		return newErr(CodeNotRedeliverable, "delivery_id", "the delivery is pending: it is being delivered already")
	case err != nil:
		return err
	}
	rs.log.Info("webhook delivery redelivered", "endpoint", epID, "delivery", id, "event", d.EventID)
	as, err := s.st.WebhookAttempts(ctx, d.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, renderDelivery(d, as))
}

type redeliverRequest struct {
	Since *string `json:"since"`
}

// redeliverDead sends again every dead delivery of the endpoint (created at or after since, when
// given), oldest first and in order per withdrawal.
func (s *Server) redeliverDead(c echo.Context) error {
	epID, err := s.clientEndpoint(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := readBody(c, &buf); err != nil {
		return err
	}
	var req redeliverRequest
	if len(bytes.TrimSpace(buf.Bytes())) > 0 {
		dec := json.NewDecoder(&buf)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return newErr(CodeInvalidJSON, "", `body must be empty or a JSON object {"since": RFC 3339 time}`)
		}
	}
	var since time.Time
	if req.Since != nil {
		if since, err = time.Parse(time.RFC3339Nano, *req.Since); err != nil {
			return newErr(CodeInvalidTime, "since", "since must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
	}
	rs := state(c)
	n, err := s.st.RedeliverDeadWebhooks(c.Request().Context(), rs.client.ID, epID, since, "client:"+rs.client.Actor())
	if err != nil {
		return err
	}
	rs.log.Info("dead webhook deliveries redelivered", "endpoint", epID, "queued", n)
	return c.JSON(http.StatusOK, struct {
		Queued int `json:"queued"`
	}{n})
}
