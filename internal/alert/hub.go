package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-custody/sluice/internal/store"
)

// Book keeps which alerts are open. *store.Store is the shared one (table alerts), so every instance
// of every service de-duplicates against the same rows; MemoryBook is one process's, for tests and
// tools without a database.
type Book interface {
	// OpenAlert records the alert open and reports true, or false when it was open already.
	OpenAlert(ctx context.Context, key, kind, severity, summary, details string) (bool, error)
	// ResolveAlert closes the open alert with key and returns it, store.ErrNotFound when none is open.
	ResolveAlert(ctx context.Context, key string) (*store.OpenAlert, error)
	// OpenAlerts lists the open alerts of kind (every kind when empty).
	OpenAlerts(ctx context.Context, kind string) ([]store.OpenAlert, error)
}

// Deps are a Hub's collaborators. Book is required; Webhook is optional (no URL: no webhook).
type Deps struct {
	Book    Book
	Webhook WebhookConfig
}

// Hub is the Notifier every service uses: each alert is a structured log line, a metric, and a webhook
// message when one is configured, once per Key until Resolve (then a "resolved" line and message).
type Hub struct {
	book Book
	hook *webhook // nil without a URL
	log  *slog.Logger
	m    Metrics

	mu     sync.Mutex
	counts map[[2]string]int // (kind, severity) → open, as last counted in the book
}

var _ Notifier = (*Hub)(nil)

// New checks d and builds a Hub. A nil log discards; m may be NopMetrics().
func New(d Deps, log *slog.Logger, m Metrics) (*Hub, error) {
	if d.Book == nil {
		return nil, errors.New("alert hub: Book is required (a *store.Store, or NewMemoryBook())")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics()
	}
	h := &Hub{book: d.Book, log: log, m: m, counts: map[[2]string]int{}}
	if d.Webhook.URL != "" {
		w, err := newWebhook(d.Webhook, log, m)
		if err != nil {
			return nil, err
		}
		h.hook = w
	}
	return h, nil
}

// Fire raises a: the first time for its Key (across every instance sharing the book) it is logged at
// ERROR (critical) or WARN, counted, and queued to the webhook; while it stays open, firing again only
// counts it as seen. It never blocks on the webhook, and a failing book still logs the alert (an alert
// must not be lost to the database being down; it may then repeat).
func (h *Hub) Fire(ctx context.Context, a Alert) {
	if a.Severity == "" {
		a.Severity = Warning
	}
	details, _ := json.Marshal(map[string]any{"labels": a.Labels, "details": a.Details})
	opened, err := h.book.OpenAlert(ctx, a.Key, a.Kind, string(a.Severity), a.Summary, string(details))
	if err != nil {
		h.log.Warn("alert book unavailable; raising the alert without de-duplication", "alert_key", a.Key, "err", err)
		opened = true
	}
	if !opened {
		return
	}
	h.m.Fired(a.Kind, string(a.Severity))
	attrs := []any{"alert", a.Kind, "alert_key", a.Key, "severity", a.Severity, "summary", a.Summary}
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		attrs = append(attrs, k, a.Labels[k])
	}
	for _, k := range slices.Sorted(maps.Keys(a.Details)) {
		attrs = append(attrs, k, a.Details[k])
	}
	level := slog.LevelWarn
	if a.Severity == Critical {
		level = slog.LevelError
	}
	h.log.Log(ctx, level, "ALERT "+a.Kind+": "+a.Summary, attrs...)
	h.send(fmt.Sprintf(":rotating_light: [%s] %s: %s%s", strings.ToUpper(string(a.Severity)), a.Kind, a.Summary, detailText(a)))
	h.Sync(ctx)
}

// Resolve closes the alert with key, if open: logged, counted and sent as "resolved" once, whichever
// instance resolves it first.
func (h *Hub) Resolve(ctx context.Context, key string) {
	a, err := h.book.ResolveAlert(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		h.log.Warn("alert book unavailable; resolve later", "alert_key", key, "err", err)
		return
	}
	h.m.Resolved(a.Kind, a.Severity)
	h.log.Info("RESOLVED "+a.Kind+": "+a.Summary, "alert", a.Kind, "alert_key", a.Key, "severity", a.Severity,
		"open_for", time.Since(a.OpenedAt).Round(time.Second).String(), "seen", a.FiredCount)
	h.send(fmt.Sprintf(":white_check_mark: [RESOLVED] %s: %s (open %s)", a.Kind, a.Summary, time.Since(a.OpenedAt).Round(time.Second)))
	h.Sync(ctx)
}

// Open lists the open alerts of kind (every kind when empty), as the book has them.
func (h *Hub) Open(ctx context.Context, kind string) ([]store.OpenAlert, error) {
	return h.book.OpenAlerts(ctx, kind)
}

// Sync sets sluice_alerts_open from the book: the count is the shared one, whichever instance opened
// or resolved each alert, so every process reports the same figure.
//
// The read and the gauge update happen under one lock: a periodic Sync that read the book before an
// alert opened must not write its stale count after the Sync of the Fire that opened it.
func (h *Hub) Sync(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	open, err := h.book.OpenAlerts(ctx, "")
	if err != nil {
		h.log.Debug("count open alerts", "err", err)
		return
	}
	now := map[[2]string]int{}
	for _, a := range open {
		now[[2]string{a.Kind, a.Severity}]++
	}
	for k := range h.counts {
		if _, ok := now[k]; !ok {
			h.m.Open(k[0], k[1], 0)
		}
	}
	for k, n := range now {
		h.m.Open(k[0], k[1], n)
	}
	h.counts = now
}

// Run delivers webhook messages and refreshes the open-alert gauge every syncEvery, until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	if h.hook != nil {
		go h.hook.run(ctx)
	}
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	h.Sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.Sync(ctx)
		}
	}
}

// syncEvery is how often the open-alert gauge is re-read from the shared book (other instances open and
// resolve alerts too).
const syncEvery = 30 * time.Second

func (h *Hub) send(text string) {
	if h.hook != nil {
		h.hook.enqueue(text)
	}
}

// detailText renders labels and details as " (k=v, …)" in key order, for the webhook message.
func detailText(a Alert) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		parts = append(parts, fmt.Sprintf("%s=%s", k, a.Labels[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(a.Details)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, a.Details[k]))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// MemoryBook is a Book in one process's memory.
type MemoryBook struct {
	mu   sync.Mutex
	open map[string]*store.OpenAlert
}

// NewMemoryBook returns an empty MemoryBook.
func NewMemoryBook() *MemoryBook { return &MemoryBook{open: map[string]*store.OpenAlert{}} }

// OpenAlert implements Book.
func (b *MemoryBook) OpenAlert(_ context.Context, key, kind, severity, summary, details string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if a, ok := b.open[key]; ok {
		a.FiredCount++
		a.LastSeenAt = now
		return false, nil
	}
	b.open[key] = &store.OpenAlert{Key: key, Kind: kind, Severity: severity, Summary: summary, Details: details,
		FiredCount: 1, OpenedAt: now, LastSeenAt: now}
	return true, nil
}

// ResolveAlert implements Book.
func (b *MemoryBook) ResolveAlert(_ context.Context, key string) (*store.OpenAlert, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.open[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(b.open, key)
	return a, nil
}

// OpenAlerts implements Book.
func (b *MemoryBook) OpenAlerts(_ context.Context, kind string) ([]store.OpenAlert, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []store.OpenAlert
	for _, a := range b.open {
		if kind == "" || a.Kind == kind {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(x, y store.OpenAlert) int { return x.OpenedAt.Compare(y.OpenedAt) })
	return out, nil
}
