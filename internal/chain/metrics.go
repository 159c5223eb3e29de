package chain

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker"
)

// Metrics is what a Client reports about its endpoints. endpoint is the endpoint's name (host[:port]),
// never its URL, which may carry an API key.
type Metrics interface {
	// Request counts one request sent to an endpoint and how long it took to answer (or fail).
	Request(chain, endpoint, method string, d time.Duration)
	// Error counts a request that failed, by txerr class (a node's answer such as nonce too low counts
	// too; "not found" does not).
	Error(chain, endpoint, typ string)
	// Breaker sets an endpoint's breaker state: 0 closed, 1 half-open, 2 open.
	Breaker(chain, endpoint string, state float64)
	// Batch observes how many calls a Coalescer put into one batch.
	Batch(chain string, calls int)
}

// breakerValue maps a breaker state to the gauge's value.
func breakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// latencyBuckets span a local node's milliseconds to a struggling provider's timeouts.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

type promMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	breaker  *prometheus.GaugeVec
	batch    *prometheus.HistogramVec
}

// NewMetrics registers the node clients' collectors (sluice_rpc_…) on reg. One value serves every chain
// of a process: the chain is a label.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rpc_requests_total",
			Help: "JSON-RPC requests sent to a node endpoint, by chain, endpoint (host, never the URL) and method.",
		}, []string{"chain", "endpoint", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rpc_errors_total",
			Help: "JSON-RPC requests that failed, by chain, endpoint and error type (txerr class).",
		}, []string{"chain", "endpoint", "type"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_rpc_latency_seconds",
			Help:    "Time for a node endpoint to answer one request, by chain and endpoint.",
			Buckets: latencyBuckets,
		}, []string{"chain", "endpoint"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_rpc_breaker_state",
			Help: "Circuit-breaker state of a node endpoint: 0 closed, 1 half-open, 2 open.",
		}, []string{"chain", "endpoint"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_rpc_batch_calls",
			Help:    "Calls coalesced into one JSON-RPC batch (the recipient checks' eth_getCode and eth_call), by chain.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"chain"}),
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.breaker, m.batch)
	return m
}

func (m *promMetrics) Request(chain, endpoint, method string, d time.Duration) {
	m.requests.WithLabelValues(chain, endpoint, method).Inc()
	m.latency.WithLabelValues(chain, endpoint).Observe(d.Seconds())
}

func (m *promMetrics) Error(chain, endpoint, typ string) {
	m.errors.WithLabelValues(chain, endpoint, typ).Inc()
}

func (m *promMetrics) Breaker(chain, endpoint string, state float64) {
	m.breaker.WithLabelValues(chain, endpoint).Set(state)
}

func (m *promMetrics) Batch(chain string, calls int) {
	m.batch.WithLabelValues(chain).Observe(float64(calls))
}

// NopMetrics reports nothing, for tests and tools.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Request(string, string, string, time.Duration) {}
func (nopMetrics) Error(string, string, string)                  {}
func (nopMetrics) Breaker(string, string, float64)               {}
func (nopMetrics) Batch(string, int)                             {}
