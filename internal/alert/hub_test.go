package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// receiver is a Slack-compatible webhook: it records each {"text": …}, answering fail codes first.
type receiver struct {
	mu    sync.Mutex
	texts []string
	fail  []int // status codes answered to the first posts, in order
	posts atomic.Int32
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.posts.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fail) > 0 {
		code := r.fail[0]
		r.fail = r.fail[1:]
		w.WriteHeader(code)
		return
	}
	var m map[string]string
	if err := json.NewDecoder(req.Body).Decode(&m); err != nil || req.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(400)
		return
	}
	r.texts = append(r.texts, m["text"])
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts...)
}

// waitFor waits until the receiver holds n messages, and a little more to see that no extra one comes.
func (r *receiver) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.got()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	got := r.got()
	if len(got) != n {
		t.Fatalf("webhook got %d messages %q, want %d", len(got), got, n)
	}
	return got
}

type counting struct {
	alert.Metrics
	mu                    sync.Mutex
	fired, resolved, open map[string]int
}

func newCounting() *counting {
	return &counting{Metrics: alert.NopMetrics(), fired: map[string]int{}, resolved: map[string]int{}, open: map[string]int{}}
}

func (c *counting) Fired(k, s string)    { c.mu.Lock(); c.fired[k+"/"+s]++; c.mu.Unlock() }
func (c *counting) Resolved(k, s string) { c.mu.Lock(); c.resolved[k+"/"+s]++; c.mu.Unlock() }
func (c *counting) Open(k, s string, n int) {
	c.mu.Lock()
	c.open[k+"/"+s] = n
	c.mu.Unlock()
}

func (c *counting) get(m map[string]int, k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[k]
}

var stuck = alert.Alert{Key: "stuck_at_cap:local:0xabc:7", Kind: "stuck_at_cap", Severity: alert.Critical,
	Summary: "nonce 7 of 0xabc stuck at the cap", Labels: map[string]string{"chain": "local"}, Details: map[string]any{"fee_cap": "100"}}

// One alert per key until it is resolved, then one resolved message; firing after that opens it anew.
// Both books: the database one (shared by every instance) and the in-memory one.
func TestFireDeduplicatesUntilResolved(t *testing.T) {
	books := map[string]func(t *testing.T) alert.Book{
		"memory": func(*testing.T) alert.Book { return alert.NewMemoryBook() },
		"mariadb": func(t *testing.T) alert.Book {
			s, _ := testenv.Store(t)
			return s
		},
	}
	for name, book := range books {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rcv := &receiver{}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			var logs bytes.Buffer
			m := newCounting()
			h, err := alert.New(alert.Deps{Book: book(t), Webhook: alert.WebhookConfig{URL: srv.URL}},
				slog.New(slog.NewJSONHandler(&logs, nil)), m)
			if err != nil {
				t.Fatal(err)
			}
			go h.Run(ctx)
			steps := []struct {
				do       func()
				messages int
				fired    int
				open     int
			}{
				{func() { h.Fire(ctx, stuck) }, 1, 1, 1},
				{func() { h.Fire(ctx, stuck); h.Fire(ctx, stuck) }, 1, 1, 1},
				{func() { h.Resolve(ctx, stuck.Key) }, 2, 1, 0},
				{func() { h.Resolve(ctx, stuck.Key) }, 2, 1, 0},
				{func() { h.Resolve(ctx, "never-fired") }, 2, 1, 0},
				{func() { h.Fire(ctx, stuck) }, 3, 2, 1},
			}
			for i, s := range steps {
				s.do()
				got := rcv.waitFor(t, s.messages)
				if f := m.get(m.fired, "stuck_at_cap/critical"); f != s.fired {
					t.Fatalf("step %d: fired %d, want %d", i, f, s.fired)
				}
				if o := m.get(m.open, "stuck_at_cap/critical"); o != s.open {
					t.Fatalf("step %d: open gauge %d, want %d", i, o, s.open)
				}
				if i == 0 && (!strings.Contains(got[0], "CRITICAL") || !strings.Contains(got[0], "fee_cap=100") || !strings.Contains(got[0], stuck.Summary)) {
					t.Fatalf("fired message %q", got[0])
				}
				if i == 2 && !strings.Contains(got[1], "RESOLVED") {
					t.Fatalf("resolved message %q", got[1])
				}
			}
			if n := strings.Count(logs.String(), `"msg":"ALERT stuck_at_cap`); n != 2 {
				t.Fatalf("%d ALERT log lines, want 2 (fired, then fired again after resolve):\n%s", n, logs.String())
			}
			if n := strings.Count(logs.String(), `"msg":"RESOLVED stuck_at_cap`); n != 1 {
				t.Fatalf("%d RESOLVED log lines, want 1", n)
			}
			if strings.Contains(logs.String(), srv.URL) {
				t.Fatal("the webhook URL (a secret) was logged")
			}
		})
	}
}

