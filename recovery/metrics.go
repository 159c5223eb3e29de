package recovery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is what the recovery service counts, per chain.
type Metrics interface {
	GapFilled(chain string)
	Bumped(chain string)
	Resent(chain string)
	AtCap(chain string)
	Reorged(chain string)
	// Swept reports one stuck-transaction sweep: the in-flight count, the stuck ones per sending wallet
	// (every hot wallet of the chain is listed, with 0 when none of its transactions is stuck, so a
	// cleared wallet's gauge drops) and the age of the oldest stuck attempt.
	Swept(chain string, inFlight int, stuckByWallet map[string]int, oldest time.Duration, took time.Duration)
}

// NopMetrics counts nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) GapFilled(string)                                                {}
func (nopMetrics) Bumped(string)                                                   {}
func (nopMetrics) Resent(string)                                                   {}
func (nopMetrics) AtCap(string)                                                    {}
func (nopMetrics) Reorged(string)                                                  {}
func (nopMetrics) Swept(string, int, map[string]int, time.Duration, time.Duration) {}

type promMetrics struct {
	gaps, bumps, resent, atCap, reorged *prometheus.CounterVec
	inFlight, stuck, oldest             *prometheus.GaugeVec
	sweep                               *prometheus.HistogramVec
}

// NewMetrics registers the recovery collectors on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_recovery_" + name, Help: help}, []string{"chain"})
	}
	m := &promMetrics{
		gaps:   counter("gaps_filled_total", "Nonce gaps filled with a zero-value self-transfer."),
		bumps:  counter("bumps_total", "Stuck transactions replaced at their nonce with higher fees."),
		resent: counter("resent_total", "Transactions the node no longer knew, resent from their recorded bytes."),
		atCap:  counter("at_cap_total", "Stuck-transaction sweeps that found a bump would exceed the fee cap."),
		reorged: counter("deep_reorgs_total", "CONFIRMED transactions re-opened because their block left the canonical chain "+
			"beyond the confirmation depth."),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_recovery_in_flight",
			Help: "Broadcast transactions not yet settled, at the last sweep."}, []string{"chain"}),
		stuck: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_recovery_stuck_transactions",
			Help: "Transactions past the stuck threshold at the last sweep, by chain and sending hot wallet."}, []string{"chain", "wallet"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_recovery_stuck_oldest_seconds",
			Help: "Age of the oldest stuck attempt at the last sweep (blocks since it was first seen × block time); 0 when none."}, []string{"chain"}),
		sweep: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_recovery_sweep_seconds",
			Help: "Time of one stuck-transaction sweep of a chain.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"chain"}),
	}
	reg.MustRegister(m.gaps, m.bumps, m.resent, m.atCap, m.reorged, m.inFlight, m.stuck, m.oldest, m.sweep)
	return m
}

func (m *promMetrics) GapFilled(c string) { m.gaps.WithLabelValues(c).Inc() }
func (m *promMetrics) Bumped(c string)    { m.bumps.WithLabelValues(c).Inc() }
func (m *promMetrics) Resent(c string)    { m.resent.WithLabelValues(c).Inc() }
func (m *promMetrics) AtCap(c string)     { m.atCap.WithLabelValues(c).Inc() }
func (m *promMetrics) Reorged(c string)   { m.reorged.WithLabelValues(c).Inc() }
func (m *promMetrics) Swept(c string, inFlight int, stuckByWallet map[string]int, oldest, took time.Duration) {
	m.inFlight.WithLabelValues(c).Set(float64(inFlight))
	for w, n := range stuckByWallet {
		m.stuck.WithLabelValues(c, w).Set(float64(n))
	}
	m.oldest.WithLabelValues(c).Set(oldest.Seconds())
	m.sweep.WithLabelValues(c).Observe(took.Seconds())
}
