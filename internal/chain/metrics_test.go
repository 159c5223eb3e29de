package chain_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// TestMetricsNameEndpointsAndFollowBreaker checks the RPC metrics against a failing endpoint in front of
// a good one: requests and errors are counted per endpoint named by host:port (never the URL, whose
// path and query may hold an API key), errors by txerr class, and the breaker gauge goes 0 → 2 (open)
// → 0 as the endpoint fails and recovers. Every call is a span.
func TestMetricsNameEndpointsAndFollowBreaker(t *testing.T) {
	node := testenv.Chain(t, time.Hour)
	p := newProxy(t, node.URL)
	reg := prometheus.NewRegistry()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	secretURL := p.srv.URL + "/?apikey=SECRET" // the node ignores the query
	const failures, openFor = 2, 300 * time.Millisecond
	c := dial(t, []string{secretURL, node.URL}, 300*time.Millisecond, chain.WithBreaker(failures, openFor),
		chain.WithMetrics(chain.NewMetrics(reg)), chain.WithTracer(tp.Tracer("test")))
	bad, good := host(t, p.srv.URL), host(t, node.URL)
	// Calls are spans only inside traced work.
	ctx, root := tp.Tracer("test").Start(testCtx(t), "work")

	breaker := func() float64 { return gaugeValue(t, reg, "sluice_rpc_breaker_state", bad) }
	if b := breaker(); b != 0 {
		t.Fatalf("breaker gauge %v at start, want 0", b)
	}
	p.mode.Store(fail503)
	for i := 0; i < failures+3; i++ {
		if _, err := c.BlockNumber(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if b := breaker(); b != 2 {
		t.Fatalf("breaker gauge %v after %d failures, want 2 (open)", b, failures)
	}
	p.mode.Store(forward)
	time.Sleep(openFor + 100*time.Millisecond)
	if _, err := c.BlockNumber(ctx); err != nil {
		t.Fatal(err)
	}
	if b := breaker(); b != 0 {
		t.Fatalf("breaker gauge %v after a good probe, want 0", b)
	}

	text, err := testutil.CollectAndFormat(reg, expfmt.TypeTextPlain, "sluice_rpc_requests_total", "sluice_rpc_errors_total", "sluice_rpc_latency_seconds")
	if err != nil {
		t.Fatal(err)
	}
	out := string(text)
	for _, want := range []string{
		`sluice_rpc_requests_total{chain="local",endpoint="` + bad + `",method="eth_blockNumber"} 3`, // 2 failures + the probe
		`sluice_rpc_errors_total{chain="local",endpoint="` + bad + `",type="NETWORK"} 2`,
		`sluice_rpc_requests_total{chain="local",endpoint="` + good + `",method="eth_blockNumber"} 5`,
		`sluice_rpc_latency_seconds_count{chain="local",endpoint="` + good + `"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET") || strings.Contains(out, "http") {
		t.Errorf("an endpoint label shows its URL:\n%s", out)
	}
	root.End()
	if _, err := c.BlockNumber(testCtx(t)); err != nil { // untraced: no span
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	calls, failovers := 0, 0
	for _, s := range spans {
		if s.Name == "rpc eth_blockNumber" && s.Parent.SpanID() == root.SpanContext().SpanID() {
			calls++
		}
		for _, e := range s.Events {
			attrs := map[string]string{}
			for _, a := range e.Attributes {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			if e.Name == "rpc.attempt" && attrs["endpoint"] == bad && attrs["outcome"] == "NETWORK" {
				failovers++
			}
		}
	}
	if failovers != failures {
		t.Errorf("%d failed attempts on %s recorded as span events, want %d", failovers, bad, failures)
	}
	if calls != failures+3+1 || len(spans) != calls+1 {
		t.Errorf("%d call spans under the work's span (%d spans in all), want %d: one per traced call", calls, len(spans), failures+4)
	}
}

func host(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name, endpoint string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == endpoint {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s for endpoint %s", name, endpoint)
	return 0
}
