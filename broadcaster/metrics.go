package broadcaster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is what the broadcaster reports. Labels are bounded: chain, asset, error type.
type Metrics interface {
	// Sent counts a transaction the node accepted and the broadcaster marked BROADCASTED.
	Sent(chain string)
	// WithdrawalBroadcast counts a withdrawal moved SIGNED → BROADCASTED, sinceAccepted after the API
	// accepted it.
	WithdrawalBroadcast(chain, asset string, sinceAccepted time.Duration)
	// SendError counts a send the node refused (or that failed on the way), by txerr class.
	SendError(chain, typ string)
}

// latencyBuckets are the stage-latency histogram buckets, in seconds: from a fast chain's sub-second
// hop to a queue stuck for half an hour.
var latencyBuckets = []float64{.1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800}

type promMetrics struct {
	sent       *prometheus.CounterVec
	withdrawn  *prometheus.CounterVec
	sendErrors *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// NewMetrics registers the broadcaster's collectors (sluice_broadcaster_…) on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_broadcaster_transactions_sent_total",
			Help: "Transactions the node accepted and the broadcaster marked BROADCASTED, by chain.",
		}, []string{"chain"}),
		withdrawn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_broadcaster_withdrawals_broadcast_total",
			Help: "Withdrawals moved SIGNED to BROADCASTED, by chain and asset.",
		}, []string{"chain", "asset"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_broadcaster_send_errors_total",
			Help: "Failed sends (retried or dead-lettered by the consumer), by chain and error type (txerr class).",
		}, []string{"chain", "type"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_broadcaster_broadcast_seconds",
			Help:    "Time from the API accepting a withdrawal (its created_at) to its transaction being BROADCASTED, by chain.",
			Buckets: latencyBuckets,
		}, []string{"chain"}),
	}
	reg.MustRegister(m.sent, m.withdrawn, m.sendErrors, m.latency)
	return m
}

func (m *promMetrics) Sent(chain string) { m.sent.WithLabelValues(chain).Inc() }

func (m *promMetrics) WithdrawalBroadcast(chain, asset string, sinceAccepted time.Duration) {
	m.withdrawn.WithLabelValues(chain, asset).Inc()
	m.latency.WithLabelValues(chain).Observe(sinceAccepted.Seconds())
}

func (m *promMetrics) SendError(chain, typ string) { m.sendErrors.WithLabelValues(chain, typ).Inc() }

// NopMetrics reports nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Sent(string)                                       {}
func (nopMetrics) WithdrawalBroadcast(string, string, time.Duration) {}
func (nopMetrics) SendError(string, string)                          {}