// Two instances sharing the database book: whoever fires first alerts, the other only counts it seen;
// whoever resolves first sends the one resolved message.
func TestInstancesShareDeduplication(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	var hubs []*alert.Hub
	for range 2 {
		h, err := alert.New(alert.Deps{Book: s, Webhook: alert.WebhookConfig{URL: srv.URL}}, nil, alert.NopMetrics())
		if err != nil {
			t.Fatal(err)
		}
		go h.Run(ctx)
		hubs = append(hubs, h)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); hubs[i%2].Fire(ctx, stuck) }()
	}
	wg.Wait()
	rcv.waitFor(t, 1)
	open, err := s.OpenAlerts(ctx, "")
	if err != nil || len(open) != 1 || open[0].FiredCount != 10 {
		t.Fatalf("open alerts %+v (%v), want one seen 10 times", open, err)
	}
	for i := range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); hubs[i%2].Resolve(ctx, stuck.Key) }()
	}
	wg.Wait()
	if got := rcv.waitFor(t, 2); !strings.Contains(got[1], "RESOLVED") {
		t.Fatalf("messages %q", got)
	}
}

// A webhook answering 500 is tried again (with a doubling pause); a 4xx is not; a hanging one never
// holds up Fire.
func TestWebhookRetriesAndNeverBlocks(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		name      string
		fail      []int
		delivered int
		posts     int32
	}{
		{"500 then 503 then ok", []int{500, 503}, 1, 3},
		{"429 then ok", []int{429}, 1, 2},
		{"400: not retried", []int{400}, 0, 1},
		{"500 four times: gives up after 1 + 3 retries", []int{500, 500, 500, 500, 500}, 0, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			rcv := &receiver{fail: c.fail}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			h, err := alert.New(alert.Deps{Book: alert.NewMemoryBook(), Webhook: alert.WebhookConfig{URL: srv.URL, Backoff: 10 * time.Millisecond}},
				nil, alert.NopMetrics())
			if err != nil {
				t.Fatal(err)
			}
			go h.Run(ctx)
			h.Fire(ctx, stuck)
			rcv.waitFor(t, c.delivered)
			deadline := time.Now().Add(5 * time.Second)
			for rcv.posts.Load() < c.posts && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			if p := rcv.posts.Load(); p != c.posts {
				t.Fatalf("%d posts, want %d", p, c.posts)
			}
		})
	}
	t.Run("hanging webhook", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		h, err := alert.New(alert.Deps{Book: alert.NewMemoryBook(), Webhook: alert.WebhookConfig{URL: srv.URL, Timeout: time.Minute}},
			nil, alert.NopMetrics())
		if err != nil {
			t.Fatal(err)
		}
		go h.Run(ctx)
		start := time.Now()
		for i := range 1000 { // more than the queue holds: the overflow is dropped, not waited for
			a := stuck
			a.Key = a.Key + string(rune('a'+i%26)) + time.Now().String()
			h.Fire(ctx, a)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("1000 Fire calls took %s with a hanging webhook", d)
		}
	})
}

// A webhook URL that is not http(s) is refused at construction, without echoing it.
func TestWebhookURLChecked(t *testing.T) {
	_, err := alert.New(alert.Deps{Book: alert.NewMemoryBook(), Webhook: alert.WebhookConfig{URL: "ftp://secret-token@host/x"}}, nil, nil)
	if err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("err %v: want a refusal that does not echo the URL", err)
	}
}
