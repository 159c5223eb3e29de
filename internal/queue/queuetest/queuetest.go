// Package queuetest is the conformance suite every queue.Queue backend passes (queue/mysqlq against
// MariaDB, queue/sqsq against the SQS emulator or AWS).
//
// Timings use whole seconds, the finest unit SQS has. newQueue must return a queue set of its own
// (fresh database, fresh name prefix): subtests run in parallel and assert exact contents.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
)

type config struct {
	groupLocking    bool
	staleReceipts   bool
	exactDepth      bool
	exactRecvCounts bool
	dedupInterval   bool
}

// Option relaxes the suite for a backend that lacks a guarantee. Each says what it skips.
type Option func(*config)

// WithoutGroupLocking: the backend delivers a FIFO group's next message while an earlier one is in
// flight (the local-aws-sqs emulator; real SQS FIFO does lock groups). In-group order is still checked.
func WithoutGroupLocking() Option { return func(c *config) { c.groupLocking = false } }

// WithoutStaleReceiptProtection: a receipt from an earlier delivery still deletes or releases the
// message after someone else received it (the emulator; real SQS also deletes with an old receipt on
// standard queues). Only the idempotence of Delete is checked then.
func WithoutStaleReceiptProtection() Option { return func(c *config) { c.staleReceipts = false } }

// WithApproximateDepth: Depth may count in-flight messages twice (the emulator's
// ApproximateNumberOfMessages includes them); depth is then checked only with nothing in flight.
func WithApproximateDepth() Option { return func(c *config) { c.exactDepth = false } }

// WithApproximateReceiveCounts: a release with ChangeVisibility 0 may add to the receive count (the
// emulator counts it as a receive); counts are then checked to grow rather than to grow by one.
func WithApproximateReceiveCounts() Option { return func(c *config) { c.exactRecvCounts = false } }

// WithoutDedupInterval: a deduplication id is forgotten once its message is deleted (the emulator;
// SQS remembers it for 5 minutes). Deduplication is then checked only while the first is queued.
func WithoutDedupInterval() Option { return func(c *config) { c.dedupInterval = false } }

// Run runs the suite. Every subtest calls newQueue and Setup.
func Run(t *testing.T, newQueue func(t *testing.T) queue.Queue, opts ...Option) {
	cfg := config{groupLocking: true, staleReceipts: true, exactDepth: true, exactRecvCounts: true, dedupInterval: true}
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, q queue.Queue, cfg config)
	}{
		{"SendReceiveDelete", testSendReceiveDelete},
		{"LongPoll", testLongPoll},
		{"ReceiveHonoursContext", testReceiveContext},
		{"VisibilityTimeout", testVisibilityTimeout},
		{"ChangeVisibility", testChangeVisibility},
		{"StaleReceipt", testStaleReceipt},
		{"RedriveToDLQ", testRedrive},
		{"FIFOGroupOrder", testGroupOrder},
		{"FIFOGroupLocking", testGroupLocking},
		{"Dedup", testDedup},
		{"Delay", testDelay},
		{"Depth", testDepth},
		{"ConcurrentConsumers", testConcurrentConsumers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t)
			if err := q.Setup(ctxT(t, 30*time.Second)); err != nil {
				t.Fatalf("setup: %v", err)
			}
			tc.fn(t, q, cfg)
		})
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, q queue.Queue, name, body string, opts queue.SendOptions) {
	t.Helper()
	if err := q.Send(ctxT(t, 10*time.Second), name, []byte(body), opts); err != nil {
		t.Fatalf("send %s %q: %v", name, body, err)
	}
}

func recv(t *testing.T, q queue.Queue, name string, max int, vis, wait time.Duration) []queue.Message {
	t.Helper()
	ms, err := q.Receive(ctxT(t, wait+15*time.Second), name, max, vis, wait)
	if err != nil {
		t.Fatalf("receive %s: %v", name, err)
	}
	return ms
}

