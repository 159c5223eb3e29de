package api

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-custody/sluice/internal/service"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	created      *prometheus.CounterVec
	replays      *prometheus.CounterVec
	canceled     prometheus.Counter
	authFailures prometheus.Counter
	rateLimited  prometheus.Counter
}

// newRegistry is the registry /metrics serves when Deps.Metrics is nil: the API's metrics plus the Go
// runtime and process collectors.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
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
	m.requests = service.Register(reg, m.requests)
	m.duration = service.Register(reg, m.duration)
	m.created = service.Register(reg, m.created)
	m.replays = service.Register(reg, m.replays)
	m.canceled = service.Register(reg, m.canceled)
	m.authFailures = service.Register(reg, m.authFailures)
	m.rateLimited = service.Register(reg, m.rateLimited)
	return m
}
