package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/internal/txerr"
)

// Handler processes one message. nil deletes the message. An error retries it with backoff, except a
// *txerr.Error of a permanent type, which dead-letters it at once. Handlers must be idempotent: a message
// can be delivered more than once. ctx is canceled only when the shutdown grace period runs out.
type Handler func(ctx context.Context, m Message) error

// Consumer is the receive loop every service uses: Concurrency handlers at once, visibility extended
// while a handler runs, retries with exponential backoff, dead-lettering in the DeadLetter format, and
// a graceful shutdown that finishes or releases in-flight messages.
//
// Outcomes of a delivery:
//   - handler returns nil: the message is deleted ("handled");
//   - a permanent *txerr.Error, or any error on the MaxReceiveCount-th delivery: a DeadLetter is sent to
//     DLQFor(Name) and the message deleted ("dead_lettered"). Queues without a DLQ (the DLQs themselves)
//     always retry;
//   - any other error, or a panic: the message is hidden for BackoffBase·2^(ReceiveCount-1), capped at
//     Visibility, and then delivered again ("retried").
//
// A consumer that dies mid-way leaves its messages to reappear after the visibility timeout; after
// MaxReceiveCount deliveries the backend's redrive moves such a message to the DLQ unchanged (not
// wrapped in a DeadLetter), so DLQ readers must accept both forms.
type Consumer struct {
	d   ConsumerDeps
	log *slog.Logger
	met Metrics
}

// DefaultShutdownGrace is how long a stopping consumer lets in-flight handlers finish before it cancels
// them and releases their messages. Deployments give a process longer than this to stop (Kubernetes'
// terminationGracePeriodSeconds: deploy/k8s, checked by deploy/k8s_test.go).
const DefaultShutdownGrace = 20 * time.Second

// ConsumerDeps are what a Consumer cannot work without (Queue, Name, Handler), then its settings, where
// zero means the default.
type ConsumerDeps struct {
	Queue   Queue
	Name    string
	Handler Handler

	// Concurrency is how many messages are handled at once (default 1).
	Concurrency int
	// Visibility hides a received message from other consumers (default 30 s); it is extended every
	// Visibility/2 while the handler runs.
	Visibility time.Duration
	// Wait is the long-poll wait of each receive (default 10 s; negative means no wait).
	Wait time.Duration
	// BatchSize caps the messages taken per receive call (default min(Concurrency, 10)); the consumer
	// never takes more than it has free handlers for, so no message waits in memory.
	BatchSize int
	// BackoffBase is the first retry delay (default 1 s): 1 s, 2 s, 4 s, … capped at Visibility.
	BackoffBase time.Duration
	// ShutdownGrace is how long in-flight handlers may run on after ctx is canceled (DefaultShutdownGrace).
	ShutdownGrace time.Duration
	// OpTimeout bounds each Delete, ChangeVisibility and DLQ send (default 10 s).
	OpTimeout time.Duration
	// Tracer, when set, makes a span of every delivery, a child of the trace its envelope carries
	// (Envelope.Traceparent), so one withdrawal is one trace across the queue hops.
	Tracer trace.Tracer
}

// NewConsumer checks d (a missing dependency is an error naming it) and builds the consumer. A nil log
// discards; m may be NopMetrics() in tests.
func NewConsumer(d ConsumerDeps, log *slog.Logger, m Metrics) (*Consumer, error) {
	switch {
	case d.Queue == nil:
		return nil, errors.New("queue consumer: Queue is required")
	case d.Name == "":
		return nil, errors.New("queue consumer: Name is required")
	case d.Handler == nil:
		return nil, fmt.Errorf("queue consumer %s: Handler is required", d.Name)
	case m == nil:
		return nil, fmt.Errorf("queue consumer %s: Metrics is required (NopMetrics() for none)", d.Name)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{d: d.withDefaults(), log: log, met: m}, nil
}

// Outcome labels of the sluice_queue_messages_total counter.
const (
	OutcomeHandled      = "handled"
	OutcomeRetried      = "retried"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeReleased     = "released"
)

// delivery is one message being handled. Its state settles the race between a handler finishing and
// the shutdown releasing its message.
type delivery struct {
	m     Message
	mu    sync.Mutex
	state int // running, finished, released
}

const (
	running = iota
	finished
	released
)

// finish marks the handler done; false means the message was already released at shutdown.
func (d *delivery) finish() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == released {
		return false
	}
	d.state = finished
	return true
}

