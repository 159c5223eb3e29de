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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/service"
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
	Queue   Queue
	Name    string
	Handler Handler

	// Concurrency is how many messages are handled at once (default 1).
	Concurrency int
	// Visibility hides a received message from other consumers (default 30 s); it is extended every
	// Visibility/2 while the handler runs.
	Visibility time.Duration
	// Wait is the long-poll wait of each receive (default 10 s).
	Wait time.Duration
	// BatchSize caps the messages taken per receive call (default min(Concurrency, 10)); the consumer
	// never takes more than it has free handlers for, so no message waits in memory.
	BatchSize int
	// BackoffBase is the first retry delay (default 1 s): 1 s, 2 s, 4 s, … capped at Visibility.
	BackoffBase time.Duration
	// ShutdownGrace is how long in-flight handlers may run on after ctx is canceled (default 20 s).
	ShutdownGrace time.Duration
	// OpTimeout bounds each Delete, ChangeVisibility and DLQ send (default 10 s).
	OpTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Outcome labels of the sluice_queue_messages_total counter.
const (
	OutcomeHandled      = "handled"
	OutcomeRetried      = "retried"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeReleased     = "released"
)

type consumerMetrics struct {
	messages      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	receiveErrors *prometheus.CounterVec
	inFlight      *prometheus.GaugeVec
}

var (
	metricsOnce sync.Once
	metricsVal  consumerMetrics
)

func metrics() *consumerMetrics {
	metricsOnce.Do(func() {
		metricsVal = consumerMetrics{
			messages: service.Register(prometheus.DefaultRegisterer, prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "sluice_queue_messages_total",
				Help: "Messages processed by queue consumers, by queue and outcome (handled, retried, dead_lettered, released).",
			}, []string{"queue", "outcome"})),
			duration: service.Register(prometheus.DefaultRegisterer, prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "sluice_queue_handle_duration_seconds",
				Help:    "Time spent in message handlers, by queue and outcome.",
				Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
			}, []string{"queue", "outcome"})),
			receiveErrors: service.Register(prometheus.DefaultRegisterer, prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "sluice_queue_receive_errors_total",
				Help: "Failed receive calls, by queue.",
			}, []string{"queue"})),
			inFlight: service.Register(prometheus.DefaultRegisterer, prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "sluice_queue_in_flight",
				Help: "Messages being handled now, by queue.",
			}, []string{"queue"})),
		}
	})
	return &metricsVal
}

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
	met      *consumerMetrics
}

func (c *Consumer) withDefaults() Consumer {
	cc := *c
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
		cc.ShutdownGrace = 20 * time.Second
	}
	if cc.OpTimeout <= 0 {
		cc.OpTimeout = 10 * time.Second
	}
	if cc.Logger == nil {
		cc.Logger = slog.Default()
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
	if c.Queue == nil || c.Name == "" || c.Handler == nil {
		return errors.New("queue consumer: Queue, Name and Handler are required")
	}
	cc := c.withDefaults()
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	st := &runState{
		sem:      make(chan struct{}, cc.Concurrency),
		inflight: map[*delivery]struct{}{},
		hctx:     hctx,
		opBase:   context.WithoutCancel(ctx),
		log:      cc.Logger.With("queue", cc.Name),
		met:      metrics(),
	}
	pollers := (cc.Concurrency + cc.BatchSize - 1) / cc.BatchSize
	st.log.Info("consumer started", "concurrency", cc.Concurrency, "pollers", pollers, "visibility", cc.Visibility)
	var pwg sync.WaitGroup
	for range pollers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			cc.poll(ctx, st)
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
		cc.release(st, d.m, "shutdown grace expired")
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
	return context.WithTimeout(st.opBase, c.OpTimeout)
}