func recvOne(t *testing.T, q queue.Queue, name string, vis, wait time.Duration) queue.Message {
	t.Helper()
	ms := recv(t, q, name, 1, vis, wait)
	if len(ms) != 1 {
		t.Fatalf("receive %s: got %d messages, want 1", name, len(ms))
	}
	return ms[0]
}

func expectNone(t *testing.T, q queue.Queue, name string, wait time.Duration) {
	t.Helper()
	if ms := recv(t, q, name, 10, 30*time.Second, wait); len(ms) != 0 {
		t.Fatalf("receive %s: got %d unexpected messages, first %q", name, len(ms), ms[0].Body)
	}
}

func del(t *testing.T, q queue.Queue, name string, m queue.Message) {
	t.Helper()
	if err := q.Delete(ctxT(t, 10*time.Second), name, m); err != nil {
		t.Fatalf("delete %s %s: %v", name, m.ID, err)
	}
}

func depth(t *testing.T, q queue.Queue, name string) int {
	t.Helper()
	n, err := q.Depth(ctxT(t, 10*time.Second), name)
	if err != nil {
		t.Fatalf("depth %s: %v", name, err)
	}
	return n
}

const vis30 = 30 * time.Second

func testSendReceiveDelete(t *testing.T, q queue.Queue, _ config) {
	body := `{"v":1,"type":"withdrawal.requested","payload":{"amount":"12.5","note":"üñí"}}`
	send(t, q, queue.TxRequest, body, queue.SendOptions{})
	m := recvOne(t, q, queue.TxRequest, vis30, 2*time.Second)
	if string(m.Body) != body {
		t.Fatalf("body %q, want %q", m.Body, body)
	}
	if m.ID == "" || m.Receipt == "" {
		t.Fatalf("message without id or receipt: %+v", m)
	}
	if m.ReceiveCount != 1 {
		t.Fatalf("receive count %d, want 1", m.ReceiveCount)
	}
	if m.GroupID != "" {
		t.Fatalf("group %q on a message sent without one", m.GroupID)
	}
	expectNone(t, q, queue.TxRequest, 0)
	del(t, q, queue.TxRequest, m)
	// Deleting again (a retried call) is not an error.
	if err := q.Delete(ctxT(t, 10*time.Second), queue.TxRequest, m); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if n := depth(t, q, queue.TxRequest); n != 0 {
		t.Fatalf("depth after delete %d, want 0", n)
	}
	// Queues are independent.
	expectNone(t, q, queue.TxMonitor, 0)
}

func testLongPoll(t *testing.T, q queue.Queue, _ config) {
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = q.Send(context.Background(), queue.TxMonitor, []byte(`{"late":true}`), queue.SendOptions{})
	}()
	start := time.Now()
	m := recvOne(t, q, queue.TxMonitor, vis30, 5*time.Second)
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("long poll returned after %v; want soon after the send", el)
	}
	del(t, q, queue.TxMonitor, m)
	start = time.Now()
	expectNone(t, q, queue.TxMonitor, time.Second)
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("empty long poll returned after %v, want about the wait (1s)", el)
	}
}

func testReceiveContext(t *testing.T, q queue.Queue, _ config) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	ms, err := q.Receive(ctx, queue.BalanceCheck, 1, vis30, 10*time.Second)
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("receive ignored its context: returned after %v", el)
	}
	if len(ms) != 0 {
		t.Fatalf("got %d messages from an empty queue", len(ms))
	}
	if err == nil {
		t.Log("receive returned nil error on a canceled context (allowed)")
	}
}

func testVisibilityTimeout(t *testing.T, q queue.Queue, _ config) {
	send(t, q, queue.TxRequest, `{"n":1}`, queue.SendOptions{})
	m1 := recvOne(t, q, queue.TxRequest, time.Second, 2*time.Second)
	expectNone(t, q, queue.TxRequest, 0)
	m2 := recvOne(t, q, queue.TxRequest, vis30, 4*time.Second)
	if m2.ID != m1.ID || string(m2.Body) != string(m1.Body) {
		t.Fatalf("redelivered %s %q, want %s %q", m2.ID, m2.Body, m1.ID, m1.Body)
	}
	if m2.ReceiveCount != 2 {
		t.Fatalf("receive count %d after one timeout, want 2", m2.ReceiveCount)
	}
	if m2.Receipt == m1.Receipt {
		t.Fatal("a new delivery must have a new receipt")
	}
	del(t, q, queue.TxRequest, m2)
	expectNone(t, q, queue.TxRequest, 0)
}