// release marks a still-running delivery released; false means its handler already finished.
func (d *delivery) release() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != running {
		return false
	}
	d.state = released
	return true
}

type runState struct {
	sem      chan struct{}
	handlers sync.WaitGroup
	mu       sync.Mutex
	inflight map[*delivery]struct{}
	hctx     context.Context // handler context: not canceled by the parent, only at grace expiry
	opBase   context.Context // parent without its cancellation, for Delete/ChangeVisibility/DLQ sends
	log      *slog.Logger
}

func (d ConsumerDeps) withDefaults() ConsumerDeps {
	cc := d
	if cc.Concurrency <= 0 {
		cc.Concurrency = 1
	}
	if cc.Visibility <= 0 {
		cc.Visibility = 30 * time.Second
	}
	if cc.Wait < 0 {
		cc.Wait = 0
	} else if cc.Wait == 0 {
		cc.Wait = 10 * time.Second
	}
	if cc.BatchSize <= 0 {
		cc.BatchSize = min(cc.Concurrency, 10)
	}
	if cc.BackoffBase <= 0 {
		cc.BackoffBase = time.Second
	}
	if cc.ShutdownGrace <= 0 {
		cc.ShutdownGrace = DefaultShutdownGrace
	}
	if cc.OpTimeout <= 0 {
		cc.OpTimeout = 10 * time.Second
	}
	return cc
}

// Run receives and handles messages until ctx is canceled, then stops receiving, lets in-flight
// handlers finish for up to ShutdownGrace, and then cancels the rest and releases their messages
// (visibility 0) so another consumer takes them at once. It returns nil after the shutdown, whichever
// way the in-flight messages ended; it returns an error only for an invalid configuration. (On SQS a
// long poll cut short by the shutdown can leave a message hidden until its visibility timeout: SQS may
// have handed it to the canceled request.)
func (c *Consumer) Run(ctx context.Context) error {
	cc := c.d
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	st := &runState{
		sem:      make(chan struct{}, cc.Concurrency),
		inflight: map[*delivery]struct{}{},
		hctx:     hctx,
		opBase:   context.WithoutCancel(ctx),
		log:      c.log.With("queue", cc.Name),
	}
	pollers := (cc.Concurrency + cc.BatchSize - 1) / cc.BatchSize
	st.log.Info("consumer started", "concurrency", cc.Concurrency, "pollers", pollers, "visibility", cc.Visibility)
	var pwg sync.WaitGroup
	for range pollers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			c.poll(ctx, st)
		}()
	}
	pwg.Wait()

	// Shutdown: nothing new is received any more.
	drained := make(chan struct{})
	go func() {
		st.handlers.Wait()
		close(drained)
	}()
	st.mu.Lock()
	n := len(st.inflight)
	st.mu.Unlock()
	if n > 0 {
		st.log.Info("consumer stopping: waiting for in-flight messages", "in_flight", n, "grace", cc.ShutdownGrace)
	}
	grace := time.NewTimer(cc.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-drained:
		st.log.Info("consumer stopped: drained")
		return nil
	case <-grace.C:
	}
	// Grace expired: mark the stragglers released before canceling them, so that their handlers do not
	// schedule retries, then give their messages back.
	st.mu.Lock()
	var rel []*delivery
	for d := range st.inflight {
		if d.release() {
			rel = append(rel, d)
		}
	}
	st.mu.Unlock()
	hcancel()
	for _, d := range rel {
		c.release(st, d.m, "shutdown grace expired")
	}
	st.log.Warn("consumer stopped: grace expired, in-flight messages released", "released", len(rel))
	// Handlers were canceled; wait a little for them to return so their goroutines end with Run.
	wait := time.NewTimer(cc.OpTimeout)
	defer wait.Stop()
	select {
	case <-drained:
	case <-wait.C:
		st.log.Error("consumer stopped: handlers ignore cancellation and are still running")
	}
	return nil
}

func (c *Consumer) opCtx(st *runState) (context.Context, context.CancelFunc) {
	return context.WithTimeout(st.opBase, c.d.OpTimeout)
}

