package monitor

import (
	"math/big"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/telemetry"
)

// Metrics is what the monitor reports. Labels are bounded: chain, asset, error type.
type Metrics interface {
	// Confirmed counts a withdrawal moved to CONFIRMED, sinceAccepted after the API accepted it.
	Confirmed(chain, asset string, sinceAccepted time.Duration)
	// Failed counts a withdrawal moved to FAILED, by txerr class.
	Failed(chain, asset, typ string)
	// Reorg counts a receipt at depth whose block was no longer canonical.
	Reorg(chain string)
	// Mined observes a settled withdrawal's time from acceptance to its transaction's block time
	// (sluice_withdrawal_stage_seconds{stage="mined"}).
	Mined(chain string, sinceAccepted time.Duration)
	// Paid counts the gas and fee (gasUsed × effectiveGasPrice, in wei) of a settled transaction of
	// wallet, a configured hot wallet.
	Paid(chain, wallet string, gasUsed uint64, feeWei *big.Int)
	// Resent counts a transaction the node took back when the monitor sent its recorded bytes again
	// (it had dropped it; one it still held answers "already known" and is not counted).
	Resent(chain string)
}

// confirmBuckets span a fast test chain's seconds to a slow chain's deep confirmations (Polygon's
// hundreds of blocks, Ethereum's finality) in seconds.
var confirmBuckets = []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600}

type promMetrics struct {
	confirmed *prometheus.CounterVec
	failed    *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	reorgs    *prometheus.CounterVec
	resent    *prometheus.CounterVec
	stages    *prometheus.HistogramVec
	gas       *prometheus.CounterVec
	fees      *prometheus.CounterVec
}

// NewMetrics registers the monitor's collectors (sluice_monitor_…) on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		confirmed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_monitor_withdrawals_confirmed_total",
			Help: "Withdrawals moved to CONFIRMED at the chain's confirmation depth, by chain and asset.",
		}, []string{"chain", "asset"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_monitor_withdrawals_failed_total",
			Help: "Withdrawals moved to FAILED from a final receipt, by chain, asset and error type (txerr class).",
		}, []string{"chain", "asset", "type"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_monitor_confirm_seconds",
			Help:    "Time from the API accepting a withdrawal (its created_at) to its CONFIRMED, by chain.",
			Buckets: confirmBuckets,
		}, []string{"chain"}),
		reorgs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_monitor_reorgs_total",
			Help: "Receipts at confirmation depth found in a block that was no longer canonical (a reorg the node had not caught up with), by chain.",
		}, []string{"chain"}),
		resent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_monitor_resent_total",
			Help: "Transactions the node no longer held (dropped) and took back when the monitor re-sent their recorded bytes, by chain.",
		}, []string{"chain"}),
		// Pipeline-wide families, defined in telemetry: the stage histogram is shared with the store's
		// transitions observer.
		stages: telemetry.StageSeconds(reg),
		gas:    telemetry.GasUsed(reg),
		fees:   telemetry.FeesPaid(reg),
	}
	reg.MustRegister(m.confirmed, m.failed, m.latency, m.reorgs, m.resent)
	return m
}

func (m *promMetrics) Confirmed(chain, asset string, sinceAccepted time.Duration) {
	m.confirmed.WithLabelValues(chain, asset).Inc()
	m.latency.WithLabelValues(chain).Observe(sinceAccepted.Seconds())
}

func (m *promMetrics) Failed(chain, asset, typ string) {
	m.failed.WithLabelValues(chain, asset, typ).Inc()
}

func (m *promMetrics) Reorg(chain string) { m.reorgs.WithLabelValues(chain).Inc() }

func (m *promMetrics) Resent(chain string) { m.resent.WithLabelValues(chain).Inc() }

func (m *promMetrics) Mined(chain string, sinceAccepted time.Duration) {
	m.stages.WithLabelValues(chain, telemetry.StageMined).Observe(max(sinceAccepted, 0).Seconds())
}

func (m *promMetrics) Paid(chain, wallet string, gasUsed uint64, feeWei *big.Int) {
	m.gas.WithLabelValues(chain, wallet).Add(float64(gasUsed))
	f, _ := new(big.Float).SetInt(feeWei).Float64()
	m.fees.WithLabelValues(chain, wallet).Add(f)
}

// NopMetrics reports nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Confirmed(string, string, time.Duration) {}
func (nopMetrics) Failed(string, string, string)           {}
func (nopMetrics) Reorg(string)                            {}
func (nopMetrics) Mined(string, time.Duration)             {}
func (nopMetrics) Paid(string, string, uint64, *big.Int)   {}
func (nopMetrics) Resent(string)                           {}
