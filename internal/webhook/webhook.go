// Package webhook delivers withdrawal events to the clients' endpoints: signed (HMAC-SHA256 over
// "timestamp.body", header Sluice-Signature: t=<unix>,v1=<hex>[,v1=<hex of the previous secret>]),
// at least once, retried with capped exponential backoff for DeadAfter (24 h) and then dead-lettered,
// in order per endpoint and withdrawal. A dead-lettered delivery is sent again when a client or an
// operator asks (store.RedeliverWebhook): a replay of the same event id, with a new DeadAfter window. The events themselves are written by store.Transition in the
// transaction of the status change (the outbox); this package only sends them.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/store"
)

// The headers of a delivery.
const (
	HeaderSignature = "Sluice-Signature"
	HeaderEventID   = "Sluice-Event-Id"
	HeaderEventType = "Sluice-Event-Type"
)

// Defaults of the optional Deps settings.
const (
	DefaultBaseBackoff = 5 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultDeadAfter   = 24 * time.Hour
	DefaultPoll        = time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 8
)

// Sign is the signature header of body sent at t with secrets (the current one first).
func Sign(t time.Time, body []byte, secrets ...string) string {
	h := "t=" + strconv.FormatInt(t.Unix(), 10)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		m := hmac.New(sha256.New, []byte(s))
		m.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
		m.Write([]byte{'.'})
		m.Write(body)
		h += ",v1=" + hex.EncodeToString(m.Sum(nil))
	}
	return h
}

// ErrPrivateAddress is returned for an endpoint that resolves to a loopback, private, link-local or
// otherwise internal address while AllowPrivate is off.
var ErrPrivateAddress = errors.New("webhook endpoint resolves to a private, loopback or link-local address")

// internal reports addresses a webhook must not reach: SSRF into our own network.
func internal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) || // carrier-grade NAT
		netip.MustParsePrefix("fc00::/7").Contains(a)
}

// CheckURL validates an endpoint URL: http(s), a host, and (unless allowPrivate) no name resolving to
// an internal address. The dialer checks again on every connection (DNS can change).
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return errors.New("url must be an absolute http(s) URL without credentials")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if internal(a) {
			return fmt.Errorf("%s is %s: %w", host, a, ErrPrivateAddress)
		}
	}
	return nil
}

// NewHTTPClient is the delivery client: no redirects (a redirect could lead into our network), and a
// dialer that refuses internal addresses unless allowPrivate.
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			if internal(ap.Addr()) {
				return fmt.Errorf("dial %s: %w", address, ErrPrivateAddress)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Deps are the dispatcher's collaborators (Store) and settings.
type Deps struct {
	Store *store.Store
	// AllowPrivate lets endpoints resolve to loopback and private addresses (webhooks.allow_private;
	// tests, and receivers inside our own network on purpose).
	AllowPrivate bool
	// HTTP overrides the delivery client (NewHTTPClient(Timeout, AllowPrivate) when nil).
	HTTP        *http.Client
	Timeout     time.Duration
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	DeadAfter   time.Duration
	Poll        time.Duration
	Concurrency int
}

// Dispatcher sends due deliveries.
type Dispatcher struct {
	d   Deps
	log *slog.Logger
	met Metrics
}

// New checks d and builds the dispatcher. A nil log discards; m may be NopMetrics().
func New(d Deps, log *slog.Logger, m Metrics) (*Dispatcher, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("webhook: Store is required")
	case m == nil:
		return nil, errors.New("webhook: Metrics is required (NopMetrics() for none)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&d.Timeout, DefaultTimeout)
	def(&d.BaseBackoff, DefaultBaseBackoff)
	def(&d.MaxBackoff, DefaultMaxBackoff)
	def(&d.DeadAfter, DefaultDeadAfter)
	def(&d.Poll, DefaultPoll)
	if d.Concurrency <= 0 {
		d.Concurrency = DefaultConcurrency
	}
	if d.HTTP == nil {
		d.HTTP = NewHTTPClient(d.Timeout, d.AllowPrivate)
	}
	return &Dispatcher{d: d, log: log, met: m}, nil
}

// Backoff is the wait after the n-th failed attempt (n ≥ 1): base·2^(n-1), capped at max.
func Backoff(n int, base, max time.Duration) time.Duration {
	b := base
	for i := 1; i < n && b < max; i++ {
		b *= 2
	}
	return min(b, max)
}

// Run delivers until ctx ends.
func (p *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(p.d.Poll)
	defer t.Stop()
	for {
		n, err := p.Once(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("webhook dispatch", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once claims the due deliveries and sends them, Concurrency at a time; it returns how many it sent.
func (p *Dispatcher) Once(ctx context.Context) (int, error) {
	ds, err := p.d.Store.ClaimWebhookDeliveries(ctx, p.d.Concurrency*4, p.d.Timeout+30*time.Second)
	if err != nil {
		return 0, err
	}
	sem := make(chan struct{}, p.d.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, d := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.deliver(ctx, d); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return len(ds), first
}

func (p *Dispatcher) deliver(ctx context.Context, d *store.WebhookDelivery) error {
	now := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint.URL, bytes.NewReader(d.Payload))
	var a store.WebhookAttempt
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Sluice-Webhooks/1")
		req.Header.Set(HeaderEventID, d.EventID)
		req.Header.Set(HeaderEventType, d.EventType)
		req.Header.Set(HeaderSignature, Sign(now, d.Payload, d.Endpoint.Secret, d.Endpoint.PrevSecret))
		var res *http.Response
		res, err = p.d.HTTP.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
			a.StatusCode = res.StatusCode
		}
	}
	a.Latency = time.Since(now)
	ok := err == nil && a.StatusCode >= 200 && a.StatusCode < 300
	switch {
	case err != nil:
		a.Error = err.Error()
	case !ok:
		a.Error = "HTTP " + strconv.Itoa(a.StatusCode)
	}
	var next time.Time
	outcome := "delivered"
	if !ok {
		outcome = "retry"
		// The window and the backoff count from the last redelivery, if any: a delivery sent again
		// after days dead gets its own DeadAfter of retries, starting at the base wait.
		next = time.Now().Add(Backoff(d.RetryAttempts+1, p.d.BaseBackoff, p.d.MaxBackoff))
		if next.Sub(d.RetrySince) > p.d.DeadAfter {
			next, outcome = time.Time{}, "dead"
			p.log.Warn("webhook dead-lettered", "delivery", d.ID, "event", d.EventID, "endpoint", d.Endpoint.ID, "attempts", d.Attempts+1, "err", a.Error)
		}
	}
	p.met.Attempt(outcome, a.Latency)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the lease expires and the delivery is retried
	}
	return p.d.Store.RecordWebhookAttempt(context.WithoutCancel(ctx), d.ID, a, ok, next)
}

// Metrics is what the dispatcher reports.
type Metrics interface {
	Attempt(outcome string, latency time.Duration)
}

type promMetrics struct {
	attempts *prometheus.HistogramVec
}

// NewMetrics registers sluice_webhook_attempt_seconds{outcome} on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_webhook_attempt_seconds",
		Help:    "Webhook delivery attempts by outcome (delivered, retry, dead) and their latency.",
		Buckets: prometheus.DefBuckets,
	}, []string{"outcome"})}
	reg.MustRegister(m.attempts)
	return m
}

func (m *promMetrics) Attempt(outcome string, d time.Duration) {
	m.attempts.WithLabelValues(outcome).Observe(d.Seconds())
}

type nopMetrics struct{}

// NopMetrics reports nothing.
func NopMetrics() Metrics { return nopMetrics{} }

func (nopMetrics) Attempt(string, time.Duration) {}
