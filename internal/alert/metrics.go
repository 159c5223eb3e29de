package alert

import "github.com/prometheus/client_golang/prometheus"

// Metrics is what the Hub counts. Kind and severity are bounded by the code that fires alerts.
type Metrics interface {
	Fired(kind, severity string)
	Resolved(kind, severity string)
	Open(kind, severity string, n int)
	WebhookSent()
	WebhookFailed(reason string)
}

// NopMetrics counts nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Fired(string, string)        {}
func (nopMetrics) Resolved(string, string)     {}
func (nopMetrics) Open(string, string, int)    {}
func (nopMetrics) WebhookSent()                {}
func (nopMetrics) WebhookFailed(reason string) {}

type promMetrics struct {
	fired, resolved *prometheus.CounterVec
	open            *prometheus.GaugeVec
	hookSent        prometheus.Counter
	hookFailed      *prometheus.CounterVec
}

// NewMetrics registers the alert collectors on reg. sluice_alerts_open is the shared count (every
// instance reads it from the alerts table), so aggregate it with max, not sum.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_alerts_fired_total",
			Help: "Alerts raised (once per condition until resolved) by this process."}, []string{"kind", "severity"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_alerts_resolved_total",
			Help: "Alerts resolved by this process."}, []string{"kind", "severity"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_alerts_open",
			Help: "Alerts open now, across every instance (from the alerts table)."}, []string{"kind", "severity"}),
		hookSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_alerts_webhook_sent_total",
			Help: "Alert messages the webhook accepted."}),
		hookFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_alerts_webhook_failed_total",
			Help: "Alert messages not delivered to the webhook, by reason (gave_up, queue_full)."}, []string{"reason"}),
	}
	reg.MustRegister(m.fired, m.resolved, m.open, m.hookSent, m.hookFailed)
	return m
}

func (m *promMetrics) Fired(kind, sev string)    { m.fired.WithLabelValues(kind, sev).Inc() }
func (m *promMetrics) Resolved(kind, sev string) { m.resolved.WithLabelValues(kind, sev).Inc() }
func (m *promMetrics) Open(kind, sev string, n int) {
	m.open.WithLabelValues(kind, sev).Set(float64(n))
}
func (m *promMetrics) WebhookSent()                { m.hookSent.Inc() }
func (m *promMetrics) WebhookFailed(reason string) { m.hookFailed.WithLabelValues(reason).Inc() }