func testChangeVisibility(t *testing.T, q queue.Queue, cfg config) {
	send(t, q, queue.TxRequest, `{"n":2}`, queue.SendOptions{})
	m1 := recvOne(t, q, queue.TxRequest, vis30, 2*time.Second)
	// 0 releases it now.
	if err := q.ChangeVisibility(ctxT(t, 10*time.Second), queue.TxRequest, m1, 0); err != nil {
		t.Fatalf("release: %v", err)
	}
	m2 := recvOne(t, q, queue.TxRequest, time.Second, 2*time.Second)
	if m2.ID != m1.ID {
		t.Fatalf("got %s after release, want %s", m2.ID, m1.ID)
	}
	if m2.ReceiveCount <= m1.ReceiveCount || (cfg.exactRecvCounts && m2.ReceiveCount != m1.ReceiveCount+1) {
		t.Fatalf("receive count %d after release, was %d", m2.ReceiveCount, m1.ReceiveCount)
	}
	// Extending keeps it hidden past the original 1 s.
	if err := q.ChangeVisibility(ctxT(t, 10*time.Second), queue.TxRequest, m2, 4*time.Second); err != nil {
		t.Fatalf("extend: %v", err)
	}
	expectNone(t, q, queue.TxRequest, 1500*time.Millisecond)
	del(t, q, queue.TxRequest, m2)
}

func testStaleReceipt(t *testing.T, q queue.Queue, cfg config) {
	send(t, q, queue.TxRequest, `{"n":3}`, queue.SendOptions{})
	old := recvOne(t, q, queue.TxRequest, time.Second, 2*time.Second)
	cur := recvOne(t, q, queue.TxRequest, vis30, 4*time.Second)
	if cur.ID != old.ID {
		t.Fatalf("redelivered %s, want %s", cur.ID, old.ID)
	}
	if !cfg.staleReceipts {
		del(t, q, queue.TxRequest, cur)
		del(t, q, queue.TxRequest, cur)
		return
	}
	// The first consumer wakes up late: neither its release nor its delete may touch the new delivery.
	err := q.ChangeVisibility(ctxT(t, 10*time.Second), queue.TxRequest, old, 0)
	if err != nil && !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Fatalf("stale change visibility: %v, want nil or ErrReceiptInvalid", err)
	}
	expectNone(t, q, queue.TxRequest, 0)
	err = q.Delete(ctxT(t, 10*time.Second), queue.TxRequest, old)
	if err != nil && !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Fatalf("stale delete: %v, want nil or ErrReceiptInvalid", err)
	}
	if n := depth(t, q, queue.TxRequest); n != 1 {
		t.Fatalf("depth %d after stale delete, want 1 (the new delivery's message)", n)
	}
	// The current owner still controls it.
	if err := q.ChangeVisibility(ctxT(t, 10*time.Second), queue.TxRequest, cur, 30*time.Second); err != nil {
		t.Fatalf("owner's change visibility: %v", err)
	}
	del(t, q, queue.TxRequest, cur)
	if n := depth(t, q, queue.TxRequest); n != 0 {
		t.Fatalf("depth %d after delete, want 0", n)
	}
}

