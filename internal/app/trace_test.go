package app_test

import (
	"context"
	"fmt"
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

// TestTraceFollowsWithdrawal runs withdrawals through the real services (`sluice all` on the MySQL
// queue) with an in-memory span exporter and checks each makes one connected trace: the API request's
// span is the root, and the signer's, broadcaster's and monitor's deliveries (linked through the
// traceparent in the queue envelope), their RPC calls and database transactions all descend from it.
// With batching off the consumer signs; with it on the batcher claims withdrawals from the database and
// continues the first one's trace (from the stored traceparent), linking the others'.
func TestTraceFollowsWithdrawal(t *testing.T) {
	t.Run("consumer", func(t *testing.T) { runTraced(t, false, 1) })
	t.Run("batcher", func(t *testing.T) { runTraced(t, true, 3) })
}

func runTraced(t *testing.T, batching bool, n int) {
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
	for i := range st.Config.Chains {
		st.Config.Chains[i].Batching.Enabled = &batching
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
	ws := make([]withdrawal, n)
	for i := range ws {
		body := map[string]string{"external_id": fmt.Sprintf("traced-%d", i), "chain": "local", "asset": devmode.Token,
			"amount": "1.5", "to": testenv.NewAccount(t).Address.Hex()}
		if code, raw := api.Do("POST", "/v1/withdrawals", body, &ws[i]); code != http.StatusCreated {
			t.Fatalf("post: %d: %s", code, raw)
		}
	}
	for i := range ws {
		for deadline := time.Now().Add(time.Minute); ws[i].Status != "CONFIRMED"; time.Sleep(100 * time.Millisecond) {
			if code, raw := api.Do("GET", "/v1/withdrawals/"+ws[i].ID, nil, &ws[i]); code != http.StatusOK {
				t.Fatalf("get: %d: %s", code, raw)
			}
			if ws[i].Status == "FAILED" || time.Now().After(deadline) {
				t.Fatalf("withdrawal %s: %+v", ws[i].Status, ws[i].Error)
			}
		}
	}

	// The monitor's last delivery ends just after the status the API reports commits: retry the checks
	// until every span has ended.
	var (
		problems []string
		summary  string
	)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		problems, summary = checkTraces(exp.GetSpans(), n, batching)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Log(summary)
	for _, p := range problems {
		t.Error(p)
	}
}

// checkTraces checks the spans of n withdrawals posted to the API and confirmed, and sums them up.
func checkTraces(spans tracetest.SpanStubs, n int, batching bool) ([]string, string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	traces := map[trace.TraceID]map[trace.SpanID]tracetest.SpanStub{}
	linked := map[trace.TraceID]bool{} // traces some span links to
	var roots []tracetest.SpanStub
	claims := 0
	for _, s := range spans {
		id := s.SpanContext.TraceID()
		if traces[id] == nil {
			traces[id] = map[trace.SpanID]tracetest.SpanStub{}
		}
		traces[id][s.SpanContext.SpanID()] = s
		for _, l := range s.Links {
			linked[l.SpanContext.TraceID()] = true
		}
		if s.Name == "POST /v1/withdrawals" {
			roots = append(roots, s)
		}
		if s.Name == "sign claimed" {
			claims++
		}
	}
	if len(roots) != n {
		return []string{fmt.Sprintf("%d API request spans, want %d", len(roots), n)}, ""
	}
	if batching && claims == 0 {
		bad("no batcher span (sign claimed) with batching on")
	}
	continued, linkedOnly := 0, 0
	for _, root := range roots {
		if root.Parent.IsValid() {
			bad("the API span has a parent %v: want it the root", root.Parent)
		}
		inTrace := traces[root.SpanContext.TraceID()]
		names := map[string]int{}
		for _, s := range inTrace {
			names[s.Name]++
			// Every span descends from the API request's span.
			cur, hops := s, 0
			for cur.Parent.IsValid() && hops < 100 {
				p, ok := inTrace[cur.Parent.SpanID()]
				if !ok {
					break
				}
				cur, hops = p, hops+1
			}
			if cur.SpanContext.SpanID() != root.SpanContext.SpanID() {
				bad("span %q of the trace does not descend from the API request's span", s.Name)
			}
			// The consumers' spans continue the trace from the message, not from their own context.
			if strings.HasPrefix(s.Name, "consume ") && !s.Parent.IsRemote() {
				bad("%s span's parent is not the remote context from the envelope", s.Name)
			}
		}
		if names["consume tx-request"] == 0 || names["db.transaction"] == 0 {
			bad("trace lacks the signer's delivery or a database transaction: %v", names)
		}
		onward := names["consume signed-tx"] > 0 && names["consume tx-monitor"] > 0 &&
			names["rpc eth_sendRawTransaction"] > 0 && names["rpc eth_getTransactionReceipt"] > 0
		if onward {
			continued++
		} else if linked[root.SpanContext.TraceID()] {
			linkedOnly++
		}
		switch {
		case !batching && !onward:
			bad("trace does not reach the broadcaster and monitor: %v", names)
		case batching && !onward && !linked[root.SpanContext.TraceID()]:
			bad("batched withdrawal's trace neither continues to the broadcaster and monitor nor is linked from a batch: %v", names)
		}
	}
	return problems, fmt.Sprintf("%d spans; %d withdrawals traced to the monitor, %d linked from a batch in another's trace; %d batcher claims",
		len(spans), continued, linkedOnly, claims)
}
