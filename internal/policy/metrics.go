package policy

import "github.com/prometheus/client_golang/prometheus"

// Metrics is what the engine reports.
type Metrics interface {
	// Decision counts an outcome (accepted, held, refused) and the rule that decided it ("" for none).
	Decision(rule, outcome string)
	// Lookalike counts a look-alike check by what answered it ("index" or "database").
	Lookalike(answeredBy string)
	// DestinationEntries is the size of the destination index.
	DestinationEntries(n int)
}

type promMetrics struct {
	decisions, lookalike *prometheus.CounterVec
	entries              prometheus.Gauge
}

// NewMetrics registers sluice_policy_decisions_total, sluice_policy_lookalike_checks_total and
// sluice_policy_destination_index_entries on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_policy_decisions_total",
		Help: "Withdrawal policy decisions by outcome (accepted, held, refused) and rule.",
	}, []string{"rule", "outcome"}),
		lookalike: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_policy_lookalike_checks_total",
			Help: "Address-poisoning checks by what answered them: the in-memory destination index or the database.",
		}, []string{"answered_by"}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_policy_destination_index_entries",
			Help: "Entries (client, chain, first and last four hex characters) in the API's destination index.",
		})}
	reg.MustRegister(m.decisions, m.lookalike, m.entries)
	return m
}

func (m *promMetrics) Lookalike(by string)      { m.lookalike.WithLabelValues(by).Inc() }
func (m *promMetrics) DestinationEntries(n int) { m.entries.Set(float64(n)) }

func (m *promMetrics) Decision(rule, outcome string) {
	m.decisions.WithLabelValues(rule, outcome).Inc()
}

type nopMetrics struct{}

// NopMetrics reports nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

func (nopMetrics) Decision(string, string) {}
func (nopMetrics) Lookalike(string)        {}
func (nopMetrics) DestinationEntries(int)  {}
