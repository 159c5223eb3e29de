package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// EventType names a webhook event, derived from the status change that produced it.
func EventType(from, to Status) string {
	switch {
	case from == Confirmed && to != Confirmed:
		return "withdrawal.reorged"
	case to == Signed:
		return "withdrawal.signed"
	case to == Broadcasted:
		return "withdrawal.broadcasted"
	case to == Confirmed:
		return "withdrawal.confirmed"
	case to == Failed:
		return "withdrawal.failed"
	case to == Canceled:
		return "withdrawal.canceled"
	case to == AwaitingApproval:
		return "withdrawal.awaiting_approval"
	}
	return "" // PENDING and SIGNING are internal steps
}

// emitEvent writes the webhook event of withdrawal id's change from → to, and one delivery per enabled
// endpoint of its client, inside tx: the outbox of the change. Nothing is written for a change without
// an event type or a client without endpoints. Transitions of one withdrawal are serialized by its row
// lock (the conditional UPDATE holds it to commit), so the per-(endpoint, withdrawal) seq cannot race.
func emitEvent(ctx context.Context, tx *sql.Tx, id string, from, to Status, reason string) error {
	return emitTyped(ctx, tx, id, EventType(from, to), from, reason)
}

// EventAwaitingFunds is the event of a PENDING withdrawal that starts waiting for a hot wallet to hold
// enough to pay it (NoteAwaitingFunds); it is not a status change, so EventType never names it.
const EventAwaitingFunds = "withdrawal.awaiting_funds"

// emitTyped writes event typ of withdrawal id (see emitEvent); from is its previous status.
func emitTyped(ctx context.Context, tx *sql.Tx, id, typ string, from Status, reason string) error {
	if typ == "" {
		return nil
	}
	eid, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("event id: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var prev any
	if from != "" {
		prev = string(from)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, client_id, withdrawal_id, type, payload, created_at)
		SELECT ?, w.client_id, w.id, ?, JSON_OBJECT('id', ?, 'type', ?, 'created_at', ?, 'data', JSON_OBJECT(
			'withdrawal_id', w.id, 'external_id', w.external_id, 'chain', w.chain, 'asset', w.asset,
			'to', w.to_address, 'amount_base_units', w.amount, 'status', w.status, 'previous_status', ?,
			'reason', ?, 'tx_hash', t.tx_hash, 'block_number', w.block_number, 'error_type', w.error_type,
			'error_message', w.error_message, 'waiting', w.waiting)), ?
		FROM withdrawals w LEFT JOIN sent_transactions t ON t.id = w.sent_tx_id
		WHERE w.id = ? AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.client_id = w.client_id AND e.enabled)`,
		eid.String(), typ, eid.String(), typ, now.Format("2006-01-02T15:04:05.000000Z"), prev, reason, now, id)
	if err != nil {
		return fmt.Errorf("webhook event of %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, withdrawal_id, seq, next_attempt_at, created_at)
		SELECT ?, e.id, ?, 1 + COALESCE((SELECT MAX(d.seq) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.withdrawal_id = ?), 0), ?, ?
		FROM webhook_endpoints e JOIN withdrawals w ON w.client_id = e.client_id WHERE w.id = ? AND e.enabled`,
		eid.String(), id, id, now, now, id); err != nil {
		return fmt.Errorf("webhook deliveries of %s: %w", id, err)
	}
	return nil
}

// WebhookEndpoint is a client's webhook receiver.
type WebhookEndpoint struct {
	ID            int64
	ClientID      int64
	URL           string
	Secret        string
	PrevSecret    string    // "" when none is still valid
	PrevExpiresAt time.Time // zero when none
	Enabled       bool
	CreatedAt     time.Time
}

