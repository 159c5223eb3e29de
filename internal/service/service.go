// Package service owns what every Sluice process has in common: the /healthz, /readyz and /metrics
// endpoint, running a service's workers together, and stopping them cleanly on SIGTERM.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// SignalContext is canceled on SIGINT or SIGTERM.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Check is a readiness probe of one dependency.
type Check func(ctx context.Context) error

// Worker runs until ctx is canceled, then drains what it has in flight and returns.
type Worker func(ctx context.Context) error

// Run serves the health endpoint on listen (skipped when empty), with /metrics from metrics (the
// process's registry), and runs the workers until ctx is canceled or one of them fails; then it cancels
// the rest, waits for them to drain, and stops the server.
func Run(ctx context.Context, name, listen string, metrics prometheus.Gatherer, ready []Check, workers ...Worker) error {
	log := slog.With("service", name)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var srv *http.Server
	srvErr := make(chan error, 1)
	if listen != "" {
		if metrics == nil {
			return fmt.Errorf("%s: no metrics registry to serve on %s", name, listen)
		}
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("%s: listen %s: %w", name, listen, err)
		}
		srv = &http.Server{Handler: HealthMux(ready, metrics), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				srvErr <- err
			}
		}()
		log.Info("health endpoint up", "addr", l.Addr().String())
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w(ctx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				log.Error("worker stopped", "err", err)
				cancel()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-srvErr:
		firstErr = fmt.Errorf("%s: health server: %w", name, err)
		cancel()
		<-done
	}
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}
	log.Info("stopped")
	return firstErr
}

// HealthMux serves /healthz (the process answers), /readyz (every check passes within 3 s) and /metrics
// (what metrics gathers: never the global default registry, so each process shows exactly its own).
func HealthMux(ready []Check, metrics prometheus.Gatherer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := Ready(ctx, ready); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"status":"unavailable","error":%q}`, err.Error())
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return mux
}

// Ready runs every check and joins their errors.
func Ready(ctx context.Context, checks []Check) error {
	var errs []error
	for _, c := range checks {
		if err := c(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP serves srv on ln until ctx ends, then shuts it down gracefully: no new connections, and
// in-flight requests get up to grace to finish. name prefixes its errors and log lines ("api", "admin
// api"). The API and the admin API listeners both run through it.
func ServeHTTP(ctx context.Context, name string, log *slog.Logger, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info(name+" listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("%s serve: %w", name, err)
	case <-ctx.Done():
	}
	log.Info(name + " shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	return nil
}