func testRedrive(t *testing.T, q queue.Queue, _ config) {
	body := `{"poison":true}`
	send(t, q, queue.TxRequest, body, queue.SendOptions{})
	var first queue.Message
	for i := 1; i <= queue.MaxReceiveCount; i++ {
		m := recvOne(t, q, queue.TxRequest, time.Second, 4*time.Second)
		if m.ReceiveCount != i {
			t.Fatalf("delivery %d has receive count %d", i, m.ReceiveCount)
		}
		if i == 1 {
			first = m
		}
	}
	// The next receive finds the message over the limit and moves it instead of delivering it.
	expectNone(t, q, queue.TxRequest, 3*time.Second)
	dl := recvOne(t, q, queue.RequestDLQ, vis30, 3*time.Second)
	if string(dl.Body) != body {
		t.Fatalf("DLQ body %q, want the original %q", dl.Body, body)
	}
	del(t, q, queue.RequestDLQ, dl)
	if n := depth(t, q, queue.TxRequest); n != 0 {
		t.Fatalf("work queue depth %d after redrive, want 0", n)
	}
	_ = first
}

func testGroupOrder(t *testing.T, q queue.Queue, _ config) {
	const per = 5
	groups := []string{"local:0xaaa", "local:0xbbb", "local:0xccc"}
	for i := range per {
		for _, g := range groups {
			send(t, q, queue.SignedTx, fmt.Sprintf("%s/%d", g, i), queue.SendOptions{GroupID: g})
		}
	}
	got := map[string][]string{}
	total := 0
	deadline := time.Now().Add(30 * time.Second)
	for total < per*len(groups) && time.Now().Before(deadline) {
		for _, m := range recv(t, q, queue.SignedTx, 10, vis30, time.Second) {
			got[m.GroupID] = append(got[m.GroupID], string(m.Body))
			total++
			del(t, q, queue.SignedTx, m)
		}
	}
	for _, g := range groups {
		if len(got[g]) != per {
			t.Fatalf("group %s: got %v, want %d messages", g, got[g], per)
		}
		for i, b := range got[g] {
			if want := fmt.Sprintf("%s/%d", g, i); b != want {
				t.Fatalf("group %s out of order: %v", g, got[g])
			}
		}
	}
}

func testGroupLocking(t *testing.T, q queue.Queue, cfg config) {
	if !cfg.groupLocking {
		t.Log("backend without FIFO group locking (option WithoutGroupLocking): only order is checked, in FIFOGroupOrder")
		return
	}
	send(t, q, queue.SignedTx, "a1", queue.SendOptions{GroupID: "a"})
	send(t, q, queue.SignedTx, "a2", queue.SendOptions{GroupID: "a"})
	send(t, q, queue.SignedTx, "b1", queue.SendOptions{GroupID: "b"})
	ms := recv(t, q, queue.SignedTx, 10, vis30, 2*time.Second)
	bodies := map[string]queue.Message{}
	for _, m := range ms {
		bodies[string(m.Body)] = m
	}
	if len(ms) != 2 || bodies["a1"].ID == "" || bodies["b1"].ID == "" {
		t.Fatalf("first receive got %d messages %v, want exactly a1 and b1", len(ms), keys(bodies))
	}
	// a2 waits while a1 is in flight.
	expectNone(t, q, queue.SignedTx, time.Second)
	// Released, a1 comes back before a2.
	if err := q.ChangeVisibility(ctxT(t, 10*time.Second), queue.SignedTx, bodies["a1"], 0); err != nil {
		t.Fatal(err)
	}
	m := recvOne(t, q, queue.SignedTx, vis30, 2*time.Second)
	if string(m.Body) != "a1" {
		t.Fatalf("after releasing a1 got %q, want a1", m.Body)
	}
	expectNone(t, q, queue.SignedTx, 0)
	del(t, q, queue.SignedTx, m)
	m = recvOne(t, q, queue.SignedTx, vis30, 2*time.Second)
	if string(m.Body) != "a2" {
		t.Fatalf("after deleting a1 got %q, want a2", m.Body)
	}
	del(t, q, queue.SignedTx, m)
	del(t, q, queue.SignedTx, bodies["b1"])
}

