package app

import (
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/accountmgr"
	"github.com/sluice-custody/sluice/api"
	"github.com/sluice-custody/sluice/broadcaster"
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/outbox"
	"github.com/sluice-custody/sluice/internal/telemetry"
	"github.com/sluice-custody/sluice/monitor"
	"github.com/sluice-custody/sluice/recovery"
	"github.com/sluice-custody/sluice/signer"
)

// recorder is a Registerer that also keeps the name of every metric registered through it.
type recorder struct {
	prometheus.Registerer
	names []string
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Every service's metrics go on one registry in `sluice all` without a collision (MustRegister would
// panic), each named sluice_<its service>_… unless it is one of telemetry's pipeline-wide families.
func TestAllServicesShareOneRegistry(t *testing.T) {
	shared := NewRegistry()
	for service, register := range map[string]func(prometheus.Registerer){
		"api":         func(r prometheus.Registerer) { api.NewMetrics(r) },
		"signer":      func(r prometheus.Registerer) { signer.NewMetrics(r) },
		"broadcaster": func(r prometheus.Registerer) { broadcaster.NewMetrics(r) },
		"monitor":     func(r prometheus.Registerer) { monitor.NewMetrics(r) },
		"queue":       func(r prometheus.Registerer) { queue.NewMetrics(r) },
		"outbox":      func(r prometheus.Registerer) { outbox.NewMetrics(r) },
		"recovery":    func(r prometheus.Registerer) { recovery.NewMetrics(r) },
		"alerts":      func(r prometheus.Registerer) { alert.NewMetrics(r) },
		"accountmgr":  func(r prometheus.Registerer) { accountmgr.NewMetrics(r) },
	} {
		rec := &recorder{Registerer: shared}
		register(rec)
		if len(rec.names) == 0 {
			t.Errorf("%s registered no metric", service)
		}
		// The alerts' are sluice_alerts_… as named in the issue (sluice_alerts_open, sluice_alerts_fired_total).
		prefix := regexp.MustCompile(`^sluice_` + service + `_[a-z_]+$`)
		for _, n := range rec.names {
			if !prefix.MatchString(n) && !slices.Contains(telemetry.Shared, n) {
				t.Errorf("%s registered %s, want sluice_%s_…", service, n, service)
			}
		}
	}
}

// A service built twice by one App (a test or tool running it again) reuses its metrics instead of
// registering them twice, which would panic.
func TestMetricsOfRegistersOnce(t *testing.T) {
	a := &App{Registry: NewRegistry(), metrics: map[string]any{}}
	m1 := metricsOf(a, "broadcaster", broadcaster.NewMetrics)
	m2 := metricsOf(a, "broadcaster", broadcaster.NewMetrics)
	if m1 != m2 {
		t.Fatal("second build made new broadcaster metrics")
	}
	m1.Sent("local")
	mfs, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sluice_broadcaster_transactions_sent_total" {
			return
		}
	}
	t.Fatal("the App's registry does not hold the broadcaster's metrics")
}