func (c *Consumer) release(st *runState, m Message, why string) {
	ctx, cancel := c.opCtx(st)
	defer cancel()
	if err := c.d.Queue.ChangeVisibility(ctx, c.d.Name, m, 0); err != nil {
		st.log.Warn("release message failed; it reappears after its visibility timeout", "message_id", m.ID, "error", err)
		return
	}
	c.met.Released(c.d.Name)
	st.log.Info("message released", "message_id", m.ID, "receive_count", m.ReceiveCount, "reason", why)
}

// poll takes as many messages as there are free handler slots (at least one, at most BatchSize).
func (c *Consumer) poll(ctx context.Context, st *runState) {
	errPause := 100 * time.Millisecond
	for {
		select {
		case st.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	fill:
		for n < c.d.BatchSize {
			select {
			case st.sem <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		msgs, err := c.d.Queue.Receive(ctx, c.d.Name, n, c.d.Visibility, c.d.Wait)
		for range n - len(msgs) {
			<-st.sem
		}
		if err != nil && len(msgs) == 0 {
			if ctx.Err() != nil {
				return
			}
			c.met.ReceiveError(c.d.Name)
			st.log.Error("receive failed", "error", err, "retry_in", errPause)
			t := time.NewTimer(errPause)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			errPause = min(errPause*2, 5*time.Second)
			continue
		}
		errPause = 100 * time.Millisecond
		if ctx.Err() != nil {
			// Received while shutting down: give them back at once rather than start new work.
			for _, m := range msgs {
				c.release(st, m, "received during shutdown")
				<-st.sem
			}
			return
		}
		for _, m := range msgs {
			d := &delivery{m: m}
			st.mu.Lock()
			st.inflight[d] = struct{}{}
			st.mu.Unlock()
			st.handlers.Add(1)
			go func() {
				defer func() {
					st.mu.Lock()
					delete(st.inflight, d)
					st.mu.Unlock()
					<-st.sem
					st.handlers.Done()
				}()
				c.handle(st, d)
			}()
		}
	}
}

// span starts the delivery's span under the trace its envelope carries; nil when tracing is off.
func (c *Consumer) span(ctx context.Context, m Message) (context.Context, trace.Span) {
	if c.d.Tracer == nil {
		return ctx, nil
	}
	var env struct {
		Type        string `json:"type"`
		Traceparent string `json:"traceparent"`
	}
	_ = json.Unmarshal(m.Body, &env) // a body that does not decode still gets a span: the handler says why
	ctx = ExtractTrace(ctx, env.Traceparent)
	return c.d.Tracer.Start(ctx, "consume "+c.d.Name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.destination.name", c.d.Name),
			attribute.String("messaging.message.id", m.ID), attribute.String("messaging.message.type", env.Type),
			attribute.Int("messaging.receive_count", m.ReceiveCount)))
}

// call runs the handler, turning a panic into a (retryable) error.
func (c *Consumer) call(ctx context.Context, log *slog.Logger, m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return c.d.Handler(ctx, m)
}

func (c *Consumer) handle(st *runState, d *delivery) {
	m := d.m
	log := st.log.With("message_id", m.ID, "receive_count", m.ReceiveCount)
	if m.GroupID != "" {
		log = log.With("group_id", m.GroupID)
	}
	c.met.InFlight(c.d.Name, 1)
	defer c.met.InFlight(c.d.Name, -1)

	stop := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		c.heartbeat(st, log, m, stop)
	}()
	start := time.Now()
	hctx, span := c.span(st.hctx, m)
	err := c.call(hctx, log, m)
	elapsed := time.Since(start)
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "handler failed")
		}
		span.End()
	}
	close(stop)
	<-hbDone

	if !d.finish() {
		// Released at shutdown. A handler that succeeded anyway still deletes: the receipt is valid
		// unless another consumer has received the message since, and then the delete is refused.
		if err == nil {
			ctx, cancel := c.opCtx(st)
			defer cancel()
			if derr := c.d.Queue.Delete(ctx, c.d.Name, m); derr != nil {
				log.Warn("handler finished after release; delete refused", "error", derr)
			} else {
				log.Info("handler finished after release; message deleted")
			}
		}
		return
	}

	outcome := c.settle(st, log, m, err)
	c.met.Handled(c.d.Name, outcome, elapsed)
}

