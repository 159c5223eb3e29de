// Package telemetry owns the metrics that describe the pipeline as a whole rather than one service
// (withdrawal transitions and stage latencies, queue depths, hot-wallet balances, nonce lags) and the
// OpenTelemetry tracer provider of a process.
package telemetry

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/store"
)

// Stages of sluice_withdrawal_stage_seconds: the time from the API accepting a withdrawal to it being
// signed, broadcast, mined (its transaction's block time) and confirmed.
const (
	StageSigned    = "signed"
	StageBroadcast = "broadcast"
	StageMined     = "mined"
	StageConfirmed = "confirmed"
)

// stageBuckets span a fast chain's sub-second signing to a slow chain's deep confirmations.
var stageBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600}

// StageSeconds is the process's sluice_withdrawal_stage_seconds{chain,stage}, registered on reg the
// first time: the transitions observer reports three stages, the monitor the mined one.
func StageSeconds(reg prometheus.Registerer) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_withdrawal_stage_seconds",
		Help:    "Time from the API accepting a withdrawal (created_at) to its stage: signed, broadcast, mined (block time), confirmed; by chain.",
		Buckets: stageBuckets,
	}, []string{"chain", "stage"})
	return registerOnce(reg, h)
}

// GasUsed is the process's sluice_gas_used_total{chain,wallet}, registered on reg the first time.
func GasUsed(reg prometheus.Registerer) *prometheus.CounterVec {
	return registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_gas_used_total",
		Help: "Gas used by settled transactions (from their receipts), by chain and hot wallet.",
	}, []string{"chain", "wallet"}))
}

// FeesPaid is the process's sluice_fees_paid_wei_total{chain,wallet}, registered on reg the first time.
func FeesPaid(reg prometheus.Registerer) *prometheus.CounterVec {
	return registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_fees_paid_wei_total",
		Help: "Fees paid by settled transactions (gasUsed × effectiveGasPrice, in wei), by chain and hot wallet.",
	}, []string{"chain", "wallet"}))
}

// Shared lists the pipeline-wide families a service's NewMetrics may register (through the functions
// above) besides its own sluice_<service>_… ones: they describe a withdrawal or a wallet, not the
// service, and are defined here only.
var Shared = []string{"sluice_withdrawal_stage_seconds", "sluice_gas_used_total", "sluice_fees_paid_wei_total"}

// registerOnce registers c on reg, or returns the equal collector registered before.
func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a name clash with a different collector is a programming error, as MustRegister
	}
	return c
}

// Transitions counts every committed withdrawal status change and times the stages that are status
// changes. It is the store's Observer (store.WithObserver).
type Transitions struct {
	total  *prometheus.CounterVec
	stages *prometheus.HistogramVec
	now    func() time.Time
}

// NewTransitions registers sluice_withdrawal_transitions_total (and the stage histogram) on reg.
func NewTransitions(reg prometheus.Registerer) *Transitions {
	t := &Transitions{
		total: registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_withdrawal_transitions_total",
			Help: "Committed withdrawal status changes, by chain, asset, from and to status (from is empty for acceptance).",
		}, []string{"chain", "asset", "from", "to"})),
		stages: StageSeconds(reg),
		now:    time.Now,
	}
	return t
}

// Transitioned implements store.Observer.
func (t *Transitions) Transitioned(c store.Transitioned) {
	t.total.WithLabelValues(c.Chain, c.Asset, string(c.From), string(c.To)).Inc()
	var stage string
	switch c.To {
	case store.Signed:
		stage = StageSigned
	case store.Broadcasted:
		stage = StageBroadcast
	case store.Confirmed:
		stage = StageConfirmed
	default:
		return
	}
	if c.CreatedAt.IsZero() {
		return // its labels could not be read: counted, not timed
	}
	t.stages.WithLabelValues(c.Chain, stage).Observe(max(t.now().Sub(c.CreatedAt), 0).Seconds())
}
