package policy

import "github.com/prometheus/client_golang/prometheus"

// Metrics is what the engine reports.
type Metrics interface {
	// Decision counts an outcome (accepted, held, refused) and the rule that decided it ("" for none).
	Decision(rule, outcome string)
}

type promMetrics struct{ decisions *prometheus.CounterVec }

// NewMetrics registers sluice_policy_decisions_total on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_policy_decisions_total",
		Help: "Withdrawal policy decisions by outcome (accepted, held, refused) and rule.",
	}, []string{"rule", "outcome"})}
	reg.MustRegister(m.decisions)
	return m
}

func (m *promMetrics) Decision(rule, outcome string) {
	m.decisions.WithLabelValues(rule, outcome).Inc()
}

type nopMetrics struct{}

// NopMetrics reports nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

func (nopMetrics) Decision(string, string) {}
