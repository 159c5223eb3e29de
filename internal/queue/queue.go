// Package queue owns the message contract between services: the queue names, the envelope every message
// travels in, the DLQ message format, the Queue interface both backends (MySQL and AWS SQS) implement, and
// the consumer loop that turns at-least-once delivery into retries, backoff and dead-lettering.
package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// Queue names. Each work queue has a DLQ; see DLQFor.
const (
	TxRequest       = "tx-request"
	SignedTx        = "signed-tx"
	TxMonitor       = "tx-monitor"
	BalanceCheck    = "balance-check"
	BalanceTransfer = "balance-transfer"

	RequestDLQ         = "request-dlq"
	SignedTxDLQ        = "signed-tx-dlq"
	BroadcastTxDLQ     = "broadcast-tx-dlq"
	BalanceCheckDLQ    = "balance-check-dlq"
	BalanceTransferDLQ = "balance-transfer-dlq"
)

// MaxReceiveCount is how many times a message is delivered before it is dead-lettered.
const MaxReceiveCount = 5

// Retention is how long a message is kept (4 days), as on SQS.
const Retention = 4 * 24 * time.Hour

// WorkQueues lists every work queue; AllQueues adds their DLQs.
var WorkQueues = []string{TxRequest, SignedTx, TxMonitor, BalanceCheck, BalanceTransfer}

// DLQFor maps a work queue to its dead-letter queue.
func DLQFor(name string) string {
	switch name {
	case TxRequest:
		return RequestDLQ
	case SignedTx:
		return SignedTxDLQ
	case TxMonitor:
		return BroadcastTxDLQ
	case BalanceCheck:
		return BalanceCheckDLQ
	case BalanceTransfer:
		return BalanceTransferDLQ
	}
	return ""
}

// AllQueues returns the work queues followed by their DLQs.
func AllQueues() []string {
	out := append([]string(nil), WorkQueues...)
	for _, q := range WorkQueues {
		out = append(out, DLQFor(q))
	}
	return out
}

// Message is one delivery of a message. Receipt identifies this delivery to Delete and ChangeVisibility.
type Message struct {
	ID           string
	Body         []byte
	GroupID      string
	ReceiveCount int
	Receipt      string
}

// SendOptions are optional per-message settings. GroupID orders messages (FIFO within a group: the
// next message of a group is not delivered while an earlier one is in flight). DedupID drops a second
// send with the same id while the first is still queued.
type SendOptions struct {
	GroupID string
	DedupID string
	Delay   time.Duration
}

// Queue is the interface both backends implement. Names are the logical names above; a backend maps them
// to its own (an SQS URL, a prefix).
type Queue interface {
	// Setup creates the queues and wires each work queue to its DLQ; it is idempotent.
	Setup(ctx context.Context) error
	Send(ctx context.Context, queue string, body []byte, opts SendOptions) error
	// Receive waits up to wait for at most max messages and hides them for visibility.
	Receive(ctx context.Context, queue string, max int, visibility, wait time.Duration) ([]Message, error)
	Delete(ctx context.Context, queue string, m Message) error
	// ChangeVisibility hides a received message for d more; d = 0 releases it to other consumers now.
	ChangeVisibility(ctx context.Context, queue string, m Message, d time.Duration) error
	// Depth counts messages in a queue, visible or in flight.
	Depth(ctx context.Context, queue string) (int, error)
}

// Stats is what a queue holds now, for the depth gauges.
type Stats struct {
	Depth int // messages present: visible, delayed and in flight
	// OldestAge is how long the oldest message has been in the queue; 0 when empty or when the backend
	// does not say (OldestKnown false).
	OldestAge   time.Duration
	OldestKnown bool
}

// Inspector is implemented by backends that can describe a queue (both do); kept apart from Queue so
// test fakes of Queue need not.
type Inspector interface {
	Stats(ctx context.Context, queue string) (Stats, error)
}

// TxSender enqueues a message inside a database transaction, so that a state change and the message it
// implies commit together or not at all (the MySQL queue inserts into its table; for SQS a transactional
// outbox is written and relayed).
type TxSender interface {
	SendTx(ctx context.Context, tx *sql.Tx, queue string, body []byte, opts SendOptions) error
}

// Envelope wraps every payload on every queue.
type Envelope struct {
	V             int             `json:"v"`
	Type          string          `json:"type"`
	ID            string          `json:"id"`
	CorrelationID string          `json:"correlation_id"`
	CreatedAt     time.Time       `json:"created_at"`
	Payload       json.RawMessage `json:"payload"`
	// Traceparent is the W3C trace context of the work that sent the message (empty when tracing is
	// off, and in messages sent before it existed): the consumer continues that trace.
	Traceparent string `json:"traceparent,omitempty"`
}

// Message types.
const (
	TypeWithdrawalRequested = "withdrawal.requested"
	TypeTxSigned            = "tx.signed"
	TypeTxBroadcasted       = "tx.broadcasted"
	TypeTxRefeeRequested    = "tx.refee_requested"
	TypeBalanceCheck        = "balance.check"
	TypeBalanceTransfer     = "balance.transfer_requested"
)

// GroupID is the signed-tx ordering group of an address on a chain: every message about a transaction
// of from carries it, so the queue delivers them one at a time, in order.
func GroupID(chain, from string) string { return chain + ":" + from }

// NewEnvelope marshals payload into a version-1 envelope carrying the trace context of ctx's span.
func NewEnvelope(ctx context.Context, typ, id, correlationID string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("marshal %s payload: %w", typ, err)
	}
	return json.Marshal(Envelope{V: 1, Type: typ, ID: id, CorrelationID: correlationID, CreatedAt: time.Now().UTC(), Payload: p,
		Traceparent: InjectTrace(ctx)})
}

// InjectTrace returns the W3C traceparent of ctx's span, or "" when ctx carries no sampled-or-not
// valid span (tracing off).
func InjectTrace(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// ExtractTrace returns ctx with the remote span context of traceparent as its parent; ctx as it is
// when traceparent is empty or malformed.
func ExtractTrace(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// ParseEnvelope decodes an envelope and checks its version and type.
func ParseEnvelope(body []byte, wantType string) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("decode envelope: %w", err)
	}
	if e.V != 1 {
		return e, fmt.Errorf("envelope version %d not supported", e.V)
	}
	if wantType != "" && e.Type != wantType {
		return e, fmt.Errorf("envelope type %q, want %q", e.Type, wantType)
	}
	return e, nil
}

// DeadLetter is the body of a message the application puts on a DLQ.
type DeadLetter struct {
	OriginalMessage json.RawMessage `json:"original_message"`
	Error           DeadLetterError `json:"error"`
	Meta            DeadLetterMeta  `json:"meta"`
}

// DeadLetterError says why the message was dead-lettered; Type is a txerr type.
type DeadLetterError struct {
	Type    string         `json:"type"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// DeadLetterMeta records when and after how many deliveries.
type DeadLetterMeta struct {
	Timestamp    time.Time `json:"timestamp"`
	AttemptCount int       `json:"attempt_count"`
}

// ErrReceiptInvalid is returned (wrapped) by Delete and ChangeVisibility when the receipt no longer
// identifies the current delivery of a message: its visibility timeout ran out and another consumer
// received it since, or it was moved to the DLQ. The caller no longer owns the message; the new owner's
// delivery is unaffected. Deleting a message that is already gone is not an error.
var ErrReceiptInvalid = errors.New("receipt handle is no longer valid")
