package accountmgr

import (
	"math/big"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is what the account manager counts.
type Metrics interface {
	// Balance sets a managed wallet's (or the main account's) balance of an asset, in base units.
	Balance(chain, wallet, asset string, v *big.Int)
	// TransferQueued counts one balance transfer queued, by kind (top_up, sweep).
	TransferQueued(chain, asset, kind string)
	// Unmet sets how much the main account lacks, in base units, to cover the deficits of an asset.
	Unmet(chain, asset string, v *big.Int)
}

type promMetrics struct {
	balance   *prometheus.GaugeVec
	transfers *prometheus.CounterVec
	unmet     *prometheus.GaugeVec
}

// NewMetrics registers the account manager's collectors (sluice_accountmgr_…) on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		balance: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_accountmgr_balance",
			Help: "Balance of a managed hot wallet or the main account, in the asset's base units, as of the last check.",
		}, []string{"chain", "wallet", "asset"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_accountmgr_topups_total",
			Help: "Balance transfers queued, by chain, asset and kind (top_up: main account to a hot wallet; sweep: back).",
		}, []string{"chain", "asset", "kind"}),
		unmet: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_accountmgr_deficit_unmet",
			Help: "How much the main account lacks to cover every hot wallet's deficit, in the asset's base units (0: covered).",
		}, []string{"chain", "asset"}),
	}
	reg.MustRegister(m.balance, m.transfers, m.unmet)
	return m
}

func float(v *big.Int) float64 {
	f, _ := new(big.Float).SetInt(v).Float64()
	return f
}

func (m *promMetrics) Balance(chain, wallet, asset string, v *big.Int) {
	m.balance.WithLabelValues(chain, wallet, asset).Set(float(v))
}

func (m *promMetrics) TransferQueued(chain, asset, kind string) {
	m.transfers.WithLabelValues(chain, asset, kind).Inc()
}

func (m *promMetrics) Unmet(chain, asset string, v *big.Int) {
	m.unmet.WithLabelValues(chain, asset).Set(float(v))
}

// NopMetrics counts nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Balance(string, string, string, *big.Int) {}
func (nopMetrics) TransferQueued(string, string, string)    {}
func (nopMetrics) Unmet(string, string, *big.Int)           {}
