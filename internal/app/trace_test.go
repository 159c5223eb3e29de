package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/telemetry"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// TestTraceFollowsWithdrawal runs one withdrawal through the real services (`sluice all` on the MySQL
// queue) with an in-memory span exporter and checks it makes one connected trace: the API request's
// span is the root, and the signer's, broadcaster's and monitor's deliveries (linked through the
// traceparent in the queue envelope), their RPC calls and database transactions all descend from it.
func TestTraceFollowsWithdrawal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	tp := telemetry.NewTracerProvider(config.Tracing{}, sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := devmode.Start(ctx, devmode.Options{
		RPCAddr: "127.0.0.1:0", APIAddr: testenv.FreeAddr(t), BlockTime: 200 * time.Millisecond, Confirmations: 3,
		DatabaseDSN: testenv.MySQLDSN(t), RedisAddr: testenv.RedisAddr(t), KeystoreDir: t.TempDir(),
		AppOptions: []app.Option{app.WithTracerProvider(tp)},
	}, log)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer st.Close()
	// The consumer signs a withdrawal it is handed; a batcher would claim it from the database, outside
	// the request's trace.
	off := false
	for i := range st.Config.Chains {
		st.Config.Chains[i].Batching.Enabled = &off
	}
	if err := st.App.Queue.Setup(ctx); err != nil {
		t.Fatalf("queue setup: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- st.App.Run(runCtx, app.Services...) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("services stopped with %v", err)
		}
	}()
	testenv.WaitReady(t, st.APIURL, runErr)

	api := testenv.API{T: t, Base: st.APIURL, Key: st.APIKey}
	var w withdrawal
	body := map[string]string{"external_id": "traced", "chain": "local", "asset": devmode.Native, "amount": "0.01",
		"to": testenv.NewAccount(t).Address.Hex()}
	if code, raw := api.Do("POST", "/v1/withdrawals", body, &w); code != http.StatusCreated {
		t.Fatalf("post: %d: %s", code, raw)
	}
	for deadline := time.Now().Add(time.Minute); w.Status != "CONFIRMED"; time.Sleep(100 * time.Millisecond) {
		if code, raw := api.Do("GET", "/v1/withdrawals/"+w.ID, nil, &w); code != http.StatusOK {
			t.Fatalf("get: %d: %s", code, raw)
		}
		if w.Status == "FAILED" || time.Now().After(deadline) {
			t.Fatalf("withdrawal %s: %+v", w.Status, w.Error)
		}
	}

	// The monitor's last delivery ends just after the status the API reports commits: wait until every
	// span of the trace has its parent.
	var (
		root    tracetest.SpanStub
		inTrace map[trace.SpanID]tracetest.SpanStub
		orphans []string
	)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		spans := exp.GetSpans()
		root = tracetest.SpanStub{}
		for _, s := range spans {
			if s.Name == "POST /v1/withdrawals" {
				root = s
			}
		}
		if !root.SpanContext.IsValid() {
			t.Fatalf("no span of the API request among %d spans", len(spans))
		}
		inTrace = map[trace.SpanID]tracetest.SpanStub{}
		for _, s := range spans {
			if s.SpanContext.TraceID() == root.SpanContext.TraceID() {
				inTrace[s.SpanContext.SpanID()] = s
			}
		}
		orphans = orphans[:0]
		for _, s := range inTrace {
			// Every span descends from the API request's span, which has no parent.
			cur, hops := s, 0
			for cur.Parent.IsValid() && hops < 100 {
				p, ok := inTrace[cur.Parent.SpanID()]
				if !ok {
					break
				}
				cur, hops = p, hops+1
			}
			if cur.SpanContext.SpanID() != root.SpanContext.SpanID() {
				orphans = append(orphans, s.Name)
			}
		}
		if len(orphans) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(orphans) > 0 {
		t.Fatalf("spans of the trace not descending from the API request: %v", orphans)
	}
	if root.Parent.IsValid() {
		t.Fatalf("the API span has a parent %v: want it the root", root.Parent)
	}
	names := map[string]int{}
	for _, s := range inTrace {
		names[s.Name]++
	}
	for _, want := range []string{"consume tx-request", "consume signed-tx", "consume tx-monitor", "db.transaction",
		"rpc eth_sendRawTransaction", "rpc eth_getTransactionReceipt"} {
		if names[want] == 0 {
			t.Errorf("trace lacks a %q span; it has %v", want, names)
		}
	}
	// The consumers' spans continue the trace from the message, not from the consumer's own context.
	for _, s := range inTrace {
		if strings.HasPrefix(s.Name, "consume ") && !s.Parent.IsRemote() {
			t.Errorf("%s span's parent is not the remote context from the envelope", s.Name)
		}
	}
	t.Logf("one trace of %d spans: %v", len(inTrace), names)
}
