package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-custody/sluice/internal/testenv"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	for i := 0; i < 50; i++ {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("GET %s never answered", url)
	return 0, ""
}

func TestRunServesHealthAndDrainsOnCancel(t *testing.T) {
	addr := testenv.FreeAddr(t)
	var healthy atomic.Bool
	ready := []Check{func(context.Context) error {
		if !healthy.Load() {
			return errors.New("db down")
		}
		return nil
	}}
	drained := make(chan struct{})
	worker := func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // in-flight work finishing
		close(drained)
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	mine := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_things_total", Help: "Things."})
	reg.MustRegister(mine)
	mine.Add(3)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, "test", addr, reg, ready, worker) }()

	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, "db down") {
		t.Fatalf("readyz with failing check: %d %s", code, body)
	}
	healthy.Store(true)
	if code, _ := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	// /metrics is the registry it was given, not the global default (which promhttp.Handler would
	// serve, with its own promhttp_* counters).
	code, body := get(t, "http://"+addr+"/metrics")
	if code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "sluice_test_things_total 3") ||
		strings.Contains(body, "promhttp_metric_handler_requests_total") {
		t.Fatalf("metrics %d:\n%s", code, body)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case <-drained:
	default:
		t.Fatal("Run returned before the worker drained")
	}
}

func TestRunStopsAllWhenOneWorkerFails(t *testing.T) {
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err := Run(context.Background(), "test", "", nil, nil,
		func(context.Context) error { return boom },
		func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	<-stopped
}
