package admin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is what the admin API reports.
type Metrics interface {
	// Request counts a served request and its latency; method and route are bounded (the route pattern).
	Request(method, route string, code int, d time.Duration)
	// Login counts a login attempt by outcome: ok, failed, locked, rate_limited.
	Login(outcome string)
	// Action counts an action request by action (a registered name) and status (planned, done,
	// awaiting_approval, rejected, expired, failed).
	Action(action, status string)
}

type promMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	actions  *prometheus.CounterVec
}

// NewMetrics registers the admin API's collectors (sluice_admin_…) on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_admin_requests_total",
			Help: "Admin API requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_admin_request_duration_seconds",
			Help:    "Admin API request latency, by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_admin_logins_total",
			Help: "Operator login attempts, by outcome (ok, failed, locked, rate_limited).",
		}, []string{"outcome"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_admin_actions_total",
			Help: "Operator actions, by action and status (planned, done, awaiting_approval, rejected, expired, failed).",
		}, []string{"action", "status"}),
	}
	reg.MustRegister(m.requests, m.duration, m.logins, m.actions)
	return m
}

func (m *promMetrics) Request(method, route string, code int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

func (m *promMetrics) Login(outcome string)         { m.logins.WithLabelValues(outcome).Inc() }
func (m *promMetrics) Action(action, status string) { m.actions.WithLabelValues(action, status).Inc() }

// NopMetrics reports nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Request(string, string, int, time.Duration) {}
func (nopMetrics) Login(string)                               {}
func (nopMetrics) Action(string, string)                      {}
