package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the Sluice API with one API key.
type Client struct {
	base string
	key  string
	http *http.Client
}

// New returns a client of the API at baseURL (e.g. "https://sluice.internal:8080") using key. A nil
// httpClient uses one with a 30 s timeout.
func New(baseURL, key string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), key: key, http: httpClient}
}

// Error is an API error response: {"error":{"code","field","message"}} and its HTTP status.
type Error struct {
	Status  int
	Code    string
	Field   string // "" when the error is not about one field
	Message string
	// CorrelationID is the X-Correlation-ID of the response, to quote when reporting.
	CorrelationID string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("sluice: %d %s", e.Status, e.Code)
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	return s + ": " + e.Message
}

// Retryable reports whether the same request may succeed later unchanged: rate limiting and server
// errors. A create is safe to retry with the same external_id (it is idempotent).
func (e *Error) Retryable() bool { return e.Status == http.StatusTooManyRequests || e.Status >= 500 }

// IsCode reports whether err is an API error with code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Withdrawal statuses.
const (
	StatusAwaitingApproval = "AWAITING_APPROVAL"
	StatusPending          = "PENDING"
	StatusSigning          = "SIGNING"
	StatusSigned           = "SIGNED"
	StatusBroadcasted      = "BROADCASTED"
	StatusConfirmed        = "CONFIRMED"
	StatusFailed           = "FAILED"
	StatusCanceled         = "CANCELED"
)

// Withdrawal is a withdrawal as the API renders it (components.schemas.Withdrawal).
type Withdrawal struct {
	ID         string  `json:"id"`
	ExternalID string  `json:"external_id"`
	Chain      string  `json:"chain"`
	Asset      string  `json:"asset"`
	To         string  `json:"to"`
	Amount     *string `json:"amount"`
	Status     string  `json:"status"`
	// Waiting is "awaiting_funds" while a PENDING withdrawal waits for a hot wallet able to pay it
	// (it is paid once one is topped up, or FAILS after the chain's funds_deadline); nil otherwise.
	Waiting       *string          `json:"waiting"`
	From          *string          `json:"from"`
	Nonce         *uint64          `json:"nonce"`
	TxHash        *string          `json:"tx_hash"`
	BatchID       *string          `json:"batch_id"`
	BlockNumber   *uint64          `json:"block_number"`
	Confirmations *uint64          `json:"confirmations"`
	Error         *WithdrawalError `json:"error"`
	CreatedAt     string           `json:"created_at"`
	UpdatedAt     string           `json:"updated_at"`
}

// WaitingAwaitingFunds is Withdrawal.Waiting of a withdrawal no hot wallet can fund yet.
const WaitingAwaitingFunds = "awaiting_funds"

// WithdrawalError is why a withdrawal FAILED or was CANCELED.
type WithdrawalError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Final reports whether the withdrawal can change no more.
func (w *Withdrawal) Final() bool {
	return w.Status == StatusConfirmed || w.Status == StatusFailed || w.Status == StatusCanceled
}

// CreateWithdrawal is the body of POST /v1/withdrawals. Amount is a decimal string in whole units
// ("12.5" USDT); ExternalID is your idempotency key.
type CreateWithdrawal struct {
	ExternalID string `json:"external_id"`
	Chain      string `json:"chain"`
	Asset      string `json:"asset"`
	To         string `json:"to"`
	Amount     string `json:"amount"`
}

// WithdrawalList is a page of GET /v1/withdrawals.
type WithdrawalList struct {
	Withdrawals []Withdrawal `json:"withdrawals"`
	NextCursor  *string      `json:"next_cursor"`
}

// ListOptions filter GET /v1/withdrawals; zero values are no filter.
type ListOptions struct {
	ExternalID  string
	Status      string
	Chain       string
	Asset       string
	CreatedFrom time.Time
	CreatedTo   time.Time
	Limit       int
	Cursor      string
}

// Approval is the answer of an approval.
type Approval struct {
	WithdrawalID      string   `json:"withdrawal_id"`
	Status            string   `json:"status"`
	Reason            string   `json:"reason"`
	RequiredApprovals int      `json:"required_approvals"`
	Approvers         []string `json:"approvers"`
}