func (c *Consumer) release(st *runState, m Message, why string) {
	ctx, cancel := c.opCtx(st)
	defer cancel()
	if err := c.Queue.ChangeVisibility(ctx, c.Name, m, 0); err != nil {
		st.log.Warn("release message failed; it reappears after its visibility timeout", "message_id", m.ID, "error", err)
		return
	}
	st.met.messages.WithLabelValues(c.Name, OutcomeReleased).Inc()
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
		for n < c.BatchSize {
			select {
			case st.sem <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		msgs, err := c.Queue.Receive(ctx, c.Name, n, c.Visibility, c.Wait)
		for range n - len(msgs) {
			<-st.sem
		}
		if err != nil && len(msgs) == 0 {
			if ctx.Err() != nil {
				return
			}
			st.met.receiveErrors.WithLabelValues(c.Name).Inc()
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

// call runs the handler, turning a panic into a (retryable) error.
func (c *Consumer) call(ctx context.Context, log *slog.Logger, m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return c.Handler(ctx, m)
}

func (c *Consumer) handle(st *runState, d *delivery) {
	m := d.m
	log := st.log.With("message_id", m.ID, "receive_count", m.ReceiveCount)
	if m.GroupID != "" {
		log = log.With("group_id", m.GroupID)
	}
	st.met.inFlight.WithLabelValues(c.Name).Inc()
	defer st.met.inFlight.WithLabelValues(c.Name).Dec()

	stop := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		c.heartbeat(st, log, m, stop)
	}()
	start := time.Now()
	err := c.call(st.hctx, log, m)
	elapsed := time.Since(start)
	close(stop)
	<-hbDone

	if !d.finish() {
		// Released at shutdown. A handler that succeeded anyway still deletes: the receipt is valid
		// unless another consumer has received the message since, and then the delete is refused.
		if err == nil {
			ctx, cancel := c.opCtx(st)
			defer cancel()
			if derr := c.Queue.Delete(ctx, c.Name, m); derr != nil {
				log.Warn("handler finished after release; delete refused", "error", derr)
			} else {
				log.Info("handler finished after release; message deleted")
			}
		}
		return
	}

	outcome := c.settle(st, log, m, err)
	st.met.messages.WithLabelValues(c.Name, outcome).Inc()
	st.met.duration.WithLabelValues(c.Name, outcome).Observe(elapsed.Seconds())
}

// settle deletes, retries or dead-letters a delivery after its handler returned err.
func (c *Consumer) settle(st *runState, log *slog.Logger, m Message, err error) string {
	ctx, cancel := c.opCtx(st)
	defer cancel()
	if err == nil {
		if derr := c.Queue.Delete(ctx, c.Name, m); derr != nil {
			log.Error("delete after success failed; the message will be delivered again", "error", derr)
		} else {
			log.Debug("message handled")
		}
		return OutcomeHandled
	}
	var te *txerr.Error
	permanent := errors.As(err, &te) && !te.Type.Retryable()
	dlq := DLQFor(c.Name)
	if dlq != "" && (permanent || m.ReceiveCount >= MaxReceiveCount) {
		derr := c.deadLetter(ctx, m, err, dlq)
		if derr == nil {
			if delErr := c.Queue.Delete(ctx, c.Name, m); delErr != nil {
				// The DLQ copy is deduplicated by message id if the original comes back.
				log.Error("delete after dead-lettering failed", "error", delErr)
			}
			log.Warn("message dead-lettered", "dlq", dlq, "error", err, "error_type", txerr.Classify(err), "permanent", permanent)
			return OutcomeDeadLettered
		}
		log.Error("dead-lettering failed; retrying the message", "dlq", dlq, "error", derr, "handler_error", err)
	}
	delay := c.backoff(m.ReceiveCount)
	if cerr := c.Queue.ChangeVisibility(ctx, c.Name, m, delay); cerr != nil {
		log.Warn("scheduling retry failed; the message reappears after its visibility timeout", "error", cerr)
	}
	log.Warn("handler failed; will retry", "error", err, "error_type", txerr.Classify(err), "retry_in", delay)
	return OutcomeRetried
}

// backoff is BackoffBase·2^(receiveCount-1), capped at Visibility.
func (c *Consumer) backoff(receiveCount int) time.Duration {
	d := c.BackoffBase
	for i := 1; i < receiveCount && d < c.Visibility; i++ {
		d *= 2
	}
	return min(d, c.Visibility)
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
	body, err := DeadLetterFor(m, c.Name, herr, time.Now())
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	// The dedup id makes a repeat (the delete of the original failed and it came back) a no-op where
	// the backend deduplicates; the group keeps a FIFO queue's DLQ ordered the same way.
	return c.Queue.Send(ctx, dlq, body, SendOptions{GroupID: m.GroupID, DedupID: "dl-" + m.ID})
}

// heartbeat extends the visibility every Visibility/2 until stop is closed.
func (c *Consumer) heartbeat(st *runState, log *slog.Logger, m Message, stop <-chan struct{}) {
	t := time.NewTicker(max(c.Visibility/2, 10*time.Millisecond))
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
		err := c.Queue.ChangeVisibility(ctx, c.Name, m, c.Visibility)
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
