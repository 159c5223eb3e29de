package signer

// TEMP: a minimal signer counter so the metrics branch's end-to-end scrape test can pass; superseded by
// core's signer metrics (drop this file and its two call sites when merging).

import "github.com/prometheus/client_golang/prometheus"

// Metrics is what the signer reports.
type Metrics interface {
	// WithdrawalsSigned counts n withdrawals moved SIGNING → SIGNED.
	WithdrawalsSigned(chain, asset string, n int)
}

type promMetrics struct{ signed *prometheus.CounterVec }

// NewMetrics registers the signer's collectors on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{signed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_signer_withdrawals_signed_total",
		Help: "Withdrawals moved SIGNING to SIGNED, by chain and asset.",
	}, []string{"chain", "asset"})}
	reg.MustRegister(m.signed)
	return m
}

func (m *promMetrics) WithdrawalsSigned(chain, asset string, n int) {
	m.signed.WithLabelValues(chain, asset).Add(float64(n))
}

func (s *Signer) countSigned(chain, asset string, n int) {
	if s.Metrics != nil {
		s.Metrics.WithdrawalsSigned(chain, asset, n)
	}
}
