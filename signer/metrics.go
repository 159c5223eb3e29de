package signer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is what the signer counts.
type Metrics interface {
	// WithdrawalSigned counts one withdrawal moved to SIGNED (alone or in a batch), waited after it was
	// accepted.
	WithdrawalSigned(chain, asset string, waited time.Duration)
	// WithdrawalFailed counts one withdrawal the signer moved to FAILED, by error type.
	WithdrawalFailed(chain, asset, errType string)
	// TransactionSigned counts one signed and recorded transaction, by kind: withdrawal, batch, approve,
	// refee (gap fills and stuck bumps are counted by the recovery service).
	TransactionSigned(chain, kind string)
	// AwaitingFunds counts one withdrawal starting to wait for funds (once per wait).
	AwaitingFunds(chain, asset string)
}

type promMetrics struct {
	signed   *prometheus.CounterVec
	failed   *prometheus.CounterVec
	txs      *prometheus.CounterVec
	signTime *prometheus.HistogramVec
	awaiting *prometheus.CounterVec
}

// NewMetrics registers the signer's collectors (sluice_signer_…) on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		signed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_signer_withdrawals_signed_total",
			Help: "Withdrawals moved to SIGNED, alone or in a batch, by chain and asset.",
		}, []string{"chain", "asset"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_signer_withdrawals_failed_total",
			Help: "Withdrawals the signer moved to FAILED, by chain, asset and error type.",
		}, []string{"chain", "asset", "type"}),
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_signer_transactions_signed_total",
			Help: "Transactions signed and recorded, by chain and kind (withdrawal, batch, approve, refee; gap fills and fee bumps are sluice_recovery_…).",
		}, []string{"chain", "kind"}),
		signTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_signer_sign_seconds",
			Help:    "Time from a withdrawal's acceptance to its signing, by chain.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120, 300, 900},
		}, []string{"chain"}),
		awaiting: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_signer_awaiting_funds_total",
			Help: "Withdrawals that started to wait for a hot wallet able to fund them (awaiting_funds), by chain and asset.",
		}, []string{"chain", "asset"}),
	}
	reg.MustRegister(m.signed, m.failed, m.txs, m.signTime, m.awaiting)
	return m
}

func (m *promMetrics) WithdrawalSigned(chain, asset string, waited time.Duration) {
	m.signed.WithLabelValues(chain, asset).Inc()
	m.signTime.WithLabelValues(chain).Observe(waited.Seconds())
}

func (m *promMetrics) WithdrawalFailed(chain, asset, errType string) {
	m.failed.WithLabelValues(chain, asset, errType).Inc()
}

func (m *promMetrics) TransactionSigned(chain, kind string) { m.txs.WithLabelValues(chain, kind).Inc() }

func (m *promMetrics) AwaitingFunds(chain, asset string) {
	m.awaiting.WithLabelValues(chain, asset).Inc()
}

// NopMetrics counts nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) WithdrawalSigned(string, string, time.Duration) {}
func (nopMetrics) WithdrawalFailed(string, string, string)        {}
func (nopMetrics) TransactionSigned(string, string)               {}
func (nopMetrics) AwaitingFunds(string, string)                   {}