// settle deletes, retries or dead-letters a delivery after its handler returned err.
func (c *Consumer) settle(st *runState, log *slog.Logger, m Message, err error) string {
	ctx, cancel := c.opCtx(st)
	defer cancel()
	if err == nil {
		if derr := c.d.Queue.Delete(ctx, c.d.Name, m); derr != nil {
			log.Error("delete after success failed; the message will be delivered again", "error", derr)
		} else {
			log.Debug("message handled")
		}
		return OutcomeHandled
	}
	var te *txerr.Error
	permanent := errors.As(err, &te) && !te.Type.Retryable()
	dlq := DLQFor(c.d.Name)
	if dlq != "" && (permanent || m.ReceiveCount >= MaxReceiveCount) {
		derr := c.deadLetter(ctx, m, err, dlq)
		if derr == nil {
			if delErr := c.d.Queue.Delete(ctx, c.d.Name, m); delErr != nil {
				// The DLQ copy is deduplicated by message id if the original comes back.
				log.Error("delete after dead-lettering failed", "error", delErr)
			}
			log.Warn("message dead-lettered", "dlq", dlq, "error", err, "error_type", txerr.Classify(err), "permanent", permanent)
			return OutcomeDeadLettered
		}
		log.Error("dead-lettering failed; retrying the message", "dlq", dlq, "error", derr, "handler_error", err)
	}
	delay := c.backoff(m.ReceiveCount)
	if cerr := c.d.Queue.ChangeVisibility(ctx, c.d.Name, m, delay); cerr != nil {
		log.Warn("scheduling retry failed; the message reappears after its visibility timeout", "error", cerr)
	}
	log.Warn("handler failed; will retry", "error", err, "error_type", txerr.Classify(err), "retry_in", delay)
	return OutcomeRetried
}

// backoff is BackoffBase·2^(receiveCount-1), capped at Visibility.
func (c *Consumer) backoff(receiveCount int) time.Duration {
	d := c.d.BackoffBase
	for i := 1; i < receiveCount && d < c.d.Visibility; i++ {
		d *= 2
	}
	return min(d, c.d.Visibility)
}

// DeadLetterFor builds the DLQ body (the DeadLetter format) for m, taken off queueName, failing with
// err: the original body as raw JSON when it is valid JSON and as a JSON string otherwise, the txerr
// classification, and the delivery count.
func DeadLetterFor(m Message, queueName string, err error, now time.Time) ([]byte, error) {
	orig := json.RawMessage(m.Body)
	if !json.Valid(m.Body) {
		b, jerr := json.Marshal(string(m.Body))
		if jerr != nil {
			return nil, jerr
		}
		orig = b
	}
	details := map[string]any{"queue": queueName, "message_id": m.ID}
	if m.GroupID != "" {
		details["group_id"] = m.GroupID
	}
	return json.Marshal(DeadLetter{
		OriginalMessage: orig,
		Error: DeadLetterError{
			Type:    string(txerr.Classify(err)),
			Code:    txerr.CodeOf(err),
			Message: err.Error(),
			Details: details,
		},
		Meta: DeadLetterMeta{Timestamp: now.UTC(), AttemptCount: m.ReceiveCount},
	})
}

func (c *Consumer) deadLetter(ctx context.Context, m Message, herr error, dlq string) error {
	body, err := DeadLetterFor(m, c.d.Name, herr, time.Now())
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	// The dedup id makes a repeat (the delete of the original failed and it came back) a no-op where
	// the backend deduplicates; the group keeps a FIFO queue's DLQ ordered the same way.
	return c.d.Queue.Send(ctx, dlq, body, SendOptions{GroupID: m.GroupID, DedupID: "dl-" + m.ID})
}

// heartbeat extends the visibility every Visibility/2 until stop is closed.
func (c *Consumer) heartbeat(st *runState, log *slog.Logger, m Message, stop <-chan struct{}) {
	t := time.NewTicker(max(c.d.Visibility/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-st.hctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := c.opCtx(st)
		err := c.d.Queue.ChangeVisibility(ctx, c.d.Name, m, c.d.Visibility)
		cancel()
		if errors.Is(err, ErrReceiptInvalid) {
			log.Warn("visibility extension refused: another consumer may have the message now", "error", err)
			return
		}
		if err != nil {
			log.Warn("visibility extension failed", "error", err)
		}
	}
}
