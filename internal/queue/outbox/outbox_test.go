package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/outbox"
	"github.com/sluice-custody/sluice/internal/queue/queuetest"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

func bg(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func sqsQueue(t *testing.T) *sqsq.Queue {
	t.Helper()
	q, err := sqsq.New(context.Background(), sqsq.Config{Region: "us-east-1", Endpoint: testenv.SQSEndpoint(t),
		Prefix: testenv.UniqueName(t) + "-", AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Setup(bg(t)); err != nil {
		t.Fatal(err)
	}
	return q
}

type msg struct {
	queue, body, group string
}

func write(t *testing.T, s *store.Store, msgs []msg, fail error) error {
	t.Helper()
	return s.InTx(bg(t), func(tx *sql.Tx) error {
		for _, m := range msgs {
			if err := (outbox.Sender{}).SendTx(bg(t), tx, m.queue, []byte(m.body), queue.SendOptions{GroupID: m.group}); err != nil {
				return err
			}
		}
		return fail
	})
}

func pending(t *testing.T, s *store.Store) int {
	t.Helper()
	n, err := outbox.Pending(bg(t), s.DB)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain receives everything from a queue until it stays empty for a second.
func drain(t *testing.T, q queue.Queue, name string) []queue.Message {
	t.Helper()
	var out []queue.Message
	for {
		ms, err := q.Receive(bg(t), name, 10, time.Minute, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			return out
		}
		for _, m := range ms {
			out = append(out, m)
			if err := q.Delete(bg(t), name, m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestOutboxToSQS(t *testing.T) {
	s := &store.Store{DB: queuetest.DB(t)}
	q := sqsQueue(t)

	// Rolled back: nothing is written, nothing is sent.
	boom := errors.New("boom")
	if err := write(t, s, []msg{{queue.TxRequest, `{"rolled":"back"}`, ""}, {queue.SignedTx, "rb", "g"}}, boom); !errors.Is(err, boom) {
		t.Fatalf("InTx: %v", err)
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("outbox holds %d rows after a rollback", n)
	}

	// Committed: several transactions, three FIFO groups interleaved plus ungrouped messages.
	var want []msg
	for tx := range 10 {
		var batch []msg
		for i := range 6 {
			g := fmt.Sprintf("local:0x%d", i%3)
			batch = append(batch, msg{queue.SignedTx, fmt.Sprintf("%s/%02d-%d", g, tx, i), g})
		}
		batch = append(batch, msg{queue.TxRequest, fmt.Sprintf(`{"tx":%d}`, tx), ""})
		if err := write(t, s, batch, nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 { // several relays at once
		r := outbox.NewRelay(s.DB, q, outbox.Options{Batch: 7, PollInterval: 20 * time.Millisecond, Logger: quiet})
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for pending(t, s) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d rows left in the outbox", n)
	}

	got := map[string][]string{}
	for _, m := range drain(t, q, queue.SignedTx) {
		got[m.GroupID] = append(got[m.GroupID], string(m.Body))
	}
	var plain []string
	for _, m := range drain(t, q, queue.TxRequest) {
		plain = append(plain, string(m.Body))
	}
	wantByGroup := map[string][]string{}
	var wantPlain []string
	for _, m := range want {
		if m.group == "" {
			wantPlain = append(wantPlain, m.body)
		} else {
			wantByGroup[m.group] = append(wantByGroup[m.group], m.body)
		}
	}
	for g, w := range wantByGroup {
		if strings.Join(got[g], " ") != strings.Join(w, " ") {
			t.Fatalf("group %s relayed as\n%v\nwant exactly, in order,\n%v", g, got[g], w)
		}
	}
	if len(got) != len(wantByGroup) {
		t.Fatalf("groups %v", got)
	}
	sort.Strings(plain)
	sort.Strings(wantPlain)
	if strings.Join(plain, " ") != strings.Join(wantPlain, " ") {
		t.Fatalf("ungrouped relayed %v, want %v", plain, wantPlain)
	}
	if n := len(drain(t, q, queue.TxMonitor)); n != 0 {
		t.Fatalf("%d messages on an unrelated queue", n)
	}
}

func TestOutboxKeepsDelay(t *testing.T) {
	s := &store.Store{DB: queuetest.DB(t)}
	q := sqsQueue(t)
	err := s.InTx(bg(t), func(tx *sql.Tx) error {
		return (outbox.Sender{}).SendTx(bg(t), tx, queue.TxMonitor, []byte(`{"later":true}`), queue.SendOptions{Delay: 2 * time.Second})
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := outbox.NewRelay(s.DB, q, outbox.Options{Logger: quiet})
	if n, err := r.RelayOnce(bg(t)); err != nil || n != 1 {
		t.Fatalf("relay: %d %v", n, err)
	}
	ms, err := q.Receive(bg(t), queue.TxMonitor, 1, time.Minute, 5*time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatalf("receive: %v %v", ms, err)
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("delayed message arrived after %v", el)
	}
}

// flaky records sends and fails the ones its fail function picks.
type flaky struct {
	mu    sync.Mutex
	sent  []msg
	tries map[string]int
	fail  func(body string, try int) bool
}

func (f *flaky) Setup(context.Context) error { return nil }
func (f *flaky) Send(_ context.Context, name string, body []byte, o queue.SendOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries[string(body)]++
	if f.fail(string(body), f.tries[string(body)]) {
		return errors.New("sqs: 503 service unavailable")
	}
	f.sent = append(f.sent, msg{name, string(body), o.GroupID})
	return nil
}
func (f *flaky) Receive(context.Context, string, int, time.Duration, time.Duration) ([]queue.Message, error) {
	return nil, nil
}
func (f *flaky) Delete(context.Context, string, queue.Message) error { return nil }
func (f *flaky) ChangeVisibility(context.Context, string, queue.Message, time.Duration) error {
	return nil
}
func (f *flaky) Depth(context.Context, string) (int, error) { return 0, nil }

func TestOutboxFailureHoldsBackItsGroupOnly(t *testing.T) {
	s := &store.Store{DB: queuetest.DB(t)}
	f := &flaky{tries: map[string]int{}, fail: func(body string, try int) bool { return body == "a1" && try <= 2 }}
	if err := write(t, s, []msg{
		{queue.SignedTx, "a1", "a"}, {queue.SignedTx, "b1", "b"}, {queue.SignedTx, "a2", "a"},
		{queue.TxRequest, "p1", ""}, {queue.SignedTx, "b2", "b"}, {queue.SignedTx, "a3", "a"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	r := outbox.NewRelay(s.DB, f, outbox.Options{BackoffBase: 200 * time.Millisecond, Logger: quiet})
	if _, err := r.RelayOnce(bg(t)); err != nil {
		t.Fatal(err)
	}
	sentBodies := func() string {
		f.mu.Lock()
		defer f.mu.Unlock()
		var b []string
		for _, m := range f.sent {
			b = append(b, m.body)
		}
		sort.Strings(b)
		return strings.Join(b, " ")
	}
	if got := sentBodies(); got != "b1 b2 p1" {
		t.Fatalf("after a1 failed, sent %q; want b1 b2 p1 and nothing of group a", got)
	}
	if n := pending(t, s); n != 3 {
		t.Fatalf("%d rows pending, want a1 a2 a3", n)
	}
	var attempts int
	var lastErr string
	if err := s.DB.QueryRowContext(bg(t), "SELECT attempts, last_error FROM outbox WHERE body = 'a1'").Scan(&attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || !strings.Contains(lastErr, "503") {
		t.Fatalf("a1: attempts %d, last_error %q", attempts, lastErr)
	}
	// Backing off: the next round right away sends nothing.
	if n, err := r.RelayOnce(bg(t)); err != nil || n != 0 {
		t.Fatalf("round during backoff claimed %d (%v)", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = outbox.NewRelay(s.DB, f, outbox.Options{BackoffBase: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond, Logger: quiet}).Run(ctx)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for pending(t, s) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d rows still pending", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var a []string
	for _, m := range f.sent {
		if m.group == "a" {
			a = append(a, m.body)
		}
	}
	if strings.Join(a, " ") != "a1 a2 a3" || f.tries["a1"] != 3 {
		t.Fatalf("group a sent as %v after %d tries of a1", a, f.tries["a1"])
	}
}

func TestOutboxManyRelaysKeepGroupOrder(t *testing.T) {
	s := &store.Store{DB: queuetest.DB(t)}
	f := &flaky{tries: map[string]int{}, fail: func(body string, try int) bool { return strings.HasSuffix(body, "7") && try == 1 }}
	const groups, per = 5, 60
	var wg sync.WaitGroup
	for g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i += 3 {
				var batch []msg
				for j := i; j < i+3; j++ {
					batch = append(batch, msg{queue.SignedTx, fmt.Sprintf("g%d-%03d", g, j), fmt.Sprintf("g%d", g)})
				}
				if err := write(t, s, batch, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rwg sync.WaitGroup
	for range 4 {
		r := outbox.NewRelay(s.DB, f, outbox.Options{Batch: 10, PollInterval: 10 * time.Millisecond, BackoffBase: 20 * time.Millisecond, Logger: quiet})
		rwg.Add(1)
		go func() { defer rwg.Done(); _ = r.Run(ctx) }()
	}
	wg.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for pending(t, s) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	rwg.Wait()
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d rows still pending", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	byGroup := map[string][]string{}
	for _, m := range f.sent {
		byGroup[m.group] = append(byGroup[m.group], m.body)
	}
	for g := range groups {
		got := byGroup[fmt.Sprintf("g%d", g)]
		if len(got) != per {
			t.Fatalf("group g%d: %d sent, want %d (each exactly once)", g, len(got), per)
		}
		for i, b := range got {
			if want := fmt.Sprintf("g%d-%03d", g, i); b != want {
				t.Fatalf("group g%d out of order at %d: %v", g, i, got)
			}
		}
	}
}