func keys(m map[string]queue.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// testDedup uses signed-tx, which is FIFO on SQS (standard SQS queues do not deduplicate).
func testDedup(t *testing.T, q queue.Queue, cfg config) {
	send(t, q, queue.SignedTx, "first", queue.SendOptions{GroupID: "g", DedupID: "tx-1"})
	send(t, q, queue.SignedTx, "second", queue.SendOptions{GroupID: "g", DedupID: "tx-1"})
	send(t, q, queue.SignedTx, "other", queue.SendOptions{GroupID: "g", DedupID: "tx-2"})
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		for _, m := range recv(t, q, queue.SignedTx, 10, vis30, time.Second) {
			got = append(got, string(m.Body))
			del(t, q, queue.SignedTx, m)
		}
	}
	if len(got) != 2 || got[0] != "first" || got[1] != "other" {
		t.Fatalf("got %v, want [first other]", got)
	}
	if !cfg.dedupInterval {
		return
	}
	// Within the deduplication interval, even after the first was deleted, the id stays used.
	send(t, q, queue.SignedTx, "third", queue.SendOptions{GroupID: "g", DedupID: "tx-1"})
	expectNone(t, q, queue.SignedTx, time.Second)
}

func testDelay(t *testing.T, q queue.Queue, _ config) {
	start := time.Now()
	send(t, q, queue.TxRequest, `{"delayed":true}`, queue.SendOptions{Delay: 2 * time.Second})
	expectNone(t, q, queue.TxRequest, 0)
	if n := depth(t, q, queue.TxRequest); n != 1 {
		t.Fatalf("depth %d with one delayed message, want 1", n)
	}
	m := recvOne(t, q, queue.TxRequest, vis30, 5*time.Second)
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("delayed message delivered after %v, want >= 2s", el)
	}
	del(t, q, queue.TxRequest, m)
}

func testDepth(t *testing.T, q queue.Queue, cfg config) {
	for i := range 3 {
		send(t, q, queue.BalanceCheck, fmt.Sprintf(`{"i":%d}`, i), queue.SendOptions{})
	}
	if n := depth(t, q, queue.BalanceCheck); n != 3 {
		t.Fatalf("depth %d, want 3", n)
	}
	m := recvOne(t, q, queue.BalanceCheck, vis30, 2*time.Second)
	if n := depth(t, q, queue.BalanceCheck); cfg.exactDepth && n != 3 {
		t.Fatalf("depth %d with one in flight, want 3 (in flight counts)", n)
	} else if n < 3 {
		t.Fatalf("depth %d with one in flight, want at least 3", n)
	}
	del(t, q, queue.BalanceCheck, m)
	if n := depth(t, q, queue.BalanceCheck); n != 2 {
		t.Fatalf("depth %d after a delete, want 2", n)
	}
	if n := depth(t, q, queue.BalanceTransfer); n != 0 {
		t.Fatalf("depth of an untouched queue %d, want 0", n)
	}
}

// testConcurrentConsumers: within one visibility window no message is delivered twice, and none is lost.
func testConcurrentConsumers(t *testing.T, q queue.Queue, _ config) {
	const n, consumers = 200, 4
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				if err := q.Send(context.Background(), queue.TxRequest, fmt.Appendf(nil, `{"i":%d}`, i), queue.SendOptions{}); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var mu sync.Mutex
	seen := map[string]int{}
	total := 0
	ctx := ctxT(t, 60*time.Second)
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idle := 0
			for ctx.Err() == nil && idle < 3 {
				ms, err := q.Receive(ctx, queue.TxRequest, 10, 60*time.Second, time.Second)
				if err != nil {
					t.Errorf("receive: %v", err)
					return
				}
				if len(ms) == 0 {
					idle++
					continue
				}
				idle = 0
				mu.Lock()
				for _, m := range ms {
					seen[m.ID]++
					total++
				}
				mu.Unlock()
				for _, m := range ms {
					if err := q.Delete(ctx, queue.TxRequest, m); err != nil {
						t.Errorf("delete: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("received %d distinct messages, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("message %s delivered %d times within one visibility window", id, c)
		}
	}
	if total != n {
		t.Fatalf("received %d deliveries, want %d", total, n)
	}
}
