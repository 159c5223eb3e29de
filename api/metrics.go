package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is what the API reports.
type Metrics interface {
	// Request counts a served request and its latency; method and route are bounded (the route pattern,
	// never the path).
	Request(method, route string, code int, d time.Duration)
	// Created counts a withdrawal accepted (201).
	Created(chain, asset string)
	// Replay counts a POST whose external_id existed: outcome "same" (200) or "conflict" (409).
	Replay(outcome string)
	Canceled()
	AuthFailure()
	RateLimited()
}

type promMetrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	created      *prometheus.CounterVec
	replays      *prometheus.CounterVec
	canceled     prometheus.Counter
	authFailures prometheus.Counter
	rateLimited  prometheus.Counter
}

// NewMetrics registers the API's collectors (sluice_api_…) on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_api_request_duration_seconds",
			Help:    "HTTP request latency, by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_withdrawals_created_total",
			Help: "Withdrawals accepted (201), by chain and asset.",
		}, []string{"chain", "asset"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_withdrawal_replays_total",
			Help: "POSTs whose external_id existed: outcome=same (200) or conflict (409).",
		}, []string{"outcome"}),
		canceled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_api_withdrawals_canceled_total",
			Help: "Withdrawals canceled by their client.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_api_auth_failures_total",
			Help: "Requests refused for a missing or unknown API key.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_api_rate_limited_total",
			Help: "Requests refused by the per-client rate limit.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.created, m.replays, m.canceled, m.authFailures, m.rateLimited)
	return m
}

func (m *promMetrics) Request(method, route string, code int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

func (m *promMetrics) Created(chain, asset string) { m.created.WithLabelValues(chain, asset).Inc() }
func (m *promMetrics) Replay(outcome string)       { m.replays.WithLabelValues(outcome).Inc() }
func (m *promMetrics) Canceled()                   { m.canceled.Inc() }
func (m *promMetrics) AuthFailure()                { m.authFailures.Inc() }
func (m *promMetrics) RateLimited()                { m.rateLimited.Inc() }

// NopMetrics reports nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Request(string, string, int, time.Duration) {}
func (nopMetrics) Created(string, string)                     {}
func (nopMetrics) Replay(string)                              {}
func (nopMetrics) Canceled()                                  {}
func (nopMetrics) AuthFailure()                               {}
func (nopMetrics) RateLimited()                               {}