// WebhookEndpoint is a registered receiver; Secret is set only in the answers of create and rotate.
type WebhookEndpoint struct {
	ID                      int64   `json:"id"`
	URL                     string  `json:"url"`
	Secret                  string  `json:"secret,omitempty"`
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	Enabled                 bool    `json:"enabled"`
	CreatedAt               string  `json:"created_at"`
}

// Event is a webhook delivery's body.
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt string    `json:"created_at"`
	Data      EventData `json:"data"`
}

// EventData is the withdrawal as of the event. AmountBaseUnits is in the asset's smallest unit.
type EventData struct {
	WithdrawalID    string  `json:"withdrawal_id"`
	ExternalID      string  `json:"external_id"`
	Chain           string  `json:"chain"`
	Asset           string  `json:"asset"`
	To              string  `json:"to"`
	AmountBaseUnits string  `json:"amount_base_units"`
	Status          string  `json:"status"`
	PreviousStatus  *string `json:"previous_status"`
	Reason          string  `json:"reason"`
	TxHash          *string `json:"tx_hash"`
	BlockNumber     *uint64 `json:"block_number"`
	ErrorType       *string `json:"error_type"`
	ErrorMessage    *string `json:"error_message"`
	// Waiting is "awaiting_funds" in a withdrawal.awaiting_funds event; nil otherwise.
	Waiting *string `json:"waiting"`
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sluice %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("sluice %s %s: read: %w", method, path, err)
	}
	if res.StatusCode >= 400 {
		var eb struct {
			Error struct {
				Code    string  `json:"code"`
				Field   *string `json:"field"`
				Message string  `json:"message"`
			} `json:"error"`
		}
		e := &Error{Status: res.StatusCode, CorrelationID: res.Header.Get("X-Correlation-ID")}
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
			if eb.Error.Field != nil {
				e.Field = *eb.Error.Field
			}
		} else {
			e.Code, e.Message = "http_"+strconv.Itoa(res.StatusCode), strings.TrimSpace(string(raw))
		}
		return res.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, fmt.Errorf("sluice %s %s: decode: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

// CreateWithdrawal requests a withdrawal. created is false for a replay of the same external_id (the
// original withdrawal is returned); a replay with a different body is an *Error idempotency_conflict.
func (c *Client) CreateWithdrawal(ctx context.Context, req CreateWithdrawal) (w *Withdrawal, created bool, err error) {
	w = new(Withdrawal)
	st, err := c.do(ctx, http.MethodPost, "/v1/withdrawals", req, w)
	if err != nil {
		return nil, false, err
	}
	return w, st == http.StatusCreated, nil
}

// GetWithdrawal loads a withdrawal by id.
func (c *Client) GetWithdrawal(ctx context.Context, id string) (*Withdrawal, error) {
	w := new(Withdrawal)
	if _, err := c.do(ctx, http.MethodGet, "/v1/withdrawals/"+url.PathEscape(id), nil, w); err != nil {
		return nil, err
	}
	return w, nil
}

// ListWithdrawals returns one page; pass its NextCursor as Cursor (same filters) for the next.
func (c *Client) ListWithdrawals(ctx context.Context, o ListOptions) (*WithdrawalList, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("external_id", o.ExternalID)
	set("status", o.Status)
	set("chain", o.Chain)
	set("asset", o.Asset)
	set("cursor", o.Cursor)
	if !o.CreatedFrom.IsZero() {
		q.Set("created_from", o.CreatedFrom.UTC().Format(time.RFC3339Nano))
	}
	if !o.CreatedTo.IsZero() {
		q.Set("created_to", o.CreatedTo.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	path := "/v1/withdrawals"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	l := new(WithdrawalList)
	if _, err := c.do(ctx, http.MethodGet, path, nil, l); err != nil {
		return nil, err
	}
	return l, nil
}

// CancelWithdrawal cancels a PENDING or AWAITING_APPROVAL withdrawal (*Error not_cancelable otherwise).
func (c *Client) CancelWithdrawal(ctx context.Context, id string) (*Withdrawal, error) {
	w := new(Withdrawal)
	if _, err := c.do(ctx, http.MethodPost, "/v1/withdrawals/"+url.PathEscape(id)+"/cancel", nil, w); err != nil {
		return nil, err
	}
	return w, nil
}

// ApproveWithdrawal approves a held withdrawal (key scope withdrawals:approve).
func (c *Client) ApproveWithdrawal(ctx context.Context, id string) (*Approval, error) {
	a := new(Approval)
	if _, err := c.do(ctx, http.MethodPost, "/v1/withdrawals/"+url.PathEscape(id)+"/approve", nil, a); err != nil {
		return nil, err
	}
	return a, nil
}

// RejectWithdrawal rejects a held withdrawal with reason; it becomes CANCELED.
func (c *Client) RejectWithdrawal(ctx context.Context, id, reason string) (*Withdrawal, error) {
	w := new(Withdrawal)
	if _, err := c.do(ctx, http.MethodPost, "/v1/withdrawals/"+url.PathEscape(id)+"/reject", map[string]string{"reason": reason}, w); err != nil {
		return nil, err
	}
	return w, nil
}

// CreateWebhookEndpoint registers url (key scope webhooks:manage); keep the returned Secret.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, u string) (*WebhookEndpoint, error) {
	e := new(WebhookEndpoint)
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhooks", map[string]string{"url": u}, e); err != nil {
		return nil, err
	}
	return e, nil
}

// RotateWebhookSecret gives endpoint id a new secret; the old one keeps signing for 24 h.
func (c *Client) RotateWebhookSecret(ctx context.Context, id int64) (*WebhookEndpoint, error) {
	e := new(WebhookEndpoint)
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhooks/"+strconv.FormatInt(id, 10)+"/rotate", nil, e); err != nil {
		return nil, err
	}
	return e, nil
}

