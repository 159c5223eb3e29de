package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// WebhookConfig is where alert messages are posted, as Slack-compatible JSON ({"text": …}). The URL is
// a secret (Slack's carries its token): it is never logged.
type WebhookConfig struct {
	URL     string
	Timeout time.Duration // per attempt; 5 s when zero
	Retries int           // further attempts after a failed one; 3 when zero, none when negative
	Backoff time.Duration // before the first retry, doubling; 1 s when zero
	Client  *http.Client  // nil: a client with Timeout
}

// queueLen bounds the messages waiting for the webhook: beyond it new ones are dropped (and counted),
// never blocking the service that raised them. The log line and the metric still carry every alert.
const queueLen = 256

type webhook struct {
	url     string
	host    string // for logs: the URL itself is a secret
	client  *http.Client
	retries int
	backoff time.Duration
	q       chan string
	log     *slog.Logger
	m       Metrics
}

func newWebhook(c WebhookConfig, log *slog.Logger, m Metrics) (*webhook, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("alert webhook: the URL is not an http(s) URL")
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	switch {
	case c.Retries == 0:
		c.Retries = 3
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: c.Timeout}
	}
	return &webhook{url: c.URL, host: u.Host, client: client, retries: c.Retries, backoff: c.Backoff,
		q: make(chan string, queueLen), log: log, m: m}, nil
}

func (w *webhook) enqueue(text string) {
	select {
	case w.q <- text:
	default:
		w.m.WebhookFailed("queue_full")
		w.log.Warn("alert webhook queue full; message dropped (the alert is in the log and the metrics)", "webhook_host", w.host)
	}
}

// run posts queued messages one at a time, in order, until ctx ends.
func (w *webhook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case text := <-w.q:
			w.deliver(ctx, text)
		}
	}
}

// deliver posts text, retrying failures (network errors, 429 and 5xx) with a doubling pause.
func (w *webhook) deliver(ctx context.Context, text string) {
	body, _ := json.Marshal(map[string]string{"text": text})
	pause := w.backoff
	for attempt := 0; ; attempt++ {
		retry, err := w.post(ctx, body)
		if err == nil {
			w.m.WebhookSent()
			return
		}
		if !retry || attempt >= w.retries {
			w.m.WebhookFailed("gave_up")
			w.log.Warn("alert webhook failed; message dropped (the alert is in the log and the metrics)",
				"webhook_host", w.host, "attempts", attempt+1, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause *= 2
	}
}

func (w *webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("build request")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		// The error text names the URL: only say what kind of failure it was.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("post to %s: %w", w.host, ue.Err)
		}
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return false, fmt.Errorf("webhook answered %d", resp.StatusCode)
}
