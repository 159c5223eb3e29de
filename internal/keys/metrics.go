package keys

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts key loads per backend; a failed load is what the key-unavailable alert fires on.
type Metrics interface {
	// Load records one attempt to load (decrypt, fetch or verify) a wallet's key.
	Load(backend string, ok bool)
}

type promMetrics struct{ loads *prometheus.CounterVec }

// NewMetrics registers sluice_keys_loads_total{backend,result} on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{loads: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_keys_loads_total",
		Help: "Key loads by backend and result (ok or error); any error means a wallet cannot sign.",
	}, []string{"backend", "result"})}
	reg.MustRegister(m.loads)
	return m
}

func (m *promMetrics) Load(backend string, ok bool) {
	r := "error"
	if ok {
		r = "ok"
	}
	m.loads.WithLabelValues(backend, r).Inc()
}

type nopMetrics struct{}

// NopMetrics records nothing (tests).
func NopMetrics() Metrics { return nopMetrics{} }

func (nopMetrics) Load(string, bool) {}