// AddWebhookEndpoint registers url with secret for client.
func (s *Store) AddWebhookEndpoint(ctx context.Context, clientID int64, url, secret string) (*WebhookEndpoint, error) {
	res, err := s.DB.ExecContext(ctx, `INSERT INTO webhook_endpoints (client_id, url, secret) VALUES (?,?,?)`, clientID, url, secret)
	if err != nil {
		return nil, fmt.Errorf("add webhook endpoint: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	return s.WebhookEndpoint(ctx, clientID, id)
}

// RotateWebhookSecret makes secret the endpoint's signing secret; the previous one keeps signing too
// until overlap has passed, so receivers can switch without missing a delivery.
func (s *Store) RotateWebhookSecret(ctx context.Context, clientID, id int64, secret string, overlap time.Duration) (*WebhookEndpoint, error) {
	res, err := s.DB.ExecContext(ctx, `UPDATE webhook_endpoints SET prev_secret = secret, prev_expires_at = ?, secret = ?
		WHERE id = ? AND client_id = ?`, time.Now().UTC().Add(overlap), secret, id, clientID)
	if err != nil {
		return nil, fmt.Errorf("rotate webhook secret: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound
	}
	return s.WebhookEndpoint(ctx, clientID, id)
}

const endpointCols = `id, client_id, url, secret, COALESCE(prev_secret, ''), prev_expires_at, enabled, created_at`

func scanEndpoint(r scanner) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	var exp sql.NullTime
	if err := r.Scan(&e.ID, &e.ClientID, &e.URL, &e.Secret, &e.PrevSecret, &exp, &e.Enabled, &e.CreatedAt); err != nil {
		return nil, err
	}
	if exp.Valid {
		e.PrevExpiresAt = exp.Time
	}
	if e.PrevSecret != "" && !time.Now().Before(e.PrevExpiresAt) {
		e.PrevSecret, e.PrevExpiresAt = "", time.Time{}
	}
	return &e, nil
}

// WebhookEndpoint loads one of client's endpoints.
func (s *Store) WebhookEndpoint(ctx context.Context, clientID, id int64) (*WebhookEndpoint, error) {
	e, err := scanEndpoint(s.DB.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE id = ? AND client_id = ?`, id, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook endpoint %d: %w", id, err)
	}
	return e, nil
}

// WebhookEndpoints lists client's endpoints.
func (s *Store) WebhookEndpoints(ctx context.Context, clientID int64) ([]*WebhookEndpoint, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE client_id = ? ORDER BY id`, clientID)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	defer rows.Close()
	var out []*WebhookEndpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// WebhookDelivery is one event to deliver to one endpoint.
type WebhookDelivery struct {
	ID             int64
	EventID        string
	EventType      string
	WithdrawalID   string
	Seq            int
	State          string // pending, delivered, dead
	Attempts       int
	LastStatusCode *int
	LastError      string
	NextAttemptAt  time.Time
	CreatedAt      time.Time
	DeliveredAt    *time.Time
	Payload        []byte
	Endpoint       *WebhookEndpoint
	// RetrySince starts the current retry window: CreatedAt, or the last redelivery. The dispatcher
	// dead-letters a delivery that still fails DeadAfter after it.
	RetrySince time.Time
	// RetryAttempts counts the attempts since RetrySince (the backoff restarts with a redelivery).
	RetryAttempts int
	// Redeliveries counts the redeliveries asked for; RedeliveredBy names who asked last.
	Redeliveries  int
	RedeliveredBy string
}

// ClaimWebhookDeliveries takes up to limit due deliveries whose earlier deliveries (same endpoint and
// withdrawal) are all done, and moves each one's next attempt ahead by lease so that no other dispatcher
// takes it meanwhile. The candidates are read without locks (a locking read with SKIP LOCKED would skip
// a claimed earlier delivery and so see a later one as next); each is then taken by a conditional
// update that only one dispatcher wins. A claimed earlier delivery is still pending, so it keeps
// blocking its successors until its outcome is recorded.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*WebhookDelivery, error) {
	now := time.Now().UTC()
	rows, err := s.DB.QueryContext(ctx, `SELECT d.id, d.event_id, ev.type, d.withdrawal_id, d.seq, d.state, d.attempts, d.next_attempt_at,
		d.created_at, COALESCE(d.retry_since, d.created_at), d.attempts - d.retry_base, ev.payload, e.id, e.client_id, e.url, e.secret, COALESCE(e.prev_secret, ''), e.prev_expires_at, e.enabled, e.created_at
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
			WHERE p.endpoint_id = d.endpoint_id AND p.withdrawal_id = d.withdrawal_id AND p.seq < d.seq AND p.state = 'pending')
		ORDER BY d.next_attempt_at, d.id LIMIT ?`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due webhook deliveries: %w", err)
	}
	var cands []*WebhookDelivery
	for rows.Next() {
		var d WebhookDelivery
		var e WebhookEndpoint
		var exp sql.NullTime
		var payload string
		if err := rows.Scan(&d.ID, &d.EventID, &d.EventType, &d.WithdrawalID, &d.Seq, &d.State, &d.Attempts, &d.NextAttemptAt, &d.CreatedAt, &d.RetrySince, &d.RetryAttempts, &payload,
			&e.ID, &e.ClientID, &e.URL, &e.Secret, &e.PrevSecret, &exp, &e.Enabled, &e.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("due webhook deliveries: %w", err)
		}
		if exp.Valid && now.Before(exp.Time) {
			e.PrevExpiresAt = exp.Time
		} else {
			e.PrevSecret = ""
		}
		d.Payload, d.Endpoint = []byte(payload), &e
		cands = append(cands, &d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due webhook deliveries: %w", err)
	}
	out := cands[:0]
	for _, d := range cands {
		res, err := s.DB.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND state = 'pending' AND next_attempt_at = ?`,
			now.Add(lease), d.ID, d.NextAttemptAt)
		if err != nil {
			return out, fmt.Errorf("claim webhook delivery %d: %w", d.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out = append(out, d)
		}
	}
	return out, nil
}

// WebhookAttempt is the outcome of one delivery attempt.
type WebhookAttempt struct {
	StatusCode int // 0: no HTTP answer
	Error      string
	Latency    time.Duration
	CreatedAt  time.Time
}

// RecordWebhookAttempt logs an attempt of delivery id and sets its state: delivered, or pending until
// next, or dead (next zero).
func (s *Store) RecordWebhookAttempt(ctx context.Context, id int64, a WebhookAttempt, delivered bool, next time.Time) error {
	var code any
	if a.StatusCode != 0 {
		code = a.StatusCode
	}
	msg := truncate(a.Error, 255)
	now := time.Now().UTC()
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, status_code, error, latency_ms) VALUES (?,?,?,?)`,
			id, code, msg, a.Latency.Milliseconds()); err != nil {
			return fmt.Errorf("log webhook attempt %d: %w", id, err)
		}
		var err error
		switch {
		case delivered:
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_status_code = ?,
				last_error = NULL, delivered_at = ? WHERE id = ?`, code, now, id)
		case next.IsZero():
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'dead', attempts = attempts + 1, last_status_code = ?,
				last_error = ? WHERE id = ?`, code, msg, id)
		default:
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, last_status_code = ?, last_error = ?,
				next_attempt_at = ? WHERE id = ?`, code, msg, next.UTC(), id)
		}
		if err != nil {
			return fmt.Errorf("update webhook delivery %d: %w", id, err)
		}
		return nil
	})
}

// WebhookDeliveries lists the deliveries of client's endpoint, newest first, with state "" for all
// (the dead-letter view is state "dead").
func (s *Store) WebhookDeliveries(ctx context.Context, clientID, endpointID int64, state string, limit int) ([]*WebhookDelivery, error) {
	q := deliverySelect + ` WHERE e.client_id = ? AND d.endpoint_id = ?`
	args := []any{clientID, endpointID}
	if state != "" {
		q += ` AND d.state = ?`
		args = append(args, state)
	}
	args = append(args, limit)
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY d.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []*WebhookDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhook deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// WebhookAttempts returns the attempts of a delivery, oldest first.
func (s *Store) WebhookAttempts(ctx context.Context, deliveryID int64) ([]WebhookAttempt, error) {
	m, err := s.WebhookAttemptsOf(ctx, []int64{deliveryID})
	return m[deliveryID], err
}

// WebhookAttemptsOf returns the attempts of each delivery of ids, oldest first, in one query (a page of
// a delivery log is one read, not one per delivery).
func (s *Store) WebhookAttemptsOf(ctx context.Context, ids []int64) (map[int64][]WebhookAttempt, error) {
	out := make(map[int64][]WebhookAttempt, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT delivery_id, COALESCE(status_code, 0), error, latency_ms, created_at FROM webhook_attempts
		WHERE delivery_id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a WebhookAttempt
		var id, ms int64
		if err := rows.Scan(&id, &a.StatusCode, &a.Error, &ms, &a.CreatedAt); err != nil {
			return nil, fmt.Errorf("webhook attempts: %w", err)
		}
		a.Latency = time.Duration(ms) * time.Millisecond
		out[id] = append(out[id], a)
	}
	return out, rows.Err()
}

// DeadLetterFilter selects dead-lettered deliveries: of one client and endpoint when set (0: all),
// created at or after Since (zero: any), older than the delivery id Before (0: from the newest), at
// most Limit (1–500; 0 is 50).
type DeadLetterFilter struct {
	ClientID   int64
	EndpointID int64
	Since      time.Time
	Before     int64
	Limit      int
}

func (f DeadLetterFilter) where() (string, []any) {
	q := ` WHERE d.state = 'dead'`
	var args []any
	if f.ClientID != 0 {
		q += ` AND e.client_id = ?`
		args = append(args, f.ClientID)
	}
	if f.EndpointID != 0 {
		q += ` AND d.endpoint_id = ?`
		args = append(args, f.EndpointID)
	}
	if !f.Since.IsZero() {
		q += ` AND d.created_at >= ?`
		args = append(args, f.Since.UTC())
	}
	if f.Before != 0 {
		q += ` AND d.id < ?`
		args = append(args, f.Before)
	}
	return q, args
}

// CountDeadWebhookDeliveries is how many deliveries f selects (Before and Limit aside) and the
// creation time of the oldest (zero when none).
func (s *Store) CountDeadWebhookDeliveries(ctx context.Context, f DeadLetterFilter) (int, time.Time, error) {
	f.Before = 0
	w, args := f.where()
	var n int
	var oldest sql.NullTime
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*), MIN(d.created_at) FROM webhook_deliveries d
		JOIN webhook_endpoints e ON e.id = d.endpoint_id`+w, args...).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("count dead webhook deliveries: %w", err)
	}
	return n, oldest.Time, nil
}

// DeadWebhookDeliveries lists the dead-lettered deliveries of every client, newest first: those that
// failed for DeadAfter (24 h) and are no longer tried. It is the operators' view (GET
// /admin/v1/webhooks/dead, `sluice ops webhooks dead`, the dashboard's Stuck & DLQ page); a client sees
// its own through WebhookDeliveries with state "dead". Each carries its endpoint's
// id, client and URL, never its secrets; WebhookAttempts gives its attempts. Page with Before = the
// last id returned.
func (s *Store) DeadWebhookDeliveries(ctx context.Context, f DeadLetterFilter) ([]*WebhookDelivery, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	w, args := f.where()
	rows, err := s.DB.QueryContext(ctx, deliverySelect+w+` ORDER BY d.id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("dead webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []*WebhookDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("dead webhook deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// deliverySelect reads a delivery with its event and endpoint (never the endpoint's secrets), for
// scanDelivery.
const deliverySelect = `SELECT d.id, d.event_id, ev.type, d.withdrawal_id, d.seq, d.state, d.attempts, d.last_status_code,
	COALESCE(d.last_error, ''), d.next_attempt_at, d.created_at, d.delivered_at, COALESCE(d.retry_since, d.created_at),
	d.attempts - d.retry_base, d.redeliveries, COALESCE(d.redelivered_by, ''), ev.payload, e.id, e.client_id, e.url, e.enabled, e.created_at
	FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id JOIN webhook_endpoints e ON e.id = d.endpoint_id`

func scanDelivery(r scanner) (*WebhookDelivery, error) {
	var d WebhookDelivery
	var e WebhookEndpoint
	var code sql.NullInt64
	var done sql.NullTime
	var payload string
	if err := r.Scan(&d.ID, &d.EventID, &d.EventType, &d.WithdrawalID, &d.Seq, &d.State, &d.Attempts, &code, &d.LastError,
		&d.NextAttemptAt, &d.CreatedAt, &done, &d.RetrySince, &d.RetryAttempts, &d.Redeliveries, &d.RedeliveredBy, &payload,
		&e.ID, &e.ClientID, &e.URL, &e.Enabled, &e.CreatedAt); err != nil {
		return nil, err
	}
	if code.Valid {
		c := int(code.Int64)
		d.LastStatusCode = &c
	}
	if done.Valid {
		d.DeliveredAt = &done.Time
	}
	d.Payload, d.Endpoint = []byte(payload), &e
	return &d, nil
}

// WebhookDeliveryByID loads delivery id with its event and endpoint (never its secrets); clientID and
// endpointID, when not 0, are checked too (a client asking about another client's delivery gets
// ErrNotFound, as for one that does not exist).
func (s *Store) WebhookDeliveryByID(ctx context.Context, clientID, endpointID, id int64) (*WebhookDelivery, error) {
	q, args := deliverySelect+` WHERE d.id = ?`, []any{id}
	if clientID != 0 {
		q += ` AND e.client_id = ?`
		args = append(args, clientID)
	}
	if endpointID != 0 {
		q += ` AND d.endpoint_id = ?`
		args = append(args, endpointID)
	}
	d, err := scanDelivery(s.DB.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook delivery %d: %w", id, err)
	}
	return d, nil
}

// redeliverSet puts a delivery back to pending, due now, in a new retry window (DeadAfter and the
// backoff count from now), its attempts kept; by is recorded.
const redeliverSet = `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?, retry_since = ?, retry_base = attempts,
	redeliveries = redeliveries + 1, redelivered_by = ?, delivered_at = NULL`

// RedeliverWebhook sends delivery id again: a dead (or delivered) delivery goes back to pending, due
// now, with its attempts kept (new ones are appended) and by recorded as who asked. clientID and
// endpointID, when not 0, must own it (ErrNotFound otherwise, as for a delivery that does not exist).
// A delivery that is pending already is ErrConflict: of two concurrent requests one changes it, the
// other gets ErrConflict. The dispatcher's order rule holds as it does for any pending delivery: it
// waits while an earlier delivery of the same endpoint and withdrawal is pending, and it blocks the
// later ones that are pending; a later one that was delivered already stays delivered (the
// redelivered event arrives after it: a replay).
func (s *Store) RedeliverWebhook(ctx context.Context, clientID, endpointID, id int64, by string) (*WebhookDelivery, error) {
	now := time.Now().UTC()
	q, args := redeliverSet+` WHERE id = ? AND state IN ('dead', 'delivered')`, []any{now, now, truncate(by, 128), id}
	if clientID != 0 {
		q += ` AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE client_id = ?)`
		args = append(args, clientID)
	}
	if endpointID != 0 {
		q += ` AND endpoint_id = ?`
		args = append(args, endpointID)
	}
	res, err := s.DB.ExecContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("redeliver webhook delivery %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("redeliver webhook delivery %d: %w", id, err)
	}
	d, err := s.WebhookDeliveryByID(ctx, clientID, endpointID, id)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return d, ErrConflict
	}
	return d, nil
}

// RedeliverDeadWebhooks sends again every dead delivery of endpointID (of clientID when not 0) created
// at or after since (zero: all), as RedeliverWebhook does one, in one statement: they become pending
// together, so the dispatcher takes them oldest first and, per withdrawal, in their order. It returns
// how many it queued; a concurrent request queues none of those.
func (s *Store) RedeliverDeadWebhooks(ctx context.Context, clientID, endpointID int64, since time.Time, by string) (int, error) {
	now := time.Now().UTC()
	q, args := redeliverSet+` WHERE endpoint_id = ? AND state = 'dead'`, []any{now, now, truncate(by, 128), endpointID}
	if clientID != 0 {
		q += ` AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE client_id = ?)`
		args = append(args, clientID)
	}
	if !since.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, since.UTC())
	}
	res, err := s.DB.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("redeliver dead webhooks of endpoint %d: %w", endpointID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("redeliver dead webhooks of endpoint %d: %w", endpointID, err)
	}
	return int(n), nil
}

// WebhookEndpointByID loads an endpoint of any client (the operators' view); its secrets are left out.
func (s *Store) WebhookEndpointByID(ctx context.Context, id int64) (*WebhookEndpoint, error) {
	e, err := scanEndpoint(s.DB.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook endpoint %d: %w", id, err)
	}
	e.Secret, e.PrevSecret = "", ""
	return e, nil
}
