package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
	"github.com/sluice-custody/sluice/internal/queue/queuetest"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// The consumer is tested against the MySQL backend on real MariaDB: it allows sub-second visibility
// timeouts, which keeps these tests fast.

func newQueue(t *testing.T) *mysqlq.Queue {
	t.Helper()
	q := mysqlq.New(queuetest.DB(t), mysqlq.Options{})
	t.Cleanup(func() { q.Close() })
	return q
}

func bg(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// run starts c and returns a stop function that cancels it and waits for Run to return.
func run(t *testing.T, c *queue.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("consumer did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func depth(t *testing.T, q queue.Queue, name string) int {
	t.Helper()
	n, err := q.Depth(bg(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readDeadLetter(t *testing.T, q queue.Queue, dlq string) (queue.DeadLetter, map[string]any) {
	t.Helper()
	ms, err := q.Receive(bg(t), dlq, 10, time.Minute, 5*time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatalf("DLQ %s: %d messages, %v; want 1", dlq, len(ms), err)
	}
	var dl queue.DeadLetter
	if err := json.Unmarshal(ms[0].Body, &dl); err != nil {
		t.Fatalf("DLQ body %s: %v", ms[0].Body, err)
	}
	var raw map[string]any
	_ = json.Unmarshal(ms[0].Body, &raw)
	return dl, raw
}

func TestConsumerHandlesAndDeletes(t *testing.T) {
	q := newQueue(t)
	const n = 60
	for i := range n {
		if err := q.Send(bg(t), queue.TxRequest, fmt.Appendf(nil, `{"i":%d}`, i), queue.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var cur, peak atomic.Int32
	reg := prometheus.NewRegistry()
	c := newConsumer(t, reg, queue.ConsumerDeps{Queue: q, Name: queue.TxRequest, Concurrency: 8, Visibility: 10 * time.Second, Wait: 200 * time.Millisecond,
		Handler: func(ctx context.Context, m queue.Message) error {
			v := cur.Add(1)
			for {
				p := peak.Load()
				if v <= p || peak.CompareAndSwap(p, v) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			cur.Add(-1)
			mu.Lock()
			seen[string(m.Body)]++
			mu.Unlock()
			return nil
		}})
	before := counter(t, reg, queue.TxRequest, queue.OutcomeHandled)
	stop := run(t, c)
	waitFor(t, "all handled", 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n })
	waitFor(t, "queue empty", 10*time.Second, func() bool { return depth(t, q, queue.TxRequest) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for b, k := range seen {
		if k != 1 {
			t.Fatalf("%s handled %d times", b, k)
		}
	}
	if p := peak.Load(); p > 8 || p < 2 {
		t.Fatalf("peak concurrency %d, want 2..8", p)
	}
	if got := counter(t, reg, queue.TxRequest, queue.OutcomeHandled) - before; got != n {
		t.Fatalf("handled counter grew by %v, want %d", got, n)
	}
}

// newConsumer builds a consumer logging to t, its metrics on reg (none when reg is nil).
func newConsumer(t *testing.T, reg *prometheus.Registry, d queue.ConsumerDeps) *queue.Consumer {
	t.Helper()
	m := queue.NopMetrics()
	if reg != nil {
		m = queue.NewMetrics(reg)
	}
	c, err := queue.NewConsumer(d, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counter reads sluice_queue_messages_total{queue,outcome} from reg.
func counter(t *testing.T, reg *prometheus.Registry, q, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_queue_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["queue"] == q && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestConsumerRetriesWithBackoffThenDeadLetters(t *testing.T) {
	q := newQueue(t)
	body := `{"v":1,"type":"withdrawal.requested","id":"m-1","payload":{"withdrawal_id":"w-1"}}`
	if err := q.Send(bg(t), queue.TxRequest, []byte(body), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var at []time.Time
	var counts []int
	base := 50 * time.Millisecond
	c := newConsumer(t, nil, queue.ConsumerDeps{Queue: q, Name: queue.TxRequest, Visibility: 5 * time.Second, Wait: 100 * time.Millisecond,
		BackoffBase: base,
		Handler: func(ctx context.Context, m queue.Message) error {
			mu.Lock()
			at = append(at, time.Now())
			counts = append(counts, m.ReceiveCount)
			mu.Unlock()
			return txerr.New(txerr.Network, "RPC_DOWN", errors.New("dial tcp: connection refused"))
		}})
	stop := run(t, c)
	dl, raw := readDeadLetter(t, q, queue.RequestDLQ)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(counts) != queue.MaxReceiveCount {
		t.Fatalf("handled %d times (%v), want %d", len(counts), counts, queue.MaxReceiveCount)
	}
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("receive counts %v", counts)
		}
	}
	// Backoff doubles: 50, 100, 200, 400 ms between deliveries.
	for i := 1; i < len(at); i++ {
		want := base << (i - 1)
		if gap := at[i].Sub(at[i-1]); gap < want*9/10 || gap > want+2*time.Second {
			t.Fatalf("gap %d = %v, want about %v (all: %v)", i, gap, want, gaps(at))
		}
	}
	if string(dl.OriginalMessage) != body {
		t.Fatalf("original_message %s, want the body as raw JSON %s", dl.OriginalMessage, body)
	}
	if dl.Error.Type != "NETWORK" || dl.Error.Code != "RPC_DOWN" || dl.Error.Message != "NETWORK: dial tcp: connection refused" {
		t.Fatalf("error %+v", dl.Error)
	}
	if dl.Meta.AttemptCount != 5 || time.Since(dl.Meta.Timestamp) > time.Minute {
		t.Fatalf("meta %+v", dl.Meta)
	}
	// The wire format is the documented one.
	for _, k := range []string{"original_message", "error", "meta"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("DLQ message lacks %q: %v", k, raw)
		}
	}
	meta := raw["meta"].(map[string]any)
	if _, ok := meta["timestamp"]; !ok || meta["attempt_count"] != float64(5) {
		t.Fatalf("meta %v", meta)
	}
	if n := depth(t, q, queue.TxRequest); n != 0 {
		t.Fatalf("work queue depth %d, want 0", n)
	}
}

func gaps(at []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(at); i++ {
		out = append(out, at[i].Sub(at[i-1]).Round(time.Millisecond))
	}
	return out
}

func TestConsumerDeadLettersPermanentErrorsAtOnce(t *testing.T) {
	q := newQueue(t)
	if err := q.Send(bg(t), queue.SignedTx, []byte("not json \x01"), queue.SendOptions{GroupID: "local:0xabc"}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	c := newConsumer(t, nil, queue.ConsumerDeps{Queue: q, Name: queue.SignedTx, Visibility: 5 * time.Second, Wait: 100 * time.Millisecond,
		Handler: func(ctx context.Context, m queue.Message) error {
			calls.Add(1)
			return fmt.Errorf("broadcast: %w", txerr.Permanentf(txerr.InsufficientFunds, "insufficient funds for gas * price + value"))
		}})
	stop := run(t, c)
	dl, _ := readDeadLetter(t, q, queue.SignedTxDLQ)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times, want 1", calls.Load())
	}
	var s string
	if err := json.Unmarshal(dl.OriginalMessage, &s); err != nil || s != "not json \x01" {
		t.Fatalf("original_message %s: a non-JSON body must travel as a JSON string", dl.OriginalMessage)
	}
	if dl.Error.Type != "INSUFFICIENT_FUNDS" || dl.Error.Code != "INSUFFICIENT_FUNDS" || dl.Meta.AttemptCount != 1 {
		t.Fatalf("dead letter %+v", dl)
	}
	if dl.Error.Details["group_id"] != "local:0xabc" || dl.Error.Details["queue"] != queue.SignedTx {
		t.Fatalf("details %v", dl.Error.Details)
	}
	if n := depth(t, q, queue.SignedTx); n != 0 {
		t.Fatalf("work queue depth %d, want 0", n)
	}
}

func TestConsumerRecoversPanicsAsRetryable(t *testing.T) {
	q := newQueue(t)
	if err := q.Send(bg(t), queue.TxMonitor, []byte(`{}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	c := newConsumer(t, nil, queue.ConsumerDeps{Queue: q, Name: queue.TxMonitor, Visibility: 5 * time.Second, Wait: 100 * time.Millisecond,
		BackoffBase: 10 * time.Millisecond,
		Handler: func(ctx context.Context, m queue.Message) error {
			if calls.Add(1) == 1 {
				var p *struct{ x int }
				_ = p.x // nil dereference
			}
			return nil
		}})
	stop := run(t, c)
	waitFor(t, "second delivery", 10*time.Second, func() bool { return calls.Load() >= 2 })
	waitFor(t, "queue empty", 10*time.Second, func() bool { return depth(t, q, queue.TxMonitor) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := depth(t, q, queue.BroadcastTxDLQ); n != 0 {
		t.Fatalf("a panic was dead-lettered at once (DLQ depth %d)", n)
	}
}

func TestConsumerExtendsVisibilityWhileHandling(t *testing.T) {
	q := newQueue(t)
	if err := q.Send(bg(t), queue.TxRequest, []byte(`{}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var calls atomic.Int32
	c := newConsumer(t, nil, queue.ConsumerDeps{Queue: q, Name: queue.TxRequest, Visibility: 400 * time.Millisecond, Wait: 100 * time.Millisecond,
		Handler: func(ctx context.Context, m queue.Message) error {
			if calls.Add(1) == 1 {
				close(started)
			}
			time.Sleep(1500 * time.Millisecond) // almost 4 visibility timeouts
			return nil
		}})
	stop := run(t, c)
	<-started
	// Another consumer polls all along and must never get the message.
	other, err := q.Receive(bg(t), queue.TxRequest, 1, time.Minute, 1400*time.Millisecond)
	if err != nil || len(other) != 0 {
		t.Fatalf("the message escaped its heartbeat: %v %v", other, err)
	}
	waitFor(t, "queue empty", 10*time.Second, func() bool { return depth(t, q, queue.TxRequest) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("handled %d times, want 1", calls.Load())
	}
}

func TestConsumerShutdownFinishesInFlight(t *testing.T) {
	q := newQueue(t)
	if err := q.Send(bg(t), queue.TxRequest, []byte(`{"n":1}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	var ctxErrAtEnd atomic.Value
	c := newConsumer(t, nil, queue.ConsumerDeps{Queue: q, Name: queue.TxRequest, Concurrency: 2, Visibility: 5 * time.Second, Wait: 5 * time.Second,
		ShutdownGrace: 10 * time.Second,
		Handler: func(ctx context.Context, m queue.Message) error {
			calls.Add(1)
			close(started)
			<-release
			ctxErrAtEnd.Store(fmt.Sprint(ctx.Err()))
			return nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-started
	cancel()
	time.Sleep(300 * time.Millisecond)
	// Stopped receiving: a new message stays in the queue.
	if err := q.Send(bg(t), queue.TxRequest, []byte(`{"n":2}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a handler was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the handler finished")
	}
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times", calls.Load())
	}
	if e := ctxErrAtEnd.Load(); e != "<nil>" {
		t.Fatalf("handler context was canceled (%v) within the grace period", e)
	}
	// The finished message was deleted, the later one is intact and deliverable, nothing is in flight.
	ms, err := q.Receive(bg(t), queue.TxRequest, 10, time.Minute, 0)
	if err != nil || len(ms) != 1 || string(ms[0].Body) != `{"n":2}` || ms[0].ReceiveCount != 1 {
		t.Fatalf("after shutdown: %+v %v", ms, err)
	}
	if n := depth(t, q, queue.TxRequest); n != 1 {
		t.Fatalf("depth %d, want 1", n)
	}
}

func TestConsumerShutdownReleasesOnGraceExpiry(t *testing.T) {
	q := newQueue(t)
	if err := q.Send(bg(t), queue.TxRequest, []byte(`{"slow":true}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var canceledAt atomic.Int64
	c := newConsumer(t, nil, queue.ConsumerDeps{Queue: q, Name: queue.TxRequest, Visibility: time.Minute, Wait: time.Second,
		ShutdownGrace: 500 * time.Millisecond,
		Handler: func(ctx context.Context, m queue.Message) error {
			close(started)
			<-ctx.Done()
			canceledAt.Store(time.Now().UnixNano())
			return ctx.Err()
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-started
	stopAt := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Duration(canceledAt.Load() - stopAt.UnixNano()); d < 450*time.Millisecond {
		t.Fatalf("handler canceled %v after the stop, before the 500ms grace", d)
	}
	// Released: visible at once (not after the 1-minute visibility), not dead-lettered, not retried.
	ms, err := q.Receive(bg(t), queue.TxRequest, 10, time.Minute, 0)
	if err != nil || len(ms) != 1 || ms[0].ReceiveCount != 2 {
		t.Fatalf("after grace expiry: %+v %v", ms, err)
	}
	if n := depth(t, q, queue.RequestDLQ); n != 0 {
		t.Fatalf("DLQ depth %d", n)
	}
}

func TestConsumerRejectsIncompleteConfig(t *testing.T) {
	q := newQueue(t)
	h := func(context.Context, queue.Message) error { return nil }
	for want, d := range map[string]queue.ConsumerDeps{
		"Queue":   {Name: "x", Handler: h},
		"Name":    {Queue: q, Handler: h},
		"Handler": {Queue: q, Name: "x"},
	} {
		if _, err := queue.NewConsumer(d, nil, queue.NopMetrics()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without %s: %v, want an error naming it", want, err)
		}
	}
	if _, err := queue.NewConsumer(queue.ConsumerDeps{Queue: q, Name: "x", Handler: h}, nil, nil); err == nil {
		t.Error("nil Metrics accepted")
	}
}

func TestBackoffIsCappedByVisibility(t *testing.T) {
	q := newQueue(t)
	if err := q.Send(bg(t), queue.BalanceCheck, []byte(`{}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	c := newConsumer(t, nil, queue.ConsumerDeps{Queue: q, Name: queue.BalanceCheck, Visibility: 300 * time.Millisecond, Wait: 100 * time.Millisecond,
		BackoffBase: time.Hour,
		Handler: func(ctx context.Context, m queue.Message) error {
			if calls.Add(1) < 3 {
				return errors.New("try again")
			}
			return nil
		}})
	stop := run(t, c)
	waitFor(t, "third delivery", 10*time.Second, func() bool { return calls.Load() >= 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
