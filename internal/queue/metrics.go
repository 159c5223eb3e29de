package queue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is what a Consumer reports. One value serves every consumer of a process: the queue is a label.
type Metrics interface {
	// Handled counts a delivery that ended in outcome (handled, retried, dead_lettered) after d in its handler.
	Handled(queue, outcome string, d time.Duration)
	// Released counts a message given back at shutdown.
	Released(queue string)
	ReceiveError(queue string)
	// InFlight moves the number of messages being handled now by delta.
	InFlight(queue string, delta int)
}

type promMetrics struct {
	messages      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	receiveErrors *prometheus.CounterVec
	inFlight      *prometheus.GaugeVec
}

// NewMetrics registers the consumers' collectors (sluice_queue_…) on reg. Call it once per registry and
// share the result among the process's consumers.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_queue_messages_total",
			Help: "Messages processed by queue consumers, by queue and outcome (handled, retried, dead_lettered, released).",
		}, []string{"queue", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_queue_handle_duration_seconds",
			Help:    "Time spent in message handlers, by queue and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"queue", "outcome"}),
		receiveErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_queue_receive_errors_total",
			Help: "Failed receive calls, by queue.",
		}, []string{"queue"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_queue_in_flight",
			Help: "Messages being handled now, by queue.",
		}, []string{"queue"}),
	}
	reg.MustRegister(m.messages, m.duration, m.receiveErrors, m.inFlight)
	return m
}

func (m *promMetrics) Handled(queue, outcome string, d time.Duration) {
	m.messages.WithLabelValues(queue, outcome).Inc()
	m.duration.WithLabelValues(queue, outcome).Observe(d.Seconds())
}

func (m *promMetrics) Released(queue string) {
	m.messages.WithLabelValues(queue, OutcomeReleased).Inc()
}

func (m *promMetrics) ReceiveError(queue string) { m.receiveErrors.WithLabelValues(queue).Inc() }

func (m *promMetrics) InFlight(queue string, delta int) {
	m.inFlight.WithLabelValues(queue).Add(float64(delta))
}

// NopMetrics reports nothing, for tests and tools.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Handled(string, string, time.Duration) {}
func (nopMetrics) Released(string)                       {}
func (nopMetrics) ReceiveError(string)                   {}
func (nopMetrics) InFlight(string, int)                  {}