// WebhookAttempt is one attempt of a delivery; StatusCode is nil when no HTTP answer came.
type WebhookAttempt struct {
	StatusCode *int   `json:"status_code"`
	Error      string `json:"error"`
	LatencyMS  int64  `json:"latency_ms"`
	At         string `json:"at"`
}

// WebhookDelivery is one event sent (or to send) to one endpoint, with its attempts.
type WebhookDelivery struct {
	ID             int64            `json:"id"`
	EventID        string           `json:"event_id"`
	EventType      string           `json:"event_type"`
	WithdrawalID   string           `json:"withdrawal_id"`
	Seq            int              `json:"seq"`
	State          string           `json:"state"` // pending, delivered, dead
	Attempts       []WebhookAttempt `json:"attempts"`
	NextAttemptAt  *string          `json:"next_attempt_at"`
	CreatedAt      string           `json:"created_at"`
	DeliveredAt    *string          `json:"delivered_at"`
	LastStatusCode *int             `json:"last_status_code"`
	Redeliveries   int              `json:"redeliveries"`
}

// ListWebhookDeliveries is endpoint id's delivery log, newest first; state "dead" lists the dead
// letters ("" lists all).
func (c *Client) ListWebhookDeliveries(ctx context.Context, id int64, state string) ([]WebhookDelivery, error) {
	var out struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	path := "/v1/webhooks/" + strconv.FormatInt(id, 10) + "/deliveries"
	if state != "" {
		path += "?state=" + url.QueryEscape(state)
	}
	if _, err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.Deliveries, nil
}

// RedeliverWebhook sends delivery deliveryID of endpoint id again (the same event id: a replay, which
// may arrive after later events of its withdrawal). A pending delivery is an *Error not_redeliverable.
func (c *Client) RedeliverWebhook(ctx context.Context, id, deliveryID int64) (*WebhookDelivery, error) {
	d := new(WebhookDelivery)
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhooks/"+strconv.FormatInt(id, 10)+"/deliveries/"+
		strconv.FormatInt(deliveryID, 10)+"/redeliver", nil, d); err != nil {
		return nil, err
	}
	return d, nil
}

// RedeliverDeadWebhooks sends every dead delivery of endpoint id again (those created at or after
// since, unless zero) and returns how many were queued.
func (c *Client) RedeliverDeadWebhooks(ctx context.Context, id int64, since time.Time) (int, error) {
	body := map[string]string{}
	if !since.IsZero() {
		body["since"] = since.UTC().Format(time.RFC3339Nano)
	}
	var out struct {
		Queued int `json:"queued"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhooks/"+strconv.FormatInt(id, 10)+"/redeliver", body, &out); err != nil {
		return 0, err
	}
	return out.Queued, nil
}
